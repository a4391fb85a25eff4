"""doctor run: divergence, a growing train–val gap, one-class predictions, plateau, shift; a healthy run is clean."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from biolens.doctor.run import doctor_run, report_sections
from biolens.errors import BundleError
from tests.doctor.helpers import fake_run


def test_healthy_bundled_run_is_clean(trained_run: Path):
    report = doctor_run(trained_run)
    assert [(f.name, f.status) for f in report.findings if f.status != "pass"] == []
    assert {f.name for f in report.findings} == {"bundle", "learning rate (divergence)", "overfitting", "underfitting",
                                                 "plateau", "predicts one class", "val/test shift"}


def test_a_run_without_its_weights_fails_the_bundle_check(trained_run: Path, tmp_path: Path):
    import shutil

    run = shutil.copytree(trained_run, tmp_path / "copy")
    (run / "model.safetensors").unlink()
    report = doctor_run(run)
    f = report.get("bundle")
    assert f.status == "fail" and "model.safetensors missing" in f.detail and report.exit_code() == 1
    (run / "model.safetensors").write_bytes((trained_run / "model.safetensors").read_bytes()[:-10])
    f = doctor_run(run).get("bundle")
    assert f.status == "fail" and "model.safetensors changed" in f.detail


def test_divergence_is_named(tmp_path: Path):
    report = doctor_run(fake_run(tmp_path / "r", [0.7, 0.6, 0.9, 2.5, 8.0], [0.7, 0.65, 1.0, 3.0, 9.0]))
    f = report.get("learning rate (divergence)")
    assert f.status == "fail" and "diverged" in f.detail and "--lr 0.0001" in f.fix and "lr-find" in f.fix
    nan = doctor_run(fake_run(tmp_path / "n", [0.7, float("nan")], [0.7, float("nan")]))
    assert nan.get("learning rate (divergence)").status == "fail" and "epoch 2" in nan.get("learning rate (divergence)").detail
    spike = doctor_run(fake_run(tmp_path / "s", [0.7, 0.5, 0.4, 0.9, 0.35], [0.7, 0.5, 0.45, 0.9, 0.4]))
    assert spike.get("learning rate (divergence)").status == "warn" and "4" in spike.get("learning rate (divergence)").detail


def test_growing_gap_is_overfitting(tmp_path: Path):
    tl = [0.60, 0.45, 0.30, 0.18, 0.10, 0.05]
    vl = [0.62, 0.50, 0.48, 0.55, 0.70, 0.90]
    f = doctor_run(fake_run(tmp_path / "r", tl, vl)).get("overfitting")
    assert f.status == "warn" and "grew" in f.detail and "0.850" in f.detail
    assert "weight_decay" in f.fix and "augmentation" in f.fix


def test_flat_loss_and_underfitting(tmp_path: Path):
    n = 6
    report = doctor_run(fake_run(tmp_path / "r", [0.693] * n, [0.694] * n, train_acc=[0.5] * n, val_acc=[0.5] * n))
    assert report.get("learning rate (flat loss)").status == "warn" and "10× larger" in report.get("learning rate (flat loss)").fix
    assert report.get("underfitting").status == "warn"


def test_always_one_class_is_named(tmp_path: Path):
    preds = [("a", "a")] * 10 + [("b", "a")] * 10
    report = doctor_run(fake_run(tmp_path / "r", [0.7, 0.6, 0.5], [0.7, 0.6, 0.55], predictions=preds))
    f = report.get("predicts one class")
    assert f.status == "fail" and "every test prediction is 'a'" in f.detail and "--class-weights inverse" in f.fix
    assert report.exit_code() == 1


def test_plateau_and_early_stopping(tmp_path: Path):
    tl = [0.7 - 0.02 * i for i in range(20)]
    vl = [0.6, 0.5, 0.4] + [0.41 + 0.001 * i for i in range(17)]
    f = doctor_run(fake_run(tmp_path / "r", tl, vl, patience=None)).get("plateau")
    assert f.status == "warn" and "last 17 epochs" in f.detail and "early_stopping_patience" in f.fix
    stopped = doctor_run(fake_run(tmp_path / "s", tl[:8], vl[:8], patience=5)).get("plateau")
    assert stopped.status == "pass" and "early stopping" in stopped.detail


def test_val_far_above_test_is_shift(tmp_path: Path):
    metrics = {"val": {"n": 400, "accuracy": 0.95, "balanced_accuracy": 0.95},
               "test": {"n": 400, "accuracy": 0.80, "balanced_accuracy": 0.80}}
    f = doctor_run(fake_run(tmp_path / "r", [0.7, 0.5, 0.4], [0.7, 0.5, 0.4], metrics=metrics)).get("val/test shift")
    assert f.status == "warn" and "0.950" in f.detail and "0.800" in f.detail
    small = {"val": {"n": 20, "accuracy": 0.95}, "test": {"n": 20, "accuracy": 0.85}}  # noise at n = 20
    assert doctor_run(fake_run(tmp_path / "s", [0.7, 0.5], [0.7, 0.5], metrics=small)).get("val/test shift").status == "pass"


def test_not_a_run(tmp_path: Path):
    with pytest.raises(BundleError, match="no history"):
        doctor_run(tmp_path)
    with pytest.raises(BundleError, match="not found"):
        doctor_run(tmp_path / "missing")
    (tmp_path / "history.json").write_text('[{"epoch": 1, "train_loss": 0.7')  # cut off mid-write
    with pytest.raises(BundleError, match=r"history.json: not valid JSON"):
        doctor_run(tmp_path)
    (tmp_path / "history.json").write_text('{"train_loss": 0.7, "val_loss": 0.7}')  # not a list of rows
    with pytest.raises(BundleError, match="needs rows with train_loss and val_loss"):
        doctor_run(tmp_path)


def test_an_ensemble_bundle_names_a_member_to_check(tmp_path: Path):
    (tmp_path / "ensemble.json").write_text('{"members": [{"run": "runs/a", "weight": 0.5}, {"run": "runs/b"}]}')
    with pytest.raises(BundleError, match=r"is an ensemble bundle of 2 runs, with no training history of its own; "
                                          r"check a member instead, e.g. biolens doctor run runs/a$"):
        doctor_run(tmp_path)
    (tmp_path / "ensemble.json").write_text("[]")  # not what biolens writes: still a one-line error
    with pytest.raises(BundleError, match="ensemble bundle of 0 runs.*doctor run MEMBER"):
        doctor_run(tmp_path)


def test_report_gets_a_doctor_section(trained_run: Path, tmp_path: Path):
    from biolens.workflows.report import build_report

    run = shutil.copytree(trained_run, tmp_path / "run")
    html_path, md_path = build_report(run, n_resamples=50)
    md, page = md_path.read_text(), html_path.read_text()
    assert "## Doctor" in md and md.index("## Doctor") < md.index("## Data")
    assert "| overfitting | pass |" in md
    assert "<h2>Doctor</h2>" in page and "val/test shift" in page
    bad = fake_run(tmp_path / "bad", [0.7, 0.9, 3.0], [0.7, 1.0, 4.0])
    md2, page2 = report_sections(bad, "x\n## Data\n", "<h2>Data</h2>")
    assert "| learning rate (divergence) | fail |" in md2 and "<td>fail</td>" in page2


def test_plateau_without_best_flags_or_monitored_value(tmp_path: Path):
    """A history with no ``best`` column and no logged monitor value falls back to val_loss, lower is better."""
    import json

    import yaml

    tl = [0.7 - 0.02 * i for i in range(12)]
    vl = [0.9, 0.7, 0.5, 0.4] + [0.41 + 0.001 * i for i in range(8)]
    run = fake_run(tmp_path / "r", tl, vl, patience=None)
    rows = [{k: v for k, v in r.items() if k != "best"} for r in json.loads((run / "history.json").read_text())]
    (run / "history.json").write_text(json.dumps(rows))
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    cfg["train"]["monitor"] = "val_auroc"  # not in the history
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    f = doctor_run(run).get("plateau")
    assert f.status == "warn" and "best at epoch 4 of 12" in f.detail and f.data["best_epoch"] == 4
    cfg["train"].update(monitor="val_acc", monitor_mode="min")  # logged, and an explicit mode is honoured
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    assert doctor_run(run).get("plateau").data["best_epoch"] == 1  # val_acc rises, so its min is epoch 1
