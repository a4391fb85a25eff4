"""Image commands through typer's runner: a good run end to end, and every bad input → exit 2, one line, no run."""

from __future__ import annotations

import csv

import pytest
from safetensors.torch import save_file
from typer.testing import CliRunner

from biolens.cli.main import app
from biolens.models import create_model
from tests.data.test_images import bad_files
from tests.image_helpers import image_folder

runner = CliRunner()
TINY = ["--set", "model.params.widths=[4,8]", "--set", "model.params.blocks=[1,1]", "--image-size", "32"]


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def train_args(tmp_path, data, *extra):
    return ["train", "--data", data, "--out", tmp_path / "run", "--epochs", 1, "--quiet",
            "--set", f"data.image.cache_dir={tmp_path / 'cache'}", *TINY, *extra]


def error_line(result) -> str:
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error:")]
    assert result.exit_code == 2 and len(errors) == 1, result.output
    return errors[0]


def test_datasets_and_models_list_images():
    r = invoke("datasets")
    assert r.exit_code == 0 and "pneumoniamnist" in r.output and "breastmnist" in r.output
    r = invoke("models", "--task", "image")
    assert r.exit_code == 0 and "resnet18" in r.output and "simple_cnn" in r.output


def test_folder_train_evaluate_predict(tmp_path):
    root = image_folder(tmp_path / "data", n=6)
    r = invoke(*train_args(tmp_path, root))
    assert r.exit_code == 0, r.output
    run = tmp_path / "run"
    for f in ("config.yaml", "contract.json", "model.safetensors", "metrics.json", "predictions.csv", "filtered.tsv"):
        assert (run / f).is_file(), f
    r = invoke("evaluate", run, "--data", root, "--out", tmp_path / "ev")
    assert r.exit_code == 0, r.output
    r = invoke("predict", run, root / "test", str(root / "val" / "normal" / "*.png"), "--out", tmp_path / "p.csv")
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(open(tmp_path / "p.csv")))
    assert len(rows) == 12 + 6 and set(rows[0]) >= {"id", "p_normal", "p_pneumonia", "prediction"}


def _mkdirs(tmp_path, kind):
    root = tmp_path / "data"
    if kind == "missing root":
        return tmp_path / "nope"
    if kind == "empty class folder":
        image_folder(root, n=3)
        (root / "train" / "covid").mkdir()
    elif kind == "single class":
        image_folder(root, n=3, classes=("normal",))
    elif kind == "split classes differ":
        image_folder(root, n=3)
        image_folder(root, n=3, splits=("val",), classes=("covid",))
    elif kind == "undecodable images":
        image_folder(root, n=3)
        bad_files(root / "train" / "normal")
    elif kind == "manifest names a missing file":
        image_folder(root, n=3)
        (tmp_path / "m.csv").write_text("path,label\ndata/train/normal/normal_0.png,normal\ndata/gone.png,pneumonia\n")
        return tmp_path / "m.csv"
    return root


@pytest.mark.parametrize("kind, expected", [
    ("missing root", "image folder not found"),
    ("empty class folder", "covid: empty class folder"),
    ("single class", "only one class"),
    ("split classes differ", "differ from train classes"),
    ("undecodable images", "4 unreadable image file(s)"),
    ("manifest names a missing file", "m.csv:3: image file not found"),
])
def test_bad_input_one_line_exit_2_no_run(tmp_path, kind, expected):
    data = _mkdirs(tmp_path, kind)
    if kind == "missing root":
        r = invoke(*train_args(tmp_path, data, "--set", "data.task=image"))
    else:
        r = invoke(*train_args(tmp_path, data))
    assert expected in error_line(r)
    assert not (tmp_path / "run").exists()


def test_skip_bad_records_in_run(tmp_path):
    root = image_folder(tmp_path / "data", n=3)
    bad_files(root / "train" / "normal")
    r = invoke(*train_args(tmp_path, root, "--skip-bad"))
    assert r.exit_code == 0, r.output
    lines = (tmp_path / "run" / "filtered.tsv").read_text().splitlines()
    assert len(lines) == 1 + 4 and "zero.png" in "".join(lines)


def test_weights_with_mismatched_shapes(tmp_path):
    root = image_folder(tmp_path / "data", n=3)
    other = create_model("resnet", in_channels=1, num_classes=2, widths=[8, 8], blocks=[1, 1])
    save_file(other.state_dict(), str(tmp_path / "w.safetensors"))
    line = error_line(invoke(*train_args(tmp_path, root, "--weights", tmp_path / "w.safetensors")))
    assert "weight shape(s) do not match" in line and "stem.0.weight" in line
    assert not (tmp_path / "run").exists()


def test_weighted_sampler_works_for_images(tmp_path):
    import json

    root = image_folder(tmp_path / "data", n=4)
    r = invoke(*train_args(tmp_path, root, "--sampler", "weighted"))
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "run" / "train_summary.json").read_text())["sampler"] == "weighted"
