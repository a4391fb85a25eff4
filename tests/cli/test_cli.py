"""The CLI through typer's runner: exit codes and output for good and bad input."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from biolens.cli._common import with_flags
from biolens.cli.main import app
from tests.conftest import TINY_MODEL, planted_dna, write_csv, write_fasta

runner = CliRunner()
TINY = ["--set", f"model.params.channels={TINY_MODEL['channels']}", "--set", f"model.params.blocks={TINY_MODEL['blocks']}"]


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def error_line(result) -> str:
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error:")]
    assert len(errors) == 1, result.output
    return errors[0]


def test_datasets_lists_builtins():
    r = invoke("datasets")
    assert r.exit_code == 0
    for name in ("splice", "ecoli_promoters", "regulondb_promoters"):
        assert name in r.output


def test_models_lists_registry():
    r = invoke("models")
    assert r.exit_code == 0
    for name in ("dilated_resnet", "motif_cnn", "cnn_bilstm_attention", "promoter_predictor"):
        assert name in r.output
    assert "(default)" in r.output


@pytest.mark.slow
def test_train_evaluate_predict_end_to_end(tmp_path):
    seqs, labels = planted_dna(n=300, seed=3)
    data = write_fasta(tmp_path / "train.fa.gz", seqs, labels, gz=True)
    out = tmp_path / "runs" / "planted"
    r = invoke("train", "--data", data, "--epochs", 6, "--batch-size", 32, "--lr", 3e-3, "--out", out, "--quiet", *TINY)
    assert r.exit_code == 0, r.output
    assert "accuracy" in r.output
    for f in ("config.yaml", "contract.json", "model.safetensors", "history.csv", "history.json", "metrics.json",
              "predictions.csv", "manifest.json", "log.txt", "data_report.json", "filtered.tsv", "checkpoints/last.pt"):
        assert (out / f).is_file(), f
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] >= 0.75  # well above chance (0.5) after a few epochs
    contract = json.loads((out / "contract.json").read_text())
    assert contract["alphabet"] == "dna" and contract["class_names"] == ["background", "promoter"]
    assert contract["positive_class"] == "promoter" and contract["max_len"] == 40

    r = invoke("evaluate", out, "--resamples", 100, "--quiet")
    assert r.exit_code == 0, r.output
    assert "sensitivity" in r.output and "specificity" in r.output

    new_seqs, new_labels = planted_dna(n=20, seed=11)
    new = write_fasta(tmp_path / "new.fa", new_seqs)
    preds = tmp_path / "preds.csv"
    r = invoke("predict", out, new, "--out", preds, "--quiet")
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(preds.open()))
    assert len(rows) == 20 and set(rows[0]) == {"id", "p_background", "p_promoter", "prediction", "decision"}
    correct = sum(row["prediction"] == lab for row, lab in zip(rows, new_labels))
    assert correct >= 14

    labelled = write_fasta(tmp_path / "labelled.fa", new_seqs, new_labels)
    r = invoke("evaluate", out, "--data", labelled, "--out", tmp_path / "ev", "--resamples", 100, "--quiet")
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "ev" / "metrics.json").read_text())["n"] == 20


def test_train_from_yaml_config_with_flag_override(tmp_path):
    seqs, labels = planted_dna(n=120)
    data = write_csv(tmp_path / "d.csv", seqs, labels)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"data:\n  path: {data}\nmodel:\n  name: dilated_resnet\n  params: {{channels: 8, blocks: 1}}\n"
                   f"train:\n  epochs: 5\nout: {tmp_path / 'from_yaml'}\n")
    r = invoke("train", cfg, "--epochs", 1, "--quiet")
    assert r.exit_code == 0, r.output
    history = (tmp_path / "from_yaml" / "history.csv").read_text().strip().splitlines()
    assert len(history) == 2  # header + the one epoch asked for on the command line


def _bad_cases(tmp: Path) -> dict[str, tuple[list[str], str]]:
    seqs, labels = planted_dna(n=40)
    ok_csv = write_csv(tmp / "ok.csv", seqs, labels)
    (tmp / "empty.fa").write_text("")
    (tmp / "notfasta.fa").write_text("hello\nworld\n")
    (tmp / "nolabels.fa").write_text(">a\nACGT\n>b\nGGCC\n")
    write_csv(tmp / "onecls.csv", seqs, ["x"] * len(seqs))
    bad = list(seqs)
    bad[4] = bad[4][:9] + "*" + bad[4][10:]
    write_csv(tmp / "badchar.csv", bad, labels)
    mixed = list(seqs)
    mixed[2] = mixed[2].replace("T", "U")
    write_csv(tmp / "mixed.csv", mixed, labels)
    return {
        "missing file": (["--data", str(tmp / "nope.fa")], "file not found"),
        "empty file": (["--data", str(tmp / "empty.fa")], "is empty"),
        "no sequences": (["--data", str(tmp / "notfasta.fa")], "no FASTA records found"),
        "no labels": (["--data", str(tmp / "nolabels.fa")], "nolabels.fa:1: header '>a' has no label"),
        "missing column": (["--data", str(ok_csv), "--seq-col", "dna"], "no column 'dna'"),
        "one class": (["--data", str(tmp / "onecls.csv")], "only one class ('x')"),
        "invalid char": (["--data", str(tmp / "badchar.csv")], "badchar.csv:6: invalid character '*'"),
        "mixed alphabets": (["--data", str(tmp / "mixed.csv")], "mixed.csv:4: mixed alphabets"),
        "unknown model": (["--data", str(ok_csv), "--model", "nope"], "unknown model 'nope'; known models:"),
        "bad set": (["--data", str(ok_csv), "--set", "train.lr"], "expected KEY=VALUE"),
        "bad field": (["--data", str(ok_csv), "--set", "train.epochs=0"], "field 'train.epochs'"),
        "unknown builtin": (["--data", "builtin:nope"], "unknown data set 'builtin:nope'"),
    }


@pytest.mark.parametrize("case", [
    "missing file", "empty file", "no sequences", "no labels", "missing column", "one class", "invalid char",
    "mixed alphabets", "unknown model", "bad set", "bad field", "unknown builtin"])
def test_train_bad_input_one_line_exit_2_no_run_folder(tmp_path, case):
    args, expected = _bad_cases(tmp_path)[case]
    out = tmp_path / "run"
    r = invoke("train", *args, "--out", out, "--quiet")
    assert r.exit_code == 2, r.output
    assert expected in error_line(r)
    assert "Traceback" not in r.output
    assert not out.exists()


def test_out_exists_needs_overwrite(tmp_path):
    seqs, labels = planted_dna(n=40)
    data = write_csv(tmp_path / "d.csv", seqs, labels)
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    r = invoke("train", "--data", data, "--out", out, "--quiet")
    assert r.exit_code == 2 and "pass --overwrite" in error_line(r)
    assert (out / "keep.txt").exists()


def test_predict_unknown_label_is_error(trained_run, tmp_path):
    seqs, _ = planted_dna(n=6)
    data = write_fasta(tmp_path / "x.fa", seqs, ["promoter"] * 5 + ["enhancer"])
    out = tmp_path / "p.csv"
    r = invoke("predict", trained_run, data, "--out", out, "--quiet")
    assert r.exit_code == 2
    assert "x.fa:11: label 'enhancer' is unknown to the model" in error_line(r)
    assert not out.exists() and not list(tmp_path.glob(".p.csv*"))  # no half-written output


def test_predict_invalid_sequence_names_line(trained_run, tmp_path):
    data = tmp_path / "x.csv"
    data.write_text("id,sequence\na,ACGTACGT\nb,ACGXXQ\n")
    r = invoke("predict", trained_run, data, "--out", tmp_path / "p.csv")
    assert r.exit_code == 2 and "x.csv:3: invalid character 'X' at position 4 for alphabet dna" in error_line(r)


def test_evaluate_missing_run(tmp_path):
    r = invoke("evaluate", tmp_path / "nope")
    assert r.exit_code == 2 and "run folder not found" in error_line(r)


@pytest.mark.parametrize(("library", "cli"), [
    ("resume /x: no plan", "--resume /x: no plan"),
    ("objective: a resumed study keeps it", "--objective: a resumed study keeps it"),
    ("objectives: unrelated", "objectives: unrelated"),
    ("force=True was needed", "--force was needed"),
])
def test_library_errors_speak_in_flags(library, cli):
    flags = {"resume": "--resume", "objective": "--objective", "force": "--force"}
    assert with_flags(library, flags) == cli
