"""First-layer convolution filters as PWMs (the usual DeepBind/Basset recipe) and their MEME export.

For each first-layer filter, every input window whose activation exceeds ``fraction × max`` (the filter's maximum
over the given sequences) is aligned and its bases counted: the counts are the filter's position frequency matrix,
normalised to a letter-probability matrix. "First layer" means every ``Conv1d`` that reads the model's input
directly (the one-hot stem of ``dilated_resnet``, or all parallel kernels of the motif extractor, which read the
embedded one-hot).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from biolens.data.encoding import one_hot
from biolens.errors import ModelError
from biolens.models.inference import call as call_model
from biolens.interpret.motifs import write_meme

log = logging.getLogger(__name__)


@torch.no_grad()
def first_layer_activations(model: nn.Module, x: torch.Tensor) -> list[tuple[str, nn.Conv1d, torch.Tensor]]:
    """Run ``x`` once and return ``(name, conv, output (B, F, L'))`` for every Conv1d fed the same tensor as the
    first Conv1d called."""
    names = {m: n for n, m in model.named_modules()}
    seen: list[tuple[str, nn.Conv1d, torch.Tensor, torch.Tensor]] = []

    def hook(module, inputs, output):  # noqa: ANN001
        seen.append((names[module], module, inputs[0], output))

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv1d)]
    try:
        model.eval()
        call_model(model, x)
    finally:
        for h in handles:
            h.remove()
    if not seen:
        raise ModelError(f"model {type(model).__name__} has no Conv1d layer; filters → PWMs needs a convolutional "
                         "model")
    first = seen[0][2]
    return [(n, m, out) for n, m, inp, out in seen if inp is first or inp.data_ptr() == first.data_ptr()]


def filter_pwms(model: nn.Module, x: np.ndarray, vocab_size: int, n_symbols: int, fraction: float = 0.5,
                device: torch.device | str = "cpu", batch_size: int = 256) -> list[tuple[str, np.ndarray, int]]:
    """``(name, probs (w, n_symbols), nsites)`` for every first-layer filter with at least one aligned window.

    ``x``: ``(N, L)`` uint8 indices. Windows hanging over either end count only their real bases.
    """
    maxima: dict[str, torch.Tensor] = {}
    xs = [torch.as_tensor(x[s:s + batch_size], device=device) for s in range(0, len(x), batch_size)]
    for xb in xs:  # pass 1: each filter's maximum activation
        for name, _, out in first_layer_activations(model, xb):
            mx = out.amax(dim=(0, 2))
            maxima[name] = torch.maximum(maxima[name], mx) if name in maxima else mx
    counts: dict[str, torch.Tensor] = {}
    sites: dict[str, torch.Tensor] = {}
    convs: dict[str, nn.Conv1d] = {}
    for xb in xs:  # pass 2: count the bases of every window above fraction × max
        onehot = one_hot(xb, vocab_size, channels=n_symbols)  # (B, A, L) canonical symbols
        for name, conv, out in first_layer_activations(model, xb):
            k, pad, dil = conv.kernel_size[0], conv.padding[0], conv.dilation[0]
            if conv.stride[0] != 1 or isinstance(conv.padding, str):
                raise ModelError(f"layer {name}: filters → PWMs needs stride 1 and numeric padding")
            windows = F.pad(onehot, (pad, pad + k * dil)).unfold(2, (k - 1) * dil + 1, 1)[..., ::dil]  # (B, A, L'', k)
            windows = windows[:, :, : out.shape[-1]]  # (B, A, L', k): window feeding output position j
            active = (out > fraction * maxima[name][None, :, None]) & (maxima[name][None, :, None] > 0)  # (B, F, L')
            c = torch.einsum("bfl,balk->fka", active.float(), windows)  # (F, k, A)
            counts[name] = counts[name] + c if name in counts else c
            s = active.sum(dim=(0, 2))
            sites[name] = sites[name] + s if name in sites else s
            convs[name] = conv
    out_pwms = []
    for name, c in counts.items():
        c, s = c.cpu().numpy(), sites[name].cpu().numpy()
        for f in range(c.shape[0]):
            if s[f] == 0 or (c[f].sum(axis=1) == 0).any():
                continue
            probs = c[f] / c[f].sum(axis=1, keepdims=True)
            out_pwms.append((f"{name.replace('.', '_')}_f{f}", probs, int(s[f])))
    log.info("%d of %d first-layer filters gave a PWM", len(out_pwms), sum(len(v) for v in sites.values()))
    return out_pwms


def export_filters(model: nn.Module, x: np.ndarray, vocab_size: int, letters: str, path: str | Path,
                   fraction: float = 0.5, device: torch.device | str = "cpu") -> int:
    """Write the first-layer filters of ``model`` as a MEME file; returns how many motifs were written."""
    pwms = filter_pwms(model, x, vocab_size, len(letters), fraction, device)
    write_meme(path, pwms, letters)
    return len(pwms)
