"""``biolens.evaluate``: evaluate a run on its own split or a labelled file; with ``--calibrate`` or an operating
point, fit the temperature and the threshold on val and save them in the contract (predict then uses them).

Writes ``metrics.json``, ``predictions.csv`` and ``plots/`` into the run (or ``out``), and refreshes the manifest.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from biolens.bundle import refresh_manifest
from biolens.contract import softmax
from biolens.data.splits import SPLITS
from biolens.errors import BiolensError, BiolensWarning, ConfigError, DataError
from biolens.evaluation.calibration import check_fit_sample, expected_calibration_error, fit_temperature, nll
from biolens.evaluation.evaluate import EvalOptions, EvaluationResult, evaluate_predictions
from biolens.evaluation.multilabel import label_thresholds
from biolens.evaluation.threshold import choose_threshold
from biolens.io import write_json
from biolens.models.inference import predict_logits
from biolens.tasks import Encoded, Predictor, Task, make_task, write_predictions

log = logging.getLogger(__name__)

__all__ = ["EvalOptions", "EvaluationResult", "evaluate_run"]


class RunData:
    """The run's own data, read and prepared at most once per evaluation (val for calibration, then the split)."""

    def __init__(self, predictor: Predictor):
        self.predictor = predictor
        self._task: Task | None = None

    def task(self) -> Task:
        if self._task is None:
            self._task = make_task(self.predictor.config)
            self._task.prepare()
        return self._task

    def check(self, name: str) -> None:
        """A split with no rows (the test split of a cv refit member, whose assignment has none) is a ConfigError."""
        if self.task().size(name) == 0:
            run = self.predictor.run_dir
            cv = run.parent.parent
            raise ConfigError(f"{run}: its {name} split has no rows (its data.split.assignment assigns none); evaluate "
                              "it on a labelled file with --data" + (f", or evaluate the cv folder {cv}, whose "
                              "ensemble it is a member of" if (cv / "cv_plan.json").is_file() else ""))

    def split(self, name: str, batch_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ids, y, logits) of one of the run's splits (``evaluate_run`` has checked that it has rows)."""
        task, p = self.task(), self.predictor
        logits = predict_logits(p.model, task.batches(name, train=False, device=p.device, batch_size=batch_size))
        return task.ids(name), task.labels(name), logits

    def file(self, data: str | list[str], batch_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ids, y, logits) of a labelled file, read as the run's codec reads inputs."""
        got = self.predictor.read(data, require_labels=True)
        y = self.predictor.codec.labels_to_index(got)
        unusable = self.predictor.codec.check_inputs(got)
        if unusable.any():
            first = int(np.flatnonzero(unusable)[0])
            where = got.locate(first) if got.locate is not None else got.ids[first]
            raise DataError(f"{where}: {int(unusable.sum())} input(s) cannot be evaluated (empty sequences); remove "
                            "them from the file")
        self.warn_overlap(got.encoded, data)
        return np.array(got.ids, dtype=object), y, self.predictor.logits(got.encoded, batch_size=batch_size)

    def warn_overlap(self, encoded: Encoded, data: str | list[str]) -> dict[str, int] | None:
        """Warn when an external evaluation set repeats (or nearly repeats) the run's training data."""
        try:
            found = self.task().overlap(encoded)
        except (BiolensError, OSError) as e:  # the run's own data are not here: nothing to compare with
            log.info("overlap with the training data not checked (%s)", str(e)[:160])
            return None
        if found["exact"] or found["near"]:
            names = ", ".join([data] if isinstance(data, str) else data)
            warnings.warn(f"{names}: {found['exact']} of {found['n']} items are in the run's training data (or their "
                          f"reverse complement is) and {found['near']} more are near-identical to a training item; "
                          "metrics on this file are optimistic: remove them for an independent test",
                          BiolensWarning, stacklevel=3)
        return found


