"""``biolens scan RUN --genome g.fa [--regions x.bed] --stride N --out DIR``: the model slid along a genome.

Windows of the model's length ``W`` start every ``stride`` bases across each region (default: every contig). Each
window's score (P(class), both strands averaged by default, see ``workflows/genomic.py``) is drawn over the
``stride`` bases around its centre, so the track is a gap-free step function:

- ``scan.bedGraph`` and ``scan.bw`` (bigWig, pyBigWig; fixed-step entries): the score along every region;
- ``peaks.bed`` (narrowPeak layout: name, score 0–1000, strand ``.``, max probability, -1, -1, summit offset):
  runs of windows at or above ``threshold`` (default: the run's threshold) merged while they overlap or touch;
- ``scan.json``: what was scanned, the settings, counts and the throughput.

Regions are read ``chunk_windows`` windows at a time (one genome read per chunk, windows as strided views of it),
so memory stays bounded whatever the genome's size. Every file is written to a temporary name and renamed at the
end: an error leaves none of them behind.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from biolens.data.genome import Genome
from biolens.data.intervals import read_bed
from biolens.errors import ConfigError, DataError
from biolens.io import temp_beside
from biolens.tasks import Predictor
from biolens.workflows.genomic import (as_predictor, both_strands, is_regression, open_genome, scored_classes,
                                       window_probs)

log = logging.getLogger(__name__)

FILES = {"bedgraph": "scan.bedGraph", "bigwig": "scan.bw", "peaks": "peaks.bed", "summary": "scan.json"}


@dataclass
class ScanResult:
    out: Path
    files: dict[str, Path]
    windows: int
    bases: int
    peaks: int
    seconds: float
    summary: dict[str, Any]


def scan_regions(genome: Genome, regions: str | Path | None, width: int) -> list[tuple[str, int, int]]:
    """Sorted, merged regions ``(contig, start, end)`` at least ``width`` long: the BED's (contigs through the
    genome's aliases, clipped to the contig), or every contig."""
    if regions is None:
        spans = [(c, 0, n) for c, n in genome.contigs.items()]
    else:
        iv = read_bed(regions)
        spans = []
        for i in range(len(iv)):
            name = genome.resolve(iv.contig[i])
            if name is None:
                raise DataError(f"{iv.locate(i)}: contig {iv.contig[i]!r} is not in the genome {genome.path} "
                                f"(contigs: {genome.describe_contigs()}); rename it or pass aliases "
                                f"({iv.contig[i]}=NAME)")
            spans.append((name, int(iv.start[i]), min(int(iv.end[i]), genome.contigs[name])))
    order = {c: k for k, c in enumerate(genome.contigs)}
    spans.sort(key=lambda r: (order[r[0]], r[1]))
    merged: list[list[Any]] = []
    for c, s, e in spans:
        if merged and merged[-1][0] == c and s < merged[-1][2]:
            merged[-1][2] = max(merged[-1][2], e)
        else:
            merged.append([c, s, e])
    kept = [(c, s, e) for c, s, e in merged if e - s >= width]
    if len(kept) < len(merged):
        log.info("scan: %d region(s) shorter than the model's %d bp window left out", len(merged) - len(kept), width)
    if not kept:
        raise DataError(f"no region (or contig) is at least the model's {width} bp long; nothing to scan")
    return kept


class _Peaks:
    """Called windows merged into regions while they overlap or touch, across chunks and regions."""

    def __init__(self, width: int):
        self.width = width
        self.open: list[Any] | None = None  # [contig, start, end, best score, summit]
        self.rows: list[tuple[Any, ...]] = []

    def add(self, contig: str, starts: np.ndarray, scores: np.ndarray) -> None:
        if not len(starts):
            return
        w = self.width
        breaks = np.flatnonzero(np.diff(starts) > w) + 1
        for part_s, part_v in zip(np.split(starts, breaks), np.split(scores, breaks)):
            k = int(np.argmax(part_v))
            best, summit = float(part_v[k]), int(part_s[k]) + w // 2
            lo, hi = int(part_s[0]), int(part_s[-1]) + w
            o = self.open
            if o is not None and o[0] == contig and lo <= o[2]:
                o[2] = max(o[2], hi)
                if best > o[3]:
                    o[3], o[4] = best, summit
                continue
            self.flush()
            self.open = [contig, lo, hi, best, summit]

    def flush(self) -> None:
        if self.open is not None:
            c, s, e, best, summit = self.open
            self.rows.append((c, s, e, f"peak{len(self.rows) + 1}", int(round(1000 * min(max(best, 0), 1))), ".",
                              f"{best:.6g}", -1, -1, summit - s))
            self.open = None


