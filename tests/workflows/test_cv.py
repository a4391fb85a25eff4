"""``biolens cv``: grouped stratified folds of train ∪ val, the test split never read, OOF metrics, resume, and
the ensemble of the fold models as an ordinary bundle."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from biolens.data.splits import write_assignment
from biolens.doctor.advise import SHORT_STEM
from biolens.errors import ConfigError
from biolens.tasks import Predictor, make_task
from biolens.workflows.cv import _make_plan, cross_validate
from biolens.workflows.evaluate import EvalOptions, evaluate_run
from biolens.workflows.train import build_config, train
from tests.conftest import TINY_IMAGE, TINY_MODEL, kill_when, planted_dna, write_csv
from tests.image_helpers import image_folder

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


def test_refit_members_train_on_all_but_half_of_their_fold_and_never_see_test(cv_run):
    _, data, result = cv_run
    out = result.out
    folds = pd.read_csv(out / "folds.tsv", sep="\t", dtype={"id": str})
    patient = dict(zip(*pd.read_csv(data)[["id", "patient"]].to_numpy().T))
    assert result.members == [out / "folds" / f"fold_{k}_refit" for k in range(1, 4)]
    for k in range(1, 4):
        assignment = pd.read_csv(out / "folds" / f"fold_{k}_refit.tsv", sep="\t", dtype={"id": str})
        assert set(assignment["id"]) == set(folds["id"]) and set(assignment["split"]) == {"train", "val"}
        fold_ids = set(folds.loc[folds["fold"] == k - 1, "id"])
        val = set(assignment.loc[assignment["split"] == "val", "id"])
        assert val < fold_ids and 0.2 * len(fold_ids) <= len(val) <= 0.8 * len(fold_ids)  # about half of fold k
        train_ids = set(assignment.loc[assignment["split"] == "train", "id"])
        assert train_ids == set(folds["id"]) - val  # every other fold and the other half of its own
        assert not {patient[i] for i in val} & {patient[i] for i in train_ids}  # groups whole
        run = out / "folds" / f"fold_{k}_refit"
        metrics = json.loads((run / "metrics.json").read_text())
        assert "test" not in metrics and metrics["val"]["n"] == len(val)
        assert not (run / "predictions.csv").exists()
        config = yaml.safe_load((run / "config.yaml").read_text())
        assert config["train"]["seed"] == k - 1 and config["train"]["evaluate_test"] is False
    summary = json.loads((out / "cv.json").read_text())
    accs = [f["accuracy"] for f in summary["refit"]["val"]]
    assert summary["refit"]["val_mean_sd"]["accuracy"]["mean"] == pytest.approx(np.mean(accs), abs=1e-4)
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
    assert len(summary["refit"]["val"]) == 3 and len(result.members) == 3
    assert Predictor.load(out).predict(["ACGT" * 10]).shape[0] == 1



def test_cv_plans_the_preset_train_would_choose(tmp_path):
    """The plan fixes the choices of ``train.preset=auto`` for every fold, the data-dependent ones included (here the
    narrow stem of short DNA)."""
    seqs, labels = planted_dna(n=120, length=24, seed=1)
    path = write_csv(tmp_path / "short.csv", seqs, labels)
    plan = _make_plan(build_config(None, data=str(path), out=tmp_path / "cv"), folds=3)
    assert plan["config"]["model"]["params"]["stem_kernel"] == SHORT_STEM
    assert plan["fold_seeds"] == [0, 1, 2] and plan["config"]["data"]["split_seed"] == 0


def test_an_assignment_without_test_rows_trains_only_without_scoring_test(tmp_path):
    """What a refit member's assignment is: train and val rows only. ``train`` refuses to score the missing test
    split in one line (and leaves no run folder); with ``train.evaluate_test=false`` it trains and scores val."""
    seqs, labels = planted_dna(n=120, seed=6)
    data = write_csv(tmp_path / "d.csv", seqs, labels)
    records = make_task(build_config(None, data=str(data)))
    records.prepare()
    rec = records.records()
    assignment = tmp_path / "a.tsv"
    split = np.where(np.arange(len(rec)) % 5 == 0, "val", "train")
    write_assignment(assignment, rec["row"].to_numpy(), rec["id"].to_numpy(), split)
    cfg = {"data": {"path": str(data), "split": {"assignment": str(assignment)}}, "model": {"name": "dilated_resnet",
           "params": TINY_MODEL}, "train": {"epochs": 1, "batch_size": 32}}
    with pytest.raises(ConfigError, match=r"^data.split.assignment .*a.tsv: it assigns no test rows, so there is no "
                                          r"test split to score; add test rows or set train.evaluate_test=false$"):
        train({**cfg, "out": str(tmp_path / "refused")})
    assert not (tmp_path / "refused").exists()
    result = train({**cfg, "train": {**cfg["train"], "evaluate_test": False}, "out": str(tmp_path / "run")})
    assert set(result.metrics) == {"best_epoch", "val"} and result.metrics["val"]["n"] == int((split == "val").sum())
    assert not (result.run_dir / "predictions.csv").exists()


def test_image_cv_refit_members_have_no_test_split(tmp_path):
    data = image_folder(tmp_path / "img", n=8)
    result = cross_validate(data=str(data), folds=2, out=tmp_path / "cv", model="resnet", params=TINY_IMAGE,
                            epochs=1, batch_size=8, image_size=32)
    for run in result.members:
        metrics = json.loads((run / "metrics.json").read_text())
        assert "test" not in metrics and metrics["val"]["n"] > 0
    assert Predictor.load(result.out).contract.task == "image"
    before = (result.members[0] / "contract.json").read_text()
    with pytest.raises(ConfigError, match=r"fold_1_refit: its test split has no rows .*evaluate it on a labelled file "
                                          r"with --data, or evaluate the cv folder .*cv, whose ensemble"):
        evaluate_run(result.members[0], options=EvalOptions(calibrate=True))
    assert (result.members[0] / "contract.json").read_text() == before  # nothing calibrated half-way


def test_a_plan_from_before_refit_resumes_to_the_fold_model_ensemble(tmp_path):
    """A cv folder written before refit existed (its plan has no ``refit`` key) resumes as it began: no refit runs."""
    data = _grouped_csv(tmp_path, n=120)
    out = tmp_path / "cv"
    cross_validate(data=str(data), folds=2, out=out, group_col="patient", refit=False, **{**FAST, "epochs": 1})
    plan = json.loads((out / "cv_plan.json").read_text())
    del plan["refit"]
    (out / "cv_plan.json").write_text(json.dumps(plan))
    result = cross_validate(resume=out)
    assert result.members == result.fold_runs and not list((out / "folds").glob("*_refit*"))
    assert "refit" not in json.loads((out / "cv.json").read_text())
