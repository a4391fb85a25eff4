"""``biolens.train``: from data (a file, a bundled set or in-memory data) to a complete run folder.

Everything is checked before anything is written: bad input raises a BiolensError naming the file, line or config
field, and leaves no run folder behind. The result carries the metrics, the run folder and a ready ``Predictor``.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from biolens.bundle import (check_run_dir_writable, load_weights, make_run_dir, remove_temporaries, save_weights,
                            write_manifest)
from biolens.config import DataConfig, ModelConfig, RunConfig, TrainConfig, as_config, load_config, validate_config
from biolens.contract import InputContract
from biolens.devices import resolve_device, seed_everything
from biolens.errors import BiolensError, ConfigError
from biolens.evaluation.multilabel import shared_threshold
from biolens.io import atomic_write_text, write_json
from biolens.data.targets import effective_loss
from biolens.metrics import evaluation_metrics, summary_line
from biolens.models.inference import predict_logits
from biolens.models.label_sets import observed_label_sets
from biolens.tasks import Predictor, Task, codec_for, make_task, write_predictions
from biolens.training import distributed
from biolens.doctor.advise import preset_after_data, preset_before_data
from biolens.training.build import build_loss, build_trainer, configure_batches, preflight, shard, write_summary
from biolens.training.linear_init import fit_linear_term
from biolens.training.neighbors import fit_neighbor_transfer
from biolens.training.lr_finder import auto_lr, save_lr_find
from biolens.training.checklist import pretraining_checklist, save_checklist
from biolens.training.distill import TeacherBatches, load_teacher
from biolens.training.tracking import finish_tracking
from biolens.training.trainer import Callback, TrainingError
from biolens.workflows.distill import distillation_summary
from biolens.workflows.inputs import Staged, is_in_memory, stage
from biolens.workflows.resume import input_files, resume_state, set_aside

log = logging.getLogger(__name__)

SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}


@dataclass
class TrainResult:
    """What ``train`` made: the run folder, val/test metrics, the epoch history, the data report and a predictor."""

    run_dir: Path
    metrics: dict[str, Any]
    history: list[dict[str, Any]]
    data_report: dict[str, Any]
    _predictor: Predictor | None = field(default=None, repr=False)

    @property
    def predictor(self) -> Predictor:
        """The trained model, loaded from the run folder (checksums verified), ready to ``predict``."""
        if self._predictor is None:
            self._predictor = Predictor.load(self.run_dir)
        return self._predictor

    def predict(self, inputs: Any, **kwargs: Any) -> pd.DataFrame:
        """``self.predictor.predict(inputs)``: sequences, files, or images (see ``Predictor.predict``)."""
        return self.predictor.predict(inputs, **kwargs)

    @property
    def test(self) -> dict[str, Any]:
        """Test-split metrics at the run's threshold."""
        return self.metrics.get("test", {})


def score(model: nn.Module, batches: Iterable[dict[str, torch.Tensor]], contract: InputContract) -> np.ndarray:
    """Probabilities ``(N, C)`` in data order (temperature applied)."""
    return contract.probabilities(predict_logits(model, batches))


def _field_paths() -> dict[str, list[tuple[str, ...]]]:
    """Every config field by its own name → its dotted path(s), nested sections included (image_size →
    data.image.image_size)."""
    out: dict[str, list[tuple[str, ...]]] = {}

    def walk(cls: type, path: tuple[str, ...]) -> None:
        for name, info in cls.model_fields.items():
            sub = info.annotation if isinstance(info.annotation, type) and hasattr(info.annotation, "model_fields") else None
            if sub is not None:
                walk(sub, path + (name,))
            else:
                out.setdefault(name, []).append(path + (name,))

    for section, cls in SECTIONS.items():
        walk(cls, (section,))
    return out


