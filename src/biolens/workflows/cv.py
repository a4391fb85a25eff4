"""``biolens cv``: k-fold cross-validation whose folds are ordinary runs and whose artefact is their ensemble.

The pool is the data's train and val records; the test split (a split column, ``data.test`` or the seeded split)
is never read again: no fold trains, validates or is scored on it, so it stays an untouched hold-out for the
ensemble (``biolens evaluate DIR``). The pool is cut into ``folds`` stratified folds in which every group stays
whole (identical and reverse-complement sequences, identical images, ``data.group_col`` groups, similar
sequences under ``data.split.group_by: similarity``). Fold k trains, with seed ``seed + k``, on the other folds
(minus a grouped, stratified val share for early stopping and checkpoint selection) and is scored on fold k: its
predictions are the out-of-fold (OOF) predictions.

With ``refit`` (the default), each fold then trains a second model, the ensemble's member, on all the other folds
and one half of fold k (90% of the pool with 5 folds, against the 72% the first model trains on), early-stopping on
the other half of fold k; its only figures are those val figures, which chose its checkpoint (optimistic). The OOF
estimate stays the first models' (their checkpoints were chosen without fold k); the members never see the test
split either, so the ensemble's test figures stay honest. ``refit=False`` makes the ensemble of the first models
(half the training time).

Layout of ``DIR``::

    cv_plan.json            the resolved config, folds, seed and counts (what --resume continues)
    folds.tsv               row, id, label, group, fold of every pool record
    folds/fold_K/           fold K as an ordinary run (its test split = fold K); fold_K.tsv its assignment
    folds/fold_K_refit/     with refit: fold K's ensemble member (val: one half of fold K; no test split)
    oof_predictions.csv     one row per pool record: fold, id, label, p_<class>…, prediction
    cv.json                 per-fold metrics, mean ± sd, pooled OOF metrics with bootstrap CIs
    plots/                  figures of the pooled OOF predictions
    config.yaml, contract.json, model.safetensors, ensemble.json, manifest.json: the ensemble bundle

An interrupted ``cv`` resumes with ``resume=DIR``: finished folds are kept, an interrupted fold resumes from its
last checkpoint, the rest are trained.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from biolens.bundle import check_run_dir_writable, make_run_dir, refresh_manifest
from biolens.config import RunConfig, validate_config
from biolens.contract import InputContract
from biolens.data.splits import grouped_folds, inner_val, write_assignment
from biolens.devices import resolve_device
from biolens.doctor.advise import preset_before_data
from biolens.errors import ConfigError
from biolens.evaluation.evaluate import EvalOptions, evaluate_predictions
from biolens.evaluation.multilabel import shared_threshold
from biolens.io import write_json
from biolens.metrics import evaluation_metrics
from biolens.tasks import Predictor, make_task
from biolens.tasks.outputs import read_target_predictions
from biolens.workflows.ensemble import write_ensemble
from biolens.workflows.train import build_config, preset_for, train

log = logging.getLogger(__name__)

PLAN = "cv_plan.json"
SUMMARY_METRICS = {  # per fold and as mean ± sd, by target type
    "classification": ("accuracy", "balanced_accuracy", "roc_auc", "pr_auc", "mcc", "sensitivity", "specificity",
                       "f1", "macro_f1"),
    "regression": ("pearson", "spearman", "r2", "mae", "rmse"),
    "multilabel": ("roc_auc", "micro_roc_auc", "pr_auc", "subset_accuracy", "hamming_loss"),
}


@dataclass
class CVResult:
    """What ``cross_validate`` wrote: the folder (an ensemble bundle), fold run folders, OOF predictions, summary."""

    out: Path
    fold_runs: list[Path]
    oof: pd.DataFrame
    summary: dict[str, Any]
    members: list[Path]  # the ensemble's members: the refit runs, or the fold runs themselves without refit

    @property
    def predictor(self) -> Predictor:
        """The ensemble of the fold models, ready to predict."""
        return Predictor.load(self.out)


def cross_validate(config: RunConfig | dict | str | Path | None = None, *, data: Any = None, folds: int = 5,
                   model: str | None = None, epochs: int | None = None, out: str | Path | None = None,
                   resume: str | Path | None = None, overwrite: bool = False, progress: bool = False,
                   force: bool = False, refit: bool = True, **overrides: Any) -> CVResult:
    """Cross-validate the model a ``train`` call with the same arguments would train (see the module docstring).

    Args:
        config, data, overrides: as for :func:`biolens.train` (``group_col="patient"``, ``epochs=10``, …).
        folds: number of folds (≥ 2).
        out: the cv folder to create.
        resume: an interrupted cv folder to continue (its ``cv_plan.json`` fixes data, model, training, folds and
            refit).
        refit: the ensemble's members are refits on all the other folds (see the module docstring); False: the
            fold models themselves.
    """
    if resume is not None:
        out = Path(resume)
        plan = _read_plan(out)
        cfg = validate_config(plan["config"], str(out / PLAN))
        folds = int(plan["folds"])
        log.info("resuming cross-validation in %s (%d folds)", out, folds)
    else:
        if folds < 2:
            raise ConfigError(f"folds={folds}: cross-validation needs at least 2 folds")
        cfg = build_config(config, data, model, epochs, out, **overrides)
        if cfg.out is None:
            raise ConfigError("out: give the folder for the cross-validation (out=DIR, or --out DIR)")
        out = Path(cfg.out)
        check_run_dir_writable(out, overwrite)
        plan = _make_plan(cfg, folds, refit)
        out = make_run_dir(out, overwrite=overwrite)
        cfg = validate_config(plan["config"])
        _write_plan(out, plan)
    # a plan written before folds had their own seeds trains every fold with train.seed, as it began
    seeds = plan.get("fold_seeds") or [cfg.train.seed] * folds
    refit = bool(plan.get("refit"))  # a plan written before refit existed has none
    fold_runs, refits = [], []
    for k in range(folds):
        fold_runs.append(_run_fold(out, cfg, f"fold_{k + 1}", f"fold {k + 1} of {folds}", seeds[k],
                                   progress=progress, force=force))
        if refit:
            refits.append(_run_fold(out, cfg, f"fold_{k + 1}_refit", f"fold {k + 1} of {folds}, refit on the "
                                    "other folds", seeds[k], progress=progress, force=force, scored=False))
    members = refits if refit else fold_runs
    oof, summary = _summarize(out, fold_runs, plan, refits)
    shared = _oof_label_threshold(cfg, oof, InputContract.load(fold_runs[0] / "contract.json"))
    write_ensemble(members, out, extra={"cv": {"folds": folds, "seed": plan["seed"], "refit": refit,
                                               "oof": summary["pooled"]["metrics"],
                                               **({"label_threshold": shared} if shared else {})}},
                   fingerprint=plan.get("fingerprint"), label_threshold=shared["threshold"] if shared else None)
    write_json(out / "metrics.json", {"oof": summary["pooled"]["flat"]})
    refresh_manifest(out)
    log.info("cross-validation done: %s; the ensemble of the %d %s is %s (evaluate it on the held-out test split "
             "with: biolens evaluate %s)", _headline(summary), folds, "refit members" if refit else "fold models",
             out, out)
    return CVResult(out, fold_runs, oof, summary, members)


def _read_plan(out: Path) -> dict[str, Any]:
    path = out / PLAN
    if not path.is_file():
        raise ConfigError(f"resume {out}: no {PLAN}; it is not a cross-validation folder (start one with cv --out)")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: not valid JSON ({e}); start the cross-validation again with --overwrite") from None


def _write_plan(out: Path, plan: dict[str, Any]) -> None:
    records = plan.pop("_records")
    (out / "folds").mkdir(exist_ok=True)
    rows, ids = records["row"].to_numpy(), records["id"].to_numpy()
    for k in range(plan["folds"]):
        held_out = (records["fold"] == k).to_numpy()
        split = np.where(held_out, "test", np.where(records[f"val_{k}"], "val", "train"))
        write_assignment(out / "folds" / f"fold_{k + 1}.tsv", rows, ids, split)
        if plan["refit"]:
            split = np.where(held_out & records[f"refit_val_{k}"].to_numpy(), "val", "train")
            write_assignment(out / "folds" / f"fold_{k + 1}_refit.tsv", rows, ids, split)
    records.drop(columns=[c for c in records.columns if c.startswith(("val_", "refit_val_"))]).to_csv(
        out / "folds.tsv", sep="\t", index=False)
    write_json(out / PLAN, plan)


def _make_plan(cfg: RunConfig, folds: int, refit: bool = True) -> dict[str, Any]:
    """Read the data once: the pool (train ∪ val), its folds and inner val shares, and the data settings every fold
    shares (alphabet, max_len, image size and normalization …) so that the fold models have one input contract."""
    cfg, why = preset_before_data(cfg, make_task(cfg).kind)
    task = make_task(cfg)
    task.prepare()
    cfg, after = preset_for(cfg, task, resolve_device(cfg.train.device).type)
    for reason in why + after:
        log.info("preset auto: %s", reason)
    records = task.records()
    if records is None:
        raise ConfigError(f"data {cfg.data.path!r}: this kind of data cannot be cross-validated yet")
    resolved = task.resolved_data_config()
    pool = records[records["split"].isin(["train", "val"])].reset_index(drop=True)
    held_out = int((records["split"] == "test").sum())
    seed = cfg.data_seed
    pool["fold"] = grouped_folds(pool["label"].to_numpy(), pool["group"].to_numpy(), folds, seed)
    for k in range(folds):
        rest = (pool["fold"] != k).to_numpy()
        val = np.zeros(len(pool), dtype=bool)
        val[np.flatnonzero(rest)] = inner_val(pool["label"].to_numpy()[rest], pool["group"].to_numpy()[rest],
                                              resolved.val_frac, seed + k + 1)
        pool[f"val_{k}"] = val
        if refit:  # the refit member early-stops on one grouped, stratified half of fold k and trains on the rest
            fold_k = np.flatnonzero(~rest)
            half = np.zeros(len(pool), dtype=bool)
            half[fold_k] = inner_val(pool["label"].to_numpy()[fold_k], pool["group"].to_numpy()[fold_k], 0.5,
                                     seed + folds + k + 1)
            pool[f"refit_val_{k}"] = half
    data = resolved.model_copy(update={"image": resolved.image.model_copy(update={"mean": resolved.image.mean,
                                                                                  "std": resolved.image.std}),
                                       "split_seed": cfg.data_seed})  # the folds' own seeds leave the data alone
    fixed = cfg.model_copy(update={"data": data, "out": None})
    sizes = pool.groupby("fold").size().to_dict()
    log.info("cross-validation: %d pool records (train ∪ val) in %d folds of %s records, %d groups; %d test records "
             "held out and never read", len(pool), folds, "/".join(str(sizes[k]) for k in range(folds)),
             pool["group"].nunique(), held_out)
    return {"folds": folds, "seed": seed, "refit": refit, "fold_seeds": [fold_seed(cfg.train.seed, k) for k in range(folds)],
            "group_col": cfg.data.group_col, "pool": len(pool),
            "groups": int(pool["group"].nunique()), "test_held_out": held_out,
            "fold_sizes": [int(sizes[k]) for k in range(folds)], "fingerprint": task.fingerprint(),
            "config": fixed.model_dump(mode="json"),
            "_records": pool}


def fold_seed(seed: int, k: int) -> int:
    """Fold k's ``train.seed`` (initialization, batch order, augmentation): the fold models differ by more than their
    data, as the members of an ensemble should. The data (negatives, carve-outs) keep ``data.split_seed``."""
    return seed + k


def _fold_config(out: Path, cfg: RunConfig, name: str, seed: int, scored: bool = True) -> RunConfig:
    data = cfg.data.model_copy(update={"split": cfg.data.split.model_copy(update={
        "assignment": str(out / "folds" / f"{name}.tsv")})})
    training = cfg.train.model_copy(update={"seed": seed, "evaluate_test": scored})
    return cfg.model_copy(update={"data": data, "train": training, "out": str(out / "folds" / name)})


def _run_fold(out: Path, cfg: RunConfig, name: str, what: str, seed: int, *, progress: bool, force: bool,
              scored: bool = True) -> Path:
    """Train (or resume, or keep) the run ``folds/NAME`` on the assignment ``folds/NAME.tsv``; ``scored=False``: a
    refit member, whose assignment has no test rows."""
    fold_cfg = _fold_config(out, cfg, name, seed, scored)
    run = Path(fold_cfg.out)
    failed = run.with_name(run.name + ".failed")
    if not run.exists() and (failed / "checkpoints" / "last.pt").is_file():
        os.replace(failed, run)  # a fold whose training failed (or was interrupted) half-way: continue it
    if (run / "manifest.json").is_file() and (run / "metrics.json").is_file():
        log.info("%s: finished earlier, kept (%s)", what, run)
        return run
    if (run / "checkpoints" / "last.pt").is_file():
        log.info("%s: resuming from %s", what, run / "checkpoints" / "last.pt")
        train(resume=run, progress=progress, force=force)
        return run
    if run.exists():
        shutil.rmtree(run)  # started but nothing worth keeping (killed before its first checkpoint)
    log.info("%s: training %s", what, run)
    train(fold_cfg, progress=progress, force=force)
    return run


def _oof_label_threshold(cfg: RunConfig, oof: pd.DataFrame, contract: InputContract) -> dict[str, Any] | None:
    """Multi-label cv whose members keep the most probable label (``train.label_threshold=auto``): the ensemble's
    one threshold for every label, chosen as a single run chooses its own on val (``shared_threshold``) but on the
    out-of-fold predictions of the whole pool; the members' own, each chosen on its own val split, differ. None
    where there is nothing to choose."""
    if contract.target_type != "multilabel" or not contract.at_least_one_label or cfg.train.label_threshold != "auto":
        return None
    y, probs = read_target_predictions(oof, contract.class_names, "multilabel")
    value, detail = shared_threshold(y, probs)
    if "val_subset_accuracy" in detail:
        acc = detail["val_subset_accuracy"]
        log.info("ensemble label threshold %.2f for every label (out-of-fold subset accuracy %.4f; %.4f at 0.50, %d "
                 "samples)", value, acc[value], acc[0.5], detail["val_rows"])
    return {"threshold": value, **detail, "chosen_on": "out-of-fold predictions"}


def _summarize(out: Path, fold_runs: list[Path], plan: dict[str, Any],
               refits: list[Path]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """OOF predictions, per-fold metrics, mean ± sd and pooled OOF metrics with bootstrap CIs; with ``refits`` (none
    without refit), each refit member's val metrics (the half of its fold that chose its checkpoint: optimistic)."""
    contract = InputContract.load(fold_runs[0] / "contract.json")
    kind = contract.target_type
    parts = []
    for k, run in enumerate(fold_runs):
        pred = pd.read_csv(run / "predictions.csv", dtype={"id": str, "label": str, "prediction": str})
        pred.insert(0, "fold", k + 1)
        parts.append(pred)
    per_fold = _fold_metrics(fold_runs, kind)
    oof = pd.concat(parts, ignore_index=True)
    oof.to_csv(out / "oof_predictions.csv", index=False, float_format="%.6f")
    names = contract.class_names
    if kind == "classification":
        y = oof["label"].map({c: i for i, c in enumerate(names)}).to_numpy()
        probs = oof[[f"p_{c}" for c in names]].to_numpy(dtype=float)
        probs /= probs.sum(axis=1, keepdims=True)  # the CSV's 6 decimals: rows sum to 1 ± 1e-6
    else:  # regression values or label probabilities against the (N, T) targets, NaN where missing
        y, probs = read_target_predictions(oof, names, kind)
    mean_sd = _mean_sd(per_fold, kind)
    pooled = evaluate_predictions(y, probs, contract, "out-of-fold predictions", EvalOptions(seed=plan["seed"]),
                                  plots_dir=out / "plots")
    flat = evaluation_metrics(y, probs, contract)
    summary = {"folds": per_fold, "mean_sd": mean_sd,
               "pooled": {"n": int(len(oof)), "metrics": pooled.metrics, "flat": flat,
                          "calibration": pooled.calibration},
               "plan": {k: v for k, v in plan.items() if k != "config"}}
    if refits:
        val = _fold_metrics(refits, kind, "val")
        summary["refit"] = {"members": [str(r.relative_to(out)) for r in refits], "val": val,
                            "val_mean_sd": _mean_sd(val, kind),
                            "note": "each member's val split (one half of its fold) chose its checkpoint: optimistic; "
                                    "the honest figures are the OOF estimate and the ensemble on the test split"}
    write_json(out / "cv.json", summary)
    return oof, summary


