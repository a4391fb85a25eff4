"""A short training loop; everything optional plugs in as a callback (guide 5.1)."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from biolens.errors import BiolensError
from biolens.models.inference import forward

log = logging.getLogger(__name__)


class TrainingError(BiolensError):
    """Training cannot go on (e.g. the loss became NaN)."""


class Callback:
    """Named hooks; override what you need. ``trainer`` exposes model, optimizer, history, epoch, step, logs."""

    def on_fit_start(self, trainer: Trainer) -> None: ...
    def on_epoch_start(self, trainer: Trainer) -> None: ...
    def on_batch_end(self, trainer: Trainer, loss: float) -> None: ...
    def on_epoch_end(self, trainer: Trainer, logs: dict[str, Any]) -> None: ...
    def on_fit_end(self, trainer: Trainer) -> None: ...


class Trainer:
    """Train and validate loops with gradient clipping, a per-epoch plateau scheduler and callbacks.

    Args:
        model: a registered model (see ``biolens.models``).
        optimizer: e.g. AdamW.
        loss_fn: ``(logits (B, C), y (B,)) → scalar``.
        scheduler: stepped once per epoch; ReduceLROnPlateau gets the monitored value.
        max_epochs: upper bound; callbacks (early stopping) may stop sooner via ``trainer.should_stop``.
        grad_clip: max global gradient norm, or None.
        monitor: the logged value plateau scheduling and callbacks watch (``val_loss`` or ``val_acc``).
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        loss_fn: nn.Module,
        *,
        scheduler: Any = None,
        max_epochs: int = 10,
        grad_clip: float | None = 1.0,
        callbacks: Iterable[Callback] = (),
        monitor: str = "val_loss",
    ):
        self.model = model
        self.optimizer = optimizer
        self.loss_fn = loss_fn
        self.scheduler = scheduler
        self.max_epochs = max_epochs
        self.grad_clip = grad_clip
        self.callbacks = list(callbacks)
        self.monitor = monitor
        self.history: list[dict[str, Any]] = []
        self.epoch = 0
        self.step = 0
        self.should_stop = False

    def add_callback(self, cb: Callback) -> None:
        self.callbacks.append(cb)

    def _call(self, hook: str, *args: Any) -> None:
        for cb in self.callbacks:
            getattr(cb, hook)(self, *args)

    def fit(self, train: Iterable[dict[str, torch.Tensor]], val: Iterable[dict[str, torch.Tensor]]) -> list[dict[str, Any]]:
        self._call("on_fit_start")
        try:
            self._loop(train, val)
        finally:
            self._call("on_fit_end")  # always, so progress bars and files close even on errors
        return self.history

    def _loop(self, train: Iterable[dict[str, torch.Tensor]], val: Iterable[dict[str, torch.Tensor]]) -> None:
        while self.epoch < self.max_epochs and not self.should_stop:
            self.epoch += 1
            if hasattr(train, "set_epoch"):
                train.set_epoch(self.epoch)
            self._call("on_epoch_start")
            start = time.perf_counter()
            logs: dict[str, Any] = {"epoch": self.epoch, "lr": self.optimizer.param_groups[0]["lr"]}
            logs.update({f"train_{k}": v for k, v in self.train_epoch(train).items()})
            logs.update({f"val_{k}": v for k, v in self.evaluate(val).items()})
            logs["time_s"] = round(time.perf_counter() - start, 3)
            self.history.append(logs)
            self._step_scheduler(logs)
            self._call("on_epoch_end", logs)

    def _step_scheduler(self, logs: dict[str, Any]) -> None:
        if self.scheduler is None:
            return
        if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.scheduler.step(logs[self.monitor])
        else:
            self.scheduler.step()

    def train_epoch(self, batches: Iterable[dict[str, torch.Tensor]]) -> dict[str, float]:
        self.model.train()
        total_loss, correct, seen = 0.0, 0, 0
        for batch in batches:
            logits = forward(self.model, batch)
            loss = self.loss_fn(logits, batch["y"])
            if not torch.isfinite(loss):
                raise TrainingError(
                    f"loss became {loss.item()} at epoch {self.epoch}, step {self.step + 1}; "
                    "lower the learning rate (--lr) or check the input data"
                )
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if self.grad_clip is not None:
                nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
            self.optimizer.step()
            self.step += 1
            n = batch["y"].shape[0]
            value = loss.item()
            total_loss += value * n
            correct += int((logits.argmax(1) == batch["y"]).sum())
            seen += n
            self._call("on_batch_end", value)
        return {"loss": total_loss / max(seen, 1), "acc": correct / max(seen, 1)}

    @torch.no_grad()
    def evaluate(self, batches: Iterable[dict[str, torch.Tensor]]) -> dict[str, float]:
        self.model.eval()
        total_loss, correct, seen = 0.0, 0, 0
        for batch in batches:
            logits = forward(self.model, batch)
            n = batch["y"].shape[0]
            total_loss += self.loss_fn(logits, batch["y"]).item() * n
            correct += int((logits.argmax(1) == batch["y"]).sum())
            seen += n
        loss = total_loss / max(seen, 1)
        return {"loss": loss if math.isfinite(loss) else float("inf"), "acc": correct / max(seen, 1)}
