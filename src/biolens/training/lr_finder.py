"""The LR range test (guide 5.2): exponentially rising LR, smoothed loss, stop on divergence, restore state."""

from __future__ import annotations

import copy
import csv
import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from biolens.config import TrainConfig, as_config
from biolens.devices import resolve_device, seed_everything
from biolens.models.inference import model_inputs
from biolens.tasks import make_task
from biolens.training.build import build_loss, configure_batches
from biolens.training.distributed import Dist
from biolens.training.optim import make_optimizer
from biolens.training.state import capture_rng, restore_rng

log = logging.getLogger(__name__)


@dataclass
class LRFindResult:
    lrs: list[float]
    losses: list[float]
    smoothed: list[float]
    steepest: float | None  # LR at the steepest descent of the smoothed loss
    min_div10: float | None  # LR at the smoothed minimum, divided by 10
    diverged: bool
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def suggestion(self) -> float | None:
        return self.steepest if self.steepest is not None else self.min_div10


def range_test(model: nn.Module, optimizer: torch.optim.Optimizer, loss_fn: nn.Module,
               batches: Iterable[dict[str, torch.Tensor]], *, start_lr: float = 1e-7, end_lr: float = 10.0,
               num_iter: int = 100, smooth: float = 0.98, diverge: float = 4.0) -> LRFindResult:
    """Train ``num_iter`` steps with LR from ``start_lr`` to ``end_lr`` (geometric), then restore everything.

    The loss is smoothed with a bias-corrected exponential moving average (``smooth``); the test stops once the
    smoothed loss exceeds ``diverge`` × its minimum or becomes non-finite. Model, optimizer (state and LRs) and
    RNG states are put back exactly as they were.
    """
    saved_model = copy.deepcopy(model.state_dict())
    saved_opt = copy.deepcopy(optimizer.state_dict())
    saved_rng, was_training = capture_rng(), model.training
    mult = (end_lr / start_lr) ** (1 / max(1, num_iter - 1))
    lrs, losses, smoothed = [], [], []
    avg, best, diverged = 0.0, math.inf, False
    try:
        model.train()
        it, epoch = iter(batches), 0
        for i in range(num_iter):
            try:
                batch = next(it)
            except StopIteration:
                epoch += 1
                if hasattr(batches, "set_epoch"):
                    batches.set_epoch(epoch)
                it = iter(batches)
                batch = next(it)
            lr = start_lr * mult**i
            for g in optimizer.param_groups:
                g["lr"] = lr
            loss = loss_fn(model(batch["x"], **model_inputs(model, batch)), batch["y"])
            value = loss.item()
            if not math.isfinite(value):
                diverged = True
                break
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            avg = smooth * avg + (1 - smooth) * value
            s = avg / (1 - smooth ** (i + 1))
            lrs.append(lr)
            losses.append(value)
            smoothed.append(s)
            best = min(best, s)
            if s > diverge * best:
                diverged = True
                break
    finally:
        model.load_state_dict(saved_model)
        optimizer.load_state_dict(saved_opt)
        optimizer.zero_grad(set_to_none=True)
        restore_rng(saved_rng)
        model.train(was_training)
    return LRFindResult(lrs, losses, smoothed, *suggest(lrs, smoothed), diverged)


