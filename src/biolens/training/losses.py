"""Loss functions (guide 6.1, 6.3): cross-entropy, class weights from train counts, BCE, focal, label smoothing."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from biolens.errors import ConfigError

log = logging.getLogger(__name__)

LOSSES = ("ce", "focal", "bce")
CLASS_WEIGHTS = ("none", "inverse", "effective")


def class_weights(counts: Sequence[int], method: str = "inverse", beta: float = 0.999) -> torch.Tensor:
    """Per-class weights from train counts, normalised to mean 1.

    ``inverse``: ``N / (C · n_c)``. ``effective`` (Cui et al. 2019): ``(1 − β) / (1 − β^n_c)``, the inverse of
    the effective number of samples, which grows ever more slowly with ``n_c``.
    """
    n = np.asarray(counts, dtype=np.float64)
    if method not in CLASS_WEIGHTS:
        raise ConfigError(f"unknown train.class_weights {method!r}; expected one of: {', '.join(CLASS_WEIGHTS)}")
    if (n <= 0).any():
        raise ConfigError("train.class_weights needs every class in the train split; a class has no train samples")
    if method == "none":
        w = np.ones_like(n)
    elif method == "inverse":
        w = n.sum() / (len(n) * n)
    else:
        w = (1.0 - beta) / (1.0 - np.power(beta, n))
    return torch.tensor(w / w.mean(), dtype=torch.float32)


class FocalLoss(nn.Module):
    """``α_y · (1 − p_t)^γ · CE``, mean over the batch (Lin et al. 2017; guide 6.1).

    Args:
        gamma: focusing strength; 0 gives (weighted) cross-entropy.
        alpha: a scalar, or one weight per class (e.g. from ``class_weights``), or None for 1.
    """

    def __init__(self, gamma: float = 2.0, alpha: float | Sequence[float] | torch.Tensor | None = None):
        super().__init__()
        self.gamma = gamma
        a = torch.as_tensor(1.0 if alpha is None else alpha, dtype=torch.float32)
        self.register_buffer("alpha", a)

    def forward(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        ce = F.cross_entropy(logits.float(), y, reduction="none")  # (B,)
        pt = torch.exp(-ce)
        alpha = self.alpha[y] if self.alpha.ndim else self.alpha
        return (alpha * (1 - pt) ** self.gamma * ce).mean()


class BinaryLogitLoss(nn.Module):
    """BCE-with-logits for binary tasks. Logits ``(B, 1)`` or ``(B,)`` are the positive-class logit; two-logit
    models ``(B, 2)`` use the margin ``z1 − z0`` (the same number softmax turns into p(class 1))."""

    def __init__(self, pos_weight: float | None = None, label_smoothing: float = 0.0):
        super().__init__()
        self.label_smoothing = label_smoothing
        self.register_buffer("pos_weight", None if pos_weight is None else torch.tensor([float(pos_weight)]))

    def forward(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        z = logits[:, 1] - logits[:, 0] if logits.ndim == 2 and logits.shape[1] == 2 else logits.reshape(-1)
        target = y.float() * (1 - self.label_smoothing) + 0.5 * self.label_smoothing
        return F.binary_cross_entropy_with_logits(z.float(), target, pos_weight=self.pos_weight)


def make_loss(name: str, counts: Sequence[int], *, label_smoothing: float = 0.0, weights: str = "none",
              beta: float = 0.999, focal_gamma: float = 2.0, focal_alpha: float | list[float] | None = None
              ) -> nn.Module:
    """The loss for ``train.loss``; ``counts`` are the train split's per-class counts."""
    if name not in LOSSES:
        raise ConfigError(f"unknown train.loss {name!r}; expected one of: {', '.join(LOSSES)}")
    w = class_weights(counts, weights, beta) if weights != "none" else None
    if name == "ce":
        return nn.CrossEntropyLoss(weight=w, label_smoothing=label_smoothing)
    if name == "bce":
        if len(counts) != 2:
            raise ConfigError(f"train.loss 'bce' is for binary tasks; the data have {len(counts)} classes: use ce")
        return BinaryLogitLoss(pos_weight=None if w is None else float(w[1] / w[0]), label_smoothing=label_smoothing)
    if isinstance(focal_alpha, list) and len(focal_alpha) != len(counts):
        raise ConfigError(f"train.focal_alpha has {len(focal_alpha)} values for {len(counts)} classes; give one per class")
    if label_smoothing:
        log.info("focal loss: label smoothing is not applied (it would fight the focusing term)")
    return FocalLoss(focal_gamma, focal_alpha if focal_alpha is not None else w)
