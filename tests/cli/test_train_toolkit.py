"""Training-toolkit options through the CLI runner and the API: lr-find, options recorded in the run, errors."""

import json

import pytest
import torch
from typer.testing import CliRunner

from biolens.cli.main import app
from biolens.training.trainer import Callback, TrainingError
from tests.conftest import TINY_MODEL, planted_dna, write_csv

runner = CliRunner()
TINY = ["--set", f"model.params.channels={TINY_MODEL['channels']}", "--set", f"model.params.blocks={TINY_MODEL['blocks']}"]


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def small_csv(tmp_path):
    seqs, labels = planted_dna(n=160, seed=7)
    return write_csv(tmp_path / "d.csv", seqs, labels)


def test_lr_find_cli_writes_plot_csv_and_suggests(tmp_path, small_csv):
    out = tmp_path / "lrf"
    r = invoke("lr-find", "--data", small_csv, "--out", out, "--num-iter", 30, "--batch-size", 16, "-q", *TINY)
    assert r.exit_code == 0, r.output
    assert "suggested learning rate" in r.output
    assert (out / "lr_find.png").stat().st_size > 1000
    rows = (out / "lr_find.csv").read_text().splitlines()
    assert rows[0] == "lr,loss,smoothed_loss" and 5 < len(rows) <= 31


def test_lr_find_takes_trains_data_flags_for_label_sets(tmp_path):
    from biolens.data.synthetic import synthetic_peptides

    data = tmp_path / "pep.csv"
    synthetic_peptides(200, seed=3).to_csv(data, index=False)
    out = tmp_path / "lrf"
    r = invoke("lr-find", "--data", data, "--target-col", "labels", "--out", out, "--num-iter", 20, "--batch-size", 16,
               "-q", *TINY)
    assert r.exit_code == 0, r.output
    rows = (out / "lr_find.csv").read_text().splitlines()
    assert rows[0] == "lr,loss,smoothed_loss" and 5 < len(rows) <= 21
    bad = invoke("lr-find", "--data", data, "--target-col", "nope", "--out", tmp_path / "bad", "-q")
    assert bad.exit_code == 2 and "no column 'nope'" in bad.output and "Traceback" not in bad.output


@pytest.mark.slow
def test_toolkit_options_are_recorded_in_the_run(tmp_path, small_csv):
    out = tmp_path / "run"
    r = invoke("train", "--data", small_csv, "--out", out, "--epochs", 2, "--batch-size", 16, "-q", *TINY,
               "--schedule", "warmup_cosine", "--loss", "focal", "--class-weights", "effective", "--sampler",
               "weighted", "--optimizer", "sgd", "--accumulate", 2, "--precision", "bf16", "--monitor", "val_acc",
               "--set", "train.checkpoint_every=1")
    assert r.exit_code == 0, r.output
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["sampler"] == "weighted" and summary["class_weights"] == "effective"
    assert summary["schedule_interval"] == "batch" and summary["effective_batch_size"] == 32
    assert summary["fit"]["verdict"] in ("good fit", "slight overfitting", "overfitting")
    assert (out / "plots" / "history.png").is_file() and (out / "checkpoints" / "epoch_002.pt").is_file()
    lr_rows = (out / "lr.csv").read_text().splitlines()
    assert len(lr_rows) == 1 + 2 * 4  # 128 train rows / 16 per batch / 2 accumulated = 4 steps per epoch
    assert len({row.split(",")[2] for row in lr_rows[1:]}) > 2  # warm-up then cosine: the LR moves every step
    r = invoke("train", "--resume", out, "--epochs", 3)  # a warm-up+cosine run's length is fixed at its start
    assert r.exit_code == 2 and "train.epochs differs" in r.output, r.output


@pytest.mark.parametrize("args, message", [
    (["--schedule", "linear"], "field 'train.schedule'"),
    (["--monitor", "val_auc"], "train.monitor 'val_auc' is not a metric; use one of: val_loss, val_acc"),
    (["--set", "train.lr_mult={nothead: 2}"], "train.lr_mult: no parameter name starts with 'nothead'"),
    (["--set", "train.warmup_epochs=5", "--schedule", "warmup_cosine", "--epochs", "2"], "train.warmup_epochs 5.0 is not shorter"),
])
def test_bad_training_options_exit_2_before_writing(tmp_path, small_csv, args, message):
    out = tmp_path / "run"
    r = invoke("train", "--data", small_csv, "--out", out, "-q", *TINY, *args)
    assert r.exit_code == 2, r.output
    assert message in r.output and not out.exists()


def test_resume_of_missing_folder_is_one_line_exit_2(tmp_path):
    r = invoke("train", "--resume", tmp_path / "missing")
    assert r.exit_code == 2 and "not a run folder (no config.yaml)" in r.output


def test_nan_in_training_keeps_last_good_checkpoint(tmp_path, small_csv):
    from biolens.workflows.train import train

    class PoisonAtEpoch2(Callback):
        def on_epoch_start(self, trainer):
            if trainer.epoch == 2:
                next(trainer.model.parameters()).register_hook(lambda g: g * float("inf"))

    out = tmp_path / "run"
    cfg = {"data": {"path": str(small_csv)}, "model": {"params": TINY_MODEL}, "out": str(out),
           "train": {"epochs": 4, "batch_size": 32}}
    with pytest.raises(TrainingError, match=r"at epoch 2, step 5; .*gradients blew up in .*last good checkpoint is "
                                            r"checkpoints/last.pt; the unfinished run was moved to .*run.failed"):
        train(cfg, callbacks=[PoisonAtEpoch2()])
    assert not out.exists()  # a failed run never looks like a finished one
    state = torch.load(tmp_path / "run.failed" / "checkpoints" / "last.pt", weights_only=True)
    assert state["epoch"] == 1 and all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


def test_log_format_json_emits_epoch_records(tmp_path, small_csv):
    import logging

    r = invoke("train", "--data", small_csv, "--out", tmp_path / "run", "--epochs", 1, "--batch-size", 32,
               "--log-format", "json", *TINY)
    logging.getLogger("biolens").handlers.clear()  # the JSON handler holds the runner's stream
    assert r.exit_code == 0, r.output
    records = [json.loads(line) for line in r.output.splitlines() if line.startswith("{")]
    epoch = [rec for rec in records if rec.get("event") == "epoch"]
    assert len(epoch) == 1 and {"train_loss", "val_loss", "val_acc", "lr"} <= set(epoch[0])
