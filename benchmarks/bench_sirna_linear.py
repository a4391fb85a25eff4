"""Huesken siRNAs: what the linear term of short DNA/RNA regression buys, and which features it should have.

Two parts, both on the paper's 2,182 training siRNAs (the 249 test siRNAs are scored only at the end):

- ``features``: scikit-learn ``RidgeCV`` on candidate feature sets (one-hot bases by position, k-mer frequencies,
  the squared G+C fraction of sliding windows), 5-fold out-of-fold (OOF) Pearson r on random folds and on folds
  where siRNAs sharing a 12-nt stretch stay together (neighbouring target sites on one mRNA overlap, so random
  folds reward memorising them), then the test r of the fit on all 2,182.
- ``cv``: ``biolens.cross_validate`` (5 folds of the training pool) with the defaults (the ridge-started linear
  term), the defaults without the squared GC windows (``linear_gc_window=0``), the network alone (no linear
  term), and the ridge start alone (``lr=1e-7``, one epoch: the head starts at zero, so the model stays the ridge
  regression); pooled OOF r, and the test r of the 5-fold ensemble.
- ``cv-grouped``: the variants with default training again, with folds that keep overlapping siRNAs together
  (``group_col`` = the 12-nt overlap components).

The data are not bundled (no license): ``--datasets`` (default ../shared/datasets).

    OMP_NUM_THREADS=1 PYTHONPATH=src:benchmarks python benchmarks/bench_sirna_linear.py --seeds 0,1
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import pearsonr
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import GroupKFold, KFold, cross_val_predict

from _runs import machine, quiet, write

BASES = "ACGU"
ALPHAS = np.logspace(-3, 3, 25)
VARIANTS = {  # name → (model.params, train options)
    "defaults (ridge-started linear term)": ({}, {}),
    "defaults without the GC windows": ({"linear_gc_window": 0}, {}),
    "network alone": ({"linear_positions": 0, "linear_kmers": [], "linear_gc_window": 0}, {}),
    "ridge start alone (lr 1e-7, 1 epoch)": ({}, {"lr": 1e-7, "epochs": 1}),
}


def _codes(seqs: pd.Series) -> np.ndarray:
    """``(N, 21)`` base indices 0..3 (the DNA overhang read as RNA)."""
    text = seqs.str.upper().str.replace("T", "U")
    table = np.full(256, 255, dtype=np.uint8)
    table[np.frombuffer(BASES.encode(), dtype=np.uint8)] = np.arange(4, dtype=np.uint8)
    return table[np.frombuffer("".join(text).encode(), dtype=np.uint8).reshape(len(text), -1)]


def _kmer_freq(codes: np.ndarray, k: int) -> np.ndarray:
    n, length = codes.shape
    index = sum(codes[:, j:length - k + 1 + j].astype(np.int64) * 4 ** (k - 1 - j) for j in range(k))
    out = np.zeros((n, 4**k))
    np.add.at(out, (np.repeat(np.arange(n), index.shape[1]), index.ravel()), 1.0)
    return out / length


def _onehot(codes: np.ndarray) -> np.ndarray:
    return np.eye(4)[codes].reshape(len(codes), -1)


def _gc_squared(codes: np.ndarray, window: int) -> np.ndarray:
    """The squared G+C fraction of every ``window``-base window (C and G are codes 1 and 2)."""
    gc = np.isin(codes, (1, 2)).astype(float)
    return np.lib.stride_tricks.sliding_window_view(gc, window, axis=1).mean(axis=-1) ** 2


def _default(codes: np.ndarray) -> np.ndarray:
    return np.hstack([_onehot(codes), _kmer_freq(codes, 2), _kmer_freq(codes, 3)])


FEATURES = {
    "positions": lambda c: _onehot(c),
    "positions + 2-/3-mers": _default,
    "positions + 2-/3-mers + squared GC of 7-base windows": lambda c: np.hstack([_default(c), _gc_squared(c, 7)]),
    "positions + 2-/3-mers + squared GC of 9-base windows (the default)":
        lambda c: np.hstack([_default(c), _gc_squared(c, 9)]),
    "positions + 2-/3-mers + squared GC of 11-base windows": lambda c: np.hstack([_default(c), _gc_squared(c, 11)]),
    "positions + 2-/3-mers + squared GC of all 21": lambda c: np.hstack([_default(c), _gc_squared(c, 21)]),
    "positions + 2-/3-/4-mers": lambda c: np.hstack([_onehot(c)] + [_kmer_freq(c, k) for k in (2, 3, 4)]),
    "positions + 2-…5-mers": lambda c: np.hstack([_onehot(c)] + [_kmer_freq(c, k) for k in (2, 3, 4, 5)]),
    "2-/3-/4-mers only": lambda c: np.hstack([_kmer_freq(c, k) for k in (2, 3, 4)]),
}


def overlap_groups(seqs: list[str], stretch: int = 12) -> np.ndarray:
    """Connected components of sequences sharing any ``stretch``-nt substring (union-find)."""
    parent = list(range(len(seqs)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[str, int] = {}
    for i, s in enumerate(seqs):
        for j in range(len(s) - stretch + 1):
            w = s[j:j + stretch]
            if w in first:
                parent[find(i)] = find(first[w])
            else:
                first[w] = i
    return np.array([find(i) for i in range(len(seqs))])


def features_part(df: pd.DataFrame, seeds: list[int]) -> list[dict[str, Any]]:
    train, test = df[df["split"] == "train"], df[df["split"] == "test"]
    y, y_test = train["activity"].to_numpy(), test["activity"].to_numpy()
    groups = overlap_groups(list(train["sequence"].str.upper().str[:19]))
    rows = []
    for name, make in FEATURES.items():
        x, x_test = make(_codes(train["sequence"])), make(_codes(test["sequence"]))
        random = [pearsonr(cross_val_predict(RidgeCV(alphas=ALPHAS), x, y,
                                             cv=KFold(5, shuffle=True, random_state=s)), y)[0] for s in seeds]
        grouped = pearsonr(cross_val_predict(RidgeCV(alphas=ALPHAS), x, y, cv=GroupKFold(5), groups=groups), y)[0]
        ridge = RidgeCV(alphas=ALPHAS).fit(x, y)
        row = {"features": name, "n_features": x.shape[1], "oof_random": float(np.mean(random)),
               "oof_grouped": float(grouped), "test": float(pearsonr(ridge.predict(x_test), y_test)[0]),
               "alpha": float(ridge.alpha_)}
        print(f"{name}: {row['n_features']} features, OOF r random folds {row['oof_random']:.3f}, overlap-grouped "
              f"{row['oof_grouped']:.3f}; test {row['test']:.3f}", flush=True)
        rows.append(row)
    print(f"({len(set(groups))} overlap groups in {len(train)} training siRNAs)")
    return rows


def cv_part(csv: Path, df: pd.DataFrame, work: Path, seeds: list[int], grouped: bool = False
            ) -> list[dict[str, Any]]:
    from biolens.workflows.cv import cross_validate

    test = df[df["split"] == "test"]
    variants = VARIANTS
    extra: dict[str, Any] = {}
    if grouped:  # the overlap components over all rows; cv reads only the training pool's
        csv = work / "huesken_overlap_groups.csv"
        groups = overlap_groups(list(df["sequence"].str.upper().str[:19]))
        df.assign(overlap_group=[f"g{g}" for g in groups]).to_csv(csv, index=False)
        variants = {k: v for k, v in VARIANTS.items() if not v[1]}  # those with default training: not ridge-alone
        extra = {"group_col": "overlap_group"}
    rows = []
    for name, (params, options) in variants.items():
        for seed in seeds:
            start = time.perf_counter()
            res = cross_validate(data=str(csv), target_cols=["activity"], alphabet="rna", folds=5, seed=seed,
                                 params=params, out=work / f"cv_{len(rows)}", overwrite=True, **options, **extra)
            pred = res.predictor.predict(list(test["sequence"]))
            r = float(pearsonr(pred["pred_activity"].astype(float), test["activity"])[0])
            row = {"variant": name, "grouped": grouped, "seed": seed, "oof": res.summary["pooled"]["flat"]["pearson"],
                   "test": r, "seconds": round(time.perf_counter() - start, 1)}
            print(f"{name}{', overlap-grouped folds' if grouped else ''}, seed {seed}: OOF r {row['oof']:.3f}, "
                  f"5-fold ensemble test r {r:.3f} ({row['seconds']:.0f} s)", flush=True)
            rows.append(row)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", default=str(Path(__file__).resolve().parents[2] / "shared" / "datasets"))
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--parts", default="features,cv,cv-grouped")
    ap.add_argument("--json")
    args = ap.parse_args()
    quiet()
    seeds = [int(s) for s in args.seeds.split(",")]
    csv = Path(args.datasets) / "huesken_sirna" / "derived" / "huesken_sirna.csv"
    df = pd.read_csv(csv)
    out: dict[str, Any] = {"machine": machine(), "seeds": seeds}
    parts = args.parts.split(",")
    if "features" in parts:
        out["features"] = features_part(df, seeds)
    for part in ("cv", "cv-grouped"):
        if part in parts:
            with tempfile.TemporaryDirectory() as work:
                out[part] = cv_part(csv, df, Path(work), seeds, grouped=part == "cv-grouped")
    write(args.json, out)


if __name__ == "__main__":
    main()
