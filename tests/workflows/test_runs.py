"""``biolens runs DIR``: finding run folders, the leaderboard's columns and order, CSV and HTML."""

from __future__ import annotations

import base64
import csv
import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from biolens.cli.main import app
from biolens.errors import ConfigError, DataError
from biolens.workflows.runs import find_runs, leaderboard

runner = CliRunner()


def fake_metrics(run: Path, accuracy: float, auc: float | None, ci: bool = True, fingerprint: str | None = None,
                 created: str | None = None) -> None:
    """Give a copied run other test metrics (and CIs), as if it were another model."""
    m = json.loads((run / "metrics.json").read_text())
    head = {"n": 40, "accuracy": accuracy, "mcc": accuracy - 0.2}
    if auc is not None:
        head["roc_auc"] = auc
    if ci:
        head["ci"] = {"accuracy": [accuracy - 0.05, accuracy + 0.04], "mcc": [accuracy - 0.3, accuracy - 0.1]}
    m["test"] = {"evaluated": "test split", "n": 40, "at_0.5": head}
    (run / "metrics.json").write_text(json.dumps(m))
    man = json.loads((run / "manifest.json").read_text())
    if fingerprint:
        man["dataset_fingerprint"] = fingerprint
    if created:
        man["created"] = created
    (run / "manifest.json").write_text(json.dumps(man))


@pytest.fixture
def runs_dir(trained_run, tmp_path) -> Path:
    """runs/a, runs/exp/b (nested), runs/exp/c, an unfinished run, and folders that are no runs."""
    root = tmp_path / "runs"
    a = Path(shutil.copytree(trained_run, root / "a"))
    b = Path(shutil.copytree(trained_run, root / "exp" / "b"))
    c = Path(shutil.copytree(trained_run, root / "exp" / "c"))
    fake_metrics(a, 0.80, 0.90, created="2026-01-03T00:00:00+00:00")
    fake_metrics(b, 0.90, 0.85, created="2026-01-01T00:00:00+00:00")
    fake_metrics(c, 0.70, None, ci=False, fingerprint="e" * 64, created="2026-01-02T00:00:00+00:00")
    unfinished = root / "crashed"
    unfinished.mkdir()
    for f in ("config.yaml", "contract.json"):
        shutil.copy(trained_run / f, unfinished / f)
    (root / "notes").mkdir()
    (root / "notes" / "x.txt").write_text("not a run")
    return root


def test_find_runs_is_recursive_and_skips_artefact_folders(runs_dir):
    # a run folder's checkpoints/ and plots/ are never searched; nested experiment folders are
    (runs_dir / "a" / "checkpoints" / "config.yaml").write_text("decoy")
    (runs_dir / "a" / "checkpoints" / "contract.json").write_text("{}")
    found = [p.relative_to(runs_dir).as_posix() for p in find_runs(runs_dir)]
    assert found == ["a", "crashed", "exp/b", "exp/c"]


def test_leaderboard_sorts_by_metric_direction_and_keeps_missing_last(runs_dir):
    board = leaderboard(runs_dir, sort="test_accuracy")
    assert [r.name for r in board.runs] == ["exp/b", "a", "exp/c", "crashed"]
    assert board.runs[-1].status == "unfinished" and not board.runs[-1].metrics
    board = leaderboard(runs_dir, sort="test_roc_auc")
    assert [r.name for r in board.runs][:2] == ["a", "exp/b"]  # c has no AUC: after every run that has one
    assert board.runs[2].value("test_roc_auc") is None
    assert [r.name for r in leaderboard(runs_dir, sort="test_accuracy", ascending=True).runs][:3] == \
        ["exp/c", "a", "exp/b"]
    # newest first; the unfinished run has no manifest, so its config.yaml's time (now) dates it
    assert [r.name for r in leaderboard(runs_dir, sort="date").runs] == ["crashed", "a", "exp/c", "exp/b"]
    assert [r.name for r in leaderboard(runs_dir, sort="name").runs] == ["a", "crashed", "exp/b", "exp/c"]


