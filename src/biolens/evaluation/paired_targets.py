"""Paired comparison of two regression or multi-label runs on the same test items: a seeded paired bootstrap of the
difference of one registered metric (``biolens compare``).

Both runs' predictions are resampled with the same rows, so the interval of ``metric(a) − metric(b)`` accounts for
the correlation between them (the item-level analogue of DeLong's test for AUCs). The two-sided p-value is twice the
share of resamples on the far side of zero (at least 1 / resamples).
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

import numpy as np

from biolens.metrics import compute_target


@dataclass
class PairedBootstrap:
    metric: str
    a: float | None
    b: float | None
    difference: float | None
    ci: list[float | None]
    p_value: float | None
    resamples: int

    def to_dict(self) -> dict:
        return asdict(self)


def paired_bootstrap(metric: str, target_type: str, y: np.ndarray, out_a: np.ndarray, out_b: np.ndarray,
                     thresholds_a: np.ndarray | None = None, thresholds_b: np.ndarray | None = None, *,
                     at_least_one_a: bool = False, at_least_one_b: bool = False,
                     n_resamples: int = 1000, seed: int = 0, alpha: float = 0.05) -> PairedBootstrap:
    """``metric(a) − metric(b)`` on the same items ``y`` ``(N, T)`` with a paired percentile-bootstrap CI; each
    multi-label run decides with its own thresholds and empty-set rule (``compute_target``)."""
    y = np.asarray(y, dtype=np.float64)
    a = compute_target(metric, target_type, y, out_a, thresholds_a, at_least_one_a)
    b = compute_target(metric, target_type, y, out_b, thresholds_b, at_least_one_b)
    if not (np.isfinite(a) and np.isfinite(b)):
        return PairedBootstrap(metric, _f(a), _f(b), None, [None, None], None, 0)
    rng = np.random.default_rng(seed)
    diffs = np.full(n_resamples, np.nan)
    n = len(y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for r in range(n_resamples):
            idx = rng.integers(0, n, n)
            diffs[r] = (compute_target(metric, target_type, y[idx], out_a[idx], thresholds_a, at_least_one_a)
                        - compute_target(metric, target_type, y[idx], out_b[idx], thresholds_b, at_least_one_b))
    d = diffs[np.isfinite(diffs)]
    if d.size < 10:
        return PairedBootstrap(metric, _f(a), _f(b), _f(a - b), [None, None], None, int(d.size))
    lo, hi = np.quantile(d, [alpha / 2, 1 - alpha / 2])
    p = min(1.0, 2 * max(min((d <= 0).mean(), (d >= 0).mean()), 1 / d.size))
    return PairedBootstrap(metric, _f(a), _f(b), _f(a - b), [_f(lo), _f(hi)], round(float(p), 6), int(d.size))


def _f(x: float) -> float | None:
    return round(float(x), 6) if np.isfinite(x) else None
