"""Genomic intervals: BED / narrowPeak files (gzip ok) and interval arithmetic (overlaps, clusters, leakage).

Coordinates are 0-based and half-open, as in BED. Every record knows its file and line, so any error names it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from biolens.data.sniff import check_text_file, open_text
from biolens.errors import DataError

_SKIP = ("#", "track", "browser")
STRANDS = ("+", "-", ".")


@dataclass
class Intervals:
    """BED records as arrays (one entry per data line)."""

    path: Path
    contig: np.ndarray  # (N,) object: names as in the file
    start: np.ndarray  # (N,) int64
    end: np.ndarray  # (N,) int64
    name: np.ndarray  # (N,) object ("" without a name column)
    strand: np.ndarray  # (N,) object: "+", "-" or "."
    summit: np.ndarray  # (N,) int64 absolute 0-based summit (narrowPeak column 10), -1 where none
    line: np.ndarray  # (N,) int64, 1-based line numbers
    columns: list[np.ndarray]  # every column as strings, for labels from a column
    narrowpeak: bool = False

    def __len__(self) -> int:
        return len(self.start)

    def locate(self, i: int) -> str:
        return f"{self.path}:{int(self.line[i])}"


def _ints(values: pd.Series, what: str, iv_path: Path, lines: np.ndarray, *, minimum: int | None = 0) -> np.ndarray:
    num = pd.to_numeric(values, errors="coerce")
    bad = num.isna() | (num != num.round())
    if minimum is not None:
        bad |= num < minimum
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        lower = f" >= {minimum}" if minimum is not None else ""
        raise DataError(f"{iv_path}:{lines[i]}: {what} {values.iloc[i]!r} is not an integer{lower}; BED columns are "
                        "chrom, start, end (0-based, half-open), name, score, strand")
    return num.to_numpy(dtype=np.int64)


def read_bed(path: str | Path, *, label_col: int | None = None) -> Intervals:
    """Read a BED3+ or narrowPeak file; ``track``/``browser``/``#`` lines are skipped.

    ``label_col`` (1-based) must exist on every line when given. narrowPeak is recognized by its ten columns with an
    integer summit offset in the last (``-1``: no summit).
    """
    p = check_text_file(path, "a BED file").path
    with open_text(p) as fh:
        lines = fh.read().splitlines()
    keep = [i for i, ln in enumerate(lines) if ln.strip() and not ln.startswith(_SKIP)]
    if not keep:
        raise DataError(f"{p}: no intervals (only header or comment lines); give a BED file with chrom, start, end")
    rows = [lines[i].split("\t") if "\t" in lines[i] else lines[i].split() for i in keep]
    numbers = np.array(keep, dtype=np.int64) + 1
    widths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
    short = np.flatnonzero(widths < 3)
    if short.size:
        i = int(short[0])
        raise DataError(f"{p}:{numbers[i]}: {widths[i]} column(s); a BED line needs chrom, start and end, separated by "
                        "tabs")
    ncol = int(widths[0])  # the first line sets the layout; extra columns on later lines are ignored
    ragged = np.flatnonzero(widths < ncol)
    if ragged.size:
        i = int(ragged[0])
        raise DataError(f"{p}:{numbers[i]}: {widths[i]} columns but the first line ({p}:{numbers[0]}) has {ncol}; "
                        "give every line the same columns")
    frame = pd.DataFrame([r[:ncol] for r in rows], dtype=str)
    start = _ints(frame[1], "start", p, numbers)
    end = _ints(frame[2], "end", p, numbers)
    empty = np.flatnonzero(end <= start)
    if empty.size:
        i = int(empty[0])
        raise DataError(f"{p}:{numbers[i]}: end {end[i]} is not after start {start[i]}; BED intervals are 0-based, "
                        "half-open (start < end)")
    strand = frame[5].str.strip().to_numpy(dtype=object) if ncol >= 6 else np.full(len(rows), ".", dtype=object)
    bad = np.flatnonzero(~np.isin(strand, STRANDS))
    if bad.size:
        i = int(bad[0])
        raise DataError(f"{p}:{numbers[i]}: strand {strand[i]!r} (column 6); expected +, - or .")
    summit = np.full(len(rows), -1, dtype=np.int64)
    narrowpeak = ncol == 10 and bool(pd.to_numeric(frame[9], errors="coerce").notna().all())
    if narrowpeak:
        offset = _ints(frame[9], "summit offset (column 10)", p, numbers, minimum=-1)
        outside = np.flatnonzero((offset >= 0) & (start + offset >= end))
        if outside.size:
            i = int(outside[0])
            raise DataError(f"{p}:{numbers[i]}: summit offset {offset[i]} (column 10) is outside the peak "
                            f"({start[i]}-{end[i]}); it counts from the start, -1 for none")
        summit = np.where(offset >= 0, start + offset, -1)
    if label_col is not None and not 1 <= label_col <= ncol:
        raise DataError(f"{p}: data.intervals.label_column={label_col} but the file has {ncol} column(s); pick a "
                        f"column between 4 and {ncol}")
    return Intervals(
        path=p, contig=frame[0].str.strip().to_numpy(dtype=object), start=start, end=end,
        name=frame[3].to_numpy(dtype=object) if ncol >= 4 else np.full(len(rows), "", dtype=object),
        strand=strand, summit=summit, line=numbers, columns=[frame[k].to_numpy(dtype=object) for k in range(ncol)],
        narrowpeak=narrowpeak,
    )


def contig_codes(contigs: np.ndarray, order: Mapping[str, int]) -> np.ndarray:
    """Contig names → integer codes (the genome's order)."""
    return np.fromiter((order[c] for c in contigs), dtype=np.int64, count=len(contigs))


def overlap_clusters(contig: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """A cluster id per interval: intervals that overlap, directly or through others, share one. ``contig`` are
    integer codes; ``(N,)`` arrays."""
    n = len(start)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.lexsort((start, contig))
    c, s, e = contig[order], start[order], end[order]
    # a new cluster starts where the contig changes or the interval starts at/after every earlier end of its contig
    new = np.ones(n, dtype=bool)
    # running maximum of ends within each contig: offset ends by contig so one accumulate works across contigs
    shift = (e.max() + 1) * c
    reach = np.maximum.accumulate(e + shift) - shift
    new[1:] = (c[1:] != c[:-1]) | (s[1:] >= reach[:-1])
    ids = np.empty(n, dtype=np.int64)
    ids[order] = np.cumsum(new) - 1
    return ids


def overlaps_any(contig: np.ndarray, start: np.ndarray, end: np.ndarray, ref_contig: np.ndarray,
                 ref_start: np.ndarray, ref_end: np.ndarray) -> np.ndarray:
    """Whether each query interval overlaps any reference interval (same contig, at least one shared base)."""
    hit = np.zeros(len(start), dtype=bool)
    for code in np.unique(contig):
        q = np.flatnonzero(contig == code)
        r = np.flatnonzero(ref_contig == code)
        if not r.size or not q.size:
            continue
        order = np.argsort(ref_start[r], kind="stable")
        rs, reach = ref_start[r][order], np.maximum.accumulate(ref_end[r][order])
        k = np.searchsorted(rs, end[q], side="left") - 1  # last reference starting before the query ends
        ok = k >= 0
        hit[q[ok]] = reach[k[ok]] > start[q[ok]]
    return hit


def overlap_leakage(leak: dict, contig: np.ndarray, start: np.ndarray, end: np.ndarray, split: np.ndarray) -> None:
    """Add genomic-overlap leakage to ``find_leakage``'s report, in place: for val (test), the rows that overlap a
    train (train or val) interval without being a sequence duplicate already counted, as
    ``leak["val_in_train"]["overlapping_interval"]``; their rows join ``leak["_mask"]``."""
    mask = leak["_mask"]
    for later, earlier in (("val", ("train",)), ("test", ("train", "val"))):
        rows = split == later
        prev = np.isin(split, earlier)
        hit = np.zeros(len(split), dtype=bool)
        hit[rows] = overlaps_any(contig[rows], start[rows], end[rows], contig[prev], start[prev], end[prev])
        key = f"{later}_in_{'_or_'.join(earlier)}"
        leak[key]["overlapping_interval"] = int((hit & ~mask).sum())
        mask |= hit
    leak["_mask"] = mask
