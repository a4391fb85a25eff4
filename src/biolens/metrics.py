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
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    jaccard_score,
    matthews_corrcoef,
    mean_absolute_error,
    mean_squared_error,
    precision_recall_fscore_support,
    precision_score,
    r2_score,
    recall_score,
    roc_auc_score,
)

from biolens.contract import decide, decide_labels
from biolens.metric_fns import (complete, count_ratio, defined, example_counts, f1, f1_counts, hamming,
                                 hamming_counts, macro_f1_from_counts, mcc_cells, micro, ovr_auc, ovr_ap, per_label,
                                 per_label_mean, ratio, set_overlap, two_classes)
from biolens.errors import ConfigError

Direction = Literal["max", "min"]
Cells = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]
SampleCounts = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (Y 0/1/NaN, decisions) -> (N, C) per-sample counts
FromCounts = Callable[[np.ndarray], np.ndarray]  # counts summed over samples (…, C) -> the metric (…)


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
    regression: Callable[[np.ndarray, np.ndarray], float] | None = None  # one target: (observed, predicted), no NaN
    multilabel: Callable[[np.ndarray, np.ndarray, np.ndarray], float] | None = None  # (Y 0/1/NaN, P, decisions)
    # multi-label decision metrics that are a function of counts summed over samples, so that the bootstrap sums
    # resampled rows instead of calling scikit-learn a thousand times (tests check both give the same value)
    sample_counts: SampleCounts | None = None
    from_counts: FromCounts | None = None

    def applies(self, binary: bool) -> bool:
        if binary:
            return self.cells is not None or self.scores is not None
        return self.labels is not None or self.multi_scores is not None

    def applies_to(self, target_type: str, binary: bool = False) -> bool:
        """Whether the metric is defined for a target type (``classification``: binary or multi-class)."""
        if target_type == "regression":
            return self.regression is not None
        if target_type == "multilabel":
            return self.multilabel is not None
        return self.applies(binary)


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


def metric_names(binary: bool | None = None, target_type: str = "classification") -> list[str]:
    """Registered names in display order; only those that apply to binary (or multi-class) tasks when given, or to
    ``target_type`` (regression, multilabel)."""
    if target_type != "classification":
        return [n for n, m in _REGISTRY.items() if m.applies_to(target_type)]
    return [n for n, m in _REGISTRY.items() if binary is None or m.applies(binary)]


for _m in (
    Metric("accuracy", "max", "fraction of correct decisions",
           cells=lambda tp, fp, tn, fn: ratio(tp + tn, tp + fp + tn + fn),
           labels=lambda y, p: float(np.mean(y == p))),
    Metric("balanced_accuracy", "max", "mean recall over classes",
           cells=lambda tp, fp, tn, fn: (ratio(tp, tp + fn) + ratio(tn, tn + fp)) / 2,
           labels=lambda y, p: balanced_accuracy_score(y, p) if len(np.unique(y)) > 1 else float("nan")),
    Metric("mcc", "max", "Matthews correlation coefficient", cells=mcc_cells, labels=matthews_corrcoef),
    Metric("roc_auc", "max", "area under the ROC curve (multi-class: one-vs-rest macro; multi-label: macro over "
           "labels)", needs_scores=True, scores=two_classes(roc_auc_score), multi_scores=ovr_auc,
           multilabel=lambda y, p, t: per_label_mean(roc_auc_score, y, p)),
    Metric("roc_auc_ovr", "max", "one-vs-rest macro ROC AUC (multi-class)", needs_scores=True, multi_scores=ovr_auc),
    Metric("pr_auc", "max", "average precision (multi-class: one-vs-rest macro; multi-label: macro over labels)",
           needs_scores=True, scores=two_classes(average_precision_score), multi_scores=ovr_ap,
           multilabel=lambda y, p, t: per_label_mean(average_precision_score, y, p)),
    Metric("sensitivity", "max", "recall of the positive class", cells=lambda tp, fp, tn, fn: ratio(tp, tp + fn)),
    Metric("specificity", "max", "recall of the negative class", cells=lambda tp, fp, tn, fn: ratio(tn, tn + fp)),
    Metric("precision", "max", "positive predictive value", cells=lambda tp, fp, tn, fn: ratio(tp, tp + fp)),
    Metric("npv", "max", "negative predictive value", cells=lambda tp, fp, tn, fn: ratio(tn, tn + fn)),
    Metric("f1", "max", "F1 of the positive class", cells=lambda tp, fp, tn, fn: ratio(2 * tp, 2 * tp + fp + fn)),
    Metric("macro_f1", "max", "F1 averaged over classes (multi-label: over labels, at their thresholds)",
           labels=lambda y, p: f1_score(y, p, labels=np.unique(np.concatenate([y, p])), average="macro",
                                        zero_division=0),
           multilabel=lambda y, p, d: per_label_mean(f1, y, d, needs_both=False),
           sample_counts=f1_counts, from_counts=macro_f1_from_counts),
):
    register_metric(_m)


