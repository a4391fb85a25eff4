"""Gradient attributions on the one-hot input through captum: integrated gradients, gradient × input, saliency.

Every sequence model accepts a float one-hot ``(B, V-1, L)`` (``models/base.py``), so captum differentiates
straight through the input.

Integrated-gradients baseline (documented choice): the **uniform background** — every real position holds
1/A on each of the A canonical symbols (0.25 per base for DNA), padding stays all-zero. It is a sequence of the
right length that favours no base, so attributions measure each observed base against the average base. The
alternative ``baseline="zero"`` (all-zero one-hot) is what the model reads as pure padding; the padding mask then
jumps at alpha = 0, which is why uniform is the default. Attributions satisfy completeness: their sum equals
``logit(x) − logit(baseline)`` up to captum's reported convergence delta.
"""

from __future__ import annotations

import contextlib
import logging

import numpy as np
import torch
from captum.attr import InputXGradient, IntegratedGradients, Saliency
from torch import nn

from biolens.data.encoding import one_hot
from biolens.errors import ConfigError
from biolens.models.inference import call as call_model

log = logging.getLogger(__name__)

GRADIENT_METHODS = ("ig", "inputxgrad", "saliency")


def onehot_input(x: np.ndarray, vocab_size: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """``(N, L)`` uint8 indices → ``(N, V-1, L)`` float32 one-hot on ``device`` (padding all zero)."""
    return one_hot(torch.as_tensor(x, device=device), vocab_size)


def make_baseline(onehot: torch.Tensor, n_symbols: int, kind: str = "uniform") -> torch.Tensor:
    """IG baseline of the same shape: ``uniform`` (1/A on canonical symbols at real positions) or ``zero``."""
    if kind == "zero":
        return torch.zeros_like(onehot)
    if kind != "uniform":
        raise ConfigError(f"baseline {kind!r}: expected uniform or zero")
    real = onehot.ne(0).any(dim=1, keepdim=True).to(onehot.dtype)  # (N, 1, L)
    base = torch.zeros_like(onehot)
    base[:, :n_symbols] = real / n_symbols
    return base


def _no_cudnn(device: torch.device | str):
    # cuDNN's RNN backward refuses eval mode; the native kernel computes the same gradients.
    if torch.device(device).type == "cuda":
        return torch.backends.cudnn.flags(enabled=False)
    return contextlib.nullcontext()


def attribute(model: nn.Module, x: np.ndarray, targets: np.ndarray, method: str, vocab_size: int, n_symbols: int,
              device: torch.device | str = "cpu", baseline: str = "uniform", n_steps: int = 50,
              batch_size: int = 64) -> np.ndarray:
    """Attributions ``(N, V-1, L)`` float32 for every row of ``x`` toward class ``targets[n]``.

    ``ig``: captum IntegratedGradients (Gauss-Legendre, ``n_steps``) against ``baseline``; ``inputxgrad``: gradient ×
    one-hot; ``saliency``: |gradient| (captum Saliency, abs=True).
    """
    if method not in GRADIENT_METHODS:
        raise ConfigError(f"attribution method {method!r}: expected one of {', '.join(GRADIENT_METHODS)}")
    was_training = model.training
    model.eval()  # dropout off during attribution; the caller's mode is restored

    def forward(inp: torch.Tensor) -> torch.Tensor:
        return call_model(model, inp)

    explainer = {"ig": IntegratedGradients, "inputxgrad": InputXGradient, "saliency": Saliency}[method](forward)
    out = []
    try:
        with _no_cudnn(device):
            for s in range(0, len(x), batch_size):
                inp = onehot_input(x[s:s + batch_size], vocab_size, device).requires_grad_(True)
                tgt = torch.as_tensor(targets[s:s + batch_size], device=device, dtype=torch.long)
                if method == "ig":
                    attr = explainer.attribute(inp, baselines=make_baseline(inp.detach(), n_symbols, baseline),
                                               target=tgt, n_steps=n_steps,
                                               internal_batch_size=max(batch_size, 1) * 8)
                elif method == "saliency":
                    attr = explainer.attribute(inp, target=tgt, abs=True)
                else:
                    attr = explainer.attribute(inp, target=tgt)
                out.append(attr.detach().float().cpu().numpy())
    finally:
        model.train(was_training)
    return np.concatenate(out) if out else np.zeros((0, vocab_size - 1, x.shape[1]), dtype=np.float32)


def position_scores(attr: np.ndarray, x: np.ndarray, method: str) -> np.ndarray:
    """``(N, V-1, L)`` attributions → ``(N, L)`` per-position score.

    ``ig`` / ``inputxgrad``: the sum over channels (a position's share of the logit); ``saliency``: |gradient| at
    the observed symbol. Padding scores 0.
    """
    if method == "saliency":
        idx = np.clip(x.astype(np.int64) - 1, 0, attr.shape[1] - 1)  # (N, L) channel of the observed symbol
        return np.where(x > 0, np.take_along_axis(attr, idx[:, None, :], axis=1)[:, 0], 0.0)
    return np.where(x > 0, attr.sum(axis=1), 0.0)
