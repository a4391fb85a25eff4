"""Paired tests for two models scored on the same test items: DeLong for ROC AUC, McNemar for accuracy.

Both tests use the pairing: each item was scored by both models, so the two estimates are correlated and an unpaired
comparison (two overlapping confidence intervals) is both less powerful and wrong about the variance.

- :func:`delong_test`: the DeLong, DeLong & Clarke-Pearson (1988) test of two correlated ROC AUCs, computed with the
  fast algorithm of Sun & Xu (2014, IEEE Signal Processing Letters 21(11)): midranks instead of the ``m × n``
  comparison kernel, so ``O(N log N)`` per model. Ties count one half, as in the Mann-Whitney statistic (and as
  scikit-learn's ``roc_auc_score``).
- :func:`mcnemar_test`: McNemar's test on the discordant pairs (one model right, the other wrong): the exact binomial
  test when there are fewer than :data:`EXACT_BELOW` discordant pairs, else the chi-square statistic with
  continuity correction (scipy).
- :func:`holm`: Holm's step-down adjustment when several pairs of runs are tested.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

from biolens.errors import DataError

EXACT_BELOW = 25  # discordant pairs under which McNemar uses the exact binomial test


@dataclass(frozen=True)
class DeLongResult:
    """Two correlated ROC AUCs and the test of their difference (``auc_a - auc_b``)."""

    auc_a: float
    auc_b: float
    difference: float
    se: float  # standard error of the difference
    z: float
    p_value: float  # two-sided
    ci: tuple[float, float]  # of the difference, at ``1 - alpha``
    n_positive: int
    n_negative: int

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (a z of ±inf, from a difference without variance, becomes None)."""
        out = asdict(self)
        out["ci"] = list(self.ci)
        out["z"] = self.z if np.isfinite(self.z) else None
        return out


@dataclass(frozen=True)
class McNemarResult:
    """McNemar's test: ``b`` items only model A got right, ``c`` items only model B got right."""

    b: int
    c: int
    n: int
    accuracy_a: float
    accuracy_b: float
    statistic: float  # exact: min(b, c); chi-square: (|b - c| - 1)² / (b + c)
    p_value: float
    method: str  # "exact" (binomial) or "chi2" (with continuity correction)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def midranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks of ``x`` with tied values sharing the mean of their ranks (float64, same order as ``x``)."""
    x = np.asarray(x, dtype=np.float64)
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    # boundaries of runs of equal values; each run gets the mean of its 1-based positions
    starts = np.flatnonzero(np.concatenate([[True], xs[1:] != xs[:-1]]))
    ends = np.concatenate([starts[1:], [len(xs)]])
    mean_rank = (starts + ends + 1) / 2.0  # mean of starts+1 … ends
    ranks = np.empty(len(x), dtype=np.float64)
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


def _split(y_true: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true).astype(bool)
    s = np.atleast_2d(np.asarray(scores, dtype=np.float64))  # (k, N)
    if s.shape[1] != len(y):
        raise DataError(f"{s.shape[1]} scores for {len(y)} labels; give one score per item and model")
    if not np.isfinite(s).all():
        raise DataError("scores contain NaN or infinite values; DeLong's test needs finite scores")
    m, n = int(y.sum()), int((~y).sum())
    if m == 0 or n == 0:
        raise DataError(f"DeLong's test needs positive and negative items; got {m} positive and {n} negative")
    return s[:, y], s[:, ~y]


