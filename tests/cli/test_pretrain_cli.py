"""`biolens pretrain`, `biolens train --weights/--teacher/--baselines` through the CLI runner."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from biolens.cli.main import app
from tests.conftest import planted_dna, write_csv, write_fasta

runner = CliRunner()
TINY = ["--set", "model.params.channels=4", "--set", "model.params.blocks=1", "--set", "model.params.position_bins=2"]


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def error_line(result) -> str:
    errors = [ln for ln in result.output.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, result.output
    return errors[0]


def test_pretrain_then_finetune_from_the_cli(tmp_path):
    seqs, labels = planted_dna(n=120, seed=8)
    fasta = write_fasta(tmp_path / "u.fa", seqs)
    result = invoke("pretrain", "--data", fasta, "--out", tmp_path / "pre", "--epochs", "1", "--batch-size", "32",
                    *TINY, "--quiet")
    assert result.exit_code == 0, result.output
    assert "masked-token accuracy on" in result.output and "--weights" in result.output
    assert json.loads((tmp_path / "pre" / "pretrain.json").read_text())["model"] == "dilated_resnet"
    labelled = write_csv(tmp_path / "l.csv", seqs, labels)
    result = invoke("train", "--data", labelled, "--weights", tmp_path / "pre", "--freeze-until", "blocks.0",
                    "--epochs", "1", "--out", tmp_path / "ft", "--quiet")
    assert result.exit_code == 0, result.output
    # a run that is not a classifier is refused by every command that predicts
    result = invoke("predict", tmp_path / "pre", labelled, "--out", tmp_path / "p.csv")
    assert result.exit_code == 2 and "is a pretraining run" in error_line(result)


def test_cli_errors_use_flags(tmp_path):
    seqs, labels = planted_dna(n=60, seed=9)
    labelled = write_csv(tmp_path / "l.csv", seqs, labels)
    result = invoke("train", "--data", labelled, "--teacher", tmp_path / "nope", "--epochs", "1",
                    "--out", tmp_path / "x")
    assert result.exit_code == 2 and "(--teacher)" in error_line(result) and "run folder not found" in result.output
    result = invoke("train", "--data", labelled, "--weights", tmp_path / "nope", "--epochs", "1", "--out", tmp_path / "x")
    assert result.exit_code == 2 and "--weights" in error_line(result)
    result = invoke("pretrain", "--data", labelled, "--model", "motif_cnn", "--out", tmp_path / "x")
    assert result.exit_code == 2 and "pretrain one of" in error_line(result)
    result = invoke("pretrain", "--data", labelled, "--mask-rate", "0.9", "--out", tmp_path / "x")
    assert result.exit_code == 2 and "mask_rate" in error_line(result)
    assert not (tmp_path / "x").exists()


def test_datasets_lists_the_peptide_sets():
    result = invoke("datasets")
    assert result.exit_code == 0
    for name in ("amp_antibp2", "avp_amppred", "hem_hemopi", "cpp_cellppd"):
        assert name in result.output