def build_config(config: RunConfig | dict | str | Path | None, data: Any = None, model: str | None = None,
                 epochs: int | None = None, out: str | Path | None = None, **overrides: Any) -> RunConfig:
    """A RunConfig from a config (object, nested dict or YAML path) and keyword overrides.

    ``overrides`` are config fields by name (``lr=3e-4``, ``batch_size=32``, ``image_size=64``, ``params={...}``),
    or whole sections (``train={"lr": 3e-4}``); a name that is no field of data, model or train is a ConfigError
    listing the valid ones."""
    base = as_config(config).model_dump(mode="json", exclude_unset=True) if config is not None else {}
    raw: dict[str, Any] = {k: dict(base.get(k) or {}) for k in SECTIONS}
    paths = _field_paths()
    for key, value in overrides.items():
        if key in SECTIONS and isinstance(value, dict):
            raw[key].update(value)
            continue
        where = paths.get(key)
        if not where:
            raise ConfigError(f"unknown option {key!r}; options are the fields of data, model and train: "
                              f"{', '.join(sorted(paths))}")
        if len(where) > 1:
            raise ConfigError(f"option {key!r} is ambiguous ({', '.join('.'.join(p) for p in where)}); pass the "
                              f"section, e.g. {where[0][0]}={{{key!r}: ...}}")
        node = raw
        for part in where[0][:-1]:
            node = node.setdefault(part, {})
        node[where[0][-1]] = value
    if data is not None:
        raw["data"]["path"] = data
    if model is not None:
        raw["model"]["name"] = model
    if epochs is not None:
        raw["train"]["epochs"] = epochs
    raw = {k: v for k, v in raw.items() if v}
    raw["out"] = str(out) if out is not None else base.get("out")
    return validate_config(raw)


def train(
    config: RunConfig | dict | str | Path | None = None,
    *,
    data: Any = None,
    labels: Any = None,
    splits: Any = None,
    model: str | None = None,
    epochs: int | None = None,
    out: str | Path | None = None,
    progress: bool = False,
    overwrite: bool = False,
    callbacks: list[Callback] | None = None,
    resume: str | Path | None = None,
    force: bool = False,
    **overrides: Any,
) -> TrainResult:
    """Train a model and write a complete run folder.

    From a notebook::

        result = biolens.train(data=df, epochs=10)            # df: sequence and label columns; out=None: a temp folder
        result = biolens.train(data=(seqs, labels), model="motif_cnn", lr=3e-4)
        result = biolens.train(data=images, labels=y)         # numpy (N, H, W[, C]) images
        result = biolens.train("config.yaml", out="runs/x")   # or a RunConfig / nested dict
        result.predict(["ACGT..."]); result.metrics["test"]["accuracy"]; result.run_dir

    Args:
        config: a RunConfig, nested dict or YAML path (optional when ``data`` is given).
        data: a path, ``builtin:NAME``, ``LABEL=FILE`` entries, or in-memory data: a pandas DataFrame, a list of
            sequences (with ``labels``), a ``(sequences, labels)`` pair, or image arrays (with ``labels``).
        labels, splits: for in-memory lists and arrays: one label (and optionally train/val/test) per item.
        model, epochs, out: shortcuts for ``model.name``, ``train.epochs`` and ``out``; ``out=None`` trains into a
            new temporary folder (``result.run_dir``).
        overrides: config fields by name (``lr=3e-4``) or sections (``train={...}``).
        resume: continue RUN from ``checkpoints/last.pt`` exactly (model, optimizer, scheduler, scaler, RNG states,
            sampler position, history); ``config`` defaults to RUN's own and may change only the train section.
        force: train even when a pre-training check (guide 7.4) fails; the results go to ``checklist.json``.

    Under ``torchrun`` every process calls this.
    """
    staged: Staged | None = None
    if resume is not None:
        resume = Path(resume)
        if not (resume / "config.yaml").is_file():
            raise ConfigError(f"resume {resume}: not a run folder (no config.yaml); give the out folder of a run")
        cfg = load_config(resume / "config.yaml") if config is None else as_config(config)
        cfg = cfg.model_copy(update={"out": str(resume)})
    elif config is None and data is None:
        raise ConfigError("no data: pass data= (a file, builtin:NAME or in-memory data), a config, or resume=RUN")
    else:
        if is_in_memory(data):
            d = (as_config(config).data if config is not None else DataConfig(path="-"))
            staged = stage(data, labels, splits=splits, seq_col=overrides.get("seq_col", d.seq_col),
                           label_col=overrides.get("label_col", d.label_col))
            data = str(staged.path)
        elif labels is not None or splits is not None:
            raise ConfigError("labels= and splits= go with in-memory data; for files use data.labels (a labels CSV) "
                              "or split columns")
        try:
            cfg = build_config(config, data, model, epochs, out, **overrides)
        except BaseException:
            if staged is not None:
                staged.discard()
            raise
    if cfg.out is None:
        cfg = cfg.model_copy(update={"out": tempfile.mkdtemp(prefix="biolens-run-")})
        log.info("no out folder given: training into %s", cfg.out)
    try:
        return _train(cfg, resume, staged, progress=progress, overwrite=overwrite, callbacks=callbacks, force=force)
    finally:
        if staged is not None:
            staged.discard()  # moved into the run on success; removed when training failed