def delong_covariance(y_true: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AUCs ``(k,)`` and their DeLong covariance matrix ``(k, k)`` for ``k`` models' scores ``(k, N)``.

    Sun & Xu's fast algorithm: with ``m`` positives and ``n`` negatives, ``T_z`` the midranks of each model's scores
    over all items, ``T_x`` / ``T_y`` the midranks within the positives / negatives, the structural components are
    ``V10 = (T_z[pos] - T_x) / n`` and ``V01 = 1 - (T_z[neg] - T_y) / m``; ``AUC = mean(V10)`` and
    ``S = cov(V10) / m + cov(V01) / n``.
    """
    pos, neg = _split(y_true, scores)
    k, m = pos.shape
    n = neg.shape[1]
    v10 = np.empty((k, m))
    v01 = np.empty((k, n))
    for r in range(k):
        tz = midranks(np.concatenate([pos[r], neg[r]]))
        tx, ty = midranks(pos[r]), midranks(neg[r])
        v10[r] = (tz[:m] - tx) / n
        v01[r] = 1.0 - (tz[m:] - ty) / m
    aucs = v10.mean(axis=1)
    s10 = np.atleast_2d(np.cov(v10)) if m > 1 else np.zeros((k, k))
    s01 = np.atleast_2d(np.cov(v01)) if n > 1 else np.zeros((k, k))
    return aucs, s10 / m + s01 / n


def delong_test(y_true: np.ndarray, scores_a: np.ndarray, scores_b: np.ndarray, alpha: float = 0.05) -> DeLongResult:
    """DeLong's test of ``AUC(a) = AUC(b)`` for two models' scores of the same items (``y_true``: 1 = positive)."""
    aucs, cov = delong_covariance(y_true, np.vstack([scores_a, scores_b]))
    diff = float(aucs[0] - aucs[1])
    var = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    se = float(np.sqrt(max(var, 0.0)))
    if se > 0:
        z = diff / se
        p = float(2 * stats.norm.sf(abs(z)))
    else:  # identical rankings (or both separating perfectly): no variance left to test against
        z = 0.0 if diff == 0 else float(np.sign(diff) * np.inf)
        p = 1.0 if diff == 0 else 0.0
    half = float(stats.norm.ppf(1 - alpha / 2)) * se
    y = np.asarray(y_true).astype(bool)
    return DeLongResult(float(aucs[0]), float(aucs[1]), diff, se, float(z), p, (diff - half, diff + half),
                        int(y.sum()), int((~y).sum()))


def mcnemar_test(correct_a: np.ndarray, correct_b: np.ndarray, exact: bool | None = None) -> McNemarResult:
    """McNemar's test of equal accuracy for two models' per-item correctness (boolean arrays of one length).

    ``exact=None`` picks the exact binomial test below :data:`EXACT_BELOW` discordant pairs, else the continuity
    corrected chi-square test; ``True``/``False`` force one.
    """
    a = np.asarray(correct_a, dtype=bool)
    b_ = np.asarray(correct_b, dtype=bool)
    if a.shape != b_.shape or a.ndim != 1:
        raise DataError(f"correctness arrays of shapes {a.shape} and {b_.shape}; give one value per item for each "
                        "model")
    if len(a) == 0:
        raise DataError("no items to compare")
    b = int(np.sum(a & ~b_))
    c = int(np.sum(~a & b_))
    use_exact = (b + c) < EXACT_BELOW if exact is None else exact
    if b + c == 0:
        stat, p = 0.0, 1.0
    elif use_exact:
        stat = float(min(b, c))
        p = float(stats.binomtest(min(b, c), b + c, 0.5, alternative="two-sided").pvalue)
    else:
        stat = (abs(b - c) - 1.0) ** 2 / (b + c)
        p = float(stats.chi2.sf(stat, 1))
    return McNemarResult(b, c, int(len(a)), float(a.mean()), float(b_.mean()), float(stat), min(p, 1.0),
                         "exact" if use_exact else "chi2")


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values (same order as given; NaN stays NaN)."""
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(len(p), np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    if not len(ok):
        return out.tolist()
    order = ok[np.argsort(p[ok], kind="mergesort")]
    k = len(order)
    adjusted = np.maximum.accumulate((k - np.arange(k)) * p[order])
    out[order] = np.minimum(adjusted, 1.0)
    return out.tolist()
