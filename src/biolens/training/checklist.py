"""The guide's pre-training checklist (7.4), run at the start of every ``biolens train``.

Splits separate, augmentation on train only, the loss matches the task, seeds set, the checkpoint folder writable
with room for the checkpoints. A failed check stops training with its reason (``--force`` trains anyway); the
results are logged and saved as ``checklist.json`` in the run.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import torch
from torch import nn

from biolens.config import RunConfig
from biolens.io import atomic_write
from biolens.findings import Finding, Report
from biolens.errors import ConfigError, DataError
from biolens.tasks import Task

log = logging.getLogger(__name__)

LEAK_FAIL = 0.5  # val or test more than half made of train (or val) items: the splits are not separate
DATA_CHECKS = ("splits separate", "augmentation on train only")


def pretraining_checklist(cfg: RunConfig, task: Task, model: nn.Module, *, force: bool = False) -> Report:
    """Run every check; raise DataError/ConfigError (one line) on the first failure unless ``force``."""
    report = Report("checklist", str(cfg.out))
    _splits(task, report)
    _augmentation(task, report)
    _loss(cfg, task, model, report)
    _seeds(cfg, report)
    _disk(cfg, model, report)
    for f in report.findings:
        log.log(logging.INFO if f.status == "pass" else logging.WARNING, "checklist: %s: %s: %s%s", f.name, f.status,
                f.detail, f" ({f.fix})" if f.status != "pass" and f.fix else "")
    if report.failed and not force:
        f = report.failed[0]
        error = DataError if f.name in DATA_CHECKS else ConfigError
        raise error(f"pre-training check {f.name!r} failed: {f.detail}; {f.fix}; or pass force=True to train anyway")
    return report


def save_checklist(report: Report, run_dir: Path, forced: bool) -> None:
    """Write ``checklist.json`` into the run (atomically) and log a one-line summary (goes to log.txt)."""
    data = report.to_dict()
    data["forced"] = bool(forced and report.failed)
    text = (json.dumps(data, indent=2) + "\n").encode()
    atomic_write(run_dir / "checklist.json", lambda fh: fh.write(text))
    counts = {s: sum(f.status == s for f in report.findings) for s in ("pass", "warn", "fail")}
    log.info("pre-training checklist: %d pass, %d warn, %d fail%s (checklist.json)", counts["pass"], counts["warn"],
             counts["fail"], " — trained anyway (--force)" if data["forced"] else "")


def _splits(task: Task, report: Report) -> None:
    leak = task.leakage()
    leaked = {k.split("_in_")[0]: sum(v.values()) for k, v in leak.items() if "_in_" in k}
    if task.report().get("dedup_removed"):  # counted before --dedup dropped them
        leaked = {}
    frac = {s: n / max(task.size(s), 1) for s, n in leaked.items()}
    worst = max(frac, key=frac.get) if frac else None
    fix = task.leakage_fix
    if worst and frac[worst] > LEAK_FAIL:
        report.add(Finding("splits separate", "fail", f"{frac[worst]:.0%} of {worst} also occurs in an earlier split "
                           "(is the same file given twice?)", f"give separate files for each split; {fix}"))
    elif any(leaked.values()):
        report.add(Finding("splits separate", "warn", ", ".join(f"{n} {s}" for s, n in leaked.items() if n)
                           + " item(s) also occur in an earlier split: metrics will be optimistic", fix))
    else:
        report.add(Finding("splits separate", "pass", "no item of val/test occurs in an earlier split"))


def _augmentation(task: Task, report: Report) -> None:
    """Val batches must be the same every epoch (no random augmentation); train batches may vary."""
    cpu = torch.device("cpu")
    val = task.batches("val", train=False, device=cpu)
    first = next(iter(val))["x"]
    if hasattr(val, "set_epoch"):
        val.set_epoch(7)
    again = next(iter(val))["x"]
    same = first.shape == again.shape and bool(torch.equal(first, again))
    active = list(getattr(val, "augmentations", []))
    if same and not active:
        report.add(Finding("augmentation on train only", "pass", "val batches are identical across epochs (no augmentation)"))
    else:
        report.add(Finding("augmentation on train only", "fail", "val batches change between epochs"
                           + (f" (augmentation on: {', '.join(active)})" if active else ""),
                           "evaluation batches must not be augmented; build them with train=False"))


def _loss(cfg: RunConfig, task: Task, model: nn.Module, report: Report) -> None:
    n = len(task.class_names)
    head = model.get_classifier() if hasattr(model, "get_classifier") else None
    out = getattr(head, "out_features", None)
    loss = cfg.train.loss
    if out is not None and out != n:
        report.add(Finding("loss matches the task", "fail", f"the model has {out} outputs but the data have {n} "
                           f"{'classes' if task.target_type == 'classification' else 'targets'}",
                           "rebuild the model with num_classes from the data (remove model.params.num_classes)"))
    elif task.target_type != "classification":
        what = "target(s), masked where missing" if task.target_type == "regression" else "label(s), one sigmoid each"
        report.add(Finding("loss matches the task", "pass", f"{loss} on {n} {what} ({out or '?'} outputs, "
                           f"{task.target_type})"))
    elif loss == "bce" and n != 2:
        report.add(Finding("loss matches the task", "fail", f"bce is for binary tasks; the data have {n} classes",
                           "set train.loss=ce (or focal)"))
    else:
        report.add(Finding("loss matches the task", "pass", f"{loss} on {n} classes ({out or '?'} logits, "
                           f"{'single-label ' if loss != 'bce' else ''}classification)"))


def _seeds(cfg: RunConfig, report: Report) -> None:
    seed = cfg.train.seed
    if torch.initial_seed() == seed:
        report.add(Finding("seeds set", "pass", f"seed {seed} (python, numpy, torch)"
                           + ("; deterministic algorithms on" if cfg.train.deterministic
                              else "; bitwise repeats also need train.deterministic=true")))
    else:
        report.add(Finding("seeds set", "warn", f"torch seed is {torch.initial_seed()}, not train.seed {seed}",
                           "call biolens.devices.seed_everything(seed) before building the model"))


def _existing(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _disk(cfg: RunConfig, model: nn.Module, report: Report) -> None:
    if cfg.out is None:
        return
    out = Path(cfg.out)
    base = _existing(out)
    if not base.is_dir() or not os.access(base, os.W_OK | os.X_OK):
        report.add(Finding("checkpoint folder", "fail", f"{base} is not a writable folder, so {out} cannot be created",
                           "pick another out folder or fix the folder's permissions"))
        return
    t = cfg.train
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    state = {"adamw": 2, "sgd": 1}.get(t.optimizer, 2)  # optimizer moments per parameter
    per_ckpt = weights * (1 + state)
    files = 2 + (t.epochs // t.checkpoint_every if t.checkpoint_every else 0)  # best.pt, last.pt (+ epoch_NNN.pt)
    need = per_ckpt * (files + 1) + weights  # + one temp file while writing atomically + model.safetensors
    free = shutil.disk_usage(base).free
    detail = (f"{out}: about {need / 1024**2:.1f} MB for {files} checkpoint(s) + weights; "
              f"{free / 1024**3:.1f} GB free")
    if need > free:
        report.add(Finding("checkpoint folder", "fail", detail, "free disk space, use another out folder, or keep fewer "
                           "checkpoints (drop train.checkpoint_every)"))
    elif need > 0.5 * free:
        report.add(Finding("checkpoint folder", "warn", detail + " (over half of it)", "free disk space or keep fewer "
                           "checkpoints"))
    else:
        report.add(Finding("checkpoint folder", "pass", detail))