def _train(cfg: RunConfig, resume: Path | None, staged: Staged | None, *, progress: bool, overwrite: bool,
           callbacks: list[Callback] | None, force: bool) -> TrainResult:
    if cfg.model.name == "ensemble":
        raise ConfigError("model.name 'ensemble' is not trained: build an ensemble from trained runs with "
                          "`biolens ensemble RUN… --out DIR`, or train one with `biolens cv`; pick another model.name "
                          "(biolens models)")
    if resume is None:  # a folder that cannot be (re)made fails now, before the data are read
        check_run_dir_writable(cfg.out, overwrite, keep=input_files(cfg.data))
    seed_everything(cfg.train.seed, cfg.train.deterministic)
    dist, device = distributed.init(resolve_device(cfg.train.device))
    task = make_task(cfg)
    cfg, why = preset_before_data(cfg, task.kind)
    task = make_task(cfg)
    task.prepare()
    if cfg.train.evaluate_test and task.size("test") == 0:
        raise ConfigError(f"data.split.assignment {cfg.data.split.assignment}: it assigns no test rows, so there is "
                          "no test split to score; add test rows or set train.evaluate_test=false")
    cfg, after = preset_for(cfg, task, device.type)
    why += after
    for reason in why:
        log.info("preset auto: %s", reason)
    task.cfg = cfg.model_copy(update={"model": cfg.model.model_copy(update={"name": task.cfg.model.name})})
    model = task.build_model()
    lr_test = None
    if cfg.train.lr == "auto":
        lr, lr_test = auto_lr(cfg.train, model.to(device), task.batches("train", train=True, device=device),
                              build_loss(cfg.train, task.labels("train"), len(task.class_names),
                                         getattr(task, "target_type", "classification")).to(device))
        cfg = cfg.model_copy(update={"train": cfg.train.model_copy(update={"lr": lr})})
        task.cfg = task.cfg.model_copy(update={"train": cfg.train})
        why.append(f"lr {lr:.2e} from the LR range test (lr_find.png)")
    cfg = cfg.model_copy(update={"data": task.resolved_data_config(),
                                 "model": task.cfg.model.model_copy(update={"params": model.config}),
                                 "train": cfg.train.model_copy(update={  # ce → mse (regression), bce (multi-label)
                                     "loss": effective_loss(cfg.train.loss, task.target_type)})})
    contract = task.contract()
    if contract.target_type == "multilabel" and cfg.train.at_least_one_label is None:
        cfg = cfg.model_copy(update={"train": cfg.train.model_copy(update={
            "at_least_one_label": contract.at_least_one_label})})
        log.info("label sets: %s", "never empty (every train sample carries a label): where no label passes its "
                 "threshold, the most probable one is assigned (train.at_least_one_label=false turns this off)"
                 if contract.at_least_one_label else "may be empty (some train samples carry no label)")
    if cfg.train.tta:
        contract.tta = task.tta_views()
        if not contract.tta:
            raise ConfigError("train.tta is on but the training augmentation used no view to average over (DNA/RNA: "
                              "data.augment.reverse_complement; images: a flipping data.image.augment preset); turn "
                              "train.tta off or the augmentation on")
    teacher = load_teacher(cfg.model.teacher, contract, device) if cfg.model.teacher else None
    state = resume_state(resume, cfg, device) if resume is not None else None
    if resume is not None and not os.access(resume, os.W_OK | os.X_OK):
        raise ConfigError(f"resume {resume}: the run folder is read-only; make it writable to continue training")
    preflight(cfg, model, task.size("train"), task.labels("train"), len(contract.class_names), dist)
    checklist = pretraining_checklist(cfg, task, model, force=force)
    if cfg.train.sampler == "weighted" or dist.world_size > 1:  # can this task's batches do it? ask before any folder
        configure_batches(task.batches("train", train=True, device=torch.device("cpu")), cfg.train,
                          task.labels("train"), dist)
    if dist.is_main and resume is None:
        make_run_dir(cfg.out, overwrite=overwrite, keep=input_files(cfg.data))
    run_dir = Path(cfg.out)
    if staged is not None and dist.is_main:
        cfg = cfg.model_copy(update={"data": cfg.data.model_copy(update={"path": str(staged.move_into(run_dir))})})
    dist.barrier()
    file_log = logging.FileHandler(run_dir / "log.txt") if dist.is_main else logging.NullHandler()
    file_log.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger("biolens").addHandler(file_log)
    try:
        if dist.is_main:
            save_checklist(checklist, run_dir, force)
            if lr_test is not None:
                save_lr_find(lr_test, run_dir / "plots")
            if why:
                write_json(run_dir / "preset.json", {"preset": cfg.train.preset, "choices": why})
        return _train_into(cfg, task, model, contract, run_dir, device, progress, callbacks or [], dist, state,
                           teacher=teacher)
    except Exception as e:
        note = set_aside(run_dir) if dist.is_main and resume is None else None
        if note is not None and isinstance(e, BiolensError):
            raise type(e)(f"{e}; {note}") from None
        raise
    finally:
        logging.getLogger("biolens").removeHandler(file_log)
        file_log.close()
        distributed.shutdown()