def _fold_metrics(runs: list[Path], kind: str, split: str = "test") -> list[dict[str, Any]]:
    """Each run's metrics on ``split`` (the summary metrics of its target type), fold by fold."""
    rows = []
    for k, run in enumerate(runs):
        got = json.loads((run / "metrics.json").read_text())[split]
        rows.append({"fold": k + 1, "n": got.get("n"), **{m: got.get(m) for m in SUMMARY_METRICS[kind] if m in got}})
    return rows


def _mean_sd(rows: list[dict[str, Any]], kind: str) -> dict[str, dict[str, float]]:
    out = {}
    for m in SUMMARY_METRICS[kind]:
        values = [f[m] for f in rows if isinstance(f.get(m), (int, float))]
        if len(values) == len(rows) > 1:
            out[m] = {"mean": round(float(np.mean(values)), 4), "sd": round(float(np.std(values, ddof=1)), 4)}
    return out


def _headline(summary: dict[str, Any]) -> str:
    parts = []
    for m in ("accuracy", "roc_auc", "pearson", "spearman", "subset_accuracy"):
        if m in summary["mean_sd"]:
            s = summary["mean_sd"][m]
            parts.append(f"{m} {s['mean']:.4f} ± {s['sd']:.4f} over folds")
    flat = summary["pooled"]["flat"]
    if "roc_auc" in flat and flat["roc_auc"] is not None:
        parts.append(f"pooled OOF ROC AUC {flat['roc_auc']:.4f}")
    return "; ".join(parts)
