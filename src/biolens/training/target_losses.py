"""Losses of regression and multi-label targets, with missing values (NaN) masked out.

Targets arrive as ``(B, T)`` float tensors in the data's own units; NaN marks a value that was not measured. Each
loss is the mean over the *observed* entries of the batch, so a missing value neither counts as zero nor drops its
row's other targets (multi-task data).

- :class:`MaskedRegressionLoss`: MSE, Huber or Poisson NLL. The model predicts standardized targets, ``(y − mean) /
  std`` with mean and std fitted on the train split (``data/targets.fit_standardization``, the same numbers the
  contract stores, so predictions come back in the original units); Poisson predicts ``log(y / scale)``.
- :class:`MaskedBCELoss`: BCE with logits per label, with per-label positive weights (``train.class_weights``).
- :class:`LabelSetLoss`: for a model with a label-set head, that BCE plus the per-label head's own BCE and the set
  head's cross-entropy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from biolens.models.label_sets import LabelSetHead

REGRESSION_LOSSES = ("mse", "huber", "poisson")


def _observed(logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(predictions, targets with NaN replaced by 0, mask of observed entries), all ``(B, T)`` float32."""
    z = logits.float().reshape(len(logits), -1)
    y = y.float().reshape(z.shape)
    seen = ~torch.isnan(y)
    return z, torch.where(seen, y, torch.zeros_like(y)), seen


def _masked_mean(loss: torch.Tensor, seen: torch.Tensor) -> torch.Tensor:
    return (loss * seen).sum() / seen.sum().clamp(min=1)


class MaskedRegressionLoss(nn.Module):
    """MSE, Huber (``delta`` in standard deviations) or Poisson NLL on standardized targets, NaN entries masked.

    Args:
        kind: ``mse``, ``huber`` or ``poisson``.
        mean, std: per-target standardization (Poisson: mean 0 and std = the train mean, a pure scale).
        delta: Huber's threshold between the quadratic and the linear part.
    """

    correct = None  # regression logs no accuracy

    def __init__(self, kind: str, mean: Sequence[float], std: Sequence[float], delta: float = 1.0):
        super().__init__()
        if kind not in REGRESSION_LOSSES:
            raise ValueError(f"unknown regression loss {kind!r}; expected one of: {', '.join(REGRESSION_LOSSES)}")
        self.kind, self.delta = kind, float(delta)
        self.register_buffer("mean", torch.tensor(np.asarray(mean, dtype=np.float32)))
        self.register_buffer("std", torch.tensor(np.asarray(std, dtype=np.float32)))

    def forward(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        z, y, seen = _observed(logits, y)
        target = (y - self.mean) / self.std if self.kind != "poisson" else y / self.std
        if self.kind == "mse":
            loss = (z - target) ** 2
        elif self.kind == "huber":
            loss = F.huber_loss(z, target, reduction="none", delta=self.delta)
        else:
            loss = F.poisson_nll_loss(z, target, log_input=True, full=False, reduction="none")
        return _masked_mean(loss, seen)


class MaskedBCELoss(nn.Module):
    """Binary cross-entropy with logits per label (``(B, T)`` logits, 0/1 targets), NaN entries masked.

    Args:
        pos_weight: weight of each label's positives (``(T,)``), e.g. negatives / positives on the train split.
        label_smoothing: targets become ``y (1 − ε) + ε / 2``.
    """

    def __init__(self, pos_weight: Sequence[float] | None = None, label_smoothing: float = 0.0):
        super().__init__()
        self.label_smoothing = float(label_smoothing)
        w = None if pos_weight is None else torch.tensor(np.asarray(pos_weight, dtype=np.float32))
        self.register_buffer("pos_weight", w)

    def forward(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        z, y, seen = _observed(logits, y)
        target = y * (1 - self.label_smoothing) + 0.5 * self.label_smoothing
        loss = F.binary_cross_entropy_with_logits(z, target, pos_weight=self.pos_weight, reduction="none")
        return _masked_mean(loss, seen)

    @staticmethod
    def correct(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Samples whose whole (observed) label set is right at P ≥ 0.5 (the trainer's accuracy: subset accuracy)."""
        z, y, seen = _observed(logits, y)
        right = ((z > 0) == (y > 0.5)) | ~seen
        return right.all(dim=1).sum()


class LabelSetLoss(nn.Module):
    """The loss of a multi-label model with a label-set head (``models/label_sets.LabelSetHead``): the BCE of its
    output (the mixed logits), plus, after a training-mode forward, the BCE of the per-label head alone and the
    cross-entropy of the set head on the samples whose whole label set is known and in its list.

    Each part then learns on its own terms: the sigmoids label by label, the set head which combinations occur. In
    eval mode (val loss) the head keeps no parts and the loss is the BCE of the output alone.

    Args:
        base: the per-label loss (:class:`MaskedBCELoss`).
        head: the model's label-set head; the loss reads (and clears) its ``parts``. It is not a submodule: the
            model owns its weights.
    """

    def __init__(self, base: MaskedBCELoss, head: LabelSetHead):
        super().__init__()
        self.base = base
        self._head = (head,)  # a tuple keeps the head out of this module's children and state dict
        self.correct = base.correct

    def forward(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        loss = self.base(logits, y)
        head = self._head[0]
        parts, head.parts = head.parts, None
        if parts is None or parts[0].shape != logits.shape:  # eval mode, or not this batch's forward
            return loss
        z, u = parts
        index, known = head.set_targets(y.float().reshape(z.shape))
        loss = loss + self.base(z, y)
        if bool(known.any()):
            loss = loss + F.cross_entropy(u.float()[known], index[known])
        return loss