def preset_for(cfg: RunConfig, task: Task, device_type: str) -> tuple[RunConfig, list[str]]:
    """``train.preset=auto``'s choices that depend on the prepared data (``preset_after_data``) for ``task``."""
    spec, lengths = task.input_spec(), (task.report().get("lengths") or {}).get("train") or {}
    target_type = getattr(task, "target_type", "classification")
    multilabel = target_type == "multilabel"
    return preset_after_data(cfg, task.kind, task.size("train"), class_counts(task), device_type, target_type,
                             alphabet=spec.get("alphabet"), median_length=lengths.get("median"),
                             labels=len(task.class_names) if multilabel else None,
                             label_sets=observed_label_sets(task.labels("train")) if multilabel else None)


def class_counts(task: Task) -> np.ndarray:
    y = np.asarray(task.labels("train"))
    return np.bincount(y.astype(np.int64)) if y.ndim == 1 and y.dtype.kind in "iu" else np.zeros(0)


def _train_into(cfg: RunConfig, task: Task, model: nn.Module, contract: InputContract, run_dir: Path,
                device: torch.device, progress: bool, extra: list[Callback], dist: distributed.Dist | None = None,
                state: dict[str, Any] | None = None, teacher: Predictor | None = None) -> TrainResult:
    dist = dist or distributed.Dist()
    if dist.is_main:
        atomic_write_text(run_dir / "config.yaml", cfg.to_yaml())
        contract.save(run_dir / "contract.json")
        write_json(run_dir / "data_report.json", task.report())
        atomic_write_text(run_dir / "filtered.tsv", "id\tlocation\treason\n" + "".join(
            f"{r['id']}\t{r['location']}\t{r['reason']}\n" for r in task.dropped()))

    n_params = sum(p.numel() for p in model.parameters())
    log.info("model %s: %s parameters; device %s; train/val/test = %d/%d/%d", cfg.model.name, f"{n_params:,}",
             device, *(task.size(s) for s in ("train", "val", "test")))
    model.to(device)
    train_b = task.batches("train", train=True, device=device)
    val_b = task.batches("val", train=False, device=device)
    if teacher is not None:  # soft targets computed on the fly, on the inputs the student sees
        train_b, val_b = (TeacherBatches(b, teacher.model, teacher.contract.max_len) for b in (train_b, val_b))
    trainer, checkpoint = build_trainer(cfg, model, train_b, task.labels("train"), len(contract.class_names),
                                        run_dir=run_dir, device=device, dist=dist, progress=progress, extra=extra,
                                        positive_index=contract.positive_index)
    shard(val_b, cfg.train.batch_size, dist)
    linear = None
    if state is None and getattr(model, "linear_term", None) is not None:  # a resumed run has it in its checkpoint
        linear = fit_linear_term(model, task.batches("train", train=False, device=device), trainer.loss_fn)
    if state is not None:
        trainer.load_state_dict(state)
        log.info("resumed %s at epoch %d, step %d", run_dir, trainer.epoch, trainer.step)
    try:
        history = trainer.fit(train_b, val_b)
    except TrainingError as e:
        finish_tracking(trainer.callbacks, failed=True)
        raise TrainingError(f"{e}; the last good checkpoint is checkpoints/last.pt") from None
    except BaseException:
        finish_tracking(trainer.callbacks, failed=True)  # the MLflow run is marked failed, TensorBoard closed
        raise
    if not dist.is_main:
        return TrainResult(run_dir, {}, history, task.report())
    # a run killed after its neighbour-transfer fit and resumed holds the fitted memory there: refit from scratch
    load_weights(model, run_dir / "model.safetensors", ignore="neighbor_transfer.")
    neighbors = None
    if (model.config.get("neighbors") and hasattr(model, "attach_neighbors")
            and contract.target_type in ("classification", "multilabel")):
        neighbors = fit_neighbor_transfer(model, task.batches("train", train=False, device=device),
                                          task.batches("val", train=False, device=device),
                                          "sigmoid" if contract.target_type == "multilabel" else "softmax")
        if neighbors["used"]:
            save_weights(model, run_dir / "model.safetensors")
        cfg = cfg.model_copy(update={"model": cfg.model.model_copy(update={"params": model.config})})
        task.cfg = task.cfg.model_copy(update={"model": cfg.model})
        atomic_write_text(run_dir / "config.yaml", cfg.to_yaml())
    write_summary(cfg, trainer, dist, run_dir, resumed=state is not None, linear_term=linear, neighbors=neighbors)
    chosen = set_label_threshold(cfg.train, model, task, contract, device, run_dir)
    splits = ("val", "test") if cfg.train.evaluate_test else ("val",)
    metrics: dict[str, Any] = {"best_epoch": checkpoint.best_epoch,
                               **split_metrics(model, task, contract, device, run_dir, splits)}
    if chosen is not None:
        metrics["label_threshold"] = chosen
    write_json(run_dir / "metrics.json", metrics)
    if teacher is not None and "test" in metrics:
        distillation_summary(run_dir, model, teacher, task, metrics, device)
    remove_temporaries(run_dir)  # what interrupted writes of an earlier (killed, resumed) process left behind
    write_manifest(run_dir, dataset_fingerprint=task.fingerprint())
    finish_tracking(trainer.callbacks, run_dir, metrics)  # final metrics, the run folder and the bundle
    if "test" in metrics:
        log.info("test %s (best epoch %d); run folder %s", summary_line(metrics["test"], contract.target_type),
                 checkpoint.best_epoch, run_dir)
    else:
        log.info("val %s (best epoch %d; the test split was not scored: train.evaluate_test=false); run "
                 "folder %s", summary_line(metrics["val"], contract.target_type), checkpoint.best_epoch, run_dir)
    return TrainResult(run_dir, metrics, history, task.report())


