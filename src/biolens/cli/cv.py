"""``biolens cv`` (k-fold cross-validation → an ensemble bundle) and ``biolens ensemble RUN… --out DIR``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from biolens.cli._common import console, handle_errors, setup_logging
from biolens.cli.show import print_metrics
from biolens.cli.train import config_from_options, share_options, train


@handle_errors
@share_options(train)
def cv(
    config: Path = typer.Argument(None, help="YAML config (data/model/train sections); flags override it"),
    folds: int = typer.Option(5, help="number of folds"),
    refit: bool = typer.Option(True, help="the ensemble's members are refits of each fold on all the other folds "
                               "and half of its own (twice the training; the OOF estimate stays the fold models'); "
                               "--no-refit: the fold models themselves"),
    resume: Path = typer.Option(None, help="continue an interrupted cross-validation folder"),
    overwrite: bool = typer.Option(False, help="replace an existing cv folder"),
    force: bool = typer.Option(False, "--force", help="train even if a pre-training check fails"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar or info logs"),
    **options: Any,
) -> None:
    """Cross-validate (stratified, grouped folds of train ∪ val; the test split is never read) and write the
    ensemble of its members (each fold's refit; --no-refit: the fold models) as a bundle in --out, with out-of-fold
    predictions and metrics."""
    from biolens.workflows.cv import cross_validate

    setup_logging(quiet)
    if resume is not None:
        result = cross_validate(resume=resume, progress=not quiet, force=force)
    else:
        cfg = config_from_options(config, options)
        result = cross_validate(cfg, folds=folds, overwrite=overwrite, progress=not quiet, force=force, refit=refit)
    s = result.summary
    shown = list(s["mean_sd"])[:4]  # the headline metrics of the run's target type, as cv.json orders them
    for row in s["folds"]:
        console.print(f"fold {row['fold']}: n {row['n']}  " + "  ".join(
            f"{m} {row[m]:.4f}" for m in shown if isinstance(row.get(m), float)))
    console.print("mean ± sd over folds: " + "  ".join(f"{m} {s['mean_sd'][m]['mean']:.4f} ± "
                                                     f"{s['mean_sd'][m]['sd']:.4f}" for m in shown))
    print_metrics(s["pooled"]["metrics"], title=f"pooled out-of-fold predictions (n {s['pooled']['n']})")
    if "refit" in s:
        val = s["refit"]["val_mean_sd"]
        console.print("refit members on the val half of their fold (it chose their checkpoints: optimistic): "
                      + "  ".join(f"{m} {val[m]['mean']:.4f} ± {val[m]['sd']:.4f}" for m in shown if m in val))
    what = "refit fold models" if "refit" in s else "fold models"
    console.print(f"ensemble of the {len(result.members)} {what}: {result.out}  (evaluate it on the held-out "
                  f"test split: biolens evaluate {result.out})")


@handle_errors
def ensemble(
    runs: list[Path] = typer.Argument(..., help="two or more run folders (or ensemble bundles) with the same contract"),
    out: Path = typer.Option(..., "--out", "-o", help="bundle folder to create"),
    weighted: bool = typer.Option(False, "--weighted", help="weight each run by its val ROC AUC (binary) or accuracy"),
    weight_by: str = typer.Option(None, help="weight each run by this val metric of its metrics.json"),
    overwrite: bool = typer.Option(False, help="replace an existing bundle folder"),
    device: str = typer.Option("auto", help="device for scoring the bundle on its data"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="only warnings"),
) -> None:
    """Average the class probabilities of runs with the same input contract into one bundle that predict,
    evaluate, explain, export (one ONNX graph) and serve take like any run."""
    from biolens.workflows.ensemble import build_ensemble

    setup_logging(quiet)
    bundle = build_ensemble(runs, out, weight_by=weight_by or ("auto" if weighted else None), overwrite=overwrite,
                            device=device)
    metrics_path = bundle / "metrics.json"
    if metrics_path.is_file():
        metrics = json.loads(metrics_path.read_text())
        print_metrics(metrics["test"], title="ensemble, test split")
    console.print(f"ensemble bundle: {bundle}")


@handle_errors
@share_options(train)
def tune(
    config: Path = typer.Argument(None, help="YAML config (data/model/train sections); flags override it"),
    trials: int = typer.Option(20, help="trials in the study (a resumed study counts the finished ones)"),
    objective: str = typer.Option(None, help="val value to optimize: val_roc_auc (default, binary), val_acc "
                                  "(default otherwise), val_loss or any registered val_<metric>"),
    space: Path = typer.Option(None, help="YAML search space overriding the defaults, e.g. "
                               "'train.lr: {low: 1e-4, high: 1e-2, log: true}' (null removes a field)"),
    top_k: int = typer.Option(None, help="K (default 3): ensemble of the best K trial runs into DIR/best; 1: retrain "
                              "the best configuration there instead (with --resume: the study's own unless given)"),
    timeout: float = typer.Option(None, help="stop starting new trials after this many seconds"),
    resume: Path = typer.Option(None, help="continue an interrupted tune folder"),
    overwrite: bool = typer.Option(False, help="replace an existing tune folder"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar or info logs"),
    **options: Any,
) -> None:
    """Search hyperparameters with Optuna (TPE, median pruning, SQLite study in --out); trials are judged on val
    only, then the best 3 trial runs become an ensemble (or, with --top-k 1, the best configuration is retrained)
    in --out/best, with the test split scored."""
    from biolens.workflows.tune import tune as tune_api

    setup_logging(quiet)
    if resume is not None:
        result = tune_api(resume=resume, trials=trials, objective=objective, space=space, top_k=top_k,
                          timeout=timeout, progress=not quiet)
    else:
        cfg = config_from_options(config, options)
        result = tune_api(cfg, trials=trials, objective=objective, space=space, top_k=top_k, timeout=timeout,
                          overwrite=overwrite, progress=not quiet)
    console.print(f"best trial: {result.objective} {result.best_value:.4f} with " + ", ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in result.best_params.items()))
    metrics_path = result.best_run / "metrics.json"
    if metrics_path.is_file():
        test = json.loads(metrics_path.read_text()).get("test")
        if test:
            print_metrics(test, title="final model, test split")
    console.print(f"final model: {result.best_run}; search report: {result.out / 'report.html'}")
