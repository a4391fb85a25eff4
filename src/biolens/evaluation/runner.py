"""Evaluate a run: metrics with bootstrap CIs at 0.5 and at a chosen operating point, calibration, plots and
predictions, written into the run (or ``--out``); the chosen threshold and temperature go into the contract."""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from biolens.deploy.bundle import refresh_manifest
from biolens.errors import BiolensWarning, ConfigError
from biolens.evaluation import plots
from biolens.evaluation.bootstrap import binary_cis, multiclass_cis
from biolens.evaluation.calibration import brier, expected_calibration_error, fit_temperature, nll, reliability
from biolens.evaluation.clinical import clinical_lines
from biolens.evaluation.metrics import classification_metrics, decide
from biolens.evaluation.threshold import choose_threshold
from biolens.models.inference import softmax

log = logging.getLogger(__name__)


@dataclass
class EvalOptions:
    n_resamples: int = 1000
    seed: int = 0
    alpha: float = 0.05
    operating_point: str | None = None  # youden | f1 | sensitivity | specificity
    target: float | None = None
    calibrate: bool = False
    plots: bool = True


def _logits(predictor: Any, split: str | None, data: Any, batch_size: int, prepared: dict[str, Any]
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ids, y, logits) of the run's own split or of a labelled file. The run's data are read and prepared once
    per evaluation and kept in ``prepared`` (val for calibration/thresholds, then the evaluated split)."""
    from biolens.models.inference import predict_logits
    from biolens.training.tasks import make_task

    if data is None:
        if "task" not in prepared:
            prepared["task"] = make_task(predictor.config)
            prepared["task"].prepare()
        task = prepared["task"]
        logits = predict_logits(predictor.model, task.batches(split, train=False, device=predictor.device,
                                                              batch_size=batch_size))
        return task.ids(split), task.labels(split), logits
    recs, x, lengths, y = predictor.read(data, require_labels=True)
    return np.array(recs.ids, dtype=object), y, predictor.logits(x, lengths, batch_size)


def _metrics_with_cis(y: np.ndarray, probs: np.ndarray, contract: Any, threshold: float, opt: EvalOptions) -> dict:
    m = classification_metrics(y, probs, contract.class_names, contract.positive_class, threshold)
    pos = contract.positive_index
    if pos is not None and probs.shape[1] == 2:
        m["ci"] = binary_cis(y == pos, probs[:, pos], threshold, n_resamples=opt.n_resamples, seed=opt.seed,
                             alpha=opt.alpha)
    else:
        m["ci"] = multiclass_cis(y, decide(probs, None), probs=probs, n_resamples=opt.n_resamples, seed=opt.seed,
                                 alpha=opt.alpha)
    m["ci_level"] = 1 - opt.alpha
    m["clinical"] = clinical_lines(m)
    return m


def _degenerate_warnings(y: np.ndarray, contract: Any) -> list[str]:
    out = []
    absent = [c for k, c in enumerate(contract.class_names) if not (y == k).any()]
    if absent:
        msg = (f"no examples of class(es) {', '.join(absent)} in the evaluated data: recall/sensitivity for them and "
               "AUCs that need them are undefined (reported as null)")
        warnings.warn(msg, BiolensWarning, stacklevel=3)
        out.append(msg)
    return out


def evaluate_run(run: str | Path, data: str | list[str] | None = None, *, split: str = "test",
                 out: str | Path | None = None, options: EvalOptions | None = None, batch_size: int = 256,
                 device: str = "auto") -> dict[str, Any]:
    """Full evaluation of a trained run. See the module docstring for what is written where."""
    from biolens.deploy.predictor import Predictor

    opt = options or EvalOptions()
    if split not in ("train", "val", "test"):
        raise ConfigError(f"unknown split {split!r}; expected train, val or test")
    predictor = Predictor.load(run, device=device)
    run_dir, contract = predictor.run_dir, predictor.contract
    binary = contract.positive_index is not None
    if opt.operating_point and not binary:
        raise ConfigError("an operating point needs a binary task with a positive class; this run has "
                          f"{len(contract.class_names)} classes")
    op, prepared = None, {}
    if opt.operating_point or opt.calibrate:
        _, val_y, val_logits = _logits(predictor, "val", None, batch_size, prepared)
        if opt.calibrate:
            before = nll(val_y, softmax(val_logits))
            contract.temperature = fit_temperature(val_logits, val_y)
            log.info("temperature %.3f fitted on val (NLL %.4f → %.4f)", contract.temperature, before,
                     nll(val_y, softmax(val_logits, contract.temperature)))
        if opt.operating_point:
            pos = contract.positive_index
            op = choose_threshold(val_y == pos, softmax(val_logits, contract.temperature)[:, pos], opt.operating_point,
                                  opt.target)
            contract.threshold = op.threshold
            log.info("operating point on val (%s): threshold %.4f, sensitivity %.3f, specificity %.3f", op.method,
                     op.threshold, op.sensitivity, op.specificity)
        contract.save(run_dir / "contract.json")

    ids, y, logits = _logits(predictor, split if data is None else None, data, batch_size, prepared)
    probs = softmax(logits, contract.temperature)
    where = f"{split} split" if data is None else ", ".join([data] if isinstance(data, str) else data)
    result: dict[str, Any] = {"evaluated": where, "n": int(len(y)), "warnings": _degenerate_warnings(y, contract)}
    result["at_0.5" if binary else "metrics"] = _metrics_with_cis(y, probs, contract, 0.5, opt)
    if binary and contract.threshold != 0.5:
        result["at_threshold"] = _metrics_with_cis(y, probs, contract, contract.threshold, opt)
    if op is not None:
        result["operating_point"] = op.to_dict()
    rel = reliability(y, probs)
    result["calibration"] = {"temperature": contract.temperature, "ece": expected_calibration_error(y, probs),
                             "brier": brier(y, probs, contract.positive_index), "nll": nll(y, probs), "reliability": rel}

    target = Path(out) if out is not None else (run_dir if data is None else run_dir / "evaluations" / Path(where).stem)
    target.mkdir(parents=True, exist_ok=True)
    headline = result.get("at_threshold") or result.get("at_0.5") or result["metrics"]
    if opt.plots:
        result["plots"] = _write_plots(target / "plots", y, probs, contract, headline, result["calibration"])
    _write_outputs(target, split if data is None and out is None else None, result, ids, y, probs, contract)
    if opt.operating_point or opt.calibrate or target.resolve().is_relative_to(run_dir.resolve()):
        refresh_manifest(run_dir)  # checksums must describe the files as they are now
    return result


def _write_plots(folder: Path, y: np.ndarray, probs: np.ndarray, contract: Any, headline: dict, calib: dict) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    made = [plots.confusion_plot(headline["confusion_matrix"]["matrix"], contract.class_names, folder / "confusion.png"),
            plots.calibration_plot(calib["reliability"], folder / "calibration.png", calib["ece"]),
            plots.per_class_plot(headline["per_class"], folder / "per_class.png")]
    pos = contract.positive_index
    if pos is not None and probs.shape[1] == 2 and 0 < (y == pos).sum() < len(y):
        y_pos, p_pos = y == pos, probs[:, pos]
        points = {"0.5": 0.5} | ({"chosen": contract.threshold} if contract.threshold != 0.5 else {})
        made.append(plots.roc_plot(y_pos, p_pos, folder / "roc.png", headline.get("roc_auc"), points))
        made.append(plots.pr_plot(y_pos, p_pos, folder / "pr.png", headline.get("pr_auc")))
    return [str(p.relative_to(folder.parent)) for p in made]


def _write_outputs(target: Path, split_key: str | None, result: dict, ids: np.ndarray, y: np.ndarray,
                   probs: np.ndarray, contract: Any) -> None:
    from biolens.training.api import write_predictions

    pred = decide(probs, contract.positive_index, contract.threshold)
    name = "predictions.csv" if split_key in (None, "test") else f"predictions_{split_key}.csv"
    write_predictions(target / name, ids, y, probs, pred, contract)
    path = target / "metrics.json"
    if split_key is not None and path.exists():  # the run's own metrics.json: replace this split's entry
        merged = json.loads(path.read_text())
        merged[split_key] = result
        path.write_text(json.dumps(merged, indent=2) + "\n")
    else:
        path.write_text(json.dumps(result, indent=2) + "\n")
