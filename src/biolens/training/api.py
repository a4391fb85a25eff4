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
from biolens.training import distributed
from biolens.training.build import build_trainer, configure_batches, preflight, shard, write_summary
from biolens.training.checklist import pretraining_checklist, save_checklist
from biolens.training.setup import make_run_dir, resolve_device, seed_everything
from biolens.training.state import load_checkpoint
from biolens.training.tasks import Task, make_task
from biolens.training.trainer import Callback, TrainingError

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
    probs = softmax(predict_logits(model, batches), contract.temperature)
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
    config: RunConfig | dict | str | Path | None = None,
    *,
    progress: bool = False,
    overwrite: bool = False,
    callbacks: list[Callback] | None = None,
    resume: str | Path | None = None,
    force: bool = False,
) -> TrainResult:
    """Train a sequence classifier and write a complete run folder (config.out).

    All data and configuration checks happen before anything is written: bad input raises a BiolensError and
    leaves no run folder behind. ``resume=RUN`` continues RUN from ``checkpoints/last.pt`` exactly (model,
    optimizer, scheduler, scaler, RNG states, sampler position, history); ``config`` defaults to RUN's own and
    may change only the train section (e.g. more epochs). Under ``torchrun`` every process calls this.
    The pre-training checklist (guide 7.4) runs before any folder is written; a failed check raises unless
    ``force``; its results go to ``checklist.json``.
    """
    if resume is not None:
        resume = Path(resume)
        if not (resume / "config.yaml").is_file():
            raise ConfigError(f"--resume {resume}: not a run folder (no config.yaml); give the --out folder of a run")
        cfg = load_config(resume / "config.yaml") if config is None else _as_config(config)
        cfg = cfg.model_copy(update={"out": str(resume)})
    elif config is None:
        raise ConfigError("no configuration; pass a config (or --data) or resume=RUN")
    else:
        cfg = _as_config(config)
    if cfg.out is None:
        raise ConfigError("no output folder; pass --out runs/NAME (or out: in the config)")
    seed_everything(cfg.train.seed, cfg.train.deterministic)
    dist, device = distributed.init(resolve_device(cfg.train.device))
    task = make_task(cfg)
    task.prepare()
    model = task.build_model()
    cfg = cfg.model_copy(update={"data": task.resolved_data_config(),
                                 "model": task.cfg.model.model_copy(update={"params": model.config})})
    contract = task.contract()
    state = _resume_state(resume, cfg, device) if resume is not None else None
    preflight(cfg, model, task.size("train"), task.labels("train"), len(contract.class_names), dist)
    checklist = pretraining_checklist(cfg, task, model, force=force)
    if cfg.train.sampler == "weighted" or dist.world_size > 1:  # can this task's batches do it? ask before any folder
        configure_batches(task.batches("train", train=True, device=torch.device("cpu")), cfg.train,
                          task.labels("train"), dist)
    if dist.is_main and resume is None:
        run_dir = make_run_dir(cfg.out, overwrite=overwrite)
    run_dir = Path(cfg.out)
    dist.barrier()
    file_log = logging.FileHandler(run_dir / "log.txt") if dist.is_main else logging.NullHandler()
    file_log.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger("biolens").addHandler(file_log)
    try:
        if dist.is_main:
            save_checklist(checklist, run_dir, force)
        return _train_into(cfg, task, model, contract, run_dir, device, progress,
                           (callbacks or []) + task.callbacks(model), dist, state)
    finally:
        logging.getLogger("biolens").removeHandler(file_log)
        file_log.close()
        distributed.shutdown()


def _resume_state(run: Path, cfg: RunConfig, device: torch.device) -> dict[str, Any]:
    """The checkpoint to resume from, after checking the data and model match the run's own."""
    saved = load_config(run / "config.yaml")
    for section in ("data", "model"):
        if getattr(saved, section) != getattr(cfg, section):
            raise ConfigError(f"--resume {run}: the {section} section differs from {run}/config.yaml; resume "
                              f"with the run's own {section} (only train options such as --epochs may change)")
    may_change = {"epochs", "early_stopping_patience", "device", "tensorboard", "checkpoint_every", "compile"}
    if saved.train.schedule in ("cosine", "warmup_cosine", "onecycle"):
        may_change.discard("epochs")  # these schedules are laid out over the whole run at the start
    old, new = saved.train.model_dump(), cfg.train.model_dump()
    changed = [k for k in new if new[k] != old.get(k) and k not in may_change]
    if changed:
        raise ConfigError(f"--resume {run}: train.{changed[0]} differs from {run}/config.yaml ({old.get(changed[0])!r}); "
                          f"an exact resume keeps it (changeable: {', '.join(sorted(may_change))})")
    return load_checkpoint(run / "checkpoints" / "last.pt", map_location=device)


def _train_into(cfg: RunConfig, task: Task, model: nn.Module, contract: InputContract, run_dir: Path,
                device: torch.device, progress: bool, extra: list[Callback], dist: distributed.Dist | None = None,
                state: dict[str, Any] | None = None) -> TrainResult:
    dist = dist or distributed.Dist()
    if dist.is_main:
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
    trainer, checkpoint = build_trainer(cfg, model, train_b, task.labels("train"), len(contract.class_names),
                                        run_dir=run_dir, device=device, dist=dist, progress=progress, extra=extra)
    shard(val_b, cfg.train.batch_size, dist)
    if state is not None:
        trainer.load_state_dict(state)
        log.info("resumed %s at epoch %d, step %d", run_dir, trainer.epoch, trainer.step)
    try:
        history = trainer.fit(train_b, val_b)
    except TrainingError as e:
        raise TrainingError(f"{e}; the last good checkpoint is {run_dir / 'checkpoints' / 'last.pt'}") from None
    if not dist.is_main:
        return TrainResult(run_dir, {}, history, task.report())
    write_summary(cfg, trainer, dist, run_dir, resumed=state is not None)

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
