"""Optimizers (guide 6.2): AdamW (default) or SGD with Nesterov momentum, with per-group learning rates."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from biolens.errors import ConfigError

OPTIMIZERS = ("adamw", "sgd")


def param_groups(model: nn.Module, lr: float, lr_mult: dict[str, float] | None = None) -> list[dict[str, Any]]:
    """Parameter groups, each with its own ``lr``.

    A model may define ``param_groups(lr)`` (e.g. a pretrained backbone at ``lr/10`` and a new head at ``lr``);
    otherwise ``lr_mult`` maps parameter-name prefixes to LR multipliers (``{"head": 10}``) and everything else
    gets ``lr``.
    """
    hook = getattr(model, "param_groups", None)
    if callable(hook) and not lr_mult:
        return list(hook(lr))
    names = [n for n, _ in model.named_parameters()]
    for prefix in lr_mult or {}:
        if not any(n.startswith(prefix) for n in names):
            raise ConfigError(f"train.lr_mult: no parameter name starts with {prefix!r}; names start with: "
                              f"{', '.join(sorted({n.split('.')[0] for n in names}))}")
    groups: dict[float, list[nn.Parameter]] = {}
    for name, p in model.named_parameters():  # frozen parameters included: a callback may unfreeze them
        mult = next((m for pre, m in (lr_mult or {}).items() if name.startswith(pre)), 1.0)
        groups.setdefault(mult, []).append(p)
    return [{"params": ps, "lr": lr * m} for m, ps in sorted(groups.items())]


def make_optimizer(name: str, model: nn.Module, *, lr: float, weight_decay: float = 0.01, momentum: float = 0.9,
                   lr_mult: dict[str, float] | None = None) -> torch.optim.Optimizer:
    groups = param_groups(model, lr, lr_mult)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=momentum > 0, weight_decay=weight_decay)
    raise ConfigError(f"unknown train.optimizer {name!r}; expected one of: {', '.join(OPTIMIZERS)}")
