"""Knowledge distillation: the loss against hand-computed values, the teacher's logits on the fly with its own
contract, refusals in one line, and a distilled run's summary (student vs teacher size, accuracy, latency)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from biolens.errors import ConfigError
from biolens.training.distill import DistillationLoss, TeacherBatches, distillation_loss, load_teacher
from tests.conftest import TINY_MODEL, planted_dna, write_csv
from tests.training.helpers import batches


def test_loss_matches_hand_computed_values():
    # teacher p = softmax([ln 3, 0]) = (0.75, 0.25), student p = (0.5, 0.5), label 0:
    # KL = 0.75 ln(0.75/0.5) + 0.25 ln(0.25/0.5) = 0.1308120,  CE = ln 2 = 0.6931472
    kl, ce = 0.75 * math.log(1.5) + 0.25 * math.log(0.5), math.log(2)
    s, y = torch.zeros(1, 2), torch.tensor([0])
    t1 = torch.tensor([[math.log(3), 0.0]])
    assert distillation_loss(s, t1, y, 1.0, 0.5).item() == pytest.approx(0.5 * kl + 0.5 * ce, abs=1e-6)
    assert distillation_loss(s, t1, y, 1.0, 0.5).item() == pytest.approx(0.4119796, abs=1e-6)
    # T = 2: logits / T give the same two distributions, and the soft term is scaled by T² = 4
    t2 = 2 * t1
    assert distillation_loss(2 * s, t2, y, 2.0, 0.5).item() == pytest.approx(0.5 * 4 * kl + 0.5 * ce, abs=1e-6)
    assert distillation_loss(s, t2, y, 2.0, 0.25).item() == pytest.approx(0.25 * 4 * kl + 0.75 * ce, abs=1e-6)
    assert distillation_loss(s, t2, y, 2.0, 0.0).item() == pytest.approx(ce, abs=1e-6)


def test_loss_batch_mean_and_gradient_direction():
    torch.manual_seed(0)
    s = torch.randn(5, 3, requires_grad=True)
    t, y = torch.randn(5, 3), torch.randint(0, 3, (5,))
    T = 3.0
    p_t = torch.softmax(t / T, 1)
    want = 0.7 * T * T * (p_t * (p_t.log() - torch.log_softmax(s / T, 1))).sum(1).mean() \
        + 0.3 * torch.nn.functional.cross_entropy(s, y)
    got = distillation_loss(s, t, y, T, 0.7)
    assert got.item() == pytest.approx(want.item(), abs=1e-6)
    # pure soft loss pulls the student toward the teacher: zero at s = t
    assert distillation_loss(t.clone(), t, y, T, 1.0).item() == pytest.approx(0.0, abs=1e-6)


def test_trainer_loss_reads_teacher_logits_from_the_batch():
    hard = torch.nn.CrossEntropyLoss()
    loss = DistillationLoss(hard, temperature=2.0, alpha=0.5)
    assert loss.batch_keys == ("teacher_logits",)
    s, y = torch.randn(4, 2), torch.tensor([0, 1, 1, 0])
    assert loss(s, y).item() == pytest.approx(hard(s, y).item())  # no teacher in the batch: the hard loss
    with pytest.raises(ConfigError, match="distill_alpha"):
        DistillationLoss(hard, temperature=2.0, alpha=1.5)


class _Teacher(torch.nn.Module):
    """Logits = (mean index, width) of whatever it is fed: shows truncation and the GC input it declares."""

    aux_inputs = ("gc",)

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x, gc):
        return torch.stack([gc, torch.full_like(gc, float(x.shape[1]))], dim=1) + self.w


def test_teacher_batches_cut_to_the_teacher_length_and_forward_sampling():
    inner = batches(n=16, bs=4)
    wrapped = TeacherBatches(inner, _Teacher(), max_len=10)
    wrapped.sample_weights = torch.ones(16)  # weighted sampling configures the real batches
    assert inner.sample_weights is not None and len(wrapped) == len(inner) == 4
    wrapped.set_epoch(2)
    assert inner.epoch == 2
    batch = next(iter(wrapped))
    assert batch["teacher_logits"].shape == (4, 2) and not batch["teacher_logits"].requires_grad
    assert (batch["teacher_logits"][:, 1] == 10).all()  # the teacher saw its own max_len
    assert {"x", "y", "index"} <= set(batch)


def test_teacher_refusals_are_one_line(trained_run, tmp_path):
    from biolens.contract import InputContract

    contract = json.loads((trained_run / "contract.json").read_text())
    ok = InputContract(**contract)
    assert load_teacher(trained_run, ok).model is not None
    for change, match in (({"alphabet": "protein"}, "alphabet dna does not match the data .protein."),
                          ({"class_names": ["a", "b"]}, "classes background, promoter differ"),
                          ({"task": "image"}, "a sequence run; the data are image data")):
        with pytest.raises(ConfigError, match=match) as info:
            load_teacher(trained_run, InputContract(**{**contract, **change}))
        assert "\n" not in str(info.value) and str(info.value).startswith(f"model.teacher={trained_run}")
    with pytest.raises(ConfigError, match="model.teacher=.*run folder not found"):
        load_teacher(tmp_path / "missing", ok)


@pytest.mark.slow
def test_distilled_run_reports_student_and_teacher(trained_run: Path, tmp_path: Path):
    from biolens.workflows.train import train

    data = tmp_path / "d.csv"
    seqs, labels = planted_dna(n=200, seed=5)
    write_csv(data, seqs, labels)
    res = train(data=str(data), out=tmp_path / "student", epochs=2, params={"channels": 4, "blocks": 1},
                teacher=str(trained_run), distill_temperature=3.0, distill_alpha=0.8)
    summary = json.loads((res.run_dir / "train_summary.json").read_text())["distillation"]
    assert summary["teacher"] == str(trained_run) and summary["temperature"] == 3.0 and summary["alpha"] == 0.8
    assert summary["student_params"] < summary["teacher_params"]
    assert 0 <= summary["teacher_test_accuracy"] <= 1 and summary["student_test_accuracy"] == res.test["accuracy"]
    assert {(r["backend"], r["batch_size"]) for r in summary["latency_cpu"]} == {
        ("eager", 1), ("eager", 64), ("onnxruntime", 1), ("onnxruntime", 64)}
    assert all(r["student_p50_ms"] > 0 and r["teacher_p50_ms"] > 0 for r in summary["latency_cpu"])
    cfg = (res.run_dir / "config.yaml").read_text()
    assert f"teacher: {trained_run}" in cfg and "distill_alpha: 0.8" in cfg
    # the report shows the comparison
    from biolens.workflows.report import build_report

    _, md = build_report(res.run_dir, n_resamples=20)
    text = md.read_text()
    assert "## Distillation" in text and "student (this run)" in text and "## Baselines" in text
    assert TINY_MODEL  # the teacher is the session's tiny planted-motif run
