"""Calling any registered model on a batch, without special cases for auxiliary inputs."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
from torch import nn


def model_inputs(model: nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Keyword arguments for ``model(batch["x"], **kwargs)``: the auxiliary inputs it declares."""
    return {name: batch[name] for name in getattr(model, "aux_inputs", ())}


def forward(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Logits ``(B, C)`` for a batch."""
    return model(batch["x"], **model_inputs(model, batch))


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


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = logits / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)
