"""Public API: ``train(config)`` builds a run folder; ``evaluate(run)`` scores it on any labelled data."""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from biolens.config import RunConfig, load_config, validate_config
from biolens.contract import InputContract
from biolens.deploy.bundle import load_weights, write_manifest
from biolens.errors import ConfigError
from biolens.evaluation.metrics import classification_metrics, decide
from biolens.models.inference import predict_logits, softmax
from biolens.training.callbacks import EarlyStopping, EpochLogger, HistoryWriter, ModelCheckpoint, ProgressBar
from biolens.training.setup import make_run_dir, resolve_device, seed_everything
from biolens.training.tasks import Task, make_task
from biolens.training.trainer import Callback, Trainer

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    run_dir: Path
    metrics: dict[str, Any]
    history: list[dict[str, Any]]
    data_report: dict[str, Any]


def _as_config(config: RunConfig | dict | str | Path) -> RunConfig:
    if isinstance(config, RunConfig):
        return config
    if isinstance(config, dict):
        return validate_config(config)
    return load_config(config)


def score(model: nn.Module, batches: Iterable[dict[str, torch.Tensor]], contract: InputContract) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities ``(N, C)`` in data order (temperature applied) and decisions ``(N,)``."""
    logits, index = predict_logits(model, batches)
    probs = np.empty_like(logits)
    probs[index] = softmax(logits, contract.temperature)
    return probs, decide(probs, contract.positive_index, contract.threshold)


def write_predictions(path: Path, ids: np.ndarray, y: np.ndarray | None, probs: np.ndarray,
                      pred: np.ndarray, contract: InputContract) -> None:
    names = contract.class_names
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id"] + (["label"] if y is not None else []) + [f"p_{c}" for c in names] + ["prediction"])
        for i in range(len(ids)):
            w.writerow([ids[i]] + ([names[y[i]]] if y is not None else [])
                       + [f"{p:.6f}" for p in probs[i]] + [names[pred[i]]])


def train(
    config: RunConfig | dict | str | Path,
    *,
    progress: bool = False,
    overwrite: bool = False,
    callbacks: list[Callback] | None = None,
) -> TrainResult:
    """Train a sequence classifier and write a complete run folder (config.out).

    All data and configuration checks happen before anything is written: bad input raises a BiolensError and
    leaves no run folder behind.
    """
    cfg = _as_config(config)
    if cfg.out is None:
        raise ConfigError("no output folder; pass --out runs/NAME (or out: in the config)")
    seed_everything(cfg.train.seed, cfg.train.deterministic)
    device = resolve_device(cfg.train.device)
    task = make_task(cfg)
    task.prepare()
    model = task.build_model()
    cfg = cfg.model_copy(update={"data": task.resolved_data_config(),
                                 "model": cfg.model.model_copy(update={"params": model.config})})
    contract = task.contract()
    run_dir = make_run_dir(cfg.out, overwrite=overwrite)
    file_log = logging.FileHandler(run_dir / "log.txt")
    file_log.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger("biolens").addHandler(file_log)
    try:
        return _train_into(cfg, task, model, contract, run_dir, device, progress, callbacks or [])
    finally:
        logging.getLogger("biolens").removeHandler(file_log)
        file_log.close()


def _train_into(cfg: RunConfig, task: Task, model: nn.Module, contract: InputContract, run_dir: Path,
                device: torch.device, progress: bool, extra: list[Callback]) -> TrainResult:
    (run_dir / "config.yaml").write_text(cfg.to_yaml())
    contract.save(run_dir / "contract.json")
    (run_dir / "data_report.json").write_text(json.dumps(task.report(), indent=2) + "\n")
    with open(run_dir / "filtered.tsv", "w") as fh:
        fh.write("id\tlocation\treason\n")
        fh.writelines(f"{r['id']}\t{r['location']}\t{r['reason']}\n" for r in task.dropped())

    n_params = sum(p.numel() for p in model.parameters())
    log.info("model %s: %s parameters; device %s; train/val/test = %d/%d/%d", cfg.model.name, f"{n_params:,}",
             device, *(task.size(s) for s in ("train", "val", "test")))
    model.to(device)
    train_b = task.batches("train", train=True, device=device)
    val_b = task.batches("val", train=False, device=device)
    t = cfg.train
    optimizer = torch.optim.AdamW(model.parameters(), lr=t.lr, weight_decay=t.weight_decay)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min" if t.monitor.endswith("loss") else "max", factor=t.plateau_factor, patience=t.plateau_patience
    )
    checkpoint = ModelCheckpoint(run_dir, t.monitor)
    callbacks: list[Callback] = [checkpoint, HistoryWriter(run_dir), EpochLogger()]
    if t.early_stopping_patience:
        callbacks.append(EarlyStopping(t.monitor, t.early_stopping_patience))
    if progress:
        callbacks.append(ProgressBar(len(train_b)))
    loss_fn = nn.CrossEntropyLoss(label_smoothing=t.label_smoothing)
    trainer = Trainer(model, optimizer, loss_fn, scheduler=scheduler, max_epochs=t.epochs,
                      grad_clip=t.grad_clip, callbacks=callbacks + extra, monitor=t.monitor)
    history = trainer.fit(train_b, val_b)

    load_weights(model, run_dir / "model.safetensors")
    metrics: dict[str, Any] = {"best_epoch": checkpoint.best_epoch}
    for split in ("val", "test"):
        y = task.labels(split)
        probs, pred = score(model, task.batches(split, train=False, device=device, batch_size=256), contract)
        metrics[split] = classification_metrics(y, probs, contract.class_names, contract.positive_class,
                                                contract.threshold)
        if split == "test":
            write_predictions(run_dir / "predictions.csv", task.ids(split), y, probs, pred, contract)
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    write_manifest(run_dir, dataset_fingerprint=task.fingerprint())
    log.info("test accuracy %.4f (best epoch %d); run folder %s", metrics["test"]["accuracy"], checkpoint.best_epoch, run_dir)
    return TrainResult(run_dir, metrics, history, task.report())


def evaluate(run: str | Path, data: str | list[str] | None = None, *, split: str = "test", batch_size: int = 256,
             device: str = "auto") -> dict[str, Any]:
    """Metrics of a trained run on labelled data: a file, or (default) the run's own ``split``."""
    from biolens.deploy.predictor import Predictor

    predictor = Predictor.load(run, device=device)
    if data is None:
        if split not in ("train", "val", "test"):
            raise ConfigError(f"unknown split {split!r}; expected train, val or test")
        task = make_task(predictor.config)
        task.prepare()
        y = task.labels(split)
        probs, _ = score(predictor.model, task.batches(split, train=False, device=predictor.device,
                                                        batch_size=batch_size), predictor.contract)
    else:
        _, x, lengths, y = predictor.read(data, require_labels=True)
        probs = predictor.predict_proba(x, lengths, batch_size=batch_size)
    c = predictor.contract
    return classification_metrics(y, probs, c.class_names, c.positive_class, c.threshold)
