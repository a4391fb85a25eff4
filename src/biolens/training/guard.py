"""Where a NaN/Inf came from (guide 7.3): non-finite weights, gradients, or the first layer whose output blew up."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

import torch
from torch import nn

from biolens.models.inference import model_inputs


def _first_nonfinite_module(model: nn.Module, batch: dict[str, torch.Tensor],
                            autocast: Callable[[], AbstractContextManager]) -> str | None:
    found: list[str] = []
    hooks = []
    for name, module in model.named_modules():
        if not name or any(True for _ in module.children()):
            continue  # leaf modules only: the layer, not the block around it

        def hook(mod, inputs, output, name=name):  # noqa: ANN001
            if not found and isinstance(output, torch.Tensor) and output.is_floating_point() \
                    and not torch.isfinite(output).all():
                found.append(name)
        hooks.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad(), autocast():
            model(batch["x"], **model_inputs(model, batch))
    finally:
        for h in hooks:
            h.remove()
    return found[0] if found else None


def diagnose_nonfinite(model: nn.Module, batch: dict[str, torch.Tensor] | None,
                       autocast: Callable[[], AbstractContextManager]) -> str:
    """One clause naming the layer(s) at fault, for a TrainingError message."""
    bad_weights = [n for n, p in model.named_parameters() if not torch.isfinite(p).all()]
    if bad_weights:
        return f"weights already non-finite in {', '.join(bad_weights[:3])}"
    norms = {n: float(p.grad.detach().float().norm()) for n, p in model.named_parameters() if p.grad is not None}
    bad_grads = [n for n, v in norms.items() if not torch.isfinite(torch.tensor(v))]
    if bad_grads:
        return f"gradients blew up in {', '.join(bad_grads[:3])}"
    if batch is not None:
        was_training = model.training
        try:
            layer = _first_nonfinite_module(model, batch, autocast)
        finally:
            model.train(was_training)
        if layer is not None:
            return f"first non-finite output in layer {layer}"
        if norms:
            top = max(norms, key=norms.get)
            return f"largest gradient in {top} (norm {norms[top]:.3g})"
    return "no single layer is at fault (check the loss function and the labels)"
