"""Issue 14: a single default run vs the cv ensemble, tune, TTA and EMA, on the same test split of each data set.

For every data set (bundled ones; their own fixed or seeded test split) it trains, with the defaults
(``train.preset=auto``):

- ``single``: one default run;
- ``tta``: the default run with ``train.tta`` (reverse complement for DNA, mirror for images; protein: none);
- ``ema``: the default run with ``train.ema=0.999``;
- ``cv``: ``biolens cv --folds K`` and its ensemble (of the refit members; ``--no-refit``: of the fold models),
  scored on the test split afterwards (and ``member_mean``: each member alone on that split, averaged; with refit
  also ``cv_fold_models``: the ensemble of the fold models themselves, from the same cv folder);
- ``tune``: ``biolens tune --trials N --top-k 1`` (val only), the best configuration retrained and scored on test; and
  ``tune_top3``: the ensemble of the study's three best trial runs (what ``--top-k 3`` builds), scored on test.

``--parts`` picks which of tta, ema, cv and tune run (the single run always does: every difference is to it).

Figures are test accuracy and ROC AUC (macro one-vs-rest for more than two classes) and the differences to
``single`` measured in the same run; seconds are wall-clock on this machine. Results are written after every data
set (``--json``), so an interrupted run keeps what it measured.

    python benchmarks/bench_cv_tune.py --json /tmp/cv_tune.json --out /tmp/cv_tune
    python benchmarks/bench_cv_tune.py --datasets builtin:splice --trials 30 --folds 5
    python benchmarks/bench_cv_tune.py --parts tune --trials 30 --datasets builtin:hem_hemopi
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _runs import machine, quiet, write  # noqa: E402
import numpy as np  # noqa: E402
from optuna.trial import TrialState  # noqa: E402

from biolens.errors import ConfigError  # noqa: E402
from biolens.tasks import Predictor, make_task  # noqa: E402
from biolens.workflows.cv import cross_validate  # noqa: E402
from biolens.workflows.ensemble import build_ensemble, evaluate_ensemble  # noqa: E402
from biolens.workflows.train import split_metrics, train  # noqa: E402
from biolens.workflows.tune import tune  # noqa: E402

DATASETS = ["builtin:breastmnist", "builtin:hem_hemopi", "builtin:avp_amppred", "builtin:amp_antibp2",
            "builtin:splice", "builtin:regulondb_promoters", "builtin:pneumoniamnist"]
PROTEIN = {"builtin:hem_hemopi", "builtin:avp_amppred", "builtin:amp_antibp2", "builtin:cpp_cellppd"}


def headline(metrics: dict[str, Any]) -> dict[str, Any]:
    auc = metrics.get("roc_auc", metrics.get("roc_auc_ovr"))
    return {"accuracy": metrics.get("accuracy"), "roc_auc": auc, "balanced_accuracy": metrics.get("balanced_accuracy")}


def timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, round(time.perf_counter() - start, 1)


PARTS = ("tta", "ema", "cv", "tune")


def run_dataset(name: str, root: Path, folds: int, trials: int, epochs: int | None,
                parts: tuple[str, ...] = PARTS, seed: int = 0, refit: bool = True) -> dict[str, Any]:
    short = name.split(":")[-1]
    extra: dict[str, Any] = {"train": {"seed": seed, **({} if epochs is None else {"epochs": epochs})}}
    row: dict[str, Any] = {"data": name, "seed": seed}
    res, s = timed(train, data=name, out=root / f"{short}-single", overwrite=True, **extra)
    row["single"] = {**headline(res.metrics["test"]), "val": headline(res.metrics["val"]), "seconds": s}
    print(f"{short}: single {row['single']}", flush=True)
    if name not in PROTEIN and "tta" in parts:
        try:
            res, s = timed(train, data=name, out=root / f"{short}-tta", overwrite=True, tta=True, **extra)
            row["tta"] = {**headline(res.metrics["test"]), "seconds": s}
        except ConfigError as e:  # strand-specific data trains without RC augmentation: no view to average over
            row["tta_skipped"] = str(e)
        print(f"{short}: tta {row.get('tta', row.get('tta_skipped'))}", flush=True)
    if "ema" in parts:
        res, s = timed(train, data=name, out=root / f"{short}-ema", overwrite=True, ema=0.999, **extra)
        row["ema"] = {**headline(res.metrics["test"]), "seconds": s}
        print(f"{short}: ema {row['ema']}", flush=True)
    if "cv" in parts:
        row.update(_cv(name, short, root, folds, extra, refit))
    if "tune" in parts:
        row.update(_tune(name, short, root, trials, extra))
    base = row["single"]
    for k in ("tta", "ema", "cv", "cv_fold_models", "tune", "tune_top3"):
        if k in row:
            row[k]["delta"] = {m: (round(row[k][m] - base[m], 4) if row[k][m] is not None and base[m] is not None
                                   else None) for m in ("accuracy", "roc_auc")}
    return row


def _cv(name: str, short: str, root: Path, folds: int, extra: dict[str, Any],
        refit: bool = True) -> dict[str, dict[str, Any]]:
    cv, s = timed(cross_validate, data=name, folds=folds, out=root / f"{short}-cv", overwrite=True, refit=refit,
                  **extra)
    ens = evaluate_ensemble(cv.out)
    row = {**headline(ens["test"]), "seconds": s, "folds": folds, "refit": refit,
           "fold_mean_sd": {m: v for m, v in cv.summary["mean_sd"].items() if m in ("accuracy", "roc_auc")},
           "oof": headline(cv.summary["pooled"]["flat"]), "member_mean": _member_mean(cv.out, cv.members)}
    print(f"{short}: cv {row}", flush=True)
    rows = {"cv": row}
    if refit:  # the fold models' own ensemble, from the same folder: what the refit adds
        plain = build_ensemble(cv.fold_runs, root / f"{short}-cv-fold-models", overwrite=True)
        rows["cv_fold_models"] = {**headline(evaluate_ensemble(plain)["test"]),
                                  "member_mean": _member_mean(plain, cv.fold_runs)}
        print(f"{short}: cv fold-model ensemble {rows['cv_fold_models']}", flush=True)
    return rows


def _member_mean(ensemble: Path, fold_runs: list[Path]) -> dict[str, float | None]:
    """Test accuracy / ROC AUC of each fold model alone on the ensemble's test split, averaged over the folds: what
    the averaging adds (ensemble − members) and what the smaller training share costs (members − single)."""
    task = make_task(Predictor.load(ensemble).config)
    task.prepare()
    scores = []
    for run in fold_runs:  # each member as it predicts alone, its test-time augmentation included
        member = Predictor.load(run)
        test = split_metrics(member.model, task, member.contract, member.device, None, splits=("test",))["test"]
        scores.append(headline(test))
    return {m: (round(float(np.mean([r[m] for r in scores])), 4) if all(r[m] is not None for r in scores) else None)
            for m in ("accuracy", "roc_auc")}


def _tune(name: str, short: str, root: Path, trials: int, extra: dict[str, Any]) -> dict[str, Any]:
    tuned, s = timed(tune, data=name, trials=trials, out=root / f"{short}-tune", overwrite=True, top_k=1, **extra)
    final = json.loads((tuned.best_run / "metrics.json").read_text())
    summary = json.loads((tuned.out / "tune.json").read_text())
    row: dict[str, Any] = {"tune": {**headline(final["test"]), "val": headline(final["val"]), "seconds": s,
                                    "trials": trials, "objective": tuned.objective,
                                    "best_val_objective": tuned.best_value,
                                    "default_val_objective": summary.get("default"),
                                    "trial_states": summary["trials"]}}
    print(f"{short}: tune {row['tune']}", flush=True)
    done = sorted(tuned.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)), key=lambda t: t.value,
                  reverse=tuned.study.direction.name == "MAXIMIZE")
    runs = [Path(t.user_attrs["run"]) for t in done[:3] if "run" in t.user_attrs]
    if len(runs) >= 2:
        top = build_ensemble(runs, root / f"{short}-tune-top3", overwrite=True)
        row["tune_top3"] = {**headline(evaluate_ensemble(top)["test"]), "members": len(runs)}
        print(f"{short}: tune top-{len(runs)} ensemble {row['tune_top3']}", flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="*", default=DATASETS)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--epochs", type=int, default=None, help="override the preset's epochs (smoke runs)")
    ap.add_argument("--seed", type=int, default=0, help="train.seed of every run (cv: of its first fold)")
    ap.add_argument("--out", default="/tmp/bench-cv-tune")
    ap.add_argument("--json", default=None)
    ap.add_argument("--parts", nargs="*", default=list(PARTS), choices=PARTS,
                    help="what to compare with the single run (default: all)")
    ap.add_argument("--no-refit", dest="refit", action="store_false", help="cv: the ensemble of the fold models")
    args = ap.parse_args()
    quiet()
    logging.getLogger("optuna").setLevel(logging.WARNING)
    root = Path(args.out)
    root.mkdir(parents=True, exist_ok=True)
    payload: dict[str, Any] = {"machine": machine(), "folds": args.folds, "trials": args.trials, "rows": []}
    for name in args.datasets:
        payload["rows"].append(run_dataset(name, root, args.folds, args.trials, args.epochs, tuple(args.parts),
                                           args.seed, args.refit))
        write(args.json, payload)
    shown = ("single", "cv", "cv_fold_models", "tune", "tune_top3", "tta", "ema")
    print(f"{'data':26s} " + " ".join(f"{k:>16s}" for k in shown))
    for r in payload["rows"]:
        def cell(k: str) -> str:
            v = r.get(k)
            if not v:
                return f"{'-':>16s}"
            auc = v["roc_auc"]
            return f"{v['accuracy']:.4f}/{auc:.4f}".rjust(16) if auc is not None else f"{v['accuracy']:.4f}/-".rjust(16)
        print(f"{r['data']:26s} " + " ".join(cell(k) for k in shown))


if __name__ == "__main__":
    main()