def suggest(lrs: list[float], smoothed: list[float]) -> tuple[float | None, float | None]:
    """(steepest descent of the smoothed loss vs log LR, LR at its minimum / 10).

    The first 10% of points are skipped for the slope: the moving average is still settling there.
    """
    if len(lrs) < 5:
        return None, None
    s, x = np.asarray(smoothed), np.log10(lrs)
    lo = int(np.argmin(s))
    skip = max(1, len(s) // 10)
    end = lo + 1 if lo - skip >= 2 else len(s)
    grad = np.gradient(s[skip:end], x[skip:end])
    return float(lrs[skip + int(np.argmin(grad))]), float(lrs[lo] / 10)


def save_lr_find(result: LRFindResult, out_dir: str | Path) -> dict[str, Path]:
    """``lr_find.csv`` (lr, loss, smoothed) and ``lr_find.png`` (log-scale LR, suggestions marked)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "lr_find.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["lr", "loss", "smoothed_loss"])
        w.writerows([[f"{a:.6g}", f"{b:.6g}", f"{c:.6g}"] for a, b, c in zip(result.lrs, result.losses, result.smoothed)])
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(result.lrs, result.losses, alpha=0.3, label="loss")
    ax.plot(result.lrs, result.smoothed, label="smoothed loss")
    if result.steepest:
        ax.axvline(result.steepest, color="tab:red", linestyle="--", label=f"steepest {result.steepest:.1e}")
    if result.min_div10:
        ax.axvline(result.min_div10, color="tab:green", linestyle=":", label=f"min/10 {result.min_div10:.1e}")
    ax.set(xscale="log", xlabel="learning rate (log scale)", ylabel="loss", title="LR range test")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "lr_find.png", dpi=100)
    plt.close(fig)
    result.files = {"csv": out / "lr_find.csv", "png": out / "lr_find.png"}
    return result.files


def lr_find(config, *, out: str | Path | None = None, start_lr: float = 1e-7, end_lr: float = 10.0,
            num_iter: int = 100, smooth: float = 0.98, diverge: float = 4.0) -> LRFindResult:
    """The LR range test on a config's train split with its model, optimizer and loss (``biolens lr-find``).

    Writes ``lr_find.csv`` and ``lr_find.png`` into ``out`` (default: the config's ``out``) when given.
    """
    cfg = as_config(config)
    t = cfg.train
    seed_everything(t.seed, t.deterministic)
    device = resolve_device(t.device)
    task = make_task(cfg)
    task.prepare()
    model = task.build_model().to(device)
    batches = task.batches("train", train=True, device=device)
    y = task.labels("train")
    configure_batches(batches, t, y, Dist())
    optimizer = make_optimizer(t.optimizer, model, lr=start_lr, weight_decay=t.weight_decay, momentum=t.momentum,
                               lr_mult=t.lr_mult)
    loss_fn = build_loss(t, y, len(task.contract().class_names), task.target_type).to(device)
    result = range_test(model, optimizer, loss_fn, batches, start_lr=start_lr, end_lr=end_lr, num_iter=num_iter,
                        smooth=smooth, diverge=diverge)
    log.info("LR range test: %d steps%s; steepest descent at %s, minimum/10 at %s", len(result.lrs),
             " (stopped: loss diverged)" if result.diverged else "",
             f"{result.steepest:.2e}" if result.steepest else "-", f"{result.min_div10:.2e}" if result.min_div10 else "-")
    target = out if out is not None else cfg.out
    if target is not None:
        save_lr_find(result, target)
    return result


AUTO_LR_RANGE = (1e-5, 1e-1)


def auto_lr(t: TrainConfig, model: nn.Module, batches: Iterable[dict[str, torch.Tensor]], loss_fn: nn.Module,
            num_iter: int = 100) -> tuple[float, LRFindResult]:
    """``train.lr=auto``: the LR range test on the training batches (model, optimizer and RNG restored after),
    and its suggestion: the LR at the smoothed-loss minimum divided by 10 (Smith's rule; the steepest descent when
    there is no minimum), clipped to 1e-5…1e-1. A test that finds nothing falls back to 1e-3 with a warning."""
    optimizer = make_optimizer(t.optimizer, model, lr=1e-7, weight_decay=t.weight_decay, momentum=t.momentum,
                               lr_mult=t.lr_mult)
    result = range_test(model, optimizer, loss_fn, batches, num_iter=num_iter)
    found = result.min_div10 or result.steepest  # the steepest slope of a flat, noisy curve can sit anywhere
    if found is None or not math.isfinite(found):
        log.warning("train.lr=auto: the LR range test found no clear learning rate (%d steps); using 1e-3",
                    len(result.lrs))
        return 1e-3, result
    lr = float(min(max(found, AUTO_LR_RANGE[0]), AUTO_LR_RANGE[1]))
    log.info("train.lr=auto: LR range test over %d steps suggests %.2e (minimum/10 %s, steepest %s)", len(result.lrs),
             lr, f"{result.min_div10:.2e}" if result.min_div10 else "-",
             f"{result.steepest:.2e}" if result.steepest else "-")
    return lr, result
