"""Classification metrics from probabilities, computed with scikit-learn."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    confusion_matrix,
    matthews_corrcoef,
    precision_recall_fscore_support,
    roc_auc_score,
)


def decide(probs: np.ndarray, positive_index: int | None, threshold: float = 0.5) -> np.ndarray:
    """Predicted class per row: binary → positive iff P(positive) ≥ threshold; otherwise argmax."""
    if positive_index is None or probs.shape[1] != 2:
        return probs.argmax(axis=1)
    negative = 1 - positive_index
    return np.where(probs[:, positive_index] >= threshold, positive_index, negative)


def _r(x: float) -> float | None:
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
        out: dict[str, Any] = {
            "n": int(len(y_true)),
            "accuracy": _r(accuracy_score(y_true, y_pred)),
            "balanced_accuracy": _r(balanced_accuracy_score(y_true, y_pred)) if len(np.unique(y_true)) > 1 else None,
            "mcc": _r(matthews_corrcoef(y_true, y_pred)),
        }
        for avg in ("macro", "weighted"):
            ap, ar, af, _ = precision_recall_fscore_support(y_true, y_pred, labels=labels, average=avg, zero_division=0)
            out[f"{avg}_precision"], out[f"{avg}_recall"], out[f"{avg}_f1"] = _r(ap), _r(ar), _r(af)
        out["per_class"] = {
            name: {"precision": _r(p[i]), "recall": _r(r[i]), "f1": _r(f[i]), "support": int(s[i])}
            for i, name in enumerate(class_names)
        }
        cm = confusion_matrix(y_true, y_pred, labels=labels)
        out["confusion_matrix"] = {"labels": class_names, "matrix": cm.tolist()}
        present = np.unique(y_true)
        if pos is not None:
            out["roc_auc"] = _r(roc_auc_score(y_true == pos, probs[:, pos])) if len(present) == 2 else None
            out["pr_auc"] = _r(average_precision_score(y_true == pos, probs[:, pos])) if len(present) == 2 else None
            tp, fn = int(cm[pos, pos]), int(cm[pos, 1 - pos])
            fp, tn = int(cm[1 - pos, pos]), int(cm[1 - pos, 1 - pos])
            out.update({
                "positive_class": positive_class, "threshold": threshold,
                "tp": tp, "fp": fp, "tn": tn, "fn": fn,
                "sensitivity": _r(tp / (tp + fn)) if tp + fn else None,
                "specificity": _r(tn / (tn + fp)) if tn + fp else None,
                "precision": _r(tp / (tp + fp)) if tp + fp else None,
                "npv": _r(tn / (tn + fn)) if tn + fn else None,
                "f1": _r(2 * tp / (2 * tp + fp + fn)) if tp + fp + fn else None,
            })
        elif k > 2:
            out["roc_auc_ovr"] = (
                _r(roc_auc_score(y_true, probs, multi_class="ovr", average="macro", labels=labels))
                if len(present) == k else None
            )
    return out
