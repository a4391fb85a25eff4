"""Turn a resolved ``TrainConfig`` into a Trainer: optimizer, schedule, loss, sampler and callbacks.

``workflows/train.py`` calls this; it is also what ``lr_find`` and the benchmarks use, so every entry point trains
the same way.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from biolens.config import RunConfig, TrainConfig
from biolens.data.sampling import balanced_weights
from biolens.errors import ConfigError
from biolens.data.targets import effective_loss, fit_standardization, positive_weights
from biolens.metrics import check_monitor, compute_target, monitor_direction
from biolens.training.callbacks import (EarlyStopping, EpochLogger, HistoryWriter, LRMonitor, ModelCheckpoint,
                                        ProgressBar, StagedUnfreeze, WeightEMA)
from biolens.training.plots import fit_verdict, plot_history
from biolens.training.distill import DistillationLoss
from biolens.training.distributed import Dist, wrap
from biolens.training.losses import make_loss
from biolens.training.target_losses import LabelSetLoss, MaskedBCELoss, MaskedRegressionLoss
from biolens.training.optim import make_optimizer
from biolens.training.schedules import make_scheduler
from biolens.training.tracking import check_tracking, tracking_callbacks
from biolens.training.trainer import Callback, Trainer

log = logging.getLogger(__name__)

def configure_batches(batches: Any, t: TrainConfig, y: np.ndarray, dist: Dist) -> None:
    """Weighted sampling and distributed sharding on a task's train batches (attributes of SequenceBatches)."""
    if t.sampler == "weighted":
        if np.asarray(y).dtype.kind == "f":
            raise ConfigError("train.sampler 'weighted' draws classes equally often, and regression or multi-label "
                              "targets have no classes: use shuffle (multi-label: train.class_weights=inverse weighs "
                              "each label's positives instead)")
        if not hasattr(batches, "sample_weights"):
            raise ConfigError(f"train.sampler 'weighted' is not supported by {type(batches).__name__}; use shuffle")
        batches.sample_weights = torch.as_tensor(balanced_weights(y), dtype=torch.float64)
    shard(batches, t.batch_size, dist)


def shard(batches: Any, batch_size: int, dist: Dist) -> None:
    if dist.world_size == 1:
        return
    if batch_size % dist.world_size:
        raise ConfigError(f"train.batch_size {batch_size} is the global batch and must divide by the "
                          f"{dist.world_size} processes; pick a multiple of {dist.world_size}")
    if not hasattr(batches, "num_replicas"):
        raise ConfigError(f"--devices: {type(batches).__name__} cannot be sharded across processes; use one device")
    batches.rank, batches.num_replicas = dist.rank, dist.world_size


def build_loss(t: TrainConfig, y_train: np.ndarray, num_classes: int, target_type: str = "classification"
               ) -> nn.Module:
    """The loss of ``train.loss`` for the target type: classification losses from the train class counts;
    regression (MSE, Huber, Poisson) on targets standardized with the train split's mean and std; multi-label BCE per
    label with positive weights from the train split (``train.class_weights``). Missing targets (NaN) are masked."""
    loss = effective_loss(t.loss, target_type)
    if target_type == "regression":
        if t.class_weights != "none":
            raise ConfigError("train.class_weights weighs classes or labels; regression targets have none: set "
                              "train.class_weights=none")
        names = [f"target {j + 1}" for j in range(num_classes)]
        mean, std = fit_standardization(y_train, names, "log" if loss == "poisson" else "identity",
                                        t.standardize_targets)
        return MaskedRegressionLoss(loss, mean, std, t.huber_delta)
    if target_type == "multilabel":
        weights = None if t.class_weights == "none" else positive_weights(y_train, t.class_weights, t.effective_beta)
        return MaskedBCELoss(weights, t.label_smoothing)
    counts = np.bincount(y_train, minlength=num_classes)
    return make_loss(t.loss, counts, label_smoothing=t.label_smoothing, weights=t.class_weights,
                     beta=t.effective_beta, focal_gamma=t.focal_gamma, focal_alpha=t.focal_alpha)


