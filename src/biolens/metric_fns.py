"""The numeric building blocks of the metric registry (``biolens.metrics``): confusion-matrix ratios, one-vs-rest
AUCs, and the NaN-aware wrappers that turn a scikit-learn metric into a per-label, micro or example-based
multi-label metric or a correlation that is NaN where undefined. Nothing here is registered; ``metrics.py``
names the metrics and says which of these computes each."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, f1_score, hamming_loss, roc_auc_score


def ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(a, dtype=float) / np.asarray(b, dtype=float)


def mcc_cells(tp, fp, tn, fn):  # noqa: ANN001, ANN202
    return ratio(tp * tn - fp * fn, np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)))


def ovr_auc(y: np.ndarray, probs: np.ndarray) -> float:
    k = probs.shape[1]
    if len(np.unique(y)) != k:
        return float("nan")
    return roc_auc_score(y, probs, multi_class="ovr", average="macro", labels=list(range(k)))


def ovr_ap(y: np.ndarray, probs: np.ndarray) -> float:
    k = probs.shape[1]
    if len(np.unique(y)) != k:
        return float("nan")
    return average_precision_score(np.eye(k)[y], probs, average="macro")


def two_classes(fn: Callable[[np.ndarray, np.ndarray], float]) -> Callable[[np.ndarray, np.ndarray], float]:
    def wrapped(y_pos: np.ndarray, p_pos: np.ndarray) -> float:
        return fn(y_pos, p_pos) if 0 < int(np.sum(y_pos)) < len(y_pos) else float("nan")
    return wrapped


def defined(fn: Callable[[np.ndarray, np.ndarray], float]) -> Callable[[np.ndarray, np.ndarray], float]:
    """NaN where a correlation is undefined (fewer than 3 values, or a constant series)."""
    def wrapped(y: np.ndarray, p: np.ndarray) -> float:
        if len(y) < 3 or np.ptp(y) == 0 or np.ptp(p) == 0:
            return float("nan")
        return float(fn(y, p))
    return wrapped


def per_label_mean(fn: Callable[..., Any], y: np.ndarray, p: np.ndarray, needs_both: bool = True) -> float:
    values = per_label(fn, y, p, needs_both)
    return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")


def f1(y: np.ndarray, d: np.ndarray, **kw: Any) -> Any:
    return f1_score(y, d, zero_division=0, **kw)


def per_label(fn: Callable[..., Any], y: np.ndarray, p: np.ndarray, needs_both: bool = True) -> np.ndarray:
    """``fn(y_j, p_j)`` for every label ``j`` over its observed rows; NaN where a label has no observed rows (or, with
    ``needs_both``, only one class). ``fn`` is a scikit-learn metric that takes ``average=None``: with every entry
    observed it scores all labels in one call on the indicator matrix (what bootstrap CIs repeat a thousand times),
    the same figures as label by label."""
    out = np.full(y.shape[1], np.nan)
    if y.size and not np.isnan(y).any():
        truth = y > 0.5
        cols = truth.any(axis=0) & ~truth.all(axis=0) if needs_both else np.ones(y.shape[1], dtype=bool)
        if cols.sum() >= 2:  # one column would read as a binary (two-class) problem
            out[cols] = fn(truth[:, cols].astype(np.int8), np.asarray(p[:, cols], dtype=np.float64), average=None)
            return out
    for j in range(y.shape[1]):
        seen = ~np.isnan(y[:, j])
        yj = y[seen, j] > 0.5
        if not seen.any() or (needs_both and (yj.all() or not yj.any())):
            continue
        out[j] = fn(yj, p[seen, j])
    return out


def observed(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every observed (sample, label) entry, flattened: (truth as bool, score)."""
    seen = ~np.isnan(y)
    return y[seen] > 0.5, p[seen]


def micro(fn: Callable[[np.ndarray, np.ndarray], float]) -> Callable[[np.ndarray, np.ndarray, np.ndarray], float]:
    def wrapped(y: np.ndarray, p: np.ndarray, d: np.ndarray) -> float:
        yt, ps = observed(y, p)
        return float(fn(yt, ps)) if 0 < yt.sum() < len(yt) else float("nan")
    return wrapped


