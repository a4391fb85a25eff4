"""Evaluate predictions against labels: metrics with bootstrap CIs at 0.5 and at the contract's threshold, the
clinical reading, calibration and the figures. Pure computation (plus PNGs when asked); ``workflows/evaluate.py``
loads the run, picks thresholds and writes the files."""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from biolens.contract import InputContract, decide
from biolens.errors import BiolensWarning
from biolens.evaluation import multilabel, plots, regression
from biolens.evaluation.bootstrap import binary_cis, multiclass_cis
from biolens.evaluation.calibration import brier, expected_calibration_error, nll, reliability
from biolens.evaluation.clinical import clinical_lines
from biolens.metrics import classification_metrics


@dataclass
class EvalOptions:
    n_resamples: int = 1000
    seed: int = 0
    alpha: float = 0.05
    operating_point: str | None = None  # youden | f1 | sensitivity | specificity
    target: float | None = None
    calibrate: bool = False
    plots: bool = True


@dataclass
class EvaluationResult(Mapping):
    """The evaluation of one split or file. ``metrics`` is always the headline: at the contract's threshold for
    binary tasks (``at_threshold`` when it is not 0.5, else ``at_default``), the only set for multi-class tasks.

    Read it as attributes, or as the ``metrics.json`` mapping (``result["at_0.5"]``, ``to_dict()``)."""

    evaluated: str
    n: int
    metrics: dict[str, Any]
    calibration: dict[str, Any]
    at_default: dict[str, Any] | None = None  # binary: at threshold 0.5
    at_threshold: dict[str, Any] | None = None  # binary: at the contract's threshold, when it is not 0.5
    operating_point: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)
    plots: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The ``metrics.json`` layout (unchanged from earlier versions)."""
        out: dict[str, Any] = {"evaluated": self.evaluated, "n": self.n, "warnings": list(self.warnings)}
        if self.at_default is not None:
            out["at_0.5"] = self.at_default
        else:
            out["metrics"] = self.metrics
        if self.at_threshold is not None:
            out["at_threshold"] = self.at_threshold
        if self.operating_point is not None:
            out["operating_point"] = self.operating_point
        out["calibration"] = self.calibration
        if self.plots:
            out["plots"] = list(self.plots)
        return out

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_dict())

    def __len__(self) -> int:
        return len(self.to_dict())


def metrics_with_cis(y: np.ndarray, probs: np.ndarray, contract: InputContract, threshold: float,
                     opt: EvalOptions) -> dict[str, Any]:
    """``classification_metrics`` at ``threshold`` plus bootstrap CIs and the clinical reading."""
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


def degenerate_warnings(y: np.ndarray, contract: InputContract) -> list[str]:
    """Classes absent from the evaluated labels (their recall and the AUCs that need them are undefined)."""
    out = []
    absent = [c for k, c in enumerate(contract.class_names) if not (y == k).any()]
    if absent:
        msg = (f"no examples of class(es) {', '.join(absent)} in the evaluated data: recall/sensitivity for them and "
               "AUCs that need them are undefined (reported as null)")
        warnings.warn(msg, BiolensWarning, stacklevel=3)
        out.append(msg)
    return out


def evaluate_predictions(y: np.ndarray, probs: np.ndarray, contract: InputContract, evaluated: str,
                         options: EvalOptions | None = None, plots_dir: Path | None = None,
                         operating_point: dict[str, Any] | None = None) -> EvaluationResult:
    """Everything ``biolens evaluate`` reports about probabilities ``(N, C)`` against labels ``(N,)``; regression
    values or multi-label probabilities ``(N, T)`` against ``(N, T)`` targets for runs of those types."""
    opt = options or EvalOptions()
    if not contract.is_classification:
        return _evaluate_targets(y, probs, contract, evaluated, opt, plots_dir, operating_point)
    binary = contract.positive_index is not None
    at_default = metrics_with_cis(y, probs, contract, 0.5, opt)
    at_threshold = (metrics_with_cis(y, probs, contract, contract.threshold, opt)
                    if binary and contract.threshold != 0.5 else None)
    calibration = {"temperature": contract.temperature, "ece": expected_calibration_error(y, probs),
                   "brier": brier(y, probs, contract.positive_index), "nll": nll(y, probs),
                   "reliability": reliability(y, probs)}
    result = EvaluationResult(evaluated, int(len(y)), at_threshold or at_default, calibration,
                              at_default=at_default if binary else None, at_threshold=at_threshold,
                              operating_point=operating_point, warnings=degenerate_warnings(y, contract))
    if plots_dir is not None:
        result.plots = write_plots(plots_dir, y, probs, contract, result.metrics, calibration)
    return result


def _evaluate_targets(y: np.ndarray, out: np.ndarray, contract: InputContract, evaluated: str, opt: EvalOptions,
                      plots_dir: Path | None, operating_point: dict[str, Any] | None) -> EvaluationResult:
    """Regression (``evaluation/regression.py``) or multi-label (``evaluation/multilabel.py``) evaluation."""
    names = contract.target_names
    y = np.asarray(y, dtype=np.float64).reshape(len(out), -1)
    kw = dict(n_resamples=opt.n_resamples, seed=opt.seed, alpha=opt.alpha)
    if contract.target_type == "regression":
        m, calib, engine = regression.regression_metrics(y, out, names, **kw), {}, regression
    else:
        m = multilabel.multilabel_metrics(y, out, names, contract.thresholds, at_least_one=contract.at_least_one_label,
                                          **kw)
        calib, engine = multilabel.calibration(y, out, contract.temperature), multilabel
    notes = []
    for j, name in enumerate(names):
        if np.isnan(y[:, j]).all():
            notes.append(f"no observed values of {name} in the evaluated data: its metrics are undefined (null)")
    for msg in notes:
        warnings.warn(msg, BiolensWarning, stacklevel=3)
    result = EvaluationResult(evaluated, int(len(y)), m, calib, operating_point=operating_point, warnings=notes)
    if plots_dir is not None:
        made = engine.write_plots(plots_dir, y, out, names, m)
        result.plots = [str(p.relative_to(plots_dir.parent)) for p in made]
    return result


def write_plots(folder: Path, y: np.ndarray, probs: np.ndarray, contract: InputContract, headline: dict,
                calib: dict) -> list[str]:
    """Confusion matrix, reliability, per-class bars and (binary) ROC and PR curves; paths relative to the parent."""
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