def resolved_target(cfg: RunConfig) -> str:
    """The run's target type (``data.target`` as ``prepare`` resolved it; ``auto`` only before that: classification)."""
    return "classification" if cfg.data.target == "auto" else cfg.data.target


def target_scorer(target_type: str, names: list[str], loss_fn: nn.Module, at_least_one: bool = False) -> Any:
    """``(logits, y) → {metric: value}`` for regression and multi-label val metrics (``train.monitor``): outputs in
    the targets' units (the loss's own standardization undone) or label probabilities, then the metric registry
    (multi-label decisions at 0.5, never an empty set with ``at_least_one``, as the contract will decide)."""
    def score(logits: np.ndarray, y: np.ndarray) -> dict[str, float]:
        if target_type == "regression":
            mean, std = loss_fn.mean.cpu().numpy(), loss_fn.std.cpu().numpy()
            out = np.exp(np.clip(logits, -80, 80)) * std if loss_fn.kind == "poisson" else logits * std + mean
        else:
            out = 0.5 * (1.0 + np.tanh(0.5 * logits))
        y = np.asarray(y, dtype=np.float64).reshape(out.shape)
        return {name: compute_target(name, target_type, y, out, None, at_least_one) for name in names}
    return score


def build_trainer(cfg: RunConfig, model: nn.Module, train_batches: Any, y_train: np.ndarray, num_classes: int, *,
                  run_dir: Path | None, device: torch.device, dist: Dist, progress: bool = False,
                  extra: list[Callback] = (), positive_index: int | None = None
                  ) -> tuple[Trainer, ModelCheckpoint | None]:
    """A Trainer wired as the config says; callbacks that write files only on rank 0 (``run_dir`` set).

    ``train.monitor`` may name any registered metric (``val_roc_auc``, ``val_balanced_accuracy``…): the trainer then
    computes it on val every epoch, and checkpoints, early stopping and the plateau schedule follow it."""
    t = cfg.train
    target_type = resolved_target(cfg)
    wanted = check_monitor(t.monitor, positive_index is not None, target_type)
    configure_batches(train_batches, t, y_train, dist)
    optimizer = make_optimizer(t.optimizer, model, lr=t.lr, weight_decay=t.weight_decay, momentum=t.momentum,
                               lr_mult=t.lr_mult)
    steps = -(-len(train_batches) // t.accumulate)
    mode = monitor_direction(t.monitor, t.monitor_mode)
    scheduler = make_scheduler(t.schedule, optimizer, epochs=t.epochs, steps_per_epoch=steps, mode=mode,
                               plateau_factor=t.plateau_factor, plateau_patience=t.plateau_patience,
                               step_size=t.step_size, gamma=t.step_gamma, warmup_epochs=t.warmup_epochs,
                               min_lr=t.min_lr)
    loss_fn = build_loss(t, y_train, num_classes, target_type).to(device)
    label_sets = getattr(model, "label_set_head", None)
    # the set head and the per-label head learn beside the mixed output (multi-label targets only: the task's
    # build_model refuses the head for other target types)
    if label_sets is not None:
        loss_fn = LabelSetLoss(loss_fn, label_sets)
    if cfg.model.teacher:  # the batches carry the teacher's logits (workflows/train wraps them in TeacherBatches)
        loss_fn = DistillationLoss(loss_fn, t.distill_temperature, t.distill_alpha)
    if getattr(train_batches, "channels_last", False):  # image batches on CUDA: NHWC model to match (cuDNN fast path)
        model.to(memory_format=torch.channels_last)
    net = wrap(model, dist, device)
    if t.compile:
        if not hasattr(torch, "compile"):
            raise ConfigError(f"train.compile needs torch >= 2.0 (found {torch.__version__}); set train.compile=false")
        net = torch.compile(net)  # compiled lazily on the first batch; failures there raise a TrainingError
    callbacks: list[Callback] = []
    checkpoint = None
    if run_dir is not None and dist.is_main:
        checkpoint = ModelCheckpoint(run_dir, t.monitor, mode=mode, every=t.checkpoint_every,
                                     config=cfg.model_dump(mode="json"))
        callbacks.append(checkpoint)
    if t.ema is not None:  # after the checkpoint: the best-model file gets the averaged weights
        callbacks.append(WeightEMA(t.ema))
    if run_dir is not None and dist.is_main:
        callbacks += [HistoryWriter(run_dir), LRMonitor(run_dir), EpochLogger()]
        callbacks += tracking_callbacks(cfg, run_dir)  # TensorBoard, MLflow (train.tensorboard, train.mlflow)
        if progress:
            callbacks.append(ProgressBar(steps))
    if t.early_stopping_patience:
        callbacks.append(EarlyStopping(t.monitor, t.early_stopping_patience, mode=mode))
    if cfg.model.head_epochs:
        callbacks.append(StagedUnfreeze(cfg.model.head_epochs, cfg.model.freeze_until))
    trainer = Trainer(model, optimizer, loss_fn, scheduler=scheduler, max_epochs=t.epochs, grad_clip=t.grad_clip,
                      callbacks=callbacks + list(extra), monitor=t.monitor, precision=t.precision,
                      accumulate=t.accumulate, net=net, dist=dist, val_metrics=[wanted] if wanted else [],
                      positive_index=positive_index,
                      scorer=target_scorer(target_type, [wanted], loss_fn, bool(t.at_least_one_label))
                      if wanted and target_type != "classification" else None)
    return trainer, checkpoint


def write_summary(cfg: RunConfig, trainer: Trainer, dist: Dist, run_dir: Path, resumed: bool,
                  linear_term: dict[str, Any] | None = None, neighbors: dict[str, Any] | None = None
                  ) -> dict[str, Any]:
    """``train_summary.json`` (the choices that shaped training, the fit verdict and, when a linear term started
    at the ridge solution or neighbour transfer was fitted on val, those fits) and ``plots/history.png``."""
    t = cfg.train
    lr_rows = next((cb.rows for cb in trainer.callbacks if isinstance(cb, LRMonitor)), None)
    if trainer.history:
        plot_history(trainer.history, run_dir / "plots" / "history.png", lr_rows)
    summary = {
        "fit": fit_verdict(trainer.history),
        "loss": t.loss, "class_weights": t.class_weights, "sampler": t.sampler,
        "optimizer": t.optimizer, "schedule": t.schedule, "schedule_interval": trainer.interval,
        "precision": trainer.precision, "accumulate": t.accumulate,
        "effective_batch_size": t.batch_size * t.accumulate, "world_size": dist.world_size,
        "compile": t.compile, "deterministic": t.deterministic, "seed": t.seed,
        "epochs_run": trainer.epoch, "steps": trainer.step, "resumed": resumed,
    }
    if linear_term is not None:
        summary["linear_term_ridge"] = linear_term
    if neighbors is not None:
        summary["neighbor_transfer"] = neighbors
    (run_dir / "train_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    fit = summary["fit"]
    log.info("fit: %s (val − train loss %s): %s", fit["verdict"], fit["gap"], fit.get("advice", ""))
    return summary


def preflight(cfg: RunConfig, model: nn.Module, n_train: int, y_train: np.ndarray, num_classes: int,
              dist: Dist) -> None:
    """Build the optimizer, schedule and loss once on throwaway objects, so a bad option raises a ConfigError
    before any run folder exists."""
    t = cfg.train
    check_monitor(t.monitor, num_classes == 2, resolved_target(cfg))
    if dist.world_size > 1 and t.batch_size % dist.world_size:
        shard(object(), t.batch_size, dist)  # raises with the fix
    opt = make_optimizer(t.optimizer, model, lr=t.lr, weight_decay=t.weight_decay, momentum=t.momentum,
                         lr_mult=t.lr_mult)
    batches = -(-n_train // t.batch_size)
    make_scheduler(t.schedule, opt, epochs=t.epochs, steps_per_epoch=-(-batches // t.accumulate),
                   warmup_epochs=t.warmup_epochs)
    build_loss(t, y_train, num_classes, resolved_target(cfg))
    if dist.is_main:
        check_tracking(cfg)  # tensorboard / mlflow installed, the MLflow URI well-formed