def complete(fn: Callable[..., float], **kw: Any) -> Callable[[np.ndarray, np.ndarray, np.ndarray], float]:
    """An example-based metric (scikit-learn, label indicator matrices) over the rows with every label observed."""
    def wrapped(y: np.ndarray, p: np.ndarray, d: np.ndarray) -> float:
        rows = ~np.isnan(y).any(axis=1)
        if not rows.any():
            return float("nan")
        return float(fn((y[rows] > 0.5).astype(int), d[rows].astype(int), **kw))
    return wrapped


def _observed_decisions(y: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(observed mask, truth, decisions) as bool matrices; a missing entry is neither true nor decided."""
    seen = ~np.isnan(y)
    return seen, (np.nan_to_num(y) > 0.5) & seen, np.asarray(d, dtype=bool) & seen


def example_counts(score: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Callable[[np.ndarray, np.ndarray],
                                                                                      np.ndarray]:
    """Per-sample counts ``(N, 2)`` of an example-based metric: the sample's score and 1 on fully observed rows, 0
    and 0 elsewhere (``complete`` leaves those rows out). Summed over any resample of rows and divided
    (``count_ratio``), they give scikit-learn's value on that resample."""
    def counts(y: np.ndarray, d: np.ndarray) -> np.ndarray:
        seen, t, dd = _observed_decisions(y, d)
        rows = seen.all(axis=1)
        return np.stack([np.where(rows, score(t, dd), 0.0), rows.astype(np.float64)], axis=1)
    return counts


def set_overlap(kind: str) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Per sample, from label sets as bool rows: ``exact`` match, ``aiming`` |Y ∩ Ŷ| / |Ŷ|, ``coverage`` |Y ∩ Ŷ| /
    |Y| or ``jaccard`` |Y ∩ Ŷ| / |Y ∪ Ŷ|, 0 where the divisor is 0 (scikit-learn's ``zero_division=0``)."""
    if kind == "exact":
        return lambda t, d: (t == d).all(axis=1).astype(np.float64)
    divisor = {"aiming": lambda t, d: d.sum(axis=1), "coverage": lambda t, d: t.sum(axis=1),
               "jaccard": lambda t, d: (t | d).sum(axis=1)}[kind]
    return lambda t, d: np.nan_to_num(ratio((t & d).sum(axis=1), divisor(t, d)))


def hamming_counts(y: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Per-sample counts ``(N, 2)`` for Hamming loss: wrong decisions and observed entries."""
    seen, t, dd = _observed_decisions(y, d)
    return np.stack([(t != dd).sum(axis=1), seen.sum(axis=1)], axis=1).astype(np.float64)


def count_ratio(c: np.ndarray) -> np.ndarray:
    """The metric from summed ``(…, 2)`` counts: numerator / denominator, NaN where nothing was counted."""
    return ratio(c[..., 0], c[..., 1])


def f1_counts(y: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Per-sample counts ``(N, 4T)`` for the per-label F1: true positives, false positives, false negatives and
    observed entries of every label (float32: whole numbers, exact in sums below 2**24, a quarter of the memory
    of int64 on many labels)."""
    seen, t, dd = _observed_decisions(y, d)
    return np.concatenate([t & dd, ~t & dd, t & ~dd, seen], axis=1).astype(np.float32)


def macro_f1_from_counts(c: np.ndarray) -> np.ndarray:
    """Mean F1 over the labels observed at least once, 0 for a label never true nor decided (``zero_division=0``),
    from summed ``(…, 4T)`` counts: what ``per_label_mean(f1, …, needs_both=False)`` gives."""
    tp, fp, fn, seen = np.split(c, 4, axis=-1)
    f = np.where(seen > 0, np.nan_to_num(ratio(2 * tp, 2 * tp + fp + fn)), 0.0)
    return ratio(f.sum(axis=-1), (seen > 0).sum(axis=-1))


def hamming(y: np.ndarray, p: np.ndarray, d: np.ndarray) -> float:
    """Hamming loss over every observed entry (scikit-learn's, on the flattened entries: the same number)."""
    seen = ~np.isnan(y)
    if not seen.any():
        return float("nan")
    return float(hamming_loss(y[seen] > 0.5, d[seen]))
