"""Negative examples for interval data: GC-matched genome windows, dinucleotide-shuffled copies and flanking regions.

All three are seeded (a ``numpy.random.Generator``) and work on DNA index arrays (``data.alphabets.DNA``: A C G T =
1..4, N = 5, PAD = 0); none loops over bases in Python.
"""

from __future__ import annotations

import logging

import numpy as np

from biolens.data.alphabets import DNA
from biolens.data.genome import Genome
from biolens.data.intervals import overlaps_any

log = logging.getLogger(__name__)

_G, _C = DNA.symbols.index("G") + 1, DNA.symbols.index("C") + 1
_N = DNA.unknown_index
GC_BINS = 100  # matching resolution: GC fraction in steps of 0.01
TILE_BLOCK = 1 << 24  # bases read at a time when tiling the genome


def gc_fraction(x: np.ndarray) -> np.ndarray:
    """``(N, L)`` DNA indices → ``(N,)`` fraction of G+C among A/C/G/T (0.5 for a row without any)."""
    canonical = ((x >= 1) & (x <= 4)).sum(axis=1)
    gc = ((x == _G) | (x == _C)).sum(axis=1)
    return np.where(canonical > 0, gc / np.maximum(canonical, 1), 0.5)


def unknown_fraction(x: np.ndarray, lengths: np.ndarray | None = None) -> np.ndarray:
    """``(N, L)`` DNA indices → ``(N,)`` fraction of N (and IUPAC codes) among the row's bases."""
    lengths = (x != 0).sum(axis=1) if lengths is None else lengths
    return (x == _N).sum(axis=1) / np.maximum(lengths, 1)


