"""Every metric biolens reports, defined once: a small registry used by evaluation, the bootstrap, reports,
``compare``, ``info`` and training's ``monitor`` (checkpointing, early stopping and the plateau schedule).

A :class:`Metric` names its direction (``max`` or ``min``), whether it needs scores (probabilities) or only
decisions, and how it is computed for binary and multi-class tasks:

- ``cells(tp, fp, tn, fn)``: binary metrics that are a function of the confusion matrix, vectorized so that the
  bootstrap can evaluate them on thousands of resampled matrices at once;
- ``labels(y_true, y_pred)``: multi-class metrics from decisions (scikit-learn);
- ``scores(y_pos, p_pos)`` / ``multi_scores(y, probs)``: ranking metrics (scikit-learn's AUCs).

``classification_metrics`` assembles the full metrics dict of a split (headline values, per-class table, confusion
matrix) from the same definitions.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import (
    average_precision_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    matthews_corrcoef,
    precision_recall_fscore_support,
    roc_auc_score,
)

from biolens.contract import decide
from biolens.errors import ConfigError

Direction = Literal["max", "min"]
Cells = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Metric:
    """One registered metric; ``None`` for a kind of task means the metric does not apply to it."""

    name: str
    direction: Direction
    description: str
    needs_scores: bool = False
    cells: Cells | None = None  # binary, from the confusion matrix (vectorized)
    labels: Callable[[np.ndarray, np.ndarray], float] | None = None  # multi-class, from decisions
    scores: Callable[[np.ndarray, np.ndarray], float] | None = None  # binary, from P(positive)
    multi_scores: Callable[[np.ndarray, np.ndarray], float] | None = None  # multi-class, from (N, C) probabilities

    def applies(self, binary: bool) -> bool:
        if binary:
            return self.cells is not None or self.scores is not None
        return self.labels is not None or self.multi_scores is not None


_REGISTRY: dict[str, Metric] = {}


def register_metric(metric: Metric) -> Metric:
    """Add a metric; a name registered twice raises."""
    if metric.name in _REGISTRY:
        raise ValueError(f"metric {metric.name!r} is already registered")
    _REGISTRY[metric.name] = metric
    return metric


def get_metric(name: str) -> Metric:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown metric {name!r}; known metrics: {', '.join(_REGISTRY)}") from None


def metric_names(binary: bool | None = None) -> list[str]:
    """Registered names in display order; only those that apply to binary (or multi-class) tasks when given."""
    return [n for n, m in _REGISTRY.items() if binary is None or m.applies(binary)]


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(a, dtype=float) / np.asarray(b, dtype=float)


def _mcc_cells(tp, fp, tn, fn):  # noqa: ANN001, ANN202
    return _ratio(tp * tn - fp * fn, np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)))


def _ovr_auc(y: np.ndarray, probs: np.ndarray) -> float:
    k = probs.shape[1]
    if len(np.unique(y)) != k:
        return float("nan")
    return roc_auc_score(y, probs, multi_class="ovr", average="macro", labels=list(range(k)))


def _ovr_ap(y: np.ndarray, probs: np.ndarray) -> float:
    k = probs.shape[1]
    if len(np.unique(y)) != k:
        return float("nan")
    return average_precision_score(np.eye(k)[y], probs, average="macro")


def _two_classes(fn: Callable[[np.ndarray, np.ndarray], float]) -> Callable[[np.ndarray, np.ndarray], float]:
    def wrapped(y_pos: np.ndarray, p_pos: np.ndarray) -> float:
        return fn(y_pos, p_pos) if 0 < int(np.sum(y_pos)) < len(y_pos) else float("nan")
    return wrapped


for _m in (
    Metric("accuracy", "max", "fraction of correct decisions",
           cells=lambda tp, fp, tn, fn: _ratio(tp + tn, tp + fp + tn + fn),
           labels=lambda y, p: float(np.mean(y == p))),
    Metric("balanced_accuracy", "max", "mean recall over classes",
           cells=lambda tp, fp, tn, fn: (_ratio(tp, tp + fn) + _ratio(tn, tn + fp)) / 2,
           labels=lambda y, p: balanced_accuracy_score(y, p) if len(np.unique(y)) > 1 else float("nan")),
    Metric("mcc", "max", "Matthews correlation coefficient", cells=_mcc_cells, labels=matthews_corrcoef),
    Metric("roc_auc", "max", "area under the ROC curve (multi-class: one-vs-rest macro)", needs_scores=True,
           scores=_two_classes(roc_auc_score), multi_scores=_ovr_auc),
    Metric("roc_auc_ovr", "max", "one-vs-rest macro ROC AUC (multi-class)", needs_scores=True, multi_scores=_ovr_auc),
    Metric("pr_auc", "max", "average precision (multi-class: one-vs-rest macro)", needs_scores=True,
           scores=_two_classes(average_precision_score), multi_scores=_ovr_ap),
    Metric("sensitivity", "max", "recall of the positive class", cells=lambda tp, fp, tn, fn: _ratio(tp, tp + fn)),
    Metric("specificity", "max", "recall of the negative class", cells=lambda tp, fp, tn, fn: _ratio(tn, tn + fp)),
    Metric("precision", "max", "positive predictive value", cells=lambda tp, fp, tn, fn: _ratio(tp, tp + fp)),
    Metric("npv", "max", "negative predictive value", cells=lambda tp, fp, tn, fn: _ratio(tn, tn + fn)),
    Metric("f1", "max", "F1 of the positive class", cells=lambda tp, fp, tn, fn: _ratio(2 * tp, 2 * tp + fp + fn)),
    Metric("macro_f1", "max", "F1 averaged over classes",
           labels=lambda y, p: f1_score(y, p, labels=np.unique(np.concatenate([y, p])), average="macro",
                                        zero_division=0)),
):
    register_metric(_m)

# Logged by the trainer itself every epoch (train_ and val_ prefixed); not computed from predictions.
TRAINER_LOGGED: dict[str, Direction] = {"loss": "min", "acc": "max"}


def monitor_direction(monitor: str, mode: str = "auto") -> Direction:
    """``min`` or ``max`` for a monitored value such as ``val_loss`` or ``val_roc_auc`` (``mode`` overrides)."""
    if mode in ("min", "max"):
        return mode  # type: ignore[return-value]
    name = monitor.split("_", 1)[1] if "_" in monitor else monitor
    if name in TRAINER_LOGGED:
        return TRAINER_LOGGED[name]
    if name in _REGISTRY:
        return _REGISTRY[name].direction
    return "min" if name.endswith("loss") else "max"


def check_monitor(monitor: str, binary: bool) -> str | None:
    """The registered metric a ``train.monitor`` needs computed on val (None for the trainer's own loss/acc).

    Raises ConfigError for a name that is neither logged nor registered, a train_ metric other than loss/acc, or a
    metric that does not apply to the task (e.g. sensitivity on a multi-class task)."""
    split, _, name = monitor.partition("_")
    if split not in ("train", "val") or not name:
        raise ConfigError(f"train.monitor {monitor!r}: expected val_NAME or train_NAME, e.g. val_loss or val_roc_auc")
    if name in TRAINER_LOGGED:
        return None
    if split == "train":
        raise ConfigError(f"train.monitor {monitor!r}: only train_loss and train_acc are logged for the training "
                          f"split; monitor val_{name} instead")
    if name not in _REGISTRY:
        known = [f"val_{n}" for n in ("loss", "acc", *metric_names(binary))]
        raise ConfigError(f"train.monitor {monitor!r} is not a metric; use one of: {', '.join(known)}")
    if not _REGISTRY[name].applies(binary):
        kind = "binary" if binary else "multi-class"
        raise ConfigError(f"train.monitor {monitor!r} does not apply to a {kind} task; use one of: "
                          f"{', '.join('val_' + n for n in metric_names(binary))}")
    return name


def compute(name: str, y: np.ndarray, probs: np.ndarray, positive_index: int | None = None,
            threshold: float = 0.5) -> float:
    """One registered metric of ``(N, C)`` probabilities against integer labels (NaN where undefined)."""
    m = get_metric(name)
    y = np.asarray(y)
    binary = positive_index is not None and probs.shape[1] == 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if binary:
            y_pos, p_pos = y == positive_index, probs[:, positive_index]
            if m.scores is not None:
                return float(m.scores(y_pos, p_pos))
            if m.cells is not None:
                pred = p_pos >= threshold
                return float(m.cells(*(np.sum(c) for c in _cells(pred, y_pos))))
        else:
            if m.multi_scores is not None:
                return float(m.multi_scores(y, probs))
            if m.labels is not None:
                return float(m.labels(y, decide(probs, None)))
    raise ConfigError(f"metric {name!r} does not apply to a {'binary' if binary else 'multi-class'} task")


def _cells(pred: np.ndarray, y_pos: np.ndarray) -> tuple[np.ndarray, ...]:
    return pred & y_pos, pred & ~y_pos, ~pred & ~y_pos, ~pred & y_pos


def _r(x: float | None) -> float | None:
    return None if x is None or not np.isfinite(x) else round(float(x), 6)


def classification_metrics(
    y_true: np.ndarray,
    probs: np.ndarray,
    class_names: list[str],
    positive_class: str | None = None,
    threshold: float = 0.5,
) -> dict[str, Any]:
    """Accuracy, balanced accuracy, MCC, per-class precision/recall/F1, macro and weighted averages, confusion
    matrix and ROC AUC (one-vs-rest when multi-class). Binary tasks add sensitivity, specificity, PPV, NPV, F1,
    PR AUC and named TP/FP/TN/FN for ``positive_class`` at ``threshold``."""
    y_true = np.asarray(y_true)
    k = len(class_names)
    pos = class_names.index(positive_class) if positive_class is not None and k == 2 else None
    y_pred = decide(probs, pos, threshold)
    labels = list(range(k))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
        out: dict[str, Any] = {"n": int(len(y_true))}
        for name in ("accuracy", "balanced_accuracy", "mcc"):
            out[name] = _r(_REGISTRY[name].labels(y_true, y_pred))
        for avg in ("macro", "weighted"):
            ap, ar, af, _ = precision_recall_fscore_support(y_true, y_pred, labels=labels, average=avg, zero_division=0)
            out[f"{avg}_precision"], out[f"{avg}_recall"], out[f"{avg}_f1"] = _r(ap), _r(ar), _r(af)
        out["per_class"] = {
            name: {"precision": _r(p[i]), "recall": _r(r[i]), "f1": _r(f[i]), "support": int(s[i])}
            for i, name in enumerate(class_names)
        }
        cm = confusion_matrix(y_true, y_pred, labels=labels)
        out["confusion_matrix"] = {"labels": class_names, "matrix": cm.tolist()}
        if pos is not None:
            y_pos, p_pos = y_true == pos, probs[:, pos]
            for name in ("roc_auc", "pr_auc"):
                out[name] = _r(_REGISTRY[name].scores(y_pos, p_pos))
            tp, fn = int(cm[pos, pos]), int(cm[pos, 1 - pos])
            fp, tn = int(cm[1 - pos, pos]), int(cm[1 - pos, 1 - pos])
            out.update({"positive_class": positive_class, "threshold": threshold, "tp": tp, "fp": fp, "tn": tn, "fn": fn})
            for name in ("sensitivity", "specificity", "precision", "npv", "f1"):
                out[name] = _r(float(_REGISTRY[name].cells(tp, fp, tn, fn)))
        elif k > 2:
            out["roc_auc_ovr"] = _r(_ovr_auc(y_true, probs))
    return out


def headline(m: dict[str, Any], binary: bool | None = None) -> list[str]:
    """The registered metrics present in a metrics dict, in display order."""
    return [name for name in metric_names(binary) if name in m]
