"""Genome scan: throughput and memory of ``biolens scan`` (``workflows.scan.scan_genome``) on a large genome.

Writes a synthetic genome (default 100 Mb: five 20 Mb contigs, a 12 bp motif planted every ~50 kb), trains a small
``motif_cnn`` on windows around the planted sites vs GC-matched genome windows, then, each in a fresh process, scans
(a) 1 Mb at stride 50 and (b) a whole 20 Mb contig at stride 200 (20x the span, 5x the windows). Reports windows/s,
Mb/s, the planted sites recovered in the scanned span, and the RSS growth of the scan: peak RSS (``VmHWM``) at the
end minus RSS after the run was loaded and the genome opened.

Usage: python benchmarks/bench_scan.py [--mb 100] [--json out.json] [--keep DIR]
       python benchmarks/bench_scan.py --measure RUN GENOME CONTIG START END STRIDE OUT   (one scan; prints JSON)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MOTIF = "TGACTCAGCATG"


def _status(key: str) -> int:
    """``VmRSS`` / ``VmHWM`` of this process in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


def measure(run: str, genome: str, contig: str, start: int, end: int, stride: int, out: str) -> dict:
    from biolens.data.genome import Genome
    from biolens.tasks import Predictor
    from biolens.workflows.scan import scan_genome

    predictor = Predictor.load(run, device="cpu")
    with Genome(genome) as g:
        g.identity()  # cached by training; opening it is part of the baseline
    regions = Path(out).with_suffix(".bed")
    regions.write_text(f"{contig}\t{start}\t{end}\n")
    base = _status("VmRSS")
    t0 = time.perf_counter()
    result = scan_genome(predictor, genome, out=out, regions=regions, stride=stride, overwrite=True)
    seconds = time.perf_counter() - t0
    peak = _status("VmHWM")
    return {"contig": contig, "span_mb": (end - start) / 1e6, "stride": stride, "windows": result.windows,
            "seconds": round(seconds, 2), "windows_per_s": round(result.windows / seconds, 1),
            "mb_per_s": round((end - start) / 1e6 / seconds, 4), "peaks": result.peaks,
            "rss_base_mb": round(base / 2**20, 1), "rss_peak_mb": round(peak / 2**20, 1),
            "rss_growth_mb": round(max(0, peak - base) / 2**20, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=int, default=100, help="genome size in Mb (five contigs)")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--keep", type=Path, help="work folder to keep (default: a temporary one)")
    ap.add_argument("--measure", nargs=7, metavar=("RUN", "GENOME", "CONTIG", "START", "END", "STRIDE", "OUT"))
    args = ap.parse_args()
    if args.measure:
        run, genome, contig, start, end, stride, out = args.measure
        print(json.dumps(measure(run, genome, contig, int(start), int(end), int(stride), out)))
        return

    import numpy as np

    from biolens.data.synthetic import write_synthetic_genome
    from biolens.workflows.train import train

    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-scan-"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("BIOLENS_CACHE", str(work / "cache"))
    contig_len = args.mb * 1_000_000 // 5
    lengths = {f"chr{i + 1}": contig_len for i in range(5)}
    fasta = work / "genome.fa"
    t0 = time.perf_counter()
    sites = write_synthetic_genome(fasta, lengths, motif=MOTIF, sites=args.mb * 20, spacing=25_000, seed=0)
    write_s = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    bed = work / "sites.bed"
    with open(bed, "w") as fh:
        for c, s, _ in sites:
            j = int(rng.integers(-40, 41))
            fh.write(f"{c}\t{s + 6 - 50 + j}\t{s + 6 + 50 + j}\n")
    t0 = time.perf_counter()
    result = train(data=str(bed), genome=str(fasta), window=200, negatives="gc-matched", test_chroms=["chr5"],
                   model="motif_cnn", params={"embedding_dim": 8, "filters": 16, "dropout": 0.1}, epochs=4,
                   batch_size=32, lr=5e-3, out=str(work / "run"), overwrite=True)
    train_s = time.perf_counter() - t0
    rows = []
    for contig, start, end, stride in (("chr5", 0, 1_000_000, 50), ("chr5", 0, contig_len, 200)):
        cmd = [sys.executable, __file__, "--measure", str(work / "run"), str(fasta), contig, str(start), str(end),
               str(stride), str(work / f"scan-{stride}")]
        row = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
        inside = [s for c, s, _ in sites if c == contig and start <= s < end]
        peaks = [ln.split("\t") for ln in (work / f"scan-{stride}" / "peaks.bed").read_text().splitlines()]
        row["sites"] = len(inside)
        row["sites_found"] = sum(any(int(p[1]) <= s and s + len(MOTIF) <= int(p[2]) for p in peaks) for s in inside)
        rows.append(row)
    report = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
              "genome_mb": args.mb, "write_genome_s": round(write_s, 1), "train_s": round(train_s, 1),
              "test_roc_auc": result.metrics["test"]["roc_auc"], "scans": rows}
    print(f"genome {args.mb} Mb written in {write_s:.1f} s; trained in {train_s:.1f} s (test ROC AUC "
          f"{report['test_roc_auc']:.3f})")
    print("| span | stride | windows | s | windows/s | Mb/s | sites found | RSS after load | peak | growth |")
    for r in rows:
        print(f"| {r['span_mb']:g} Mb | {r['stride']} | {r['windows']:,} | {r['seconds']} | {r['windows_per_s']:,.0f} "
              f"| {r['mb_per_s']:.3f} | {r['sites_found']}/{r['sites']} | {r['rss_base_mb']:.0f} MB | "
              f"{r['rss_peak_mb']:.0f} MB | {r['rss_growth_mb']:.0f} MB |")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
