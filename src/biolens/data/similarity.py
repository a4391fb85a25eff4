"""Sequence similarity at scale: k-mer MinHash sketches and LSH propose candidate pairs, an alignment of each
candidate confirms it, and similar sequences are joined into groups.

Two sequences with identity ``p`` (substitutions spread along them) share about ``p**k`` of their k-mers, so their
k-mer Jaccard index is about ``p**k / (2 - p**k)``. ``similarity_groups`` links every pair whose MinHash estimate of
the Jaccard index reaches that of ``max_identity`` and whose aligned identity (difflib matching blocks, over the
shorter length) confirms it, so near-homologous proteins or near-identical promoters end up in
one group and a grouped split never puts them on both sides (the role CD-HIT or MMseqs2 clustering plays before a
protein benchmark split, aligning only the few candidate pairs). Nucleic-acid sketches hold the k-mers of both strands.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from difflib import SequenceMatcher

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from biolens.data.alphabets import Alphabet
from biolens.data.augment import reverse_complement_np
from biolens.data.encoding import decode

log = logging.getLogger(__name__)

NUM_HASHES = 64
_MERSENNE = np.uint64((1 << 61) - 1)
_EMPTY = np.iinfo(np.uint64).max


def default_kmer(alphabet: Alphabet, kmer: int | None = None) -> int:
    """``data.split.kmer``, or 8 for DNA/RNA and 4 for protein: unrelated sequences then share almost no k-mers
    (4^8 and 20^4 possible ones), so the MinHash estimate separates similar from unrelated."""
    return int(kmer) if kmer else (8 if alphabet.is_nucleic else 4)


def identity_to_jaccard(identity: float, k: int) -> float:
    """The k-mer Jaccard index expected of two sequences at ``identity`` (substitutions only)."""
    shared = float(identity) ** k
    return shared / (2.0 - shared)


def _kmer_codes(x: np.ndarray, lengths: np.ndarray, k: int, base: int) -> tuple[np.ndarray, np.ndarray]:
    """Polynomial codes ``(N, L-k+1)`` (uint64, wrapping) of every k-mer and a mask of the real ones (inside the
    sequence's length)."""
    n, width = x.shape
    m = width - k + 1
    if m <= 0:
        return np.zeros((n, 0), dtype=np.uint64), np.zeros((n, 0), dtype=bool)
    codes = np.zeros((n, m), dtype=np.uint64)
    b = np.uint64(base)
    with np.errstate(over="ignore"):
        for j in range(k):
            codes = codes * b + x[:, j:j + m].astype(np.uint64)
    valid = np.arange(m)[None, :] + k <= np.asarray(lengths)[:, None]
    return codes, valid


def _hash_params(seed: int, num: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.integers(1, (1 << 61) - 1, size=num, dtype=np.uint64) | np.uint64(1)
    c = rng.integers(0, (1 << 61) - 1, size=num, dtype=np.uint64)
    return a, c


def minhash(x: np.ndarray, lengths: np.ndarray, alphabet: Alphabet, k: int, *, both_strands: bool = False,
            num_hashes: int = NUM_HASHES, seed: int = 0, block: int = 1 << 22) -> np.ndarray:
    """MinHash sketches ``(N, num_hashes)`` uint64 of the k-mer sets of encoded rows ``(N, L)``; a sequence shorter
    than ``k`` gets a row of the empty value (it has no k-mers and is never linked). ``both_strands``: the set
    holds the k-mers of the reverse complement too (strand-free similarity for DNA/RNA). Rows are processed in
    blocks of about ``block`` k-mer × hash cells, so memory stays bounded."""
    x = np.asarray(x)
    lengths = np.asarray(lengths, dtype=np.int64)
    n = len(x)
    out = np.full((n, num_hashes), _EMPTY, dtype=np.uint64)
    if n == 0:
        return out
    a, c = _hash_params(seed, num_hashes)
    rows = max(1, block // max(1, x.shape[1] * num_hashes * (2 if both_strands else 1)))
    for start in range(0, n, rows):
        xs, ls = x[start:start + rows].astype(np.uint8), lengths[start:start + rows]
        codes, valid = _kmer_codes(xs, ls, k, alphabet.vocab_size)
        if both_strands:
            rc_codes, rc_valid = _kmer_codes(reverse_complement_np(xs, ls, alphabet), ls, k, alphabet.vocab_size)
            codes, valid = np.concatenate([codes, rc_codes], axis=1), np.concatenate([valid, rc_valid], axis=1)
        if codes.shape[1] == 0:
            continue
        with np.errstate(over="ignore"):
            hashed = (codes[:, :, None] * a[None, None, :] + c[None, None, :]) % _MERSENNE  # (B, M, H)
        hashed[~valid] = _EMPTY
        out[start:start + rows] = hashed.min(axis=1)
    return out


def _bands(num_hashes: int, jaccard: float) -> int:
    """Rows per LSH band: the largest power of two whose S-curve threshold ``(1/b)^(1/r)`` sits below 0.8 × the
    target Jaccard index (high recall; candidates are verified on the full sketch afterwards)."""
    best = 1
    r = 1
    while r <= num_hashes:
        if (1.0 / (num_hashes // r)) ** (1.0 / r) <= 0.8 * jaccard:
            best = r
        r *= 2
    return best


SMALL_BUCKET = 32  # LSH buckets up to this size have every pair checked; larger ones against their first member


def _bucket_pairs(bucket: np.ndarray) -> np.ndarray:
    """Candidate pairs ``(P, 2)`` of row indices sharing a bucket id: all pairs in small buckets, (first member,
    member) in large ones."""
    order = np.argsort(bucket, kind="stable")
    sorted_b = bucket[order]
    starts = np.flatnonzero(np.r_[True, sorted_b[1:] != sorted_b[:-1]])
    sizes = np.diff(np.r_[starts, len(order)])
    out = []
    for size in np.unique(sizes):
        if size < 2:
            continue
        first = starts[sizes == size]
        if size <= SMALL_BUCKET:
            members = order[first[:, None] + np.arange(size)[None, :]]  # (buckets, size)
            i, j = np.triu_indices(size, 1)
            out.append(np.stack([members[:, i].ravel(), members[:, j].ravel()], axis=1))
        else:
            for f in first:
                members = order[f:f + size]
                out.append(np.stack([np.full(size - 1, members[0]), members[1:]], axis=1))
    return np.concatenate(out) if out else np.zeros((0, 2), dtype=np.int64)


def similar_pairs(sketches: np.ndarray, jaccard: float) -> np.ndarray:
    """Index pairs ``(P, 2)`` whose sketches estimate a Jaccard index ≥ ``jaccard``: LSH over bands of the sketch,
    candidates checked on the whole sketch (every pair of a small bucket; a large bucket's members against its
    first member)."""
    n, h = sketches.shape
    usable = np.flatnonzero(sketches[:, 0] != _EMPTY)
    if len(usable) < 2:
        return np.zeros((0, 2), dtype=np.int64)
    r = _bands(h, jaccard)
    found: list[np.ndarray] = []
    s = sketches[usable]
    for band in range(h // r):
        cols = np.ascontiguousarray(s[:, band * r:(band + 1) * r])
        key = cols.view(np.dtype((np.void, cols.dtype.itemsize * r))).ravel()
        _, bucket = np.unique(key, return_inverse=True)
        pairs = _bucket_pairs(bucket.ravel())
        if len(pairs):
            pairs = np.sort(pairs, axis=1)
            est = (s[pairs[:, 0]] == s[pairs[:, 1]]).mean(axis=1)
            found.append(pairs[est >= jaccard])
    if not found:
        return np.zeros((0, 2), dtype=np.int64)
    pairs = np.unique(np.concatenate(found), axis=0)
    return usable[pairs]


def merge_groups(n: int, labelings: Iterable[np.ndarray], pairs: np.ndarray | None = None) -> np.ndarray:
    """Group ids ``(n,)``: the connected components of "same label in any labeling" and the given index pairs."""
    rows, cols = [np.arange(n)], [np.arange(n)]
    offset = n
    for labels in labelings:
        _, inv = np.unique(np.asarray(labels), return_inverse=True)
        rows.append(np.arange(n))
        cols.append(offset + inv.ravel())  # each label is a node joined to its members
        offset += int(inv.max(initial=-1)) + 1
    if pairs is not None and len(pairs):
        rows.append(pairs[:, 0])
        cols.append(pairs[:, 1])
    r, c = np.concatenate(rows), np.concatenate(cols)
    graph = coo_matrix((np.ones(len(r), dtype=np.int8), (r, c)), shape=(offset, offset))
    _, comp = connected_components(graph, directed=False)
    return np.unique(comp[:n], return_inverse=True)[1]


def pair_identity(x: np.ndarray, lengths: np.ndarray, alphabet: Alphabet, pairs: np.ndarray, *,
                  both_strands: bool) -> np.ndarray:
    """Identity of each index pair ``(P, 2)``: residues matched by a gapped alignment (difflib's matching blocks)
    over the length of the shorter sequence, as CD-HIT counts it; with ``both_strands`` the better of the two
    orientations."""
    if not len(pairs):
        return np.zeros(0)
    rows, inv = np.unique(pairs, return_inverse=True)
    xs, ls = np.asarray(x)[rows], np.asarray(lengths, dtype=np.int64)[rows]
    fwd = decode(xs, alphabet, ls)
    rev = decode(reverse_complement_np(xs.astype(np.uint8), ls, alphabet), alphabet, ls) if both_strands else None
    out = np.empty(len(pairs))
    for n, (i, j) in enumerate(inv.reshape(pairs.shape)):
        shorter = max(1, min(len(fwd[i]), len(fwd[j])))
        best = _matched(fwd[i], fwd[j])
        if rev is not None:
            best = max(best, _matched(fwd[i], rev[j]))
        out[n] = best / shorter
    return out


def _matched(a: str, b: str) -> int:
    return sum(m.size for m in SequenceMatcher(None, a, b, autojunk=False).get_matching_blocks())


def similar_sequences(x: np.ndarray, lengths: np.ndarray, alphabet: Alphabet, max_identity: float, k: int, *,
                      both_strands: bool, seed: int = 0) -> np.ndarray:
    """Index pairs ``(P, 2)`` of sequences at or above ``max_identity``. MinHash/LSH proposes candidates (estimated
    k-mer Jaccard ≥ half that of ``max_identity``); each is then kept only if its aligned identity
    (:func:`pair_identity`) reaches ``max_identity`` — on short sequences a single shared stretch (a motif with
    its flanks) gives as many shared k-mers as global similarity, so the sketch alone cannot decide."""
    jaccard = identity_to_jaccard(max_identity, k)
    candidates = similar_pairs(minhash(x, lengths, alphabet, k, both_strands=both_strands, seed=seed), 0.5 * jaccard)
    keep = pair_identity(x, lengths, alphabet, candidates, both_strands=both_strands) >= max_identity
    return candidates[keep]


def similarity_groups(x: np.ndarray, lengths: np.ndarray, alphabet: Alphabet, max_identity: float, k: int, *,
                      both_strands: bool, seed: int = 0) -> tuple[np.ndarray, int]:
    """Group ids ``(N,)`` joining sequences at or above ``max_identity`` (estimated from k-mer MinHash), and the
    number of similar pairs found."""
    pairs = similar_sequences(x, lengths, alphabet, max_identity, k, both_strands=both_strands, seed=seed)
    groups = merge_groups(len(x), [], pairs)
    log.info("similarity grouping (k=%d, identity ≥ %.2f ≈ Jaccard ≥ %.3f): %d similar pairs, %d groups of %d "
             "sequences", k, max_identity, identity_to_jaccard(max_identity, k), len(pairs), groups.max(initial=-1) + 1,
             len(x))
    return groups, len(pairs)


def cross_split_pairs(pairs: np.ndarray, split: np.ndarray) -> dict[str, int]:
    """Counts of sequences in val/test with a similar sequence (index ``pairs`` from :func:`similar_sequences`) in
    an earlier split, for ``doctor data``."""
    order = {"train": 0, "val": 1, "test": 2}
    rank = np.array([order.get(s, -1) for s in split])
    out = {"val_in_train": 0, "test_in_train_or_val": 0}
    if not len(pairs):
        return out
    a, b = pairs[:, 0], pairs[:, 1]
    later = np.where(rank[a] >= rank[b], a, b)
    earlier = np.where(rank[a] >= rank[b], b, a)
    cross = (rank[later] > rank[earlier]) & (rank[earlier] >= 0)
    for name, r in (("val_in_train", 1), ("test_in_train_or_val", 2)):
        out[name] = int(len(np.unique(later[cross & (rank[later] == r)])))
    return out
