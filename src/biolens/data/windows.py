"""Intervals on a genome → sequence training data: windows, strands, negatives and chromosome splits.

``interval_windows(cfg, seed)`` turns ``data.path`` (BED/narrowPeak files, ``LABEL=BED`` per class) on
``data.genome`` into ``Records`` (ids ``contig:start-end(strand)``, sequences, labels, one ``file:line`` each) plus
their split names and coordinates, so ``prepare_sequences`` runs its usual path on them (quality filter, class
checks, leakage, report) and adds one check: val/test windows that overlap a train window are leakage too.

- **Windows**: ``data.intervals.window`` bases centred on the summit (narrowPeak column 10) or the middle;
  minus-strand intervals are reverse-complemented (``data.augment.reverse_complement_np``). Windows running past a
  contig end or overlapping the blacklist are left out with their reason (``filtered.tsv``).
- **Negatives** (``data.intervals.negatives``), seeded by ``data.split_seed`` (default ``train.seed``): GC-matched
  genome windows away from every interval and the blacklist; dinucleotide-shuffled copies of the positives; or
  flanking windows. With chromosome
  splits each split's negatives come from its own contigs, so every split keeps the class ratio.
- **Splits**: ``val_chroms`` / ``test_chroms`` put whole contigs in val/test; whatever no contig list assigns is split
  by the seeded stratified split over *groups*: windows that overlap (directly or through others) or are equal up to
  reverse complement form one group, so a generated split never puts overlapping windows on both sides.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from sklearn.model_selection import train_test_split

from biolens.config import DataConfig
from biolens.data.alphabets import DNA
from biolens.data.augment import reverse_complement_np
from biolens.data.encoding import decode
from biolens.data.genome import Genome
from biolens.data.intervals import Intervals, overlap_clusters, overlaps_any, read_bed
from biolens.data.negatives import dinucleotide_shuffle, flank_windows, gc_fraction, gc_matched, unknown_fraction
from biolens.data.readers import Records
from biolens.data.splits import sequence_keys, stratified_split
from biolens.errors import ConfigError, DataError

log = logging.getLogger(__name__)

POSITIVE = "positive"
NEGATIVE = "negative"


@dataclass
class WindowSet:
    """Interval windows as records, with everything ``prepare_sequences`` adds for genome data."""

    records: Records
    split: np.ndarray  # (N,) train / val / test
    stranded: bool  # both strands occur among the intervals: the data are strand-specific
    coords: tuple[np.ndarray, np.ndarray, np.ndarray]  # (contig code, start, end) of every record's window
    dropped: list[dict[str, str]]  # windows left out before encoding: id, location, reason
    report: dict[str, Any]
    genome: dict[str, Any]  # Genome.identity(): name, contig lengths, checksum (for the contract)


@dataclass
class _Windows:
    """Windows under construction: encoded rows plus per-row metadata."""

    x: np.ndarray
    lengths: np.ndarray
    contig: np.ndarray  # genome contig names
    start: np.ndarray
    end: np.ndarray
    label: np.ndarray
    ids: np.ndarray
    sources: np.ndarray

    def __len__(self) -> int:
        return len(self.start)


def _check_options(cfg: DataConfig) -> None:
    ic = cfg.intervals
    for name in ("val", "test", "labels"):
        if getattr(cfg, name) is not None:
            raise ConfigError(f"data.{name} is for sequence files; with data.genome, split by chromosome "
                              "(data.intervals.val_chroms, data.intervals.test_chroms) or leave the split to the seed, "
                              "and take labels from LABEL=BED files or data.intervals.label_column")
    if cfg.store == "mmap":
        raise ConfigError("data.store=mmap streams sequence files; windows from data.genome are built in memory, so "
                          "drop data.store")
    if cfg.alphabet not in ("auto", "dna"):
        raise ConfigError(f"data.alphabet={cfg.alphabet}: windows cut from a genome are DNA; set data.alphabet=dna")
    if ic.negatives == "gc-matched" and ic.window is None:
        raise ConfigError("set data.intervals.window=N (e.g. 1000): data.intervals.negatives=gc-matched draws "
                          "genome windows of one fixed length")
    both = sorted(set(ic.val_chroms) & set(ic.test_chroms))
    if both:
        raise ConfigError(f"data.intervals.val_chroms and data.intervals.test_chroms both name {both[0]}; give each "
                          "contig to one split")


def _read_parts(cfg: DataConfig) -> list[tuple[str | None, Intervals]]:
    items = [cfg.path] if isinstance(cfg.path, str) else list(cfg.path)
    per_class = [s for s in items if "=" in s and not Path(s).exists()]
    if per_class and len(per_class) != len(items):
        raise DataError("mix of LABEL=BED and plain BED files in data.path; give every class file as LABEL=FILE")
    if per_class and cfg.intervals.label_column is not None:
        raise ConfigError("data.intervals.label_column and LABEL=BED files both give labels; use one of them")
    parts = []
    for item in items:
        label, file = (item.partition("=")[0].strip(), item.partition("=")[2]) if per_class else (None, item)
        if per_class and not label:
            raise DataError(f"{item!r}: empty label; write LABEL=FILE")
        parts.append((label, read_bed(file, label_col=cfg.intervals.label_column)))
    return parts


def _resolve_contigs(iv: Intervals, genome: Genome) -> np.ndarray:
    names = {c: genome.resolve(c) for c in dict.fromkeys(iv.contig)}
    unknown = [c for c, r in names.items() if r is None]
    if unknown:
        i = int(np.flatnonzero(iv.contig == unknown[0])[0])
        raise DataError(f"{iv.locate(i)}: contig {unknown[0]!r} is not in the genome {genome.path} (contigs: "
                        f"{genome.describe_contigs()}); rename it, or map it with "
                        f"data.intervals.chrom_aliases.{unknown[0]}=NAME")
    return np.array([names[c] for c in iv.contig], dtype=object)


def _chrom_list(names: list[str], genome: Genome, field: str) -> set[str]:
    out = set()
    for name in names:
        resolved = genome.resolve(name)
        if resolved is None:
            raise ConfigError(f"data.intervals.{field}: contig {name!r} is not in the genome {genome.path} (contigs: "
                              f"{genome.describe_contigs()}); give contig names of the genome")
        out.add(resolved)
    return out


def _encode(genome: Genome, contig: np.ndarray, start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Encoded windows ``(N, L)`` and lengths: one batched read per contig for fixed widths, else one per window."""
    lengths = (end - start).astype(np.int64)
    if len(lengths) and (lengths == lengths[0]).all():
        return genome.windows(contig, start, int(lengths[0])), lengths
    x = np.zeros((len(lengths), int(lengths.max(initial=0))), dtype=np.uint8)
    for i in range(len(lengths)):
        x[i, : lengths[i]] = genome.encode(contig[i], int(start[i]), int(end[i]))
    return x, lengths


