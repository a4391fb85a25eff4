"""Honest `compare`: refused for runs tested on different data, paired tests (McNemar, DeLong) on one test set."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from biolens.cli.main import app
from biolens.errors import BiolensWarning, DataError
from biolens.evaluation.paired import delong_test, mcnemar_test
from biolens.workflows.compare import compare_runs

runner = CliRunner()


def copy_run(src: Path, dst: Path) -> Path:
    return Path(shutil.copytree(src, dst))


def other_model(run: Path, flip: int, seed: int = 0) -> pd.DataFrame:
    """Make ``run`` look like another model on the same test set: new scores, and ``flip`` decisions changed."""
    path = run / "predictions.csv"
    df = pd.read_csv(path, dtype={"id": str})
    rng = np.random.default_rng(seed)
    p = np.clip(df["p_promoter"].to_numpy() + rng.normal(0, 0.25, len(df)), 0.001, 0.999)
    df["p_promoter"], df["p_background"] = p, 1 - p
    df["prediction"] = np.where(p >= 0.5, "promoter", "background")
    idx = rng.choice(len(df), flip, replace=False)
    df.loc[idx, "prediction"] = np.where(df.loc[idx, "prediction"] == "promoter", "background", "promoter")
    df.to_csv(path, index=False)
    return df


def set_fingerprint(run: Path, value: str) -> None:
    m = json.loads((run / "manifest.json").read_text())
    m["dataset_fingerprint"] = value
    (run / "manifest.json").write_text(json.dumps(m))


def test_same_test_set_gets_paired_tests(trained_run, tmp_path):
    b = copy_run(trained_run, tmp_path / "b")
    other = other_model(b, flip=9)
    base = pd.read_csv(trained_run / "predictions.csv", dtype={"id": str})
    result = compare_runs([trained_run, b])
    assert result.same_test_set and not result.problems and len(result) == 2 and len(result.paired) == 1
    assert result[0]["data"] == result[1]["data"] and len(result[0]["data"]) == 12
    pair = result.paired[0]
    merged = base.merge(other, on="id", suffixes=("_a", "_b"))
    y = merged["label_a"].to_numpy()
    expected = mcnemar_test(merged["prediction_a"].to_numpy() == y, merged["prediction_b"].to_numpy() == y)
    assert pair["n"] == len(base) and pair["mcnemar"] == expected.to_dict()
    assert pair["mcnemar"]["b"] + pair["mcnemar"]["c"] > 0
    dl = pair["delong"]
    assert dl["auc_a"] == pytest.approx(roc_auc_score(y == "promoter", merged["p_promoter_a"]))
    assert dl["auc_b"] == pytest.approx(roc_auc_score(y == "promoter", merged["p_promoter_b"]))
    ref = delong_test(y == "promoter", merged["p_promoter_a"].to_numpy(), merged["p_promoter_b"].to_numpy())
    assert dl["p_value"] == pytest.approx(ref.p_value) and 0 <= dl["p_value"] <= 1


def test_rows_are_paired_by_id_not_by_order(trained_run, tmp_path):
    b = copy_run(trained_run, tmp_path / "b")
    df = pd.read_csv(b / "predictions.csv", dtype={"id": str})
    df.iloc[::-1].to_csv(b / "predictions.csv", index=False)  # same items, another order
    pair = compare_runs([trained_run, b]).paired[0]
    assert pair["mcnemar"]["b"] == pair["mcnemar"]["c"] == 0 and pair["delong"]["difference"] == 0
    assert pair["delong"]["p_value"] == 1.0


def test_three_runs_get_holm_adjusted_p_values(trained_run, tmp_path):
    b, c = copy_run(trained_run, tmp_path / "b"), copy_run(trained_run, tmp_path / "c")
    other_model(b, flip=6, seed=1)
    other_model(c, flip=12, seed=2)
    result = compare_runs([trained_run, b, c])
    assert len(result.paired) == 3
    ps = sorted((p["mcnemar"]["p_value"], p["mcnemar"]["p_holm"]) for p in result.paired)
    assert ps[0][1] == pytest.approx(min(1.0, 3 * ps[0][0]))
    assert all(adj >= raw for raw, adj in ps) and any("Holm" in n for n in result.notes)


def test_different_data_is_refused(trained_run, tmp_path):
    b = copy_run(trained_run, tmp_path / "b")
    set_fingerprint(b, "f" * 64)
    with pytest.raises(DataError, match=r"different data \(dataset fingerprint .*not comparable"):
        compare_runs([trained_run, b])
    with pytest.warns(BiolensWarning, match="not comparable"):
        result = compare_runs([trained_run, b], allow_different_data=True)
    assert not result.same_test_set and "fingerprint" in result.problems[0]
    assert result[1]["data"] == "f" * 12


def test_different_test_items_are_refused(trained_run, tmp_path):
    b = copy_run(trained_run, tmp_path / "b")
    df = pd.read_csv(b / "predictions.csv", dtype={"id": str})
    df.iloc[10:].to_csv(b / "predictions.csv", index=False)
    with pytest.raises(DataError, match=r"tested on different items \(\d+ and \d+ test ids, \d+ in common\)"):
        compare_runs([trained_run, b])
    with pytest.warns(BiolensWarning):
        result = compare_runs([trained_run, b], allow_different_data=True)
    assert result.paired[0]["n"] == len(df) - 10  # paired only on the items both scored


def test_different_labels_are_refused(trained_run, tmp_path):
    b = copy_run(trained_run, tmp_path / "b")
    df = pd.read_csv(b / "predictions.csv", dtype={"id": str})
    df.loc[:4, "label"] = np.where(df.loc[:4, "label"] == "promoter", "background", "promoter")
    df.to_csv(b / "predictions.csv", index=False)
    with pytest.raises(DataError, match="different labels for 5 of"):
        compare_runs([trained_run, b])


def test_cli_compare_prints_paired_tests_and_refuses_different_data(trained_run, tmp_path):
    b = copy_run(trained_run, tmp_path / "b")
    other_model(b, flip=9)
    out = tmp_path / "cmp.json"
    r = runner.invoke(app, ["compare", str(trained_run), str(b), "--json", str(out)])
    assert r.exit_code == 0, r.output
    n = len(pd.read_csv(trained_run / "predictions.csv"))
    assert f"paired tests on the same {n} test items" in r.output
    assert "McNemar acc" in r.output and "DeLong AUC" in r.output
    legend = " ".join(r.output.split())
    assert "items only the first run got right" in legend and "DeLong CI: 95% of the AUC difference" in legend
    assert "bootstrap CI" not in legend
    saved = json.loads(out.read_text())
    assert saved["same_test_set"] and saved["paired"][0]["mcnemar"]["method"] in ("exact", "chi2")

    set_fingerprint(b, "0" * 64)
    r = runner.invoke(app, ["compare", str(trained_run), str(b)])
    errors = [ln for ln in r.output.splitlines() if ln.startswith("error:")]
    assert r.exit_code == 2 and len(errors) == 1, r.output
    assert "not comparable" in errors[0] and "--allow-different-data" in errors[0]
    r = runner.invoke(app, ["compare", str(trained_run), str(b), "--allow-different-data"])
    assert r.exit_code == 0 and "WARNING:" in r.output and "not comparable" in r.output
