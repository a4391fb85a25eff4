"""Quality filtering (guide 3.3 / 7.2): every dropped sequence gets a reason, and the counts are reported."""

from __future__ import annotations

import logging

import numpy as np

from biolens.config import QualityConfig
from biolens.data.alphabets import PAD, Alphabet

log = logging.getLogger(__name__)

REASONS = ("too_short", "too_many_unknown", "homopolymer", "low_complexity")
NUCLEIC_DEFAULTS = {"max_homopolymer": 20, "min_complexity": 0.3}


def resolve_quality(cfg: QualityConfig, alphabet: Alphabet) -> QualityConfig:
    """Fill alphabet-dependent defaults (nucleic: homopolymer 20, complexity 0.3; protein: off)."""
    updates = {k: (v if alphabet.is_nucleic else None) for k, v in NUCLEIC_DEFAULTS.items() if getattr(cfg, k) is None}
    return cfg.model_copy(update=updates)


def longest_run(x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Longest run of one symbol per row of ``(N, L)`` indices (padding excluded)."""
    n, width = x.shape
    if width == 0:
        return np.zeros(n, dtype=np.int64)
    change = np.ones((n, width), dtype=bool)
    change[:, 1:] = x[:, 1:] != x[:, :-1]
    run_id = np.cumsum(change.ravel()) - 1  # global run index, new run at each row start too
    run_len = np.bincount(run_id)[run_id].reshape(n, width)
    run_len[x == PAD] = 0
    return run_len.max(axis=1)


def composition_entropy(x: np.ndarray, lengths: np.ndarray, alphabet: Alphabet) -> np.ndarray:
    """Shannon entropy of symbol composition, normalized to [0, 1] by log2 of the alphabet size."""
    k = len(alphabet.symbols)
    counts = np.stack([(x == i).sum(axis=1) for i in range(1, k + 1)], axis=1).astype(np.float64)
    total = counts.sum(axis=1, keepdims=True)
    p = np.divide(counts, total, out=np.zeros_like(counts), where=total > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.where(p > 0, p * np.log2(p), 0.0).sum(axis=1)
    return h / np.log2(k)


def quality_filter(x: np.ndarray, lengths: np.ndarray, alphabet: Alphabet, cfg: QualityConfig) -> np.ndarray:
    """Reason per row (``""`` = kept), the first failing check in order of ``REASONS``.

    ``lengths`` are the original lengths (before truncation); checks run on the encoded rows.
    """
    reasons = np.full(len(x), "", dtype=object)

    def mark(mask: np.ndarray, reason: str) -> None:
        reasons[(reasons == "") & mask] = reason

    enc_len = (x != PAD).sum(axis=1)
    mark(lengths < max(cfg.min_len, 1), "too_short")
    unknown = (x == alphabet.unknown_index).sum(axis=1) / np.maximum(enc_len, 1)
    mark(unknown > cfg.max_unknown_frac, "too_many_unknown")
    if cfg.max_homopolymer is not None:
        mark(longest_run(x, lengths) > cfg.max_homopolymer, "homopolymer")
    if cfg.min_complexity is not None:
        mark(composition_entropy(x, lengths, alphabet) < cfg.min_complexity, "low_complexity")
    return reasons


def summarize(reasons: np.ndarray) -> dict[str, int]:
    """Counts per reason (every reason listed, zeros included) plus kept and dropped totals."""
    out = {r: int((reasons == r).sum()) for r in REASONS}
    out["dropped"] = int((reasons != "").sum())
    out["kept"] = int((reasons == "").sum())
    return out
