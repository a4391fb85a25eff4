import csv
import json
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from biolens.cli.main import app
from biolens.workflows.report import build_report
from biolens.workflows.evaluate import EvalOptions, evaluate_run
from tests.conftest import planted_dna, write_fasta

runner = CliRunner()


@pytest.fixture
def run_copy(trained_run, tmp_path) -> Path:
    """evaluate writes into the run (threshold, metrics): work on a copy of the shared session run."""
    return Path(shutil.copytree(trained_run, tmp_path / "run"))


class _Images(HTMLParser):
    def __init__(self):
        super().__init__()
        self.srcs = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.srcs.append(dict(attrs)["src"])


def test_evaluate_with_target_sensitivity_saves_threshold_used_by_predict(run_copy, tmp_path):
    r = runner.invoke(app, ["evaluate", str(run_copy), "--target-sensitivity", "0.95", "--calibrate", "--resamples",
                            "200", "--quiet"])
    assert r.exit_code == 0, r.output
    assert "operating point (sensitivity ≥ 0.95) on val" in r.output and "95% CI" in r.output
    contract = json.loads((run_copy / "contract.json").read_text())
    metrics = json.loads((run_copy / "metrics.json").read_text())["test"]
    op = metrics["operating_point"]
    assert contract["threshold"] == op["threshold"] and op["sensitivity"] >= 0.95
    assert contract["temperature"] > 0 and metrics["calibration"]["temperature"] == contract["temperature"]
    assert set(metrics["at_threshold"]["ci"]) >= {"sensitivity", "specificity", "roc_auc", "accuracy"}
    for png in ("roc.png", "pr.png", "confusion.png", "calibration.png", "per_class.png"):
        assert (run_copy / "plots" / png).is_file()
    # predict applies the saved threshold and temperature
    seqs, _ = planted_dna(n=30, seed=5)
    preds = tmp_path / "p.csv"
    assert runner.invoke(app, ["predict", str(run_copy), str(write_fasta(tmp_path / "n.fa", seqs)), "--out",
                               str(preds), "--quiet"]).exit_code == 0
    rows = list(csv.DictReader(preds.open()))
    assert all((row["decision"] == "True") == (float(row["p_promoter"]) >= contract["threshold"]) for row in rows)
    manifest = json.loads((run_copy / "manifest.json").read_text())
    from biolens.io import sha256_file

    assert manifest["files"]["contract.json"] == sha256_file(run_copy / "contract.json")  # manifest kept current


def test_evaluate_external_file_into_out(run_copy, tmp_path):
    seqs, labels = planted_dna(n=40, seed=8)
    data = write_fasta(tmp_path / "ext.fa", seqs, labels)
    res = evaluate_run(run_copy, str(data), out=tmp_path / "ev", options=EvalOptions(n_resamples=100))
    assert res["n"] == 40 and "at_0.5" in res
    assert {p.name for p in (tmp_path / "ev").iterdir()} == {"metrics.json", "predictions.csv", "plots"}


def test_evaluate_warns_when_no_positives(run_copy, tmp_path):
    seqs, labels = planted_dna(n=40, seed=9)
    neg = [s for s, lab in zip(seqs, labels) if lab == "background"]
    data = write_fasta(tmp_path / "neg.fa", neg, ["background"] * len(neg))
    with pytest.warns(UserWarning, match="no examples of class"):
        res = evaluate_run(run_copy, str(data), out=tmp_path / "ev", options=EvalOptions(n_resamples=50))
    assert res["at_0.5"]["sensitivity"] is None and res["at_0.5"]["roc_auc"] is None
    assert res["warnings"]


def test_report_html_embeds_every_figure(run_copy):
    html_path, md_path = build_report(run_copy, n_resamples=100)
    parser = _Images()
    parser.feed(html_path.read_text())
    pngs = sorted((run_copy / "plots").glob("*.png"))
    assert len(pngs) >= 6  # history, roc, pr, confusion, calibration, per class
    assert len(parser.srcs) == len(pngs) and all(s.startswith("data:image/png;base64,") for s in parser.srcs)
    md = md_path.read_text()
    assert "## Metrics" in md and "95% CI" in md and "Most confident mistakes" in md
    assert all(f"plots/{p.name}" in md for p in pngs)


def test_compare_prints_and_writes_csv(run_copy, trained_run, tmp_path):
    out = tmp_path / "cmp.csv"
    r = runner.invoke(app, ["compare", str(trained_run), str(run_copy), "--csv", str(out)])
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 2 and rows[0]["accuracy"] == rows[1]["accuracy"]


def test_operating_point_needs_binary(tmp_path):
    r = runner.invoke(app, ["evaluate", str(tmp_path / "missing"), "--optimize", "youden"])
    assert r.exit_code == 2 and "run folder not found" in r.output


@pytest.mark.parametrize("args,expected", [
    (["report", "{missing}"], "run folder not found"),
    (["compare", "{run}", "{missing}"], "run folder not found"),
    (["evaluate", "{run}", "--target-sensitivity", "0.9", "--optimize", "youden"], "give one of --target-sensitivity"),
    (["evaluate", "{run}", "--optimize", "best"], "unknown operating-point method 'best'"),
    (["evaluate", "{run}", "--split", "holdout"], "unknown split 'holdout'"),
])
def test_report_compare_evaluate_bad_input(run_copy, tmp_path, args, expected):
    argv = [a.format(run=run_copy, missing=tmp_path / "missing") for a in args]
    r = runner.invoke(app, argv)
    errors = [ln for ln in r.output.splitlines() if ln.startswith("error:")]
    assert r.exit_code == 2 and len(errors) == 1 and expected in errors[0], r.output


def test_report_refuses_a_changed_run_and_never_blesses_it(run_copy):
    # a report describes the run as trained: a file changed since the manifest was written stops it, and the manifest
    # keeps the old checksum (a later load still refuses the run)
    history = run_copy / "history.csv"
    history.write_text(history.read_text() + "\n")
    before = json.loads((run_copy / "manifest.json").read_text())
    result = CliRunner().invoke(app, ["report", str(run_copy)])
    assert result.exit_code == 2
    assert "history.csv: SHA-256 does not match manifest.json" in result.output
    assert json.loads((run_copy / "manifest.json").read_text()) == before
    assert not (run_copy / "report.html").exists()
