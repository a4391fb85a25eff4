"""A label-set head for multi-label models: a softmax over the label sets seen in training, mixed with the
per-label sigmoids.

Independent sigmoids score each label on its own, so nothing in them says that AMP and anti-bacterial usually come
together and anti-cancer and anti-diabetic never do. The label-set head ("label powerset", Tsoumakas & Vlahavas 2007)
reads the same pooled features and puts a softmax over the K distinct label sets of the train split; each label's
probability is then the mixture ``(1 − mix) · σ(z_j) + mix · Σ_{sets S ∋ j} q(S)`` of the per-label sigmoid and the
head's marginal. The model's output stays one logit per label (the logit of that mixture), so every downstream
consumer (thresholds, metrics, predict, serve, ONNX export) reads it like any multi-label output. Training adds the
per-label head's own BCE and the set head's cross-entropy on samples whose label set is in the list
(``training/target_losses.LabelSetLoss``), so each part learns on its own terms.

Why: on MFTP (21 labels; 7,101 training peptides after biolens's val carve-out, about 160 distinct label sets) the
head raised val absolute true (subset accuracy) from 0.533 to 0.550 and test absolute true from 0.534 to 0.558,
test macro ROC AUC from 0.889 to 0.896, means over seeds 0–4 (BENCHMARKS.md, 2026-12-03). ``train.preset=auto``
adds it for 10 or more labels whose sets repeat (``doctor/advise.label_set_params``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from biolens.errors import ModelError

LABEL_SET_MIX = 0.5  # the set head's default weight in the mixture: the two views count alike
MAX_LABEL_SETS = 512  # beyond this the label sets no longer repeat enough for a softmax over them to learn


def observed_label_sets(y: np.ndarray) -> list[list[int]]:
    """The distinct label sets of ``y`` (``(N, T)`` 0/1, NaN where unknown) as sorted label-index lists, in order
    of first appearance; rows with an unknown label are left out (their set is not known)."""
    y = np.asarray(y, dtype=float)
    if y.ndim != 2:
        raise ValueError(f"label matrix must be (samples, labels); got shape {y.shape}")
    known = y[~np.isnan(y).any(axis=1)] > 0.5
    _, first = np.unique(known, axis=0, return_index=True)
    return [np.flatnonzero(known[i]).tolist() for i in sorted(first)]


def logaddexp(a: Tensor, b: Tensor) -> Tensor:
    """``log(exp(a) + exp(b))`` from max, exp and log1p (plain ONNX operators)."""
    return torch.maximum(a, b) + torch.log1p(torch.exp(-(a - b).abs()))


def mix_label_set_logits(z: Tensor, u: Tensor, sets: Tensor, mix: float) -> Tensor:
    """Per-label logits ``z`` ``(B, T)``, set logits ``u`` ``(B, K)`` and the 0/1 set matrix ``(K, T)`` → the logit of
    ``(1 − mix) · σ(z) + mix · softmax(u) @ sets`` ``(B, T)``, in float32, computed in log space (stable at both
    ends: a label the mixture is sure of keeps a large logit instead of rounding to infinity)."""
    z, q = z.float(), torch.softmax(u.float(), dim=1)
    tiny = torch.finfo(torch.float32).tiny
    log_in = torch.log((q @ sets).clamp_min(tiny))  # log P(label in the set), (B, T)
    log_out = torch.log((q @ (1 - sets)).clamp_min(tiny))  # its complement, summed directly (no 1 − x cancellation)
    keep, move = math.log1p(-mix), math.log(mix)
    log_p = logaddexp(keep + F.logsigmoid(z), move + log_in)
    log_q = logaddexp(keep + F.logsigmoid(-z), move + log_out)
    return log_p - log_q


class LabelSetHead(nn.Module):
    """Dropout → linear from the pooled features to one logit per label set; :meth:`forward` mixes it with the
    per-label logits (:func:`mix_label_set_logits`).

    In training mode the last forward's per-label and set logits are kept in ``parts`` for the loss
    (``LabelSetLoss`` takes them and clears them); in eval mode ``parts`` stays ``None``.

    Args:
        num_features: width of the pooled features.
        num_labels: T, the number of labels.
        label_sets: the K label sets, each a list of label indices (``observed_label_sets`` of the train labels).
        dropout: dropout before the linear layer.
        mix: the set head's weight in the mixture, in (0, 1).
    """

    def __init__(self, num_features: int, num_labels: int, label_sets: Sequence[Sequence[int]], dropout: float = 0.0,
                 mix: float = LABEL_SET_MIX):
        super().__init__()
        for k, s in enumerate(label_sets):
            if isinstance(s, (str, bytes)) or not isinstance(s, Sequence) or not all(
                    isinstance(j, int) and not isinstance(j, bool) for j in s):
                raise ModelError(f"model.params.label_sets[{k}] = {s!r}: each label set is a list of label indices "
                                 "(integers), e.g. [0, 3]")
        sets = [sorted(s) for s in label_sets]
        if len(sets) < 2:
            raise ModelError(f"model.params.label_sets needs at least 2 label sets; got {len(sets)}")
        if len(sets) > MAX_LABEL_SETS:
            raise ModelError(f"model.params.label_sets has {len(sets):,} sets (at most {MAX_LABEL_SETS}); with that "
                             "many distinct label sets leave it out (label_sets: [])")
        for k, s in enumerate(sets):
            if len(set(s)) != len(s) or any(not 0 <= j < num_labels for j in s):
                raise ModelError(f"model.params.label_sets[{k}] = {s}: label indices must be distinct and in "
                                 f"0 … {num_labels - 1} ({num_labels} labels)")
        if len({tuple(s) for s in sets}) != len(sets):
            raise ModelError("model.params.label_sets lists a label set twice; give each set once")
        if not 0 < float(mix) < 1:
            raise ModelError(f"model.params.label_set_mix must be between 0 and 1 (exclusive); got {mix}")
        matrix = torch.zeros(len(sets), num_labels)
        for k, s in enumerate(sets):
            matrix[k, s] = 1.0
        self.register_buffer("sets", matrix, persistent=False)  # rebuilt from the params, like the k-mer banks
        self.mix = float(mix)
        self.proj = nn.Sequential(nn.Dropout(dropout), nn.Linear(num_features, len(sets)))
        self.parts: tuple[Tensor, Tensor] | None = None

    def forward(self, features: Tensor, z: Tensor) -> Tensor:
        """Pooled features ``(B, F)`` and per-label logits ``(B, T)`` → mixed logits ``(B, T)``."""
        u = self.proj(features)
        self.parts = (z, u) if self.training else None
        return mix_label_set_logits(z, u, self.sets, self.mix)

    def set_targets(self, y: Tensor) -> tuple[Tensor, Tensor]:
        """0/1 labels ``(B, T)`` (NaN: unknown) → each sample's set index ``(B,)`` and whether it has one
        ``(B,)``: False where a label is unknown or the set is not in the list."""
        known = ~torch.isnan(y).any(dim=1)
        hits = ((torch.nan_to_num(y) > 0.5).unsqueeze(1) == (self.sets > 0.5).unsqueeze(0)).all(dim=2)  # (B, K)
        return hits.float().argmax(dim=1), hits.any(dim=1) & known
