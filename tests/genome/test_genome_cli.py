"""``biolens train --intervals --genome``, ``biolens variants`` and ``biolens scan`` through typer's runner."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from biolens.cli._common import console
from biolens.cli.main import app
from tests.genome.conftest import WINDOW, write_vcf

runner = CliRunner()
pytestmark = pytest.mark.slow


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def one_error(result) -> str:
    errors = [ln for ln in result.output.splitlines() if ln.startswith("error:")]
    assert result.exit_code == 2 and len(errors) == 1, result.output
    return errors[0]


def test_train_from_intervals_on_the_command_line(planted, tmp_path, monkeypatch):
    out = tmp_path / "run"
    r = invoke("train", "--intervals", planted["bed"], "--genome", planted["fasta"], "--window", WINDOW,
               "--negatives", "shuffled", "--test-chroms", "chrC", "--val-chroms", "chrB", "--model", "motif_cnn",
               "--set", "model.params.filters=8", "--set", "model.params.embedding_dim=8", "--epochs", 1,
               "--out", out, "--quiet")
    assert r.exit_code == 0, r.output
    cfg = yaml.safe_load((out / "config.yaml").read_text())["data"]
    assert cfg["genome"] == str(planted["fasta"]) and cfg["intervals"]["window"] == WINDOW
    assert cfg["intervals"]["val_chroms"] == ["chrB"] and cfg["intervals"]["negatives"] == "shuffled"
    report = json.loads((out / "data_report.json").read_text())
    assert report["intervals"]["splits"]["by"] == "chromosome"
    genome = json.loads((out / "contract.json").read_text())["genome"]
    monkeypatch.setattr(console, "width", 400)  # one table row per field, no wrapping
    r = invoke("info", out)
    assert r.exit_code == 0, r.output
    flat = " ".join(r.output.split())
    assert f"windows of genome {genome['name']} ({len(genome['contigs'])} contig(s)" in flat
    assert f"{sum(genome['contigs'].values()):,} bp" in flat


def test_train_flag_errors_are_one_line(planted, tmp_path):
    bad = tmp_path / "bad.bed"
    bad.write_text("Chromosome\t10\t100\n")
    err = one_error(invoke("train", "--intervals", bad, "--genome", planted["fasta"], "--window", WINDOW,
                           "--negatives", "gc-matched", "--out", tmp_path / "x"))
    assert "bad.bed:1: contig 'Chromosome' is not in the genome" in err and "chrom_aliases" in err
    err = one_error(invoke("train", "--intervals", planted["bed"], "--data", planted["bed"], "--genome",
                           planted["fasta"], "--out", tmp_path / "x"))
    assert "--data and --intervals" in err
    err = one_error(invoke("train", "--intervals", planted["bed"], "--genome", planted["fasta"],
                           "--negatives", "gc-matched", "--out", tmp_path / "x"))
    assert "set data.intervals.window=N (--window)" in err
    err = one_error(invoke("train", "--intervals", planted["bed"], "--genome", planted["fasta"],
                           "--chrom-alias", "nonsense", "--out", tmp_path / "x"))
    assert "--chrom-alias 'nonsense'" in err
    assert not (tmp_path / "x").exists()


def test_variants_and_scan_commands(genome_run, planted, tmp_path):
    c, s = planted["sites"][0]
    vcf = write_vcf(tmp_path / "v.vcf", [f"{c}\t{s + 7}\tv1\tA\tC\t.\tPASS\t.", "chrQ\t5\tv2\tA\tC\t.\tPASS\t."])
    r = invoke("variants", genome_run, "--vcf", vcf, "--genome", planted["fasta"], "--out", tmp_path / "e.tsv",
               "--vcf-out", tmp_path / "e.vcf", "--quiet")
    assert r.exit_code == 0, r.output
    assert "of 2 alleles" in r.output and "1 unknown_contig" in r.output
    assert len(pd.read_csv(tmp_path / "e.tsv", sep="\t")) == 2 and (tmp_path / "e.vcf").is_file()
    regions = tmp_path / "r.bed"
    regions.write_text("chrA\t0\t4000\n")
    r = invoke("scan", genome_run, "--genome", planted["fasta"], "--regions", regions, "--stride", 40, "--out",
               tmp_path / "scan", "--no-progress", "--quiet")
    assert r.exit_code == 0, r.output
    assert "regions at P(positive) >= 0.5" in r.output
    assert {p.name for p in (tmp_path / "scan").iterdir()} == {"scan.bedGraph", "scan.bw", "peaks.bed", "scan.json"}
    err = one_error(invoke("scan", genome_run, "--genome", planted["fasta"], "--regions", regions, "--out",
                           tmp_path / "scan", "--quiet"))
    assert "already holds scan results" in err and "--overwrite" in err


def test_another_genome_is_refused_on_the_command_line(genome_run, planted, tmp_path):
    other = tmp_path / "other.fa"
    other.write_text(">chrA\n" + "ACGT" * 100 + "\n")
    vcf = write_vcf(tmp_path / "v.vcf", ["chrA\t200\t.\tA\tC\t.\tPASS\t."])
    err = one_error(invoke("variants", genome_run, "--vcf", vcf, "--genome", other, "--out", tmp_path / "e.tsv"))
    assert "not the assembly this model was trained on" in err and "--any-genome" in err
    assert not (tmp_path / "e.tsv").exists()