def scan_genome(run: str | Path | Predictor, genome: str | Path, *, out: str | Path, regions: str | Path | None = None,
                stride: int | None = None, threshold: float | None = None, target_class: str | None = None,
                strands: str = "auto", batch_size: int = 256, chunk_windows: int = 8192,
                aliases: Mapping[str, str] | None = None, allow_other_genome: bool = False, device: str = "auto",
                overwrite: bool = False, progress: Callable[[int, int], None] | None = None) -> ScanResult:
    """Scan ``genome`` (or ``regions`` of it) with the run and write the tracks and peaks into ``out``."""
    import pyBigWig

    predictor = as_predictor(run, device)
    width = int(predictor.contract.max_len)
    stride = stride if stride is not None else max(1, width // 2)
    if not 1 <= stride <= width:
        raise ConfigError(f"stride {stride}: give 1 … {width} (the model's window); a larger step would leave gaps")
    if batch_size < 1 or chunk_windows < 1:
        raise ConfigError(f"batch_size and chunk_windows must be >= 1; got {batch_size} and {chunk_windows}")
    both = both_strands(predictor, strands)
    cls = scored_classes(predictor, target_class)
    if len(cls) != 1:
        raise ConfigError(f"a multi-class run: pass target_class (one of {', '.join(predictor.contract.class_names)}) "
                          "for the track")
    c = cls[0]
    name = predictor.contract.class_names[c]
    value = is_regression(predictor)
    if threshold is None and value:
        raise ConfigError(f"a regression run: pass threshold (in the units of {name}) to call regions")
    if threshold is None:
        threshold = predictor.contract.threshold if c == predictor.contract.positive_index else 0.5
    if not value and not 0 <= threshold <= 1:
        raise ConfigError(f"threshold {threshold}: give a probability between 0 and 1")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"out {out} is a file; give a folder for the tracks")
    targets = {k: out / v for k, v in FILES.items()}
    if not overwrite and any(p.exists() for p in targets.values()):
        raise ConfigError(f"out {out} already holds scan results ({FILES['summary']}); choose another folder or "
                          "pass overwrite=True")
    began = time.perf_counter()
    with open_genome(predictor, genome, aliases, allow_other_genome=allow_other_genome) as g:
        spans = scan_regions(g, regions, width)
        total = sum(e - s for _, s, e in spans)
        out.mkdir(parents=True, exist_ok=True)
        temps: dict[str, str] = {}
        for k, p in targets.items():
            fd, temps[k] = temp_beside(p)
            os.close(fd)
        peaks = _Peaks(width)
        n_windows, done = 0, 0
        bw = None
        try:
            bw = pyBigWig.open(temps["bigwig"], "w")
            bw.addHeader(list(g.contigs.items()), maxZooms=10)
            with open(temps["bedgraph"], "w", newline="") as bg:
                bg.write(f'track type=bedGraph name="biolens scan" description="P({name}) of {width} bp windows, '
                         f'stride {stride}, run {predictor.run_dir.name}"\n')
                for contig, a, b in spans:
                    before = done
                    starts = np.arange(a, b - width + 1, stride, dtype=np.int64)
                    for k0 in range(0, len(starts), chunk_windows):
                        part = starts[k0: k0 + chunk_windows]
                        seq = g.encode(contig, int(part[0]), int(part[-1]) + width)
                        x = np.lib.stride_tricks.sliding_window_view(seq, width)[::stride][: len(part)].copy()
                        scores = window_probs(predictor, x, both, batch_size)[:, c]  # (k, W) rows, own memory
                        lo = part + width // 2 - stride // 2
                        pd.DataFrame({"c": contig, "s": lo, "e": lo + stride, "v": scores}).to_csv(
                            bg, sep="\t", header=False, index=False, float_format="%.6g", quoting=csv.QUOTE_NONE)
                        bw.addEntries(contig, int(lo[0]), values=scores.astype(np.float64).tolist(), span=stride,
                                      step=stride)
                        peaks.add(contig, part[scores >= threshold], scores[scores >= threshold])
                        n_windows += len(part)
                        if progress is not None:
                            progress(before + int(part[-1]) + width - a, total)
                    done = before + b - a
            bw.close()
            bw = None
            peaks.flush()
            with open(temps["peaks"], "w", newline="") as fh:
                for row in peaks.rows:
                    fh.write("\t".join(map(str, row)) + "\n")
            seconds = time.perf_counter() - began
            summary = {
                "run": str(predictor.run_dir), "genome": g.identity()["name"], "genome_path": str(g.path),
                "regions": len(spans), "bases": int(total), "window": width, "stride": stride,
                "strands": "both" if both else "forward", "class": name, "threshold": threshold,
                "windows": n_windows, "peaks": len(peaks.rows), "seconds": round(seconds, 3),
                "windows_per_second": round(n_windows / max(seconds, 1e-9), 1),
                "megabases_per_second": round(total / 1e6 / max(seconds, 1e-9), 4),
                "files": {k: v for k, v in FILES.items()},
            }
            with open(temps["summary"], "w") as fh:
                fh.write(json.dumps(summary, indent=2) + "\n")
            for k, p in targets.items():
                os.replace(temps[k], p)
        except OSError as e:
            raise DataError(f"cannot write into {out} ({e.strerror or e}); free disk space or choose another "
                            "folder") from None
        finally:
            if bw is not None:
                bw.close()
            for t in temps.values():
                Path(t).unlink(missing_ok=True)
    log.info("scan: %d windows over %.2f Mb in %.1f s (%.0f windows/s); %d peaks at P(%s) >= %g; %s", n_windows,
             total / 1e6, seconds, summary["windows_per_second"], len(peaks.rows), name, threshold, out)
    return ScanResult(out, targets, n_windows, int(total), len(peaks.rows), seconds, summary)