def set_label_threshold(train_cfg: TrainConfig, model: nn.Module, task: Task, contract: InputContract,
                        device: torch.device, run_dir: Path) -> dict[str, Any] | None:
    """Multi-label runs: the threshold every label is decided at (``train.label_threshold``; auto: chosen on val by
    ``evaluation.multilabel.shared_threshold`` when label sets are never empty), saved in the contract. None for
    other runs."""
    if contract.target_type != "multilabel":
        return None
    wanted = train_cfg.label_threshold
    if wanted != "auto":
        value, detail = float(wanted), {"method": "train.label_threshold"}
    elif contract.at_least_one_label and task.size("val"):
        net = codec_for(contract, task.cfg.data).with_tta(model).to(device)
        probs = score(net, task.batches("val", train=False, device=device, batch_size=256), contract)
        value, detail = shared_threshold(task.labels("val"), probs)
    else:
        value, detail = 0.5, {"method": "default"}
    contract.label_thresholds = None if value == 0.5 else [value] * len(contract.class_names)
    contract.save(run_dir / "contract.json")
    if "val_subset_accuracy" in detail:
        acc = detail["val_subset_accuracy"]
        log.info("label threshold %.2f for every label (val subset accuracy %.4f; %.4f at 0.50, %d val samples); "
                 "saved in the contract", value, acc[value], acc[0.5], detail["val_rows"])
    return {"threshold": value, **detail}


def split_metrics(model: nn.Module, task: Task, contract: InputContract, device: torch.device, run_dir: Path | None,
                  splits: Iterable[str] = ("val", "test")) -> dict[str, Any]:
    """Metrics of ``model`` (inside the contract's test-time augmentation) on the task's splits; the test split's
    predictions go to ``RUN/predictions.csv`` (nowhere with ``run_dir=None``)."""
    net = codec_for(contract, task.cfg.data).with_tta(model).to(device)
    out: dict[str, Any] = {}
    for split in splits:
        y = task.labels(split)
        probs = score(net, task.batches(split, train=False, device=device, batch_size=256), contract)
        out[split] = evaluation_metrics(y, probs, contract)
        if split == "test" and run_dir is not None:
            write_predictions(run_dir / "predictions.csv", task.ids(split), y, probs, contract)
    return out
