"""Callbacks for the Trainer: early stopping, checkpoints, history files, progress and epoch logging, and the
staged (head first, then unfreeze) fine-tuning schedule."""

from __future__ import annotations

import csv
import json
import logging
import math
from pathlib import Path
from typing import Any

import torch

from biolens.bundle import save_weights
from biolens.metrics import monitor_direction
from biolens.training.state import save_checkpoint
from biolens.training.tracking import TensorBoardLogger  # noqa: F401  (lives with the MLflow logger)
from biolens.training.trainer import Callback, Trainer, TrainingError

log = logging.getLogger(__name__)


def _better(mode: str, value: float, best: float) -> bool:
    return value < best if mode == "min" else value > best


def _mode(monitor: str, mode: str = "auto") -> str:
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"unknown mode {mode!r}; expected one of: auto, min, max")
    return monitor_direction(monitor, mode)


def _value(monitor: str, logs: dict[str, Any]) -> float:
    if monitor not in logs:
        raise KeyError(f"metric {monitor!r} not available; available metrics are {', '.join(logs)}")
    return logs[monitor]


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved for ``patience`` epochs (``mode`` min, max, or auto by name)."""

    def __init__(self, monitor: str = "val_loss", patience: int = 5, min_delta: float = 0.0, mode: str = "auto"):
        self.monitor, self.patience, self.min_delta = monitor, patience, min_delta
        self.mode = _mode(monitor, mode)
        self.best = math.inf if self.mode == "min" else -math.inf
        self.wait = 0

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "wait": self.wait}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.wait = state["best"], state["wait"]

    def on_epoch_end(self, trainer: Trainer, logs: dict[str, Any]) -> None:
        value = _value(self.monitor, logs)
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

    ``last.pt`` holds everything ``--resume`` needs (``Trainer.state_dict()`` plus ``config``); with
    ``every`` it also keeps ``epoch_NNN.pt`` every N epochs. Writes are atomic (temp + fsync + rename) and the
    files load with ``torch.load(weights_only=True)``.
    """

    def __init__(self, run_dir: str | Path, monitor: str = "val_loss", *, mode: str = "auto",
                 every: int | None = None, config: dict[str, Any] | None = None):
        self.run_dir = Path(run_dir)
        self.monitor, self.every, self.config = monitor, every, config or {}
        self.mode = _mode(monitor, mode)
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch = 0

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch = state["best"], state["best_epoch"]

    def on_epoch_end(self, trainer: Trainer, logs: dict[str, Any]) -> None:
        improved = _better(self.mode, _value(self.monitor, logs), self.best)
        logs["best"] = improved
        if improved:
            self.best, self.best_epoch = logs[self.monitor], trainer.epoch
            _written(lambda: save_weights(trainer.model, self.run_dir / "model.safetensors"),
                     self.run_dir / "model.safetensors")

    def after_epoch(self, trainer: Trainer, logs: dict[str, Any]) -> None:
        ckpt = self.run_dir / "checkpoints"
        _written(lambda: ckpt.mkdir(parents=True, exist_ok=True), ckpt)
        improved = logs["best"]
        state = {**trainer.state_dict(), "best": self.best, "config": self.config}
        _written(lambda: save_checkpoint(state, ckpt / "last.pt"), ckpt / "last.pt")
        if improved:
            _written(lambda: save_checkpoint(state, ckpt / "best.pt"), ckpt / "best.pt")
        if self.every and trainer.epoch % self.every == 0:
            _written(lambda: save_checkpoint(state, ckpt / f"epoch_{trainer.epoch:03d}.pt"),
                     ckpt / f"epoch_{trainer.epoch:03d}.pt")


def _written(write: Any, path: Path) -> None:
    """Run an (atomic) write; a full disk, a file-size limit or a read-only folder is one line, and the file it
    would have replaced is still the previous, complete one."""
    try:
        write()
    except OSError as e:
        raise TrainingError(f"cannot write {path} ({e.strerror or e}); free disk space or make the run folder "
                            "writable; the previous checkpoint is unchanged") from None