def test_leaderboard_rows_carry_task_data_model_and_cis(runs_dir, trained_run):
    board = leaderboard(runs_dir)
    b = next(r for r in board.runs if r.name == "exp/b")
    manifest = json.loads((trained_run / "manifest.json").read_text())
    assert b.task == "sequence" and b.model == "dilated_resnet" and b.fingerprint == manifest["dataset_fingerprint"]
    assert b.classes == ["background", "promoter"] and b.created.startswith("2026-01-01")
    row = b.row(board.metrics)
    assert row["test_accuracy"] == 0.9 and row["test_accuracy_lo"] == pytest.approx(0.85)
    assert row["val_accuracy"] is not None and row["val_accuracy_lo"] is None  # val: no bootstrap was run
    assert row["data_fingerprint"] == manifest["dataset_fingerprint"][:12] and row["best_epoch"] >= 1
    assert {"accuracy", "mcc", "roc_auc"} <= set(board.metrics)


def test_bad_sort_key_and_empty_folder(runs_dir, tmp_path):
    with pytest.raises(ConfigError, match="sort 'test_speed' is not a leaderboard column; sort by one of: date"):
        leaderboard(runs_dir, sort="test_speed")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no run folders below"):
        leaderboard(tmp_path / "empty")
    with pytest.raises(DataError, match="no such directory"):
        leaderboard(tmp_path / "missing")


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.rows, self.imgs, self.scripts, self.headers, self._in_td, self._row = [], [], [], [], False, None
        self._in_th = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "tr":
            self._row = []
        elif tag == "td":
            self._in_td = True
            self._row.append("")
        elif tag == "th":
            self._in_th = True
            self.headers.append("")
        elif tag == "img":
            self.imgs.append(a["src"])
        elif tag == "script" and "src" in a:
            self.scripts.append(a["src"])

    def handle_endtag(self, tag):
        if tag == "td":
            self._in_td = False
        elif tag == "th":
            self._in_th = False
        elif tag == "tr" and self._row:
            self.rows.append(self._row)

    def handle_data(self, data):
        if self._in_td:
            self._row[-1] += data
        elif self._in_th:
            self.headers[-1] += data


def test_cli_runs_csv_and_html(runs_dir, tmp_path):
    out_csv, out_html = tmp_path / "board.csv", tmp_path / "board.html"
    r = runner.invoke(app, ["runs", str(runs_dir), "--sort", "test_accuracy", "--csv", str(out_csv),
                            "--html", str(out_html)])
    assert r.exit_code == 0, r.output
    assert "4 runs below" in r.output and "different data sets" in r.output
    rows = list(csv.DictReader(out_csv.open()))
    assert [row["run"] for row in rows] == ["exp/b", "a", "exp/c", "crashed"]
    assert rows[0]["test_accuracy"] == "0.9" and rows[0]["test_accuracy_lo"] == "0.85"
    assert rows[3]["status"] == "unfinished" and rows[3]["test_accuracy"] == ""
    page = _Page()
    page.feed(out_html.read_text())
    assert [row[0] for row in page.rows] == ["exp/b", "a", "exp/c", "crashed"]
    col = page.headers.index("test accuracy")
    assert page.rows[0][col] == "0.90000.8500–0.9400"  # the value, and its CI below it
    assert not page.scripts and "http" not in re.sub(r'href="[^"]*"', "", out_html.read_text()).split("<script>")[0]
    assert len(page.imgs) == 1 and page.imgs[0].startswith("data:image/png;base64,")
    png = base64.b64decode(page.imgs[0].split(",", 1)[1])
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def test_cli_runs_bad_input(runs_dir):
    r = runner.invoke(app, ["runs", str(runs_dir), "--metrics", "accuracy,speed"])
    assert r.exit_code == 2 and "--metrics 'speed' is not a metric" in r.output
    r = runner.invoke(app, ["runs", str(runs_dir), "--sort", "loss"])
    assert r.exit_code == 2 and "--sort 'loss' is not a leaderboard column" in r.output
