"""Regression and multi-label targets on the two shared benchmarks, with biolens defaults (issue 15).

- **Huesken siRNA** (regression): 2,431 21-nt siRNAs with knock-down activity, the paper's own 2,182 / 249 split
  (biolens carves its val split out of the 2,182). Metric: Pearson r on the 249 test siRNAs; published BIOPREDsi
  r = 0.66 (Huesken et al. 2005). The sequences are 19 RNA bases plus a 2-base DNA overhang (``…UUat``), so the run
  sets ``alphabet=rna`` (T read as U).
- **MFTP** (multi-label): 9,874 therapeutic peptides, 21 functional labels; the 7,872 / 1,969 rows PrMFTP evaluates
  (``prmftp_kept = 1``; the other 33 hold characters outside the 20 amino acids). Metrics as in PrMFTP's
  ``evaluation.py`` (``biolens.metrics``: aiming = precision, coverage, example accuracy, absolute true = subset
  accuracy, absolute false = Hamming loss), next to the published rows of SOURCE.txt (PrMFTP's at threshold 0.5).
  Every MFTP peptide carries a label, so the defaults never predict an empty set (``train.at_least_one_label``) and
  decide every label at one threshold chosen on val (``train.label_threshold=auto``); the row "empty sets kept"
  scores the same probabilities at 0.5 without either. ``--ensemble``: also ``biolens ensemble`` of the seeds' runs.

Neither data set is bundled (no license): the script reads them from ``--datasets`` (default ../shared/datasets).

    PYTHONPATH=src:benchmarks python benchmarks/bench_targets.py --json targets.json
    PYTHONPATH=src:benchmarks python benchmarks/bench_targets.py --only mftp --seeds 0,1,2
    PYTHONPATH=src:benchmarks python benchmarks/bench_targets.py --only mftp --seeds 0,1,2,3,4 --ensemble
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from _runs import machine, quiet, write

MFTP_LABELS = ("AAP ABP ACP ACVP ADP AEP AFP AHIVP AHP AIP AMRSAP APP ATP AVP BBP BIP CPP DPPIP QSP SBP THP").split()
MFTP_PUBLISHED = {  # SOURCE.txt: the five PrMFTP metrics on the same 1,969 test peptides, threshold 0.5
    "PrMFTP": (0.699, 0.669, 0.651, 0.593, 0.031), "ETFC": (0.724, 0.717, 0.684, 0.617, 0.036),
    "CELA-MFP": (0.739, 0.754, 0.700, 0.611, 0.032), "iMFP-LG": (0.730, 0.730, 0.689, 0.616, 0.032),
    "PSCFA": (0.744, 0.717, 0.696, 0.637, 0.034), "MCMFPP": (0.775, 0.741, 0.724, 0.664, 0.031),
}
FIVE = ("aiming", "coverage", "example_accuracy", "subset_accuracy", "hamming_loss")
FIVE_NAMES = ("precision (aiming)", "coverage", "accuracy", "absolute true", "absolute false")


def _train(out: Path, **kw: Any) -> tuple[Any, float]:
    from biolens.workflows.train import train

    start = time.perf_counter()
    res = train(out=out, overwrite=True, **kw)
    return res, time.perf_counter() - start


def huesken(root: Path, work: Path, seed: int, epochs: int | None) -> dict[str, Any]:
    from biolens.workflows.baselines import run_baselines

    csv = root / "huesken_sirna" / "derived" / "huesken_sirna.csv"
    kw: dict[str, Any] = dict(data=str(csv), target_cols=["activity"], alphabet="rna", seed=seed)
    if epochs:
        kw["epochs"] = epochs
    res, seconds = _train(work / f"huesken_s{seed}", **kw)
    test = res.metrics["test"]
    base = run_baselines(res.run_dir, kmer=True)["baselines"][0]["test"]
    row = {"seed": seed, "model": res.predictor.config.model.name, "n_test": test["n"], "pearson": test["pearson"],
           "spearman": test["spearman"], "r2": test["r2"], "rmse": test["rmse"], "epochs": len(res.history),
           "best_epoch": res.metrics["best_epoch"], "seconds": round(seconds, 1),
           "kmer_ridge_pearson": base["pearson"], "kmer_ridge_spearman": base["spearman"]}
    print(f"huesken seed {seed}: test Pearson r {row['pearson']:.3f} (Spearman {row['spearman']:.3f}, R² "
          f"{row['r2']:.3f}) on {row['n_test']} siRNAs; k-mer ridge r {row['kmer_ridge_pearson']:.3f}; "
          f"{row['model']}, {row['epochs']} epochs, {row['seconds']:.0f} s", flush=True)
    return row


def mftp(root: Path, work: Path, seed: int, epochs: int | None) -> dict[str, Any]:
    from biolens.contract import InputContract
    from biolens.metrics import evaluation_metrics, target_metrics
    from biolens.tasks.outputs import read_target_predictions
    from biolens.workflows.evaluate import EvalOptions, evaluate_run

    df = pd.read_csv(root / "mftp_prmftp" / "derived" / "mftp.csv", dtype=str)
    kept = df[df["prmftp_kept"] == "1"].drop(columns=["prmftp_kept"])
    csv = work / "mftp_kept.csv"
    kept.to_csv(csv, index=False)
    kw: dict[str, Any] = dict(data=str(csv), target_cols=list(MFTP_LABELS), seed=seed)
    if epochs:
        kw["epochs"] = epochs
    res, seconds = _train(work / f"mftp_s{seed}", **kw)
    test = res.metrics["test"]
    row = {"seed": seed, "model": res.predictor.config.model.name, "n_test": test["n"],
           **{m: test[m] for m in FIVE}, "roc_auc": test["roc_auc"], "micro_roc_auc": test["micro_roc_auc"],
           "epochs": len(res.history), "best_epoch": res.metrics["best_epoch"], "seconds": round(seconds, 1)}
    row["at_least_one_label"] = res.predictor.contract.at_least_one_label
    row["run"] = str(res.run_dir)
    frame = pd.read_csv(res.run_dir / "predictions.csv", dtype={"id": str})
    y, p = read_target_predictions(frame, MFTP_LABELS, "multilabel")
    plain = target_metrics("multilabel", y, p, list(MFTP_LABELS))  # 0.5 each, empty label sets allowed
    row.update({f"empty_allowed_{m}": plain[m] for m in FIVE})
    # per-label thresholds chosen on val (max F1), stored in the contract of a copy (the run keeps its own, for
    # --ensemble): the same five metrics again
    f1_run = work / f"mftp_s{seed}_f1"
    shutil.rmtree(f1_run, ignore_errors=True)
    shutil.copytree(res.run_dir, f1_run)
    evaluate_run(f1_run, options=EvalOptions(n_resamples=200, operating_point="f1", plots=False))
    tuned = evaluation_metrics(y, p, InputContract.load(f1_run / "contract.json"))
    row.update({f"f1_thresholds_{m}": tuned[m] for m in FIVE})
    print(f"mftp seed {seed}: " + ", ".join(f"{n} {row[m]:.3f}" for n, m in zip(FIVE_NAMES, FIVE))
          + f"; macro AUC {row['roc_auc']:.3f}; {row['model']}, {row['epochs']} epochs, {row['seconds']:.0f} s",
          flush=True)
    return row


def mftp_ensemble(rows: list[dict[str, Any]], work: Path) -> dict[str, Any]:
    """``biolens ensemble`` of the seeds' default runs, scored on the test split with the label thresholds it chose
    (each label's median of its members' where they differ) and at 0.5 for every label."""
    from biolens.contract import InputContract
    from biolens.metrics import evaluation_metrics
    from biolens.tasks.outputs import read_target_predictions
    from biolens.workflows.ensemble import build_ensemble

    out = build_ensemble([r["run"] for r in rows], work / "mftp_ensemble", overwrite=True)
    contract = InputContract.load(out / "contract.json")
    frame = pd.read_csv(out / "predictions.csv", dtype={"id": str})
    y, p = read_target_predictions(frame, MFTP_LABELS, "multilabel")
    chosen = evaluation_metrics(y, p, contract)
    half = evaluation_metrics(y, p, replace(contract, label_thresholds=None))
    ens = {"members": len(rows), "label_thresholds": contract.label_thresholds, **{m: chosen[m] for m in FIVE},
           **{f"at_0.5_{m}": half[m] for m in FIVE}, "roc_auc": chosen["roc_auc"]}
    threshold = sorted(set(contract.label_thresholds or [0.5]))
    print(f"mftp ensemble of {len(rows)} seeds (label threshold {', '.join(f'{t:g}' for t in threshold)}): "
          + ", ".join(f"{n} {ens[m]:.4f}" for n, m in zip(FIVE_NAMES, FIVE))
          + "; at 0.5: " + ", ".join(f"{n} {ens['at_0.5_' + m]:.4f}" for n, m in zip(FIVE_NAMES, FIVE)), flush=True)
    return ens


def _mean(rows: list[dict[str, Any]], key: str) -> str:
    v = np.array([r[key] for r in rows], dtype=float)
    return f"{v.mean():.3f}" + (f" ± {v.std(ddof=1):.3f}" if len(v) > 1 else "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", default=str(Path(__file__).resolve().parents[2] / "shared" / "datasets"))
    ap.add_argument("--only", default="huesken,mftp")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--epochs", type=int, default=None, help="default: biolens's own choice (train.preset auto)")
    ap.add_argument("--work", default=None, help="folder for the runs (default: a temporary folder)")
    ap.add_argument("--json", default=None)
    ap.add_argument("--ensemble", action="store_true", help="mftp: also the ensemble of the seeds' runs")
    args = ap.parse_args()
    quiet()
    root = Path(args.datasets)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="biolens-targets-"))
    work.mkdir(parents=True, exist_ok=True)
    seeds = [int(s) for s in args.seeds.split(",")]
    out: dict[str, Any] = {"machine": machine(), "work": str(work)}
    if "huesken" in args.only:
        rows = [huesken(root, work, s, args.epochs) for s in seeds]
        out["huesken"] = rows
        print(f"\nHuesken siRNA, test Pearson r over {len(rows)} seed(s): {_mean(rows, 'pearson')} (Spearman "
              f"{_mean(rows, 'spearman')}); published BIOPREDsi 0.66; k-mer ridge {_mean(rows, 'kmer_ridge_pearson')}")
    if "mftp" in args.only:
        rows = [mftp(root, work, s, args.epochs) for s in seeds]
        out["mftp"] = rows
        print(f"\nMFTP, {rows[0]['n_test']} test peptides, each run's own decision rule ({len(rows)} seed(s)):")
        print(f"{'model':<26}" + "".join(f"{n:>20}" for n in FIVE_NAMES))
        for name, vals in MFTP_PUBLISHED.items():
            print(f"{name + ' (published)':<26}" + "".join(f"{v:>20.3f}" for v in vals))
        print(f"{'biolens (defaults)':<26}" + "".join(f"{_mean(rows, m):>20}" for m in FIVE))
        print(f"{'biolens, empty sets kept':<26}" + "".join(f"{_mean(rows, 'empty_allowed_' + m):>20}" for m in FIVE))
        print(f"{'biolens, F1 thresholds':<26}" + "".join(f"{_mean(rows, 'f1_thresholds_' + m):>20}" for m in FIVE))
        if args.ensemble and len(rows) > 1:
            out["mftp_ensemble"] = mftp_ensemble(rows, work)
    write(args.json, out)


if __name__ == "__main__":
    main()
