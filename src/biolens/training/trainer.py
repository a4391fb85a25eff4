"""A short training loop; everything optional plugs in as a callback (guide 5.1).

The loop knows four things beyond forward/backward/step: mixed precision (autocast, GradScaler for fp16),
gradient accumulation (loss scaled by each micro-batch's share of the window, clipping after unscaling),
whether the scheduler steps per batch or per epoch, and distributed data parallel (DDP) reductions.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

import numpy as np
import torch
from torch import nn

from biolens.contract import softmax
from biolens.errors import BiolensError
from biolens.metrics import compute
from biolens.models.inference import model_inputs
from biolens.training.guard import diagnose_nonfinite
from biolens.devices import resolve_precision
from biolens.training.state import capture_rng, restore_rng

log = logging.getLogger(__name__)

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class TrainingError(BiolensError):
    """Training cannot go on (e.g. the loss became NaN)."""


class Callback:
    """Named hooks; override what you need. ``trainer`` exposes model, optimizer, history, epoch, step, logs.

    ``on_batch_end`` runs once per optimizer step. A callback with state to carry across ``--resume`` returns it
    from ``state_dict`` (tensors and plain values only) and takes it back in ``load_state_dict``.
    """

    def on_fit_start(self, trainer: Trainer) -> None: ...
    def on_epoch_start(self, trainer: Trainer) -> None: ...
    def on_batch_end(self, trainer: Trainer, loss: float) -> None: ...
    def on_validation_start(self, trainer: Trainer) -> None: ...  # after the train epoch, before val
    def on_epoch_end(self, trainer: Trainer, logs: dict[str, Any]) -> None: ...
    def after_epoch(self, trainer: Trainer, logs: dict[str, Any]) -> None: ...  # checkpoints: all state is final
    def on_fit_end(self, trainer: Trainer) -> None: ...
    def state_dict(self) -> dict[str, Any]:
        return {}
    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def scheduler_interval(scheduler: Any) -> str:
    """``batch`` or ``epoch``: set by ``make_scheduler``; one-cycle/cyclic always step per batch."""
    if scheduler is None:
        return "epoch"
    name = type(scheduler).__name__
    return getattr(scheduler, "interval", "batch" if name in ("OneCycleLR", "CyclicLR") else "epoch")


def correct_count(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Correct predictions in a batch; a single logit means ``logit > 0`` is class 1."""
    pred = (logits[:, 0] > 0).long() if logits.shape[1] == 1 else logits.argmax(1)
    return (pred == y).sum()


def _add(total: float | None, batch: torch.Tensor | None) -> float | None:
    """Running count of right decisions; None once a batch has none to count (regression targets)."""
    return None if total is None or batch is None else total + int(batch)


def _sums(loss: float, correct: float | None) -> dict[str, float]:
    return {"loss": loss} if correct is None else {"loss": loss, "acc": float(correct)}