def _blacklist(path: str | None, genome: Genome, codes: dict[str, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if path is None:
        return np.zeros(0, dtype=object), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    iv = read_bed(path)
    names = np.array([genome.resolve(c) for c in iv.contig], dtype=object)
    known = np.array([n is not None for n in names], dtype=bool)
    if (~known).any():
        log.info("blacklist %s: %d of %d regions are on contigs the genome does not have; ignored", path,
                 int((~known).sum()), len(iv))
    return names[known], iv.start[known], iv.end[known]


def _codes(names: np.ndarray, codes: dict[str, int]) -> np.ndarray:
    return np.fromiter((codes[c] for c in names), dtype=np.int64, count=len(names))


def _positives(cfg: DataConfig, genome: Genome, parts: list[tuple[str | None, Intervals]], codes: dict[str, int],
               black: tuple) -> tuple[_Windows, list[dict[str, str]], dict[str, Any]]:
    ic = cfg.intervals
    contig, start, end, strand, summit, label, source = [], [], [], [], [], [], []
    for lab, iv in parts:
        contig.append(_resolve_contigs(iv, genome))
        start.append(iv.start)
        end.append(iv.end)
        strand.append(iv.strand)
        summit.append(iv.summit)
        if lab is not None:
            label.append(np.full(len(iv), lab, dtype=object))
        elif ic.label_column is not None:
            values = np.array([str(v).strip() for v in iv.columns[ic.label_column - 1]], dtype=object)
            empty = np.flatnonzero(values == "")
            if empty.size:
                raise DataError(f"{iv.locate(int(empty[0]))}: empty label in column {ic.label_column}; give every "
                                "interval a label")
            label.append(values)
        else:
            label.append(np.full(len(iv), POSITIVE, dtype=object))
        source.append(np.array([f"{iv.path}:{n}" for n in iv.line], dtype=object))
    contig, start, end, strand, summit, label, source = (np.concatenate(a) for a in
                                                         (contig, start, end, strand, summit, label, source))
    if ic.center == "summit" and (summit < 0).any():
        i = int(np.flatnonzero(summit < 0)[0])
        raise ConfigError(f"{source[i]}: no summit (narrowPeak column 10) but data.intervals.center=summit; use "
                          "center=middle or auto")
    use_summit = (summit >= 0) & (ic.center != "middle")
    centre = np.where(use_summit, summit, (start + end) // 2)
    if ic.window is not None:
        ws = centre - ic.window // 2
        we = ws + ic.window
    else:
        ws, we = start.copy(), end.copy()
    length = np.array([genome.contigs[c] for c in contig], dtype=np.int64)
    minus = (strand == "-") & (not ic.ignore_strand)
    ids = np.array([f"{c}:{s}-{e}({'-' if m else '+'})" for c, s, e, m in zip(contig, ws, we, minus)], dtype=object)
    reasons = np.full(len(ws), "", dtype=object)
    off = (ws < 0) | (we > length)
    for i in np.flatnonzero(off):
        reasons[i] = f"window {contig[i]}:{ws[i]}-{we[i]} runs past the contig end ({length[i]:,} bp)"
    code = _codes(contig, codes)
    black_hit = overlaps_any(code, ws, we, _codes(black[0], codes), black[1], black[2]) & ~off
    reasons[black_hit] = f"window overlaps a blacklisted region ({ic.blacklist})"
    drop = reasons != ""
    dropped = [{"id": ids[i], "location": source[i], "reason": reasons[i]} for i in np.flatnonzero(drop)]
    if dropped:
        log.warning("%d of %d intervals left out (%s); listed in filtered.tsv", len(dropped), len(ws),
                    ", ".join(f"{n} {k}" for k, n in Counter(_kind(r) for r in reasons[drop]).items()))
    keep = ~drop
    if not keep.any():
        raise DataError(f"no interval gives a usable window ({dropped[0]['location']}: {dropped[0]['reason']}); "
                        "check the genome and data.intervals.window")
    x, lengths = _encode(genome, contig[keep], ws[keep], we[keep])
    rc = minus[keep]
    if rc.any():
        x[rc] = reverse_complement_np(x[rc], lengths[rc], DNA)
    info = {"intervals": int(len(ws)), "positives": int(keep.sum()),
            "center": ("summit" if use_summit[keep].all() else "middle" if not use_summit[keep].any()
                       else "summit where given, else middle"),
            "reverse_complemented": int(rc.sum()), "dropped": dict(Counter(_kind(r) for r in reasons[drop]))}
    # extents to keep negatives clear of: the interval and its window
    lo, hi = np.minimum(start, ws), np.maximum(end, we)
    info["_extent"] = (contig, lo, hi)
    info["_kept"] = (lo[keep], hi[keep])
    info["_strands"] = set(strand.tolist()) if not ic.ignore_strand else {"."}
    return _Windows(x, lengths, contig[keep], ws[keep], we[keep], label[keep], ids[keep], source[keep]), dropped, info


def _kind(reason: str) -> str:
    return "past a contig end" if "contig end" in reason else "blacklisted"


def _chrom_split(contig: np.ndarray, val: set[str], test: set[str]) -> np.ndarray:
    out = np.full(len(contig), "", dtype=object)
    out[np.isin(contig, list(val))] = "val"
    out[np.isin(contig, list(test))] = "test"
    return out


def _negatives(cfg: DataConfig, genome: Genome, pos: _Windows, strata: np.ndarray, val: set[str], test: set[str],
               extent: tuple, kept: tuple, black: tuple, rng: np.random.Generator
               ) -> tuple[_Windows | None, dict[str, Any]]:
    """Negatives per stratum (a chromosome split, or everything the seed splits); ``extent``: every interval's
    interval ∪ window (kept clear of), ``kept``: the same (lo, hi) for ``pos``'s rows (flanks start beside it)."""
    ic = cfg.intervals
    method = ic.negatives
    exclude = tuple(np.concatenate([a, b]) for a, b in zip(extent, black))
    parts: list[_Windows] = []
    requested = 0
    for stratum in dict.fromkeys(strata):
        rows = np.flatnonzero(strata == stratum)
        n = int(round(ic.negative_ratio * len(rows)))
        requested += n
        if n == 0:
            continue
        cycle = rng.permutation(np.resize(np.arange(len(rows)), n))  # each positive about ratio times
        if method == "shuffled":
            src = rows[cycle]
            x = dinucleotide_shuffle(pos.x[src], pos.lengths[src], rng)
            copy = np.zeros(n, dtype=np.int64)
            seen: Counter = Counter()
            for k, s in enumerate(src):
                seen[s] += 1
                copy[k] = seen[s]
            parts.append(_Windows(x, pos.lengths[src].copy(), pos.contig[src], pos.start[src], pos.end[src],
                                  np.full(n, NEGATIVE, dtype=object),
                                  np.array([f"{pos.ids[s]}:shuffled{c}" for s, c in zip(src, copy)], dtype=object),
                                  np.array([f"{pos.sources[s]} (dinucleotide-shuffled copy {c})"
                                            for s, c in zip(src, copy)], dtype=object)))
            continue
        if method == "gc-matched":
            allowed = [c for c in genome.contigs if _chrom_split(np.array([c], dtype=object), val, test)[0] == stratum]
            target = gc_fraction(pos.x[rows])[cycle]
            names, starts = gc_matched(genome, allowed, target, ic.window, exclude, rng=rng,
                                       max_unknown=cfg.quality.max_unknown_frac)
            widths = np.full(len(starts), ic.window, dtype=np.int64)
        else:  # flanks, beside each positive's interval and window
            names, starts, widths = flank_windows(pos.contig[rows], kept[0][rows], kept[1][rows], pos.lengths[rows],
                                                  n, gap=ic.flank_distance, lengths=genome.contigs, exclude=exclude,
                                                  rng=rng)
        if not len(starts):
            continue
        x, lengths = _encode(genome, names, starts, starts + widths)
        ok = unknown_fraction(x, lengths) <= cfg.quality.max_unknown_frac
        x, lengths, names, starts, widths = x[ok], lengths[ok], names[ok], starts[ok], widths[ok]
        ends = starts + widths
        parts.append(_Windows(x, lengths, names, starts, ends, np.full(len(starts), NEGATIVE, dtype=object),
                              np.array([f"{c}:{s}-{e}(+)" for c, s, e in zip(names, starts, ends)], dtype=object),
                              np.array([f"{genome.path} {c}:{s}-{e} ({method} negative)"
                                        for c, s, e in zip(names, starts, ends)], dtype=object)))
    neg = _concat(parts) if parts else None
    drawn = len(neg) if neg is not None else 0
    if drawn < requested:
        log.warning("data.intervals.negatives=%s: %d of %d negatives found (the genome has too few windows clear of "
                    "the intervals); training with fewer", method, drawn, requested)
    info = {"method": method, "ratio": ic.negative_ratio, "seed": None, "requested": requested, "drawn": drawn}
    return neg, info


def _concat(parts: list[_Windows]) -> _Windows:
    width = max(p.x.shape[1] for p in parts)
    x = np.concatenate([np.pad(p.x, ((0, 0), (0, width - p.x.shape[1]))) for p in parts])
    return _Windows(x, *(np.concatenate([getattr(p, f) for p in parts])
                         for f in ("lengths", "contig", "start", "end", "label", "ids", "sources")))


def split_groups(code: np.ndarray, start: np.ndarray, end: np.ndarray, x: np.ndarray, lengths: np.ndarray
                 ) -> np.ndarray:
    """One group id per window: windows that overlap (directly or through others) or are equal up to reverse
    complement share a group (connected components of both relations)."""
    n = len(start)
    clusters = overlap_clusters(code, start, end)
    _, canonical = sequence_keys(x, lengths, DNA)
    n_c = int(clusters.max(initial=-1)) + 1
    rows = np.concatenate([np.arange(n), np.arange(n)])
    cols = np.concatenate([n + clusters, n + n_c + canonical])
    size = n + n_c + int(canonical.max(initial=-1)) + 1
    graph = coo_matrix((np.ones(2 * n, dtype=np.int8), (rows, cols)), shape=(size, size))
    _, comp = connected_components(graph, directed=False)
    return comp[:n]


def _two_way(labels: np.ndarray, groups: np.ndarray, frac: float, seed: int, name: str) -> np.ndarray:
    """Rows drawn into one split (``frac`` of the groups, stratified by label), groups kept whole."""
    uniq, first = np.unique(groups, return_index=True)
    glabels = labels[first]
    try:
        _, chosen = train_test_split(np.arange(len(uniq)), test_size=frac, stratify=glabels, random_state=seed)
    except ValueError as e:
        raise DataError(f"cannot draw the {name} split from the remaining contigs ({e}); add intervals or name "
                        f"contigs for it with data.intervals.{name}_chroms") from None
    return np.isin(groups, uniq[chosen])


def assign_splits(contig: np.ndarray, labels: np.ndarray, groups: np.ndarray, val: set[str], test: set[str],
                  val_frac: float, test_frac: float, seed: int) -> np.ndarray:
    """train/val/test per window: contig lists first; the seeded group-aware split for whatever they leave open."""
    split = _chrom_split(contig, val, test)
    if not val and not test:
        try:
            return stratified_split(labels, groups, val_frac, test_frac, seed).astype(object)
        except DataError as e:  # its advice (explicit val/test files) does not apply to genome windows
            raise DataError(f"{str(e).split('; ')[0]} (overlapping windows count as one); add intervals, or split by "
                            "chromosome with data.intervals.val_chroms and data.intervals.test_chroms") from None
    rest = split == ""
    if val and test:
        split[rest] = "train"
        return split
    missing, frac = ("test", test_frac) if val else ("val", val_frac)
    drawn = _two_way(labels[rest], groups[rest], frac, seed, missing)
    split[np.flatnonzero(rest)[drawn]] = missing
    split[split == ""] = "train"
    return split


def interval_windows(cfg: DataConfig, seed: int = 0) -> WindowSet:
    """Read ``data.path`` intervals on ``data.genome`` into training windows (see the module docstring)."""
    _check_options(cfg)
    ic = cfg.intervals
    rng = np.random.default_rng(seed)
    parts = _read_parts(cfg)
    with Genome(cfg.genome, aliases=ic.chrom_aliases) as genome:
        identity = genome.identity()
        codes = {c: i for i, c in enumerate(genome.contigs)}
        val = _chrom_list(ic.val_chroms, genome, "val_chroms")
        test = _chrom_list(ic.test_chroms, genome, "test_chroms")
        black = _blacklist(ic.blacklist, genome, codes)
        pos, dropped, info = _positives(cfg, genome, parts, codes, black)
        extent, kept, strands = info.pop("_extent"), info.pop("_kept"), info.pop("_strands")
        classes = sorted(set(pos.label))
        neg_info: dict[str, Any] = {"method": "none"}
        windows = pos
        if ic.negatives != "none":
            if NEGATIVE in classes:
                raise ConfigError(f"the intervals already have a class named {NEGATIVE!r}; drop data.intervals."
                                  "negatives or rename that class")
            strata = _chrom_split(pos.contig, val, test)
            neg, neg_info = _negatives(cfg, genome, pos, strata, val, test, extent, kept, black, rng)
            neg_info["seed"] = seed
            if neg is not None:
                windows = _concat([pos, neg])
        elif len(classes) < 2:
            raise DataError(f"data.path: every interval is of one class ({classes[0]!r}); draw negatives with "
                            "data.intervals.negatives=gc-matched (or shuffled, flanks), or give one BED per class "
                            "(LABEL=FILE)")
    code = _codes(windows.contig, codes)
    groups = split_groups(code, windows.start, windows.end, windows.x, windows.lengths)
    split = assign_splits(windows.contig, windows.label, groups, val, test, cfg.val_frac, cfg.test_frac, seed)
    gc = gc_fraction(windows.x)
    is_neg = windows.label == NEGATIVE
    if ic.negatives != "none":
        neg_info["gc_positives"] = round(float(gc[~is_neg].mean()), 4)
        neg_info["gc_negatives"] = round(float(gc[is_neg].mean()), 4) if is_neg.any() else None
    report = {
        "genome": {"path": str(cfg.genome), **{k: identity[k] for k in ("name", "checksum")},
                   "contigs": len(identity["contigs"]), "length": int(sum(identity["contigs"].values()))},
        "files": [str(iv.path) for _, iv in parts],
        "window": ic.window,
        **info,
        "negatives": neg_info,
        "splits": {"by": "chromosome" if val and test else "chromosome + seed" if val or test else "seed",
                   "val_chroms": sorted(val), "test_chroms": sorted(test), "groups": int(groups.max(initial=-1)) + 1},
    }
    stranded = {"+", "-"} <= strands
    log.info("intervals: %d windows of %s from %s (%s), %d negatives (%s); split by %s", len(pos),
             f"{ic.window} bp" if ic.window else "their own length", genome.name, ", ".join(report["files"]),
             int(is_neg.sum()), neg_info["method"], report["splits"]["by"])
    records = Records(list(windows.ids), decode(windows.x, DNA, windows.lengths), list(windows.label), None,
                      sources=list(windows.sources))
    return WindowSet(records, split.astype(str), stranded, (code, windows.start, windows.end), dropped, report,
                     identity)
