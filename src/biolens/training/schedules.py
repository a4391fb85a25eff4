"""Learning-rate schedules (guide 5.3). Each knows whether it steps per batch or per epoch, so users never do."""

from __future__ import annotations

import math

import torch
from torch.optim.lr_scheduler import LambdaLR, LRScheduler, ReduceLROnPlateau

from biolens.errors import ConfigError

SCHEDULES = {  # name → when the trainer steps it
    "plateau": "epoch",
    "step": "epoch",
    "cosine": "batch",
    "warmup_cosine": "batch",
    "onecycle": "batch",
    "none": "epoch",
}


def warmup_cosine(optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int,
                  min_factor: float = 0.0) -> LambdaLR:
    """Linear warm-up from 0 to the base LR over ``warmup_steps``, then cosine decay to ``min_factor · lr``."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / max(1, warmup_steps)
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return min_factor + (1 - min_factor) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return LambdaLR(optimizer, factor)


def make_scheduler(name: str, optimizer: torch.optim.Optimizer, *, epochs: int, steps_per_epoch: int,
                   mode: str = "min", plateau_factor: float = 0.5, plateau_patience: int = 2,
                   step_size: int = 10, gamma: float = 0.1, warmup_epochs: float = 1.0,
                   min_lr: float = 0.0) -> LRScheduler | ReduceLROnPlateau | None:
    """The scheduler for ``train.schedule``, with ``.interval`` set to ``batch`` or ``epoch``.

    ``steps_per_epoch`` counts optimizer steps (batches / accumulation), so per-batch schedules end exactly at
    the last step of the last epoch.
    """
    if name not in SCHEDULES:
        raise ConfigError(f"unknown train.schedule {name!r}; expected one of: {', '.join(SCHEDULES)}")
    total = max(1, epochs * steps_per_epoch)
    base = [g["lr"] for g in optimizer.param_groups]
    if name == "none":
        return None
    if name == "plateau":
        sched = ReduceLROnPlateau(optimizer, mode=mode, factor=plateau_factor, patience=plateau_patience)
    elif name == "step":
        sched = torch.optim.lr_scheduler.StepLR(optimizer, step_size=step_size, gamma=gamma)
    elif name == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total, eta_min=min_lr)
    elif name == "warmup_cosine":
        warm = int(round(warmup_epochs * steps_per_epoch))
        if warm >= total:
            raise ConfigError(f"train.warmup_epochs {warmup_epochs} is not shorter than training ({epochs} epochs); lower it")
        sched = warmup_cosine(optimizer, warm, total, min_lr / base[0] if base[0] else 0.0)
    else:  # one-cycle: the configured LR is the peak
        sched = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=base, total_steps=total, pct_start=0.3,
                                                    anneal_strategy="cos")
    sched.interval = SCHEDULES[name]
    return sched
