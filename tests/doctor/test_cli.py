"""`biolens doctor …` and `biolens advise` through the CLI runner: tables, exit codes, --json, a valid command."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import typer
from typer.testing import CliRunner

from biolens.cli.main import app
from tests.doctor.helpers import fake_run

runner = CliRunner()


def test_doctor_data_pass_fail_and_json(planted_csv: Path):
    ok = runner.invoke(app, ["doctor", "data", "--data", str(planted_csv)])
    assert ok.exit_code == 0, ok.output
    assert "class balance" in ok.stdout and "0 fail" in ok.stdout
    bad = runner.invoke(app, ["doctor", "data", "--data", str(planted_csv), "--alphabet", "protein", "--json"])
    assert bad.exit_code == 1
    report = json.loads(bad.stdout)
    assert report["status"] == "fail"
    assert {f["name"]: f["status"] for f in report["findings"]}["alphabet"] == "fail"


def test_doctor_data_bad_input_is_exit_2(tmp_path: Path):
    result = runner.invoke(app, ["doctor", "data", "--data", str(tmp_path / "missing.fa")])
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_doctor_model_table_and_json():
    result = runner.invoke(app, ["doctor", "model", "--model", "dilated_resnet", "--input-shape", "100",
                                 "--set", "model.params.channels=8"])
    assert result.exit_code == 0, result.output
    assert "stages (forward order)" in result.stdout and "blocks.1" in result.stdout and "21" in result.stdout
    js = runner.invoke(app, ["doctor", "model", "--model", "simple_cnn", "--input-shape", "1,32,32", "--json"])
    assert js.exit_code == 0
    data = json.loads(js.stdout)
    rf = next(f for f in data["findings"] if f["name"] == "receptive field")
    assert rf["data"]["rf"] == 76 and rf["data"]["unit"] == "pixels"
    bad = runner.invoke(app, ["doctor", "model", "--model", "simple_cnn", "--input-shape", "200"])
    assert bad.exit_code == 2 and "C,H,W" in bad.output


def test_doctor_run_exit_1_on_divergence(tmp_path: Path):
    run = fake_run(tmp_path / "r", [0.7, 0.6, 0.9, 2.5, 8.0], [0.7, 0.65, 1.0, 3.0, 9.0])
    result = runner.invoke(app, ["doctor", "run", str(run)])
    assert result.exit_code == 1 and "diverged" in result.stdout
    js = runner.invoke(app, ["doctor", "run", str(run), "--json"])
    assert js.exit_code == 1 and json.loads(js.stdout)["findings"][0]["status"] == "fail"
    assert runner.invoke(app, ["doctor", "run", str(tmp_path / "nope")]).exit_code == 2


def _parses(argv: list[str]) -> None:
    """The command line parses with the real `biolens` CLI (options, types, choices) without running."""
    assert argv[:2] == ["biolens", "train"]
    group = typer.main.get_command(app)
    ctx = group.make_context("biolens", argv[1:])
    sub = group.get_command(ctx, "train")
    sub.make_context("train", argv[2:], parent=ctx)


def test_advise_by_numbers_prints_a_valid_command():
    result = runner.invoke(app, ["advise", "--kind", "sequence", "--n", "50000", "--length", "500",
                                 "--imbalance", "5", "--json"])
    assert result.exit_code == 0, result.output
    advice = json.loads(result.stdout)
    assert advice["model"] == "cnn_bilstm_attention" and "--class-weights" in advice["command"]
    _parses(advice["command"])
    for args in (["--kind", "sequence", "--n", "20000", "--length", "5000"],
                 ["--kind", "image", "--n", "500", "--image-size", "28"],
                 ["--kind", "image", "--n", "300000", "--image-size", "512", "--imbalance", "20"]):
        out = runner.invoke(app, ["advise", *args, "--json"])
        assert out.exit_code == 0, out.output
        _parses(json.loads(out.stdout)["command"])
    assert runner.invoke(app, ["advise"]).exit_code == 2


def test_advise_measures_data_and_its_command_trains(planted_csv: Path, tmp_path: Path):
    result = runner.invoke(app, ["advise", "--data", str(planted_csv), "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert "192 training examples" in result.stdout and "median length 40" in result.stdout
    line = next(x for x in result.stdout.splitlines() if x.startswith("biolens train"))
    argv = shlex.split(line)
    _parses(argv)
    trained = runner.invoke(app, argv[1:] + ["--epochs", "1", "--quiet"])
    assert trained.exit_code == 0, trained.output
    assert (tmp_path / "run" / "checklist.json").is_file()
