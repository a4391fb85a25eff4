"""Calibration: expected calibration error, Brier score, reliability bins and temperature scaling."""

from __future__ import annotations

import warnings

import numpy as np
import torch
from sklearn.metrics import brier_score_loss, log_loss

from biolens.errors import BiolensWarning, DataError


def reliability(y_true: np.ndarray, probs: np.ndarray, n_bins: int = 15) -> dict[str, list[float]]:
    """Top-label reliability bins: mean confidence, accuracy and count per equal-width confidence bin."""
    conf = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == np.asarray(y_true)).astype(float)
    edges = np.linspace(0, 1, n_bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, n_bins - 1)
    count = np.bincount(which, minlength=n_bins).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(which, weights=conf, minlength=n_bins) / count
        acc = np.bincount(which, weights=correct, minlength=n_bins) / count
    return {"edges": edges.tolist(), "confidence": mean_conf.tolist(), "accuracy": acc.tolist(),
            "count": count.astype(int).tolist()}


def expected_calibration_error(y_true: np.ndarray, probs: np.ndarray, n_bins: int = 15) -> float:
    """ECE: count-weighted mean |accuracy - confidence| over top-label confidence bins."""
    r = reliability(y_true, probs, n_bins)
    count = np.array(r["count"], dtype=float)
    gap = np.abs(np.nan_to_num(np.array(r["accuracy"])) - np.nan_to_num(np.array(r["confidence"])))
    return float((gap * count).sum() / max(count.sum(), 1))


def brier(y_true: np.ndarray, probs: np.ndarray, positive_index: int | None = None) -> float:
    """Binary: sklearn's Brier score of P(positive). Multi-class: mean squared error against one-hot labels."""
    y_true = np.asarray(y_true)
    if positive_index is not None and probs.shape[1] == 2:
        return float(brier_score_loss(y_true == positive_index, probs[:, positive_index]))
    onehot = np.eye(probs.shape[1])[y_true]
    return float(((probs - onehot) ** 2).sum(axis=1).mean())


def nll(y_true: np.ndarray, probs: np.ndarray) -> float:
    return float(log_loss(y_true, probs, labels=list(range(probs.shape[1]))))


TEMPERATURE_BOUNDS = (0.05, 20.0)  # outside it a "calibrated" model is either a coin or a hard argmax
MIN_FIT_SAMPLES = 30  # val samples below which a temperature or threshold fitted on them is refused
MIN_FIT_PER_CLASS = 10


def fit_temperature(logits: np.ndarray, y_true: np.ndarray, max_iter: int = 200,
                    bounds: tuple[float, float] = TEMPERATURE_BOUNDS) -> float:
    """Temperature T minimising the NLL of ``softmax(logits / T)`` on held-out data (Guo et al. 2017), within
    ``bounds`` (a fit that runs into a bound is clipped to it, with a warning: the logits carry almost no
    information — a weak model or too few samples — and an unbounded fit would flatten every prediction to 1/C).

    Dividing every logit by one positive number never changes the argmax, only the confidence.
    """
    z = torch.as_tensor(logits, dtype=torch.float64)
    y = torch.as_tensor(np.asarray(y_true), dtype=torch.long)
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)  # T = exp(log_t) stays positive
    opt = torch.optim.LBFGS([log_t], lr=0.1, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(z / log_t.exp(), y)
        loss.backward()
        return loss

    opt.step(closure)
    t = float(log_t.exp().item())
    lo, hi = bounds
    if not np.isfinite(t) or t < lo or t > hi:
        clipped = hi if not np.isfinite(t) or t > hi else lo
        warnings.warn(f"the fitted temperature {t:.4g} is outside {lo:g}–{hi:g}; using {clipped:g}. The val logits "
                      "carry almost no information (a weak model, or too few val samples): improve the model or "
                      "give a larger val split rather than trusting the calibration", BiolensWarning, stacklevel=2)
        t = clipped
    return t


def check_fit_sample(y_val: np.ndarray, num_classes: int, what: str, positive: int | None = None,
                     target: float | None = None, method: str | None = None) -> list[str]:
    """Refuse a val split too small to fit ``what`` (a temperature, a threshold) on, with the number needed; for a
    target sensitivity or specificity also warn when the split has too few positives (negatives) to resolve it.
    Returns the warnings."""
    y = np.asarray(y_val).astype(np.int64)
    counts = np.bincount(y, minlength=num_classes)
    fix = "set data.val_frac higher, give data.val=FILE, or retrain with more data"
    if len(y) < MIN_FIT_SAMPLES or counts.min() < MIN_FIT_PER_CLASS:
        raise DataError(f"the val split has {len(y)} samples ({', '.join(str(int(c)) for c in counts)} per class); "
                        f"fitting {what} needs at least {MIN_FIT_SAMPLES} with {MIN_FIT_PER_CLASS} of each class: {fix}")
    notes = []
    if method in ("sensitivity", "specificity") and target is not None and positive is not None and target < 1:
        side = int(counts[positive]) if method == "sensitivity" else int(len(y) - counts[positive])
        who = "positives" if method == "sensitivity" else "negatives"
        need = int(np.ceil(3 / (1 - target)))  # enough that the target still allows 3 errors
        if side < need:
            notes.append(f"the val split has {side} {who}: a {method} of {target:g} is resolved in steps of "
                         f"{1 / side:.3f}; {need} or more {who} are needed for a stable threshold ({fix})")
    return notes
