"""Callbacks for the Trainer: early stopping, checkpoints, history files, progress and epoch logging."""

from __future__ import annotations

import csv
import json
import logging
import math
from pathlib import Path
from typing import Any

import torch

from biolens.deploy.bundle import atomic_write, save_weights
from biolens.training.trainer import Callback, Trainer

log = logging.getLogger(__name__)


def _better(mode: str, value: float, best: float) -> bool:
    return value < best if mode == "min" else value > best


def _mode(monitor: str) -> str:
    return "min" if monitor.endswith("loss") else "max"


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved for ``patience`` epochs."""

    def __init__(self, monitor: str = "val_loss", patience: int = 5, min_delta: float = 0.0):
        self.monitor, self.patience, self.min_delta = monitor, patience, min_delta
        self.mode = _mode(monitor)
        self.best = math.inf if self.mode == "min" else -math.inf
        self.wait = 0

    def on_epoch_end(self, trainer: Trainer, logs: dict[str, Any]) -> None:
        if self.monitor not in logs:
            raise KeyError(f"metric {self.monitor!r} not available; available metrics are {', '.join(logs)}")
        value = logs[self.monitor]
        delta = -self.min_delta if self.mode == "min" else self.min_delta
        if _better(self.mode, value, self.best + delta):
            self.best, self.wait = value, 0
            return
        self.wait += 1
        if self.wait >= self.patience:
            log.info("early stopping at epoch %d: %s did not improve for %d epochs (best %.4f)",
                     trainer.epoch, self.monitor, self.patience, self.best)
            trainer.should_stop = True


class ModelCheckpoint(Callback):
    """Keep the best weights as ``model.safetensors`` and full state in ``checkpoints/{best,last}.pt``.

    Checkpoint files hold only tensors and plain values, so they load with ``torch.load(weights_only=True)``.
    """

    def __init__(self, run_dir: str | Path, monitor: str = "val_loss"):
        self.run_dir = Path(run_dir)
        self.monitor = monitor
        self.mode = _mode(monitor)
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch = 0

    def _state(self, trainer: Trainer) -> dict[str, Any]:
        return {
            "model": trainer.model.state_dict(),
            "optimizer": trainer.optimizer.state_dict(),
            "scheduler": trainer.scheduler.state_dict() if trainer.scheduler is not None else {},
            "epoch": trainer.epoch,
            "step": trainer.step,
            "best": self.best,
        }

    def on_epoch_end(self, trainer: Trainer, logs: dict[str, Any]) -> None:
        ckpt = self.run_dir / "checkpoints"
        ckpt.mkdir(parents=True, exist_ok=True)
        improved = _better(self.mode, logs[self.monitor], self.best)
        if improved:
            self.best, self.best_epoch = logs[self.monitor], trainer.epoch
            save_weights(trainer.model, self.run_dir / "model.safetensors")
        state = self._state(trainer)
        atomic_write(ckpt / "last.pt", lambda f: torch.save(state, f))
        if improved:
            atomic_write(ckpt / "best.pt", lambda f: torch.save(state, f))
        logs["best"] = improved


class HistoryWriter(Callback):
    """Write ``history.csv`` and ``history.json`` after every epoch."""

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)

    def on_epoch_end(self, trainer: Trainer, logs: dict[str, Any]) -> None:
        rows = trainer.history
        keys = list(dict.fromkeys(k for row in rows for k in row))
        with open(self.run_dir / "history.csv", "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=keys)
            writer.writeheader()
            writer.writerows(rows)
        (self.run_dir / "history.json").write_text(json.dumps(rows, indent=1) + "\n")


class EpochLogger(Callback):
    """One log line per epoch."""

    def on_epoch_end(self, trainer: Trainer, logs: dict[str, Any]) -> None:
        log.info(
            "epoch %d/%d  train_loss %.4f  train_acc %.4f  val_loss %.4f  val_acc %.4f  lr %.2e  %.1fs%s",
            logs["epoch"], trainer.max_epochs, logs["train_loss"], logs["train_acc"], logs["val_loss"],
            logs["val_acc"], logs["lr"], logs["time_s"], "  *best" if logs.get("best") else "",
        )


class ProgressBar(Callback):
    """A rich progress bar over the batches of each epoch (stderr); leave it out for quiet runs."""

    def __init__(self, batches_per_epoch: int):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.total = batches_per_epoch
        self.progress = Progress(
            TextColumn("[bold]epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.4f}"), TimeRemainingColumn(),
            console=Console(stderr=True), transient=True,
        )
        self.task = None
        self._loss = 0.0

    def on_fit_start(self, trainer: Trainer) -> None:
        self.progress.start()

    def on_epoch_start(self, trainer: Trainer) -> None:
        if self.task is not None:
            self.progress.remove_task(self.task)
        self.task = self.progress.add_task("train", total=self.total, epoch=trainer.epoch, loss=0.0)
        self._loss = 0.0

    def on_batch_end(self, trainer: Trainer, loss: float) -> None:
        self._loss = loss if self._loss == 0 else 0.9 * self._loss + 0.1 * loss
        self.progress.update(self.task, advance=1, loss=self._loss)

    def on_fit_end(self, trainer: Trainer) -> None:
        self.progress.stop()
