"""Calibration: expected calibration error, Brier score, reliability bins and temperature scaling."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.metrics import brier_score_loss, log_loss


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


def fit_temperature(logits: np.ndarray, y_true: np.ndarray, max_iter: int = 200) -> float:
    """Temperature T > 0 minimising the NLL of ``softmax(logits / T)`` on held-out data (Guo et al. 2017).

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
    return float(log_t.exp().item())
