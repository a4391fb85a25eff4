"""Experiment tracking: TensorBoard events and an MLflow run (params, per-epoch metrics, artefacts, a pyfunc model that
predicts like the bundle), resume into the same MLflow run, failures, and the CLI flags."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from biolens.bundle import verify_bundle
from biolens.cli.main import app
from biolens.cli.train import bare_mlflow
from biolens.config import load_config, validate_config
from biolens.errors import ConfigError
from biolens.tasks import Predictor
from biolens.training.trainer import Callback
from biolens.training.tracking import check_tracking, flat_params, resolve_mlflow_uri
from tests.conftest import TINY_MODEL, planted_dna, write_csv

pytest.importorskip("tensorboard", reason="the tracking extra is not installed: pip install -e '.[tracking]'")
mlflow = pytest.importorskip("mlflow", reason="the tracking extra is not installed: pip install -e '.[tracking]'")

os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # this module reads the stores with MLflow's own client

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning",
                                        "ignore::UserWarning")

runner = CliRunner()
TRAIN = {"epochs": 2, "batch_size": 32, "lr": 3e-3, "precision": "fp32"}


def _config(data: Path, out: Path, **train) -> dict:
    return {"data": {"path": str(data)}, "model": {"name": "dilated_resnet", "params": TINY_MODEL},
            "train": {**TRAIN, **train}, "out": str(out)}


@pytest.fixture(scope="module")
def data_csv(tmp_path_factory) -> Path:
    seqs, labels = planted_dna(n=160, seed=5)
    return write_csv(tmp_path_factory.mktemp("track") / "train.csv", seqs, labels)


@pytest.fixture(scope="module")
def tracked_run(data_csv) -> Path:
    """One run trained through the CLI, logged to both trackers (histograms on), MLflow in its local store."""
    out = data_csv.parent / "run"
    r = runner.invoke(app, ["train", "--data", str(data_csv), "--out", str(out), "--epochs", "2", "--batch-size", "32",
                            "--lr", "3e-3", "--precision", "fp32", "--set", "model.params.channels=16", "--set",
                            "model.params.blocks=1", "--tensorboard", "--tensorboard-histograms", "--mlflow", "local",
                            "--mlflow-experiment", "tests", "-q"])
    assert r.exit_code == 0, r.output
    return out


def _mlflow_run(run_dir: Path, experiment: str = "tests"):  # noqa: ANN202
    client = mlflow.MlflowClient(tracking_uri=(run_dir / "mlflow").resolve().as_uri())
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id])
    assert len(runs) == 1
    return client, runs[0]


def test_tensorboard_scalars_histograms_figures_and_hparams(tracked_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ea = EventAccumulator(str(tracked_run / "tensorboard"),
                          size_guidance={"scalars": 0, "histograms": 0, "images": 0, "tensors": 0})
    ea.Reload()
    tags = ea.Tags()
    history = json.loads((tracked_run / "history.json").read_text())
    for key, tag in (("train_loss", "train/loss"), ("val_loss", "val/loss"), ("val_acc", "val/acc"), ("lr", "lr")):
        events = ea.Scalars(tag)
        assert [e.step for e in events] == [h["epoch"] for h in history]
        np.testing.assert_allclose([e.value for e in events], [h[key] for h in history], rtol=1e-6)
    steps = ea.Scalars("lr/step")
    assert len(steps) == json.loads((tracked_run / "train_summary.json").read_text())["steps"]
    assert any(t.startswith("weights/") for t in tags["histograms"])
    assert any(t.startswith("gradients/") for t in tags["histograms"])
    assert "figures/history" in tags["images"]
    metrics = json.loads((tracked_run / "metrics.json").read_text())
    assert ea.Scalars("hparam/test_accuracy")[0].value == pytest.approx(metrics["test"]["accuracy"])
    hp = ea.PluginTagToContent("hparams")
    assert {"_hparams_/experiment", "_hparams_/session_start_info"} <= set(hp)
    assert b"train.lr" in hp["_hparams_/session_start_info"]


def test_mlflow_params_metrics_and_artefacts(tracked_run):
    client, run = _mlflow_run(tracked_run)
    assert run.info.status == "FINISHED" and run.info.run_name == tracked_run.name
    params = run.data.params
    assert params["train.lr"] == "0.003" and params["model.name"] == "dilated_resnet"
    assert params["train.mlflow"] == "local" and run.data.tags["biolens.version"]
    history = json.loads((tracked_run / "history.json").read_text())
    val_loss = client.get_metric_history(run.info.run_id, "val_loss")
    assert [m.step for m in val_loss] == [h["epoch"] for h in history]
    np.testing.assert_allclose([m.value for m in val_loss], [h["val_loss"] for h in history])
    metrics = json.loads((tracked_run / "metrics.json").read_text())
    assert run.data.metrics["test_accuracy"] == pytest.approx(metrics["test"]["accuracy"])
    assert run.data.metrics["best_epoch"] == metrics["best_epoch"]
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"metrics.json", "model.safetensors", "manifest.json", "checkpoints", "plots", "model"} <= names
    assert "mlflow" not in names  # the store is not copied into itself
    assert "MLmodel" in {Path(a.path).name for a in client.list_artifacts(run.info.run_id, "model")}


def test_mlflow_model_predicts_like_the_bundle(tracked_run):
    import pandas as pd

    _, run = _mlflow_run(tracked_run)
    model = mlflow.pyfunc.load_model(f"{run.info.artifact_uri}/model")
    seqs, _ = planted_dna(n=6, seed=11)
    expected = Predictor.load(tracked_run, device="cpu").predict(seqs)
    for given in (seqs, pd.DataFrame({"sequence": seqs})):
        got = model.predict(given)
        assert list(got["prediction"]) == list(expected["prediction"])
        np.testing.assert_allclose(got["p_promoter"], expected["p_promoter"], atol=1e-6)


def test_bundle_stays_verifiable_and_tracking_is_not_in_the_manifest(tracked_run):
    manifest = verify_bundle(tracked_run)
    assert not [f for f in manifest["files"] if f.startswith(("mlflow/", "tensorboard/"))]
    assert (tracked_run / "mlflow").is_dir() and any((tracked_run / "tensorboard").iterdir())


def test_resume_continues_the_same_mlflow_run(data_csv, tmp_path):
    from biolens.workflows.train import train

    out = tmp_path / "run"
    train(_config(data_csv, out, epochs=1, mlflow="local", early_stopping_patience=None))
    client, first = _mlflow_run(out, "biolens")
    cfg = load_config(out / "config.yaml")
    cfg.train.epochs = 2
    train(cfg, resume=out)
    client, again = _mlflow_run(out, "biolens")
    assert again.info.run_id == first.info.run_id and again.info.status == "FINISHED"
    assert [m.step for m in client.get_metric_history(again.info.run_id, "val_loss")] == [1, 2]


class _Boom(Callback):
    def on_epoch_end(self, trainer, logs):  # noqa: ANN001
        raise RuntimeError("boom")


def test_a_failed_training_marks_the_mlflow_run_failed(data_csv, tmp_path):
    from biolens.workflows.train import train

    store = tmp_path / "store"
    uri = store.resolve().as_uri()
    with pytest.raises(RuntimeError, match="boom"):
        train(_config(data_csv, tmp_path / "run", epochs=1, mlflow=uri), callbacks=[_Boom()])
    client = mlflow.MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name("biolens").experiment_id])
    assert [r.info.status for r in runs] == ["FAILED"]


def test_check_tracking_and_uris(tmp_path, monkeypatch):
    cfg = validate_config({"data": {"path": "x.csv"}, "train": {"mlflow": "not a uri"}, "out": str(tmp_path)})
    with pytest.raises(ConfigError, match="train.mlflow=not a uri: not a tracking URI"):
        check_tracking(cfg)
    assert resolve_mlflow_uri("local", tmp_path) == (tmp_path / "mlflow").resolve().as_uri()
    for uri in ("http://127.0.0.1:5000", "sqlite:///mlflow.db", "file:/tmp/store", "databricks"):
        assert resolve_mlflow_uri(uri, tmp_path) == uri
    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if not installed
    cfg = validate_config({"data": {"path": "x.csv"}, "train": {"mlflow": "local"}, "out": str(tmp_path)})
    with pytest.raises(ConfigError, match=r"train.mlflow needs the mlflow package; pip install 'biolens\[tracking\]'"):
        check_tracking(cfg)


def test_flat_params():
    cfg = validate_config({"data": {"path": "x.csv"}, "model": {"params": {"widths": [4, 8]}}})
    p = flat_params(cfg)
    assert p["data.path"] == "x.csv" and p["model.params.widths"] == "[4, 8]" and p["train.lr"] == 0.001
    assert all(isinstance(v, (str, int, float, bool)) for v in p.values())


def test_bare_mlflow_flag():
    assert bare_mlflow(["train", "--mlflow"]) == ["train", "--mlflow", "local"]
    assert bare_mlflow(["train", "--mlflow", "--epochs", "2"]) == ["train", "--mlflow", "local", "--epochs", "2"]
    assert bare_mlflow(["train", "--mlflow", "http://h:5000"]) == ["train", "--mlflow", "http://h:5000"]
    assert bare_mlflow(["train", "--", "--mlflow"]) == ["train", "--", "--mlflow"]


def test_cli_refuses_a_bad_mlflow_uri_before_training(data_csv, tmp_path):
    out = tmp_path / "cli"
    r = runner.invoke(app, ["train", "--data", str(data_csv), "--out", str(out), "--epochs", "1", "--mlflow",
                            "config.yaml", "-q"])
    errors = [ln for ln in r.output.splitlines() if ln.startswith("error:")]
    assert r.exit_code == 2 and len(errors) == 1 and "not a tracking URI" in errors[0], r.output
    assert "--mlflow" in errors[0] and not out.exists()
