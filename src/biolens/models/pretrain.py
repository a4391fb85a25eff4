"""Masked-token pretraining head: a sequence model's per-token states → the hidden symbol at every masked position.

A model can be pretrained when it exposes ``forward_tokens(x) → (states (B, T, D), token mask (B, T))``,
``token_stride`` (input positions per token) and ``token_features`` (``D``): the transformer, the dilated CNN and
its reverse-complement variant. The pretraining module holds the encoder as ``encoder`` and its head as
``mlm_head``, so ``model.safetensors`` of a pretraining run is ``encoder.*`` (the classifier's own tensor names,
prefixed) plus ``mlm_head.*``; fine-tuning strips the prefix and drops the head (``models/finetune.py``).
"""

from __future__ import annotations

import logging

from torch import Tensor, nn

from biolens.errors import ConfigError
from biolens.models.registry import list_models, model_info

log = logging.getLogger(__name__)

ENCODER_PREFIX = "encoder."
HEAD_PREFIX = "mlm_head."


def can_pretrain(model: nn.Module) -> bool:
    return all(hasattr(model, a) for a in ("forward_tokens", "token_stride", "token_features"))


def pretrainable_models() -> list[str]:
    """Registered sequence models that implement ``forward_tokens``."""
    return [n for n in list_models("sequence") if hasattr(model_info(n).cls, "forward_tokens")]


class MaskedTokenModel(nn.Module):
    """``encoder.forward_tokens`` → Linear-GELU-LayerNorm-Linear → ``token_stride × symbols`` logits per token,
    unfolded to positions and taken at the masked ones.

    ``forward(x, mlm_mask)``: ``x`` masked index rows ``(B, L)``, ``mlm_mask`` ``(B, L)`` bool → logits ``(M, k)``
    for the ``M`` masked positions in row-major order (``k`` canonical symbols), the layout of
    ``data.masking.MaskedBatches``' targets, so the ordinary trainer and cross-entropy train it.
    """

    aux_inputs = ("mlm_mask",)

    def __init__(self, encoder: nn.Module):
        super().__init__()
        if not can_pretrain(encoder):
            raise ConfigError(f"model {type(encoder).__name__} has no per-token output for masked-token pretraining; "
                              f"pretrain one of: {', '.join(pretrainable_models())}")
        self.encoder = encoder
        self.stride, self.symbols = int(encoder.token_stride), int(encoder.vocab_size) - 2
        dim = int(encoder.token_features)
        self.mlm_head = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.LayerNorm(dim),
                                      nn.Linear(dim, self.stride * self.symbols))
        self.cuda_precision = getattr(encoder, "cuda_precision", "fp32")

    def forward(self, x: Tensor, mlm_mask: Tensor) -> Tensor:
        states, _ = self.encoder.forward_tokens(x)  # (B, T, D)
        logits = self.mlm_head(states)  # (B, T, stride * k)
        b, t, _ = logits.shape
        logits = logits.reshape(b, t * self.stride, self.symbols)[:, : mlm_mask.shape[1]]  # (B, L, k)
        return logits[mlm_mask]  # (M, k)
