"""``biolens cv``: grouped stratified folds of train ∪ val, the test split never read, OOF metrics, resume, and
the ensemble of the fold models as an ordinary bundle."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from biolens.tasks import Predictor, make_task
from biolens.doctor.advise import SHORT_STEM
from biolens.workflows.cv import _make_plan, cross_validate
from biolens.workflows.train import build_config
from tests.conftest import TINY_MODEL, kill_when, planted_dna, write_csv

FAST = {"model": "dilated_resnet", "params": TINY_MODEL, "epochs": 2, "batch_size": 32, "lr": 3e-3}


def _grouped_csv(tmp_path: Path, n: int = 240) -> Path:
    seqs, labels = planted_dna(n=n, seed=3)
    path = write_csv(tmp_path / "grouped.csv", seqs, labels)
    frame = pd.read_csv(path)
    frame["patient"] = [f"p{i // 4}" for i in range(n)]  # 4 records per patient (mixed labels)
    frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def cv_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("cv")
    data = _grouped_csv(root)
    result = cross_validate(data=str(data), folds=3, out=root / "cv", group_col="patient", **FAST)
    return root, data, result


def test_grouped_cv_keeps_groups_in_one_fold_and_never_reads_test(cv_run):
    _, data, result = cv_run
    out = result.out
    folds = pd.read_csv(out / "folds.tsv", sep="\t", dtype={"id": str})
    frame = pd.read_csv(data)
    patient = dict(zip(frame["id"], frame["patient"]))
    folds["patient"] = folds["id"].map(patient)
    assert (folds.groupby("patient")["fold"].nunique() == 1).all()  # every patient in one fold
    plan = json.loads((out / "cv_plan.json").read_text())
    assert plan["folds"] == 3 and plan["pool"] == len(folds) and plan["test_held_out"] > 0

    # the original test split (seeded, grouped) is what the ensemble's own config still holds out
    ens = Predictor.load(out)
    task = make_task(ens.config)
    task.prepare()
    test_ids = set(task.ids("test"))
    assert len(test_ids) == plan["test_held_out"]
    assert not test_ids & set(folds["id"])
    for k in range(1, 4):
        fold_dir = out / "folds" / f"fold_{k}"
        assignment = pd.read_csv(out / "folds" / f"fold_{k}.tsv", sep="\t", dtype={"id": str})
        assert not test_ids & set(assignment["id"])
        preds = pd.read_csv(fold_dir / "predictions.csv", dtype={"id": str})
        assert not test_ids & set(preds["id"])
        assert set(preds["id"]) == set(folds.loc[folds["fold"] == k - 1, "id"])  # its test split is fold k
        metrics = json.loads((fold_dir / "metrics.json").read_text())
        assert metrics["test"]["n"] == len(preds)

    # every fold trains with its own seed on the same data (split seed and negatives of the plan's seed)
    configs = [yaml.safe_load((out / "folds" / f"fold_{k}" / "config.yaml").read_text()) for k in range(1, 4)]
    assert [c["train"]["seed"] for c in configs] == plan["fold_seeds"] == [0, 1, 2]
    assert {c["data"]["split_seed"] for c in configs} == {0}

    oof = pd.read_csv(out / "oof_predictions.csv", dtype={"id": str})
    assert sorted(oof["id"]) == sorted(folds["id"])  # every pool record exactly once
    summary = json.loads((out / "cv.json").read_text())
    accs = [f["accuracy"] for f in summary["folds"]]
    assert summary["mean_sd"]["accuracy"]["mean"] == pytest.approx(np.mean(accs), abs=1e-4)
    assert summary["mean_sd"]["accuracy"]["sd"] == pytest.approx(np.std(accs, ddof=1), abs=1e-4)
    pooled = summary["pooled"]["metrics"]
    assert "ci" in pooled and pooled["ci"]["accuracy"][0] <= pooled["accuracy"] <= pooled["ci"]["accuracy"][1]
    assert (out / "plots" / "roc.png").is_file()


def test_refit_members_train_on_all_other_folds_and_early_stop_on_half_of_their_own(cv_run):
    _, data, result = cv_run
    out = result.out
    folds = pd.read_csv(out / "folds.tsv", sep="\t", dtype={"id": str})
    patient = dict(zip(*pd.read_csv(data)[["id", "patient"]].to_numpy().T))
    assert result.members == [out / "folds" / f"fold_{k}_refit" for k in range(1, 4)]
    for k in range(1, 4):
        assignment = pd.read_csv(out / "folds" / f"fold_{k}_refit.tsv", sep="\t", dtype={"id": str})
        fold_ids = set(folds.loc[folds["fold"] == k - 1, "id"])
        by_split = {s: set(assignment.loc[assignment["split"] == s, "id"]) for s in ("train", "val", "test")}
        assert by_split["train"] == set(folds["id"]) - fold_ids  # every other fold, its inner val share included
        assert by_split["val"] | by_split["test"] == fold_ids and by_split["val"] and by_split["test"]
        assert abs(len(by_split["val"]) - len(by_split["test"])) <= 0.3 * len(fold_ids)
        assert not {patient[i] for i in by_split["val"]} & {patient[i] for i in by_split["test"]}  # groups whole
        metrics = json.loads((out / "folds" / f"fold_{k}_refit" / "metrics.json").read_text())
        assert metrics["test"]["n"] == len(by_split["test"])
        assert yaml.safe_load((out / "folds" / f"fold_{k}_refit" / "config.yaml").read_text())["train"]["seed"] == k - 1
    summary = json.loads((out / "cv.json").read_text())
    halves = [f["accuracy"] for f in summary["refit"]["held_out_half"]]
    assert summary["refit"]["mean_sd"]["accuracy"]["mean"] == pytest.approx(np.mean(halves), abs=1e-4)
    oof = pd.read_csv(out / "oof_predictions.csv", dtype={"id": str})  # the OOF estimate stays the fold models'
    first = pd.read_csv(out / "folds" / "fold_1" / "predictions.csv", dtype={"id": str})
    np.testing.assert_allclose(oof.loc[oof["fold"] == 1].filter(like="p_").to_numpy(),
                               first.filter(like="p_").to_numpy(), atol=1e-6)


def test_cv_ensemble_is_the_mean_of_the_refit_members(cv_run):
    _, data, result = cv_run
    ens = Predictor.load(result.out)
    assert ens.config.model.name == "ensemble" and ens.config.data.split.assignment is None
    got = ens.read(str(data))
    members = [Predictor.load(r) for r in result.members]
    mean = np.mean([m.predict_proba(got.encoded) for m in members], axis=0)
    np.testing.assert_allclose(ens.predict_proba(got.encoded), mean, atol=1e-6)
    folds_only = np.mean([Predictor.load(r).predict_proba(got.encoded) for r in result.fold_runs], axis=0)
    assert np.abs(ens.predict_proba(got.encoded) - folds_only).max() > 1e-3  # not the fold models' ensemble
    info = json.loads((result.out / "ensemble.json").read_text())
    assert info["networks"] == 3 and info["cv"]["folds"] == 3 and info["cv"]["refit"] is True


@pytest.mark.slow
def test_killed_cv_resumes_where_it_stopped(tmp_path):
    data = _grouped_csv(tmp_path, n=160)
    out = tmp_path / "cv"
    kwargs = dict(data=str(data), folds=3, out=out, group_col="patient", **{**FAST, "epochs": 3})
    kill_when(lambda: cross_validate(**kwargs), out / "folds" / "fold_2" / "checkpoints" / "last.pt", timeout=300)
    for done in ("fold_1", "fold_1_refit"):
        assert (out / "folds" / done / "manifest.json").is_file(), f"{done} must have finished before the kill"
    assert not (out / "folds" / "fold_3").exists() and not (out / "folds" / "fold_2_refit").exists()
    kept = {r: (out / "folds" / r / "model.safetensors").stat().st_mtime_ns for r in ("fold_1", "fold_1_refit")}

    result = cross_validate(resume=out)
    for r, mtime in kept.items():  # kept, not retrained
        assert (out / "folds" / r / "model.safetensors").stat().st_mtime_ns == mtime
    history = json.loads((out / "folds" / "fold_2" / "history.json").read_text())
    assert len(history) == 3  # the interrupted fold finished its epochs
    summary = json.loads((out / "cv.json").read_text())
    assert len(summary["folds"]) == 3 and len(result.oof) == json.loads((out / "cv_plan.json").read_text())["pool"]
    assert len(summary["refit"]["held_out_half"]) == 3 and len(result.members) == 3
    assert Predictor.load(out).predict(["ACGT" * 10]).shape[0] == 1



def test_cv_plans_the_preset_train_would_choose(tmp_path):
    """The plan fixes the choices of ``train.preset=auto`` for every fold, the data-dependent ones included (here the
    narrow stem of short DNA)."""
    seqs, labels = planted_dna(n=120, length=24, seed=1)
    path = write_csv(tmp_path / "short.csv", seqs, labels)
    plan = _make_plan(build_config(None, data=str(path), out=tmp_path / "cv"), folds=3)
    assert plan["config"]["model"]["params"]["stem_kernel"] == SHORT_STEM
    assert plan["fold_seeds"] == [0, 1, 2] and plan["config"]["data"]["split_seed"] == 0