def evaluate_run(run: str | Path, data: str | list[str] | None = None, *, split: str = "test",
                 out: str | Path | None = None, options: EvalOptions | None = None, batch_size: int = 256,
                 device: str = "auto") -> EvaluationResult:
    """Evaluate a trained run (see the module docstring for what is written where)."""
    opt = options or EvalOptions()
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}; expected one of: {', '.join(SPLITS)}")
    predictor = Predictor.load(run, device=device)
    run_dir, contract = predictor.run_dir, predictor.contract
    if not contract.is_classification:
        _check_target_options(opt, contract.target_type)
    elif opt.operating_point and contract.positive_index is None:
        raise ConfigError("an operating point needs a binary task with a positive class; this run has "
                          f"{len(contract.class_names)} classes")
    source = RunData(predictor)
    if data is None:
        source.check(split)  # before a calibration writes anything
    op = None
    if contract.target_type == "multilabel" and opt.operating_point:  # one threshold per label, chosen on val
        _, val_y, val_logits = source.split("val", batch_size)
        contract.label_thresholds, op = label_thresholds(val_y, contract.outputs(val_logits), contract.class_names,
                                                         opt.operating_point, opt.target)
        log.info("per-label thresholds on val (%s): %s", opt.operating_point,
                 ", ".join(f"{n} {t:.3f}" for n, t in op["thresholds"].items()))
        contract.save(run_dir / "contract.json")
    elif opt.operating_point or opt.calibrate:
        _, val_y, val_logits = source.split("val", batch_size)
        what = " and ".join(w for w, on in (("a temperature", opt.calibrate), ("a threshold", opt.operating_point)) if on)
        for note in check_fit_sample(val_y, len(contract.class_names), what, contract.positive_index, opt.target,
                                     opt.operating_point):
            warnings.warn(note, BiolensWarning, stacklevel=2)
        if opt.calibrate:
            before = nll(val_y, softmax(val_logits))
            contract.temperature = fit_temperature(val_logits, val_y)
            log.info("temperature %.3f fitted on %d val samples (NLL %.4f → %.4f, ECE %.4f → %.4f); saved in the "
                     "contract", contract.temperature, len(val_y), before,
                     nll(val_y, softmax(val_logits, contract.temperature)),
                     expected_calibration_error(val_y, softmax(val_logits)),
                     expected_calibration_error(val_y, softmax(val_logits, contract.temperature)))
        if opt.operating_point:
            pos = contract.positive_index
            op = choose_threshold(val_y == pos, softmax(val_logits, contract.temperature)[:, pos], opt.operating_point,
                                  opt.target)
            contract.threshold = op.threshold
            log.info("operating point on %d val samples (%s): threshold %.4f, sensitivity %.3f, specificity %.3f; "
                     "saved in the contract", len(val_y), op.method, op.threshold, op.sensitivity, op.specificity)
        contract.save(run_dir / "contract.json")

    ids, y, logits = source.split(split, batch_size) if data is None else source.file(data, batch_size)
    probs = contract.probabilities(logits)
    where = f"{split} split" if data is None else ", ".join([data] if isinstance(data, str) else data)
    target = Path(out) if out is not None else (run_dir if data is None else run_dir / "evaluations" / Path(where).stem)
    target.mkdir(parents=True, exist_ok=True)
    result = evaluate_predictions(y, probs, contract, where, opt, plots_dir=target / "plots" if opt.plots else None,
                                  operating_point=op if isinstance(op, dict) or op is None else op.to_dict())
    _write_outputs(target, split if data is None and out is None else None, result, ids, y, probs, predictor)
    if opt.operating_point or opt.calibrate or target.resolve().is_relative_to(run_dir.resolve()):
        refresh_manifest(run_dir)  # checksums must describe the files as they are now
    return result


def _check_target_options(opt: EvalOptions, target_type: str) -> None:
    """Operating points are per-label thresholds for multi-label runs; regression runs have none; temperature
    scaling is for classifiers."""
    if opt.calibrate:
        raise ConfigError(f"calibrate (temperature scaling) is for classification runs; this is a {target_type} run: "
                          "drop it")
    if opt.operating_point and target_type == "regression":
        raise ConfigError("an operating point (a decision threshold) is for classification and multi-label runs; a "
                          "regression run predicts values: drop it")


def _write_outputs(target: Path, split_key: str | None, result: EvaluationResult, ids: np.ndarray, y: np.ndarray,
                   probs: np.ndarray, predictor: Predictor) -> None:
    name = "predictions.csv" if split_key in (None, "test") else f"predictions_{split_key}.csv"
    write_predictions(target / name, ids, y, probs, predictor.contract)
    path = target / "metrics.json"
    data: dict[str, Any] = result.to_dict()
    if split_key is not None and path.exists():  # the run's own metrics.json: replace this split's entry
        merged = json.loads(path.read_text())
        merged[split_key] = data
        data = merged
    write_json(path, data)