# ---- regression and multi-label targets ------------------------------------------------------------------------
# Regression metrics take one target's observed and predicted values (NaN rows already removed); several targets are
# averaged (macro). Multi-label metrics take Y (N, T) of 0/1 with NaN for a missing label, P (N, T) probabilities and
# the decisions D (N, T) bool (contract.decide_labels: per-label thresholds, optionally never an empty set): per-label
# metrics use each label's observed rows, example-based ones the fully observed rows.


for _m in (
    Metric("pearson", "max", "Pearson correlation of predicted and observed values (mean over targets)",
           regression=defined(lambda y, p: pearsonr(y, p).statistic)),
    Metric("spearman", "max", "Spearman rank correlation of predicted and observed values (mean over targets)",
           regression=defined(lambda y, p: spearmanr(y, p).statistic)),
    Metric("r2", "max", "coefficient of determination R² (mean over targets)",
           regression=lambda y, p: float(r2_score(y, p)) if len(y) > 1 and np.ptp(y) > 0 else float("nan")),
    Metric("mae", "min", "mean absolute error, in the target's units (mean over targets)",
           regression=lambda y, p: float(mean_absolute_error(y, p))),
    Metric("rmse", "min", "root mean squared error, in the target's units (mean over targets)",
           regression=lambda y, p: float(np.sqrt(mean_squared_error(y, p)))),
    Metric("micro_roc_auc", "max", "multi-label: ROC AUC over every (sample, label) pair",
           needs_scores=True, multilabel=micro(roc_auc_score)),
    Metric("micro_pr_auc", "max", "multi-label: average precision over every (sample, label) pair",
           needs_scores=True, multilabel=micro(average_precision_score)),
    Metric("hamming_loss", "min", "multi-label: fraction of wrong label decisions (MFTP's absolute false)",
           multilabel=hamming, sample_counts=hamming_counts, from_counts=count_ratio),
    Metric("subset_accuracy", "max", "multi-label: fraction of samples whose whole label set is right (MFTP's "
           "absolute true)", multilabel=complete(accuracy_score),
           sample_counts=example_counts(set_overlap("exact")), from_counts=count_ratio),
    Metric("aiming", "max", "multi-label: example-based precision |Y ∩ Ŷ| / |Ŷ| averaged over samples",
           multilabel=complete(precision_score, average="samples", zero_division=0),
           sample_counts=example_counts(set_overlap("aiming")), from_counts=count_ratio),
    Metric("coverage", "max", "multi-label: example-based recall |Y ∩ Ŷ| / |Y| averaged over samples",
           multilabel=complete(recall_score, average="samples", zero_division=0),
           sample_counts=example_counts(set_overlap("coverage")), from_counts=count_ratio),
    Metric("example_accuracy", "max", "multi-label: example-based Jaccard |Y ∩ Ŷ| / |Y ∪ Ŷ| averaged over samples",
           multilabel=complete(jaccard_score, average="samples", zero_division=0),
           sample_counts=example_counts(set_overlap("jaccard")), from_counts=count_ratio),
):
    register_metric(_m)


