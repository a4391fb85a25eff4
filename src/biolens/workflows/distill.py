"""What a distilled run reports next to its teacher: size, test accuracy on the same split, and inference latency.

Written into ``train_summary.json`` under ``distillation`` (``biolens report`` shows it as a table). Latency is
``deploy.latency.bench_model`` on CPU, eager PyTorch and ONNX Runtime, at batch sizes 1 and 64, on real test rows
(the teacher's cut to its ``max_len``), student and teacher measured one after the other in the same process.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from biolens.deploy.latency import bench_model
from biolens.io import write_json
from biolens.metrics import classification_metrics
from biolens.models.inference import AUX_FROM_INPUT
from biolens.tasks import Predictor, Task
from biolens.training.distill import TeacherBatches

log = logging.getLogger(__name__)

BATCH_SIZES = (1, 64)
BACKENDS = ("eager", "onnxruntime")


def teacher_probabilities(teacher: Predictor, task: Task, split: str, device: torch.device) -> np.ndarray:
    """The teacher's class probabilities ``(N, C)`` (its own temperature) on a split of the student's data, in
    data order."""
    batches = TeacherBatches(task.batches(split, train=False, device=device, batch_size=256), teacher.model,
                             teacher.contract.max_len)
    logits, index = [], []
    for batch in batches:
        logits.append(batch["teacher_logits"].cpu())
        index.append(batch["index"].cpu())
    stacked, order = torch.cat(logits).numpy(), torch.cat(index).numpy()
    ordered = np.empty_like(stacked)
    ordered[order] = stacked
    return teacher.contract.probabilities(ordered)


def _example(model: nn.Module, x: torch.Tensor, max_len: int | None) -> dict[str, torch.Tensor]:
    if max_len is not None and x.dim() == 2 and x.shape[1] > max_len:
        x = x[:, :max_len]
    return {"x": x, **{a: AUX_FROM_INPUT[a](x) for a in getattr(model, "aux_inputs", ())}}


def latency_rows(student: nn.Module, teacher: Predictor, x: torch.Tensor, repeats: int = 20) -> list[dict[str, Any]]:
    """p50 latency (ms) and throughput of student and teacher per backend and batch size, with the speed-up."""
    s = bench_model(student, _example(student, x, None), batch_sizes=BATCH_SIZES, repeats=repeats,
                    backends=BACKENDS, devices=["cpu"])
    t = bench_model(teacher.model, _example(teacher.model, x, teacher.contract.max_len), batch_sizes=BATCH_SIZES,
                    repeats=repeats, backends=BACKENDS, devices=["cpu"])
    theirs = {(r.backend, r.batch_size): r for r in t}
    rows = []
    for r in s:
        other = theirs.get((r.backend, r.batch_size))
        if other is None:
            continue
        rows.append({"backend": r.backend, "batch_size": r.batch_size, "student_p50_ms": round(r.p50_ms, 4),
                     "teacher_p50_ms": round(other.p50_ms, 4), "student_per_s": round(r.throughput, 1),
                     "teacher_per_s": round(other.throughput, 1),
                     "speedup": round(r.throughput / other.throughput, 2) if other.throughput else None})
    return rows


def distillation_summary(run_dir: Path, student: nn.Module, teacher: Predictor, task: Task, metrics: dict[str, Any],
                         device: torch.device) -> dict[str, Any]:
    """Student vs teacher (parameters, test accuracy on this run's test split, CPU latency) into
    ``train_summary.json["distillation"]``."""
    cfg = task.cfg
    y = task.labels("test")
    probs = teacher_probabilities(teacher, task, "test", device)
    tc = teacher.contract
    teacher_test = classification_metrics(y, probs, tc.class_names, tc.positive_class, tc.threshold)
    batch = next(iter(task.batches("test", train=False, device=torch.device("cpu"), batch_size=8)))
    rows = latency_rows(student, teacher, batch["x"].cpu())
    n_s = sum(p.numel() for p in student.parameters())
    n_t = sum(p.numel() for p in teacher.model.parameters())
    acc_s, acc_t = metrics["test"]["accuracy"], teacher_test["accuracy"]
    summary = {
        "teacher": str(teacher.run_dir), "teacher_model": teacher.config.model.name, "student_model": cfg.model.name,
        "temperature": cfg.train.distill_temperature, "alpha": cfg.train.distill_alpha,
        "student_params": n_s, "teacher_params": n_t, "params_ratio": round(n_s / max(n_t, 1), 5),
        "student_test_accuracy": acc_s, "teacher_test_accuracy": acc_t,
        "accuracy_kept": round(acc_s / acc_t, 4) if acc_t else None,
        "latency_cpu": rows,
        "test_split": {"n": int(len(y))},
    }
    path = run_dir / "train_summary.json"
    saved = json.loads(path.read_text()) if path.is_file() else {}
    saved["distillation"] = summary
    write_json(path, saved)
    best = next((r for r in rows if r["backend"] == "onnxruntime" and r["batch_size"] == max(BATCH_SIZES)), None)
    log.info("distilled %s (%s parameters, %.1f%% of the teacher's) keeps %.1f%% of the teacher's test accuracy "
             "(%.4f vs %.4f)%s", cfg.model.name, f"{n_s:,}", 100 * n_s / max(n_t, 1),
             100 * (summary["accuracy_kept"] or 0), acc_s, acc_t,
             f"; {best['speedup']}x the teacher's CPU throughput (ONNX Runtime, batch {best['batch_size']})" if best else "")
    return summary
