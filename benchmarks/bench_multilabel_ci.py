"""Multi-label bootstrap CIs: ``multilabel_cis`` (the decision metrics sum per-sample counts per resample) against
the same bootstrap calling every metric's scikit-learn function on every resample (the baseline), in one run, on a
synthetic MFTP-shaped test split (1,969 peptides × 21 labels by default, 10% missing entries with ``--missing``).
Prints seconds, the ratio and whether every interval is identical.

Usage: PYTHONPATH=src python benchmarks/bench_multilabel_ci.py [--n 1969] [--labels 21] [--resamples 1000]
       [--missing 0.0] [--json ci.json]
"""

from __future__ import annotations

import argparse
import time
import warnings
from typing import Any

import numpy as np

from _runs import machine, write
from biolens.contract import decide_labels
from biolens.evaluation.bootstrap import _interval
from biolens.evaluation.multilabel import multilabel_cis
from biolens.metrics import get_metric, metric_names


def baseline_cis(y: np.ndarray, p: np.ndarray, thresholds: np.ndarray, n_resamples: int,
                 r_auc: int) -> dict[str, Any]:
    """The same resamples (same seed, the AUC metrics on the first ``r_auc``), every metric by its scikit-learn
    function on each: the loop as it was before the counts."""
    n = len(y)
    names = metric_names(target_type="multilabel")
    metrics = {m: get_metric(m) for m in names}
    rng = np.random.default_rng(0)
    decided = decide_labels(p, thresholds, False)
    draws = {m: np.full(n_resamples, np.nan) for m in names}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for r in range(n_resamples):
            idx = rng.integers(0, n, n)
            yr, pr, dr = y[idx], p[idx], decided[idx]
            for m, metric in metrics.items():
                if metric.needs_scores and r >= r_auc:
                    continue
                draws[m][r] = metric.multilabel(yr, pr, dr)
    return {m: _interval(draws[m], 0.05) for m in names}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1969)
    ap.add_argument("--labels", type=int, default=21)
    ap.add_argument("--resamples", type=int, default=1000)
    ap.add_argument("--missing", type=float, default=0.0)
    ap.add_argument("--json")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    y = (rng.random((args.n, args.labels)) < 0.06).astype(float)
    p = np.clip(0.45 * y + 0.55 * rng.random(y.shape), 0, 1)
    y[rng.random(y.shape) < args.missing] = np.nan
    t = np.full(args.labels, 0.5)
    start = time.perf_counter()
    fast = multilabel_cis(y, p, t, n_resamples=args.resamples, seed=0)
    fast_s = time.perf_counter() - start
    start = time.perf_counter()
    base = baseline_cis(y, p, t, args.resamples, fast["auc_resamples"])
    base_s = time.perf_counter() - start
    same = all(np.allclose(fast[m], base[m], rtol=0, atol=1e-9, equal_nan=True) for m in base)
    row = {"n": args.n, "labels": args.labels, "resamples": args.resamples, "missing": args.missing,
           "baseline_s": round(base_s, 2), "biolens_s": round(fast_s, 2), "speedup": round(base_s / fast_s, 1),
           "intervals_identical": same, "machine": machine()}
    print(f"{args.n} × {args.labels}, {args.resamples} resamples, missing {args.missing}: scikit-learn per resample "
          f"{base_s:.1f} s, biolens {fast_s:.1f} s ({base_s / fast_s:.1f}× faster); intervals identical: {same}")
    write(args.json, row)


if __name__ == "__main__":
    main()