def dinucleotide_shuffle(x: np.ndarray, lengths: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random sequence per row with exactly the row's dinucleotide counts, first and last base (Altschul &
    Erickson's Euler-path shuffle, as in DeepLIFT/tangermeme's ``dinucleotide_shuffle``: each base's last outgoing
    edge is kept, the others are permuted).

    ``(N, L)`` right-padded indices and ``(N,)`` lengths → ``(N, L)``. The walk takes one vectorized step per
    position for all rows at once (it is sequential by nature); edges are grouped and permuted with one sort.
    """
    x = np.ascontiguousarray(x, dtype=np.uint8)
    n, width = x.shape
    lengths = np.asarray(lengths, dtype=np.int64)
    out = np.zeros_like(x)
    if n == 0 or width == 0:
        return out
    vocab = int(x.max()) + 1
    rows, pos = np.nonzero(np.arange(width - 1)[None, :] < (lengths - 1)[:, None])  # edges pos → pos + 1
    group = rows * vocab + x[rows, pos]  # (row, source base)
    by_pos = np.lexsort((pos, group))
    last = np.zeros(len(group), dtype=bool)
    if len(group):
        g_sorted = group[by_pos]
        last[by_pos[np.r_[g_sorted[1:] != g_sorted[:-1], True]]] = True
    key = rng.random(len(group))
    key[last] = 2.0  # each base's last exit stays last: the shuffled edges still form one Euler path
    order = np.lexsort((key, group))
    nxt = pos[order] + 1
    starts = np.full(n * vocab, -1, dtype=np.int64)
    uniq, first = np.unique(group[order], return_index=True)
    starts[uniq] = first
    used = np.zeros(n * vocab, dtype=np.int64)
    at = np.zeros(n, dtype=np.int64)
    out[:, 0] = np.where(lengths > 0, x[:, 0], 0)
    every = np.arange(n)
    for j in range(1, width):
        live = every[lengths > j]
        if not live.size:
            break
        g = live * vocab + x[live, at[live]]
        at[live] = nxt[starts[g] + used[g]]
        used[g] += 1
        out[live, j] = x[live, at[live]]
    return out


def genome_tiles(genome: Genome, contigs: list[str], width: int, rng: np.random.Generator, max_unknown: float
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every non-overlapping ``width`` window of ``contigs`` (a random phase per contig) with at most
    ``max_unknown`` N: (contig names, starts, GC fractions). Read in blocks, so memory stays bounded by the tiles'
    three numbers each."""
    names, starts, gcs = [], [], []
    per_block = max(1, TILE_BLOCK // width)
    for name in contigs:
        length = genome.contigs[name]
        if length < width:
            continue
        phase = int(rng.integers(0, min(width, length - width + 1)))
        count = (length - phase) // width
        for k0 in range(0, count, per_block):
            k1 = min(count, k0 + per_block)
            lo = phase + k0 * width
            block = genome.encode(name, lo, phase + k1 * width).reshape(k1 - k0, width)
            ok = unknown_fraction(block, np.full(len(block), width)) <= max_unknown
            starts.append(lo + width * np.flatnonzero(ok))
            gcs.append(gc_fraction(block[ok]))
            names.append(np.full(int(ok.sum()), name, dtype=object))
    if not starts:
        return np.zeros(0, dtype=object), np.zeros(0, dtype=np.int64), np.zeros(0)
    return np.concatenate(names), np.concatenate(starts).astype(np.int64), np.concatenate(gcs)


def match_gc(target: np.ndarray, candidates: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Indices of distinct candidates whose GC histogram follows ``target``'s, bin by bin (0.01 wide); a bin short
    of candidates borrows from the nearest bins. Returns at most ``len(target)`` indices (fewer only when there are
    fewer candidates)."""
    tbin = np.clip((np.asarray(target) * GC_BINS).astype(np.int64), 0, GC_BINS - 1)
    cbin = np.clip((np.asarray(candidates) * GC_BINS).astype(np.int64), 0, GC_BINS - 1)
    need = np.bincount(tbin, minlength=GC_BINS)
    pools = [list(rng.permutation(np.flatnonzero(cbin == b))) for b in range(GC_BINS)]
    chosen: list[int] = []
    for b in np.argsort(-need, kind="stable"):  # fullest bins first, so they keep their own candidates
        want = int(need[b])
        for d in range(GC_BINS):
            if not want:
                break
            for nb in dict.fromkeys((b - d, b + d)):
                if 0 <= nb < GC_BINS and want and pools[nb]:
                    take = min(want, len(pools[nb]))
                    chosen += pools[nb][:take]
                    del pools[nb][:take]
                    want -= take
    return np.array(sorted(chosen), dtype=np.int64)


def gc_matched(genome: Genome, contigs: list[str], target_gc: np.ndarray, width: int, exclude: tuple, *,
               rng: np.random.Generator, max_unknown: float) -> tuple[np.ndarray, np.ndarray]:
    """Genome windows whose GC distribution matches ``target_gc`` (one per target), drawn from ``contigs`` away
    from the ``exclude`` intervals ``(contig names, starts, ends)``. Returns (contig names, starts)."""
    names, starts, gcs = genome_tiles(genome, contigs, width, rng, max_unknown)
    if len(starts):
        ex_names, ex_start, ex_end = exclude
        codes = {c: i for i, c in enumerate(genome.contigs)}
        hit = overlaps_any(np.array([codes[c] for c in names]), starts, starts + width,
                           np.array([codes[c] for c in ex_names], dtype=np.int64), ex_start, ex_end)
        names, starts, gcs = names[~hit], starts[~hit], gcs[~hit]
    pick = match_gc(target_gc, gcs, rng)
    return names[pick], starts[pick]


def flank_windows(contig: np.ndarray, start: np.ndarray, end: np.ndarray, widths: np.ndarray, n: int, *,
                  gap: int, lengths: dict[str, int], exclude: tuple, rng: np.random.Generator
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` windows beside the positive intervals ``[start, end)``: left ``[start - gap - w, start - gap)`` and
    right ``[end + gap, end + gap + w)`` first, then one window further out on each side, and so on (as many steps as
    ``n`` needs), inside the contig and clear of the ``exclude`` intervals; each window keeps its positive's width.
    Returns (contig names, starts, widths)."""
    steps = max(1, int(np.ceil(n / max(len(start), 1) / 2)) + 1)
    parts = []
    for step in range(steps):
        for side in (-1, 1):
            s = (start - gap - (step + 1) * widths) if side < 0 else (end + gap + step * widths)
            parts.append((s, np.full(len(s), step)))
    cand_start = np.concatenate([p[0] for p in parts])
    cand_step = np.concatenate([p[1] for p in parts])
    cand_contig = np.tile(contig, 2 * steps)
    cand_width = np.tile(widths, 2 * steps)
    length = np.array([lengths[c] for c in cand_contig], dtype=np.int64)
    ok = (cand_start >= 0) & (cand_start + cand_width <= length)
    codes = {c: i for i, c in enumerate(lengths)}
    code = np.array([codes[c] for c in cand_contig], dtype=np.int64)
    ex_names, ex_start, ex_end = exclude
    ex_code = np.array([codes[c] for c in ex_names], dtype=np.int64)
    ok[ok] = ~overlaps_any(code[ok], cand_start[ok], cand_start[ok] + cand_width[ok], ex_code, ex_start, ex_end)
    idx = np.flatnonzero(ok)
    _, first = np.unique(np.stack([code[idx], cand_start[idx], cand_width[idx]]), axis=1, return_index=True)
    idx = idx[np.sort(first)]  # one window per place, even when two positives share a flank
    order = np.lexsort((rng.random(len(idx)), cand_step[idx]))  # nearest first, random among equals
    pick = idx[order[:n]]
    return cand_contig[pick], cand_start[pick], cand_width[pick]
