"""Calling any registered model, without special cases for auxiliary inputs.

Models declare the extra inputs they take (``aux_inputs``, e.g. ``("gc",)``) and extra outputs (``extra_outputs``,
e.g. ``("attention",)``). Batches carry the declared inputs (``model_inputs``/``forward``); for a bare input
tensor (explanations, export examples) ``call`` computes them from ``x`` with ``AUX_FROM_INPUT``.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
from torch import nn

from biolens.data.augment import gc_content
from biolens.errors import ModelError

# how each declared auxiliary input is computed from the input itself (indices or one-hot)
AUX_FROM_INPUT = {"gc": gc_content}


def model_inputs(model: nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Keyword arguments for ``model(batch["x"], **kwargs)``: the auxiliary inputs it declares."""
    return {name: batch[name] for name in getattr(model, "aux_inputs", ())}


def forward(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Logits ``(B, C)`` for a batch."""
    return model(batch["x"], **model_inputs(model, batch))


def call(model: nn.Module, x: torch.Tensor, with_attention: bool = False):  # noqa: ANN201
    """Logits (and, ``with_attention``, attention) for a bare input ``x`` (indices or one-hot), computing the
    model's declared auxiliary inputs from ``x``."""
    kwargs = {name: AUX_FROM_INPUT[name](x) for name in getattr(model, "aux_inputs", ())}
    if with_attention:
        return model.forward_with_attention(x, **kwargs)
    return model(x, **kwargs)


@torch.no_grad()
def min_input_length(model: nn.Module, limit: int = 4096) -> int:
    """The shortest index input ``(B, L)`` the model accepts (pooling and unpadded kernels need some length),
    found by probing forward passes on random symbols; cached on the model as ``min_input_length``."""
    cached = getattr(model, "_min_input_length", None)
    if cached is not None:
        return cached
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    symbols = max(1, int(getattr(model, "vocab_size", 6)) - 2)

    gen = torch.Generator(device=device).manual_seed(0)  # never the global RNG: training draws stay as they were

    def works(length: int) -> bool:
        try:
            call(model, torch.randint(1, symbols + 1, (2, length), device=device, generator=gen))
            return True
        except (RuntimeError, ValueError, IndexError, ModelError):
            return False

    try:
        low, high = 0, 1
        while not works(high):
            low, high = high, high * 2
            if high > limit:
                raise ValueError(f"{type(model).__name__} accepts no input up to {limit} positions")
        while high - low > 1:  # works(high), not works(low)
            mid = (low + high) // 2
            low, high = (low, mid) if works(mid) else (mid, high)
    finally:
        model.train(was_training)
    model._min_input_length = high
    return high


@torch.no_grad()
def predict_logits(model: nn.Module, batches: Iterable[dict[str, torch.Tensor]]) -> np.ndarray:
    """Eval-mode logits ``(N, C)`` float32 in data order: row ``i`` belongs to the item with batch ``index`` i."""
    was_training = model.training
    model.eval()
    logits, index = [], []
    try:
        for batch in batches:
            logits.append(forward(model, batch).float().cpu())
            index.append(batch["index"].cpu())
    finally:
        model.train(was_training)
    if not logits:
        return np.zeros((0, 0), dtype=np.float32)
    stacked, order = torch.cat(logits).numpy(), torch.cat(index).numpy()
    ordered = np.empty_like(stacked)
    ordered[order] = stacked
    return ordered
