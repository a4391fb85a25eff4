"""Operating points: choose the decision threshold on validation data (binary tasks)."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np
from sklearn.metrics import precision_recall_curve, roc_curve

from biolens.errors import ConfigError, DataError

log = logging.getLogger(__name__)

METHODS = ("youden", "f1", "sensitivity", "specificity")


@dataclass
class OperatingPoint:
    method: str
    target: float | None
    threshold: float
    sensitivity: float
    specificity: float
    reached: bool  # False when no threshold reaches the target (the closest one is returned)

    def to_dict(self) -> dict:
        return asdict(self)


def _clip(t: float) -> float:
    return float(min(max(t, 0.0), 1.0))  # roc_curve's first threshold is +inf


def choose_threshold(y_true: np.ndarray, p_pos: np.ndarray, method: str = "youden",
                     target: float | None = None) -> OperatingPoint:
    """Threshold on P(positive) by ``method``.

    - ``youden``: maximise sensitivity + specificity - 1;
    - ``f1``: maximise F1;
    - ``sensitivity`` / ``specificity``: the threshold that reaches ``target`` for that metric with the best value of
      the other one.

    ``y_true`` is 1 for the positive class, 0 otherwise; predictions are positive iff ``p >= threshold``.
    """
    if method not in METHODS:
        raise ConfigError(f"unknown operating-point method {method!r}; expected one of: {', '.join(METHODS)}")
    y_true = np.asarray(y_true).astype(bool)
    if y_true.all() or not y_true.any():
        raise DataError("choosing a threshold needs both classes in the validation split; it has only one")
    if method in ("sensitivity", "specificity") and (target is None or not 0 < target <= 1):
        raise ConfigError(f"--target-{method} must be in (0, 1]; got {target}")
    fpr, tpr, thr = roc_curve(y_true, p_pos)
    spec = 1 - fpr
    reached = True
    if method == "youden":
        i = int(np.argmax(tpr - fpr))
    elif method == "sensitivity":
        ok = np.flatnonzero(tpr >= target)
        reached = ok.size > 0
        i = int(ok[np.argmax(spec[ok])]) if reached else int(np.argmax(tpr))
    elif method == "specificity":
        ok = np.flatnonzero(spec >= target)
        reached = ok.size > 0
        i = int(ok[np.argmax(tpr[ok])]) if reached else int(np.argmax(spec))
    else:
        prec, rec, pr_thr = precision_recall_curve(y_true, p_pos)
        f1 = np.divide(2 * prec * rec, prec + rec, out=np.zeros_like(prec), where=prec + rec > 0)[:-1]
        t = _clip(pr_thr[int(np.argmax(f1))])
        pred = p_pos >= t
        sens = float((pred & y_true).sum() / y_true.sum())
        sp = float((~pred & ~y_true).sum() / (~y_true).sum())
        return OperatingPoint(method, None, t, sens, sp, True)
    if not reached:
        log.warning("no threshold reaches %s >= %s on validation; using the closest (%.3f)", method, target,
                    tpr[i] if method == "sensitivity" else spec[i])
    return OperatingPoint(method, target, _clip(thr[i]), float(tpr[i]), float(spec[i]), reached)