class Trainer:
    """Train and validate loops with clipping, scheduling, mixed precision, accumulation and callbacks.

    Args:
        model: a registered model (see ``biolens.models``); kept unwrapped in ``trainer.model``.
        optimizer: e.g. AdamW.
        loss_fn: ``(logits (B, C), y (B,)) → scalar`` (mean over the batch).
        scheduler: stepped per batch or per epoch as ``scheduler_interval`` says; ReduceLROnPlateau gets
            the monitored value.
        max_epochs: upper bound; callbacks (early stopping) may stop sooner via ``trainer.should_stop``.
        grad_clip: max global gradient norm (applied after unscaling), or None.
        monitor: the logged value plateau scheduling and callbacks watch.
        precision: ``fp32``, ``bf16`` (autocast), ``fp16`` (autocast + GradScaler) or ``auto`` (the model's
            ``cuda_precision`` on CUDA, else fp32; see ``resolve_precision``). ``trainer.precision`` holds the
            resolved one.
        val_metrics: registered metrics (``biolens.metrics``) computed on the validation predictions every epoch
            and logged as ``val_<name>`` (e.g. ``roc_auc`` for ``monitor="val_roc_auc"``); ``positive_index`` and
            ``threshold`` define the binary decision they use.
        accumulate: micro-batches per optimizer step.
        net: what to call for the forward pass (a DDP-wrapped or compiled ``model``); default ``model``.
        dist: a ``biolens.training.distributed.Dist`` to all-reduce epoch metrics, or None.
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
        precision: str = "auto",
        accumulate: int = 1,
        net: nn.Module | None = None,
        dist: Any = None,
        val_metrics: Iterable[str] = (),
        positive_index: int | None = None,
        threshold: float = 0.5,
        scorer: Any = None,
    ):
        if precision not in PRECISIONS and precision != "auto":
            raise BiolensError(f"unknown precision {precision!r}; expected one of: auto, {', '.join(PRECISIONS)}")
        self.model, self.net = model, net if net is not None else model
        precision = resolve_precision(precision, next(model.parameters()).device.type,
                                      getattr(model, "cuda_precision", "fp32"))
        self.val_metrics, self.positive_index, self.threshold = tuple(val_metrics), positive_index, threshold
        self.scorer = scorer  # (logits, y) → {name: value}: the val metrics of regression and multi-label runs
        self.optimizer, self.loss_fn, self.scheduler = optimizer, loss_fn, scheduler
        self.interval = scheduler_interval(scheduler)
        self.max_epochs, self.grad_clip, self.monitor = max_epochs, grad_clip, monitor
        self.callbacks = list(callbacks)
        self.precision, self.accumulate, self.dist = precision, max(1, int(accumulate)), dist
        self.device_type = next(model.parameters()).device.type
        self.scaler = torch.amp.GradScaler(self.device_type) if precision == "fp16" else None
        self.history: list[dict[str, Any]] = []
        self.epoch = 0  # epochs completed (the one running, inside an epoch)
        self.step = 0  # optimizer steps taken
        self.batches_done = 0  # train batches consumed in the running epoch (the sampler position)
        self.should_stop = False

    # ---- state for exact resume -------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        names = self._callback_names()
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else {},
            "scaler": self.scaler.state_dict() if self.scaler is not None else {},
            "epoch": self.epoch, "step": self.step, "batches_done": self.batches_done,
            "should_stop": self.should_stop,
            "history": self.history,
            "rng": capture_rng(),
            "callbacks": {n: cb.state_dict() for n, cb in zip(names, self.callbacks)},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state.get("scheduler"):
            self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.step, self.batches_done = state["epoch"], state["step"], state.get("batches_done", 0)
        self.history = list(state.get("history", []))
        self.should_stop = bool(state.get("should_stop", False))
        saved = state.get("callbacks", {})
        for name, cb in zip(self._callback_names(), self.callbacks):
            if name in saved:
                cb.load_state_dict(saved[name])
        restore_rng(state["rng"])

    def _callback_names(self) -> list[str]:
        seen: dict[str, int] = {}
        names = []
        for cb in self.callbacks:
            base = type(cb).__name__
            seen[base] = seen.get(base, 0) + 1
            names.append(base if seen[base] == 1 else f"{base}{seen[base]}")
        return names

    # ---- the loop ---------------------------------------------------------------------------------------
    def add_callback(self, cb: Callback) -> None:
        self.callbacks.append(cb)

    def _call(self, hook: str, *args: Any) -> None:
        for cb in self.callbacks:
            getattr(cb, hook)(self, *args)

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def fit(self, train: Iterable[dict[str, torch.Tensor]], val: Iterable[dict[str, torch.Tensor]]) -> list[dict[str, Any]]:
        self._call("on_fit_start")
        try:
            self._loop(train, val)
        finally:
            self._call("on_fit_end")  # always, so progress bars and files close even on errors
        return self.history

    def _loop(self, train: Iterable[dict[str, torch.Tensor]], val: Iterable[dict[str, torch.Tensor]]) -> None:
        if self.batches_done:  # resumed inside an epoch: finish it from the saved sampler position
            self.epoch -= 1
        while self.epoch < self.max_epochs and not self.should_stop:
            self.epoch += 1
            if hasattr(train, "set_epoch"):
                train.set_epoch(self.epoch)
            self._call("on_epoch_start")
            start = time.perf_counter()
            logs: dict[str, Any] = {"epoch": self.epoch, "lr": self.lr}
            logs.update({f"train_{k}": v for k, v in self.train_epoch(train).items()})
            self._call("on_validation_start")
            logs.update({f"val_{k}": v for k, v in self.evaluate(val).items()})
            logs["time_s"] = round(time.perf_counter() - start, 3)
            self.history.append(logs)
            if self.interval == "epoch":
                self._step_scheduler(logs)
            self._call("on_epoch_end", logs)
            self._call("after_epoch", logs)

    def _step_scheduler(self, logs: dict[str, Any] | None = None) -> None:
        if self.scheduler is None:
            return
        if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.scheduler.step(logs[self.monitor])
        else:
            self.scheduler.step()

    def _autocast(self) -> contextlib.AbstractContextManager:
        dtype = PRECISIONS[self.precision]
        return torch.autocast(self.device_type, dtype=dtype) if dtype is not None else contextlib.nullcontext()

    def _windows(self, batches: Iterable[dict[str, torch.Tensor]]) -> Iterator[list[dict[str, torch.Tensor]]]:
        it = iter(batches)
        skip, self.batches_done = self.batches_done, 0
        for _ in islice(it, skip):  # resume: replay the sampler (and its augmentation RNG) up to the position
            self.batches_done += 1
        while window := list(islice(it, self.accumulate)):
            yield window

    def train_epoch(self, batches: Iterable[dict[str, torch.Tensor]]) -> dict[str, float]:
        self.net.train()
        total_loss, correct, seen = 0.0, 0, 0
        for window in self._windows(batches):
            window_n = sum(b["y"].shape[0] for b in window)
            step_loss = 0.0
            for i, batch in enumerate(window):
                n = batch["y"].shape[0]
                sync = self.net.no_sync() if i < len(window) - 1 and hasattr(self.net, "no_sync") else contextlib.nullcontext()
                with sync:
                    with self._autocast():
                        logits = self._forward(batch)
                        loss = self._loss(logits, batch)
                    value = loss.item()
                    if not math.isfinite(value):
                        self._fail("loss", value, batch)
                    scaled = loss * (n / window_n)  # mean over the whole window, however the micro-batches split
                    (self.scaler.scale(scaled) if self.scaler is not None else scaled).backward()
                step_loss += value * n / window_n
                total_loss += value * n
                correct = _add(correct, self._correct(logits.detach(), batch["y"]))
                seen += n
            self._optimizer_step()
            self.batches_done += len(window)
            self.step += 1
            if self.interval == "batch":
                self._step_scheduler()
            self._call("on_batch_end", step_loss)
        self.batches_done = 0
        return self._reduce(_sums(total_loss, correct), seen)

    def _correct(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor | None:
        """Right decisions in a batch: the loss's own ``correct`` (multi-label: whole label sets right; None for
        regression, which logs no accuracy), else the class decision (``correct_count``)."""
        fn = getattr(self.loss_fn, "correct", correct_count)
        return None if fn is None else fn(logits, y)

    def _loss(self, logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """``loss_fn(logits, y)``, plus the batch entries the loss declares it reads (``batch_keys``, e.g. a
        distillation loss's ``teacher_logits``)."""
        extra = {k: batch[k] for k in getattr(self.loss_fn, "batch_keys", ()) if k in batch}
        return self.loss_fn(logits, batch["y"], **extra)

    def _forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        try:
            return self.net(batch["x"], **model_inputs(self.model, batch))
        except Exception as e:
            if type(e).__module__.startswith(("torch._dynamo", "torch._inductor")):  # torch.compile failed
                first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                raise TrainingError(f"torch.compile failed on the first batches ({type(e).__name__}: {first[:200]}); "
                                    "train without it (set train.compile=false), or install a "
                                    "C++ compiler (CPU) / Triton (CUDA) that torch.compile needs") from e
            raise

    def _optimizer_step(self) -> None:
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)  # clip true gradients, not scaled ones
        if self.grad_clip is not None:
            norm = nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
            if self.scaler is None and not torch.isfinite(norm):  # fp16 overflow is the scaler's to skip
                self._fail("gradient norm", float(norm), None)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def _fail(self, what: str, value: float, batch: dict[str, torch.Tensor] | None) -> None:
        """Stop before the bad update reaches the weights, with the guide 7.3 diagnosis."""
        where = diagnose_nonfinite(self.model, batch, self._autocast)
        self.optimizer.zero_grad(set_to_none=True)
        raise TrainingError(
            f"{what} became {value} at epoch {self.epoch}, step {self.step + 1}; lower the learning rate "
            f"(lr {self.lr:.2e}: try train.lr={self.lr / 10:.1e}); {where}; other fixes (guide 7.3): keep gradient "
            "clipping on (train.grad_clip), check the input data, use train.precision=bf16 or fp32 instead of fp16"
        )

    @torch.no_grad()
    def evaluate(self, batches: Iterable[dict[str, torch.Tensor]]) -> dict[str, float]:
        self.net.eval()
        total_loss, correct, seen = 0.0, 0, 0
        kept: list[tuple[torch.Tensor, torch.Tensor]] = []
        for batch in batches:
            with self._autocast():
                logits = self._forward(batch)
                loss = self._loss(logits, batch)
            n = batch["y"].shape[0]
            total_loss += loss.item() * n
            correct = _add(correct, self._correct(logits, batch["y"]))
            seen += n
            if self.val_metrics:
                kept.append((logits.float().cpu(), batch["y"].cpu()))
        out = self._reduce(_sums(total_loss, correct), seen)
        out["loss"] = out["loss"] if math.isfinite(out["loss"]) else float("inf")
        if self.val_metrics:
            out.update(self._metrics(kept))
        return out

    def _metrics(self, kept: list[tuple[torch.Tensor, torch.Tensor]]) -> dict[str, float]:
        """Registered metrics of the whole validation split (gathered from every process under DDP); an undefined
        value (e.g. AUC with one class present) is logged as NaN and never counts as an improvement."""
        logits = torch.cat([k[0] for k in kept]) if kept else torch.zeros(0, 1)
        y = torch.cat([k[1] for k in kept]) if kept else torch.zeros(0, dtype=torch.long)
        if self.dist is not None and self.dist.world_size > 1:
            logits, y = self.dist.gather_rows(logits), self.dist.gather_rows(y)
        if not len(y):
            return {name: float("nan") for name in self.val_metrics}
        if self.scorer is not None:
            return self.scorer(logits.numpy().astype(np.float64), y.numpy())
        probs = softmax(logits.numpy().astype(np.float64))
        return {name: compute(name, y.numpy(), probs, self.positive_index, self.threshold)
                for name in self.val_metrics}

    def _reduce(self, sums: dict[str, float], seen: int) -> dict[str, float]:
        """Per-sample means; under DDP the sums and counts are all-reduced first, so every rank agrees."""
        if self.dist is not None and self.dist.world_size > 1:
            values = self.dist.all_reduce_sum([*sums.values(), float(seen)])
            sums, seen = dict(zip(sums, values[:-1])), int(values[-1])
        return {k: v / max(seen, 1) for k, v in sums.items()}