def regression_values(name: str, y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """A registered regression metric per target column of ``y`` ``(N, T)`` (NaN = missing) and ``pred``."""
    fn = get_metric(name).regression
    if fn is None:
        raise ConfigError(f"metric {name!r} does not apply to regression targets; use one of: "
                          f"{', '.join(metric_names(target_type='regression'))}")
    y, pred = np.asarray(y, dtype=np.float64).reshape(len(y), -1), np.asarray(pred, dtype=np.float64).reshape(len(y), -1)
    out = np.full(y.shape[1], np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for j in range(y.shape[1]):
            seen = ~np.isnan(y[:, j]) & np.isfinite(pred[:, j])
            if seen.sum() >= 2:
                out[j] = fn(y[seen, j], pred[seen, j])
    return out


def compute_target(name: str, target_type: str, y: np.ndarray, out: np.ndarray,
                   thresholds: np.ndarray | None = None, at_least_one: bool = False) -> float:
    """One registered metric of regression values or multi-label probabilities ``out`` ``(N, T)`` against ``y``
    ``(N, T)`` (NaN = missing); several regression targets are averaged. Multi-label decisions are
    ``contract.decide_labels(out, thresholds, at_least_one)`` (thresholds default to 0.5)."""
    if target_type == "regression":
        values = regression_values(name, y, out)
        return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")
    m = get_metric(name)
    if m.multilabel is None:
        raise ConfigError(f"metric {name!r} does not apply to multi-label targets; use one of: "
                          f"{', '.join(metric_names(target_type='multilabel'))}")
    y, out = np.asarray(y, dtype=np.float64), np.asarray(out, dtype=np.float64)
    t = np.full(y.shape[1], 0.5) if thresholds is None else np.asarray(thresholds, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(m.multilabel(y, out, decide_labels(out, t, at_least_one)))


def target_metrics(target_type: str, y: np.ndarray, out: np.ndarray, names: list[str],
                   thresholds: np.ndarray | None = None, at_least_one: bool = False) -> dict[str, Any]:
    """The metrics dict of a regression or multi-label split: headline values (macro over targets or labels), then
    ``per_target`` (regression) or ``per_label`` (multi-label) tables; multi-label decisions as in
    ``compute_target``."""
    y, out = np.asarray(y, dtype=np.float64), np.asarray(out, dtype=np.float64)
    res: dict[str, Any] = {"n": int(len(y)), "target_type": target_type}
    if target_type == "regression":
        per = {n: {"n": int((~np.isnan(y[:, j])).sum())} for j, n in enumerate(names)}
        for name in metric_names(target_type="regression"):
            values = regression_values(name, y, out)
            res[name] = _r(float(np.nanmean(values)) if np.isfinite(values).any() else None)
            for j, n in enumerate(names):
                per[n][name] = _r(values[j])
        res["per_target"] = per
        return res
    t = np.full(y.shape[1], 0.5) if thresholds is None else np.asarray(thresholds, dtype=np.float64)
    for name in metric_names(target_type="multilabel"):
        res[name] = _r(compute_target(name, target_type, y, out, t, at_least_one))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        aucs = per_label(roc_auc_score, y, out)
        aps = per_label(average_precision_score, y, out)
        decided = decide_labels(out, t, at_least_one)
        per = {}
        for j, n in enumerate(names):
            seen = ~np.isnan(y[:, j])
            yj, dj = y[seen, j] > 0.5, decided[seen, j]
            p, r, f, _ = precision_recall_fscore_support(yj, dj, average="binary", zero_division=0) if seen.any() \
                else (np.nan, np.nan, np.nan, None)
            per[n] = {"roc_auc": _r(aucs[j]), "pr_auc": _r(aps[j]), "precision": _r(p), "recall": _r(r), "f1": _r(f),
                      "positives": int(yj.sum()), "n": int(seen.sum()), "predicted": int(dj.sum()),
                      "threshold": _r(t[j])}
    res["per_label"] = per
    seen = ~np.isnan(y)
    res["label_cardinality"] = _r(float(np.nansum(y > 0.5) / max(len(y), 1)))
    res["predicted_cardinality"] = _r(float((decided & seen).sum() / max(len(y), 1)))
    return res


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


def check_monitor(monitor: str, binary: bool, target_type: str = "classification") -> str | None:
    """The registered metric a ``train.monitor`` needs computed on val (None for the trainer's own loss/acc).

    Raises ConfigError for a name that is neither logged nor registered, a train_ metric other than loss/acc, or a
    metric that does not apply to the task (e.g. sensitivity on a multi-class task, spearman on a classifier)."""
    split, _, name = monitor.partition("_")
    logged = ("loss",) if target_type == "regression" else ("loss", "acc")  # regression logs no accuracy
    if split not in ("train", "val") or not name:
        raise ConfigError(f"train.monitor {monitor!r}: expected val_NAME or train_NAME, e.g. val_loss or val_roc_auc")
    if name in logged:
        return None
    if split == "train":
        raise ConfigError(f"train.monitor {monitor!r}: only {' and '.join('train_' + n for n in logged)} are logged "
                          f"for the training split; monitor val_{name} instead")
    names = metric_names(binary, target_type)
    if name not in _REGISTRY:
        known = [f"val_{n}" for n in (*logged, *names)]
        raise ConfigError(f"train.monitor {monitor!r} is not a metric; use one of: {', '.join(known)}")
    if not _REGISTRY[name].applies_to(target_type, binary):
        kind = ("binary" if binary else "multi-class") if target_type == "classification" else target_type
        raise ConfigError(f"train.monitor {monitor!r} does not apply to a {kind} task; use one of: "
                          f"{', '.join('val_' + n for n in (*logged, *names))}")
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
            out[f"{avg}_precision"], out[f"{avg}_recall"], out[f"{avg}f1"] = _r(ap), _r(ar), _r(af)
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
            out["roc_auc_ovr"] = _r(ovr_auc(y_true, probs))
    return out


def evaluation_metrics(y: np.ndarray, out: np.ndarray, contract: Any) -> dict[str, Any]:
    """The metrics dict of one split for a run's contract: ``classification_metrics`` at its threshold, or
    ``target_metrics`` for regression values and multi-label probabilities (at the labels' thresholds)."""
    if contract.target_type == "classification":
        return classification_metrics(y, out, contract.class_names, contract.positive_class, contract.threshold)
    if contract.target_type == "regression":
        return target_metrics("regression", y, out, contract.class_names)
    return target_metrics("multilabel", y, out, contract.class_names, contract.thresholds, contract.at_least_one_label)


HEADLINE = {"classification": "accuracy", "regression": "spearman", "multilabel": "roc_auc"}


def summary_line(m: dict[str, Any], target_type: str = "classification") -> str:
    """``accuracy 0.9123`` (classification), ``spearman 0.71, pearson 0.70`` (regression), ``roc_auc 0.88,
    subset_accuracy 0.61`` (multi-label): the headline of a split for log lines."""
    names = {"classification": ("accuracy",), "regression": ("spearman", "pearson", "r2"),
             "multilabel": ("roc_auc", "subset_accuracy", "hamming_loss")}[target_type]
    return ", ".join(f"{n} {m[n]:.4f}" if isinstance(m.get(n), (int, float)) else f"{n} undefined" for n in names)


def headline(m: dict[str, Any], binary: bool | None = None) -> list[str]:
    """The registered metrics present in a metrics dict, in display order."""
    return [name for name in metric_names(binary) if name in m]