class LRMonitor(Callback):
    """The learning rate of every parameter group at every optimizer step, in ``lr.csv`` (step, epoch, lr…)."""

    def __init__(self, run_dir: str | Path):
        self.path = Path(run_dir) / "lr.csv"
        self.rows: list[list[float]] = []

    def state_dict(self) -> dict[str, Any]:
        return {"rows": self.rows}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rows = [list(r) for r in state["rows"]]

    def on_batch_end(self, trainer: Trainer, loss: float) -> None:
        self.rows.append([trainer.step, trainer.epoch, *(g["lr"] for g in trainer.optimizer.param_groups)])

    def on_epoch_end(self, trainer: Trainer, logs: dict[str, Any]) -> None:
        groups = len(trainer.optimizer.param_groups)
        header = ["step", "epoch"] + (["lr"] if groups == 1 else [f"lr_group{i}" for i in range(groups)])
        with open(self.path, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(header)
            w.writerows([[int(r[0]), int(r[1]), *(f"{v:.6g}" for v in r[2:])] for r in self.rows])


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
        shown = [k for k in ("train_loss", "train_acc", "val_loss", "val_acc") if k in logs]
        shown += [k for k in logs if k.startswith("val_") and k not in shown and isinstance(logs[k], float)]
        log.info(
            "epoch %d/%d  %s  lr %.2e  %.1fs%s", logs["epoch"], trainer.max_epochs,
            "  ".join(f"{k} {logs[k]:.4f}" for k in shown), logs["lr"], logs["time_s"],
            "  *best" if logs.get("best") else "", extra={"biolens": {"event": "epoch", **logs}},
        )


class ProgressBar(Callback):
    """A rich progress bar over the batches of each epoch (stderr); leave it out for quiet runs."""

    def __init__(self, batches_per_epoch: int):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.total = batches_per_epoch
        self.progress = Progress(
            TextColumn("[bold]epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.4f}"), TextColumn("{task.fields[last]}"), TimeRemainingColumn(),
            console=Console(stderr=True), transient=True,
        )
        self.task = None
        self._loss = 0.0
        self._last = ""

    def on_fit_start(self, trainer: Trainer) -> None:
        self.progress.start()

    def on_epoch_start(self, trainer: Trainer) -> None:
        if self.task is not None:
            self.progress.remove_task(self.task)
        self.task = self.progress.add_task("train", total=self.total, epoch=trainer.epoch, loss=0.0, last=self._last)
        self._loss = 0.0

    def on_batch_end(self, trainer: Trainer, loss: float) -> None:
        self._loss = loss if self._loss == 0 else 0.9 * self._loss + 0.1 * loss
        self.progress.update(self.task, advance=1, loss=self._loss)

    def on_epoch_end(self, trainer: Trainer, logs: dict[str, Any]) -> None:
        self._last = "  ".join(f"{k} {v:.4f}" for k, v in logs.items() if k.startswith("val_")
                               and isinstance(v, float))  # shown next to the live loss in the next epoch

    def on_fit_end(self, trainer: Trainer) -> None:
        self.progress.stop()


class StagedUnfreeze(Callback):
    """Train only the head for ``head_epochs`` epochs, then unfreeze the backbone down to ``freeze_until``
    (models with ``freeze(until)``: the image backbones)."""

    def __init__(self, head_epochs: int, freeze_until: str | None):
        self.head_epochs, self.freeze_until = head_epochs, freeze_until

    def on_fit_start(self, trainer: Trainer) -> None:
        if trainer.epoch >= self.head_epochs:  # resumed after the head-only phase
            trainer.model.freeze(self.freeze_until)

    def on_epoch_start(self, trainer: Trainer) -> None:
        if trainer.epoch == self.head_epochs + 1:
            trainer.model.freeze(self.freeze_until)
            n = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
            log.info("epoch %d: unfroze the backbone%s (%s trainable parameters)", trainer.epoch,
                     f" from {self.freeze_until}" if self.freeze_until else "", f"{n:,}")


class WeightEMA(Callback):
    """An exponential moving average of the weights (and float buffers such as batch-norm statistics), timm
    ``ModelEmaV3`` style: after every optimizer step ``ema ← d·ema + (1 − d)·w`` with ``d = min(decay, (1 + n) /
    (10 + n))`` (a warm-up over the first steps). Validation, the best-model file and therefore the final model use
    the averaged weights; the checkpoint keeps the raw ones plus the average, so a resume continues exactly.

    Put it after ``ModelCheckpoint`` in the callback list: the averaged weights are in the model from
    ``on_validation_start`` until this callback's ``on_epoch_end``, when the raw ones come back.
    """

    def __init__(self, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1); got {decay}")
        self.decay = float(decay)
        self.updates = 0
        self.shadow: dict[str, torch.Tensor] | None = None
        self._raw: dict[str, torch.Tensor] | None = None

    def state_dict(self) -> dict[str, Any]:
        return {"updates": self.updates, "shadow": self.shadow or {}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.updates = int(state["updates"])
        self.shadow = dict(state["shadow"]) or None

    def on_fit_start(self, trainer: Any) -> None:
        if self.shadow is None:
            self.shadow = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
        else:  # resumed: the checkpoint's average, on the model's device
            current = trainer.model.state_dict()
            self.shadow = {k: v.to(current[k].device) for k, v in self.shadow.items()}

    @torch.no_grad()
    def on_batch_end(self, trainer: Any, loss: float) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for k, v in trainer.model.state_dict().items():
            ema = self.shadow[k]
            if ema.is_floating_point():
                ema.mul_(d).add_(v.detach().to(ema.dtype), alpha=1 - d)
            else:
                ema.copy_(v)

    @torch.no_grad()
    def on_validation_start(self, trainer: Any) -> None:
        state = trainer.model.state_dict()
        self._raw = {k: v.detach().clone() for k, v in state.items()}
        for k, v in state.items():
            v.copy_(self.shadow[k])

    @torch.no_grad()
    def on_epoch_end(self, trainer: Any, logs: dict[str, Any]) -> None:
        if self._raw is None:
            return
        for k, v in trainer.model.state_dict().items():
            v.copy_(self._raw[k])
        self._raw = None

    @torch.no_grad()
    def on_fit_end(self, trainer: Any) -> None:
        self.on_epoch_end(trainer, {})  # an epoch that failed between validation and its end: raw weights back
