"""Ensembles (a bundle like any run: mean of members, ONNX parity, refused on a different contract), test-time
augmentation, weight EMA (exact resume), the Optuna search (never reads test; resumes), the calibration guards and
the data-driven presets; ``biolens cv / ensemble / tune`` end to end."""

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from typer.testing import CliRunner

from biolens.cli.main import app
from biolens.errors import BiolensError, BiolensWarning, ConfigError, DataError
from biolens.evaluation.calibration import check_fit_sample, fit_temperature
from biolens.tasks import Predictor
from biolens.workflows.ensemble import build_ensemble
from biolens.workflows.train import train
from biolens.workflows.tune import tune
from tests.conftest import TINY_MODEL, kill_when, planted_dna, write_csv

FAST = {"epochs": 2, "batch_size": 32, "lr": 3e-3, "early_stopping_patience": None}
# a search over the learning rate only (null removes a default parameter from the space)
LR_ONLY = {"train.lr": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True}, "train.batch_size": None,
           "train.weight_decay": None, "model.params.channels": None, "model.params.blocks": None,
           "model.params.dropout": None, "train.schedule": None, "train.label_smoothing": None}


def _cfg(data: Path, out: Path, seed: int = 0, **train_extra) -> dict:
    return {"data": {"path": str(data)}, "model": {"name": "dilated_resnet", "params": TINY_MODEL},
            "train": {**FAST, "seed": seed, **train_extra}, "out": str(out)}


def _rc(s: str) -> str:
    return s[::-1].translate(str.maketrans("ACGT", "TGCA"))


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("ens")
    seqs, labels = planted_dna(n=240, seed=4)
    data = write_csv(root / "d.csv", seqs, labels)
    runs = [train(_cfg(data, root / f"r{s}", seed=s)).run_dir for s in (0, 1)]
    return root, data, runs


def test_ensemble_bundle_is_the_mean_and_exports_with_parity(two_runs):
    root, data, runs = two_runs
    bundle = build_ensemble(runs, root / "ens")
    ens = Predictor.load(bundle)
    got = ens.read(str(data))
    members = [Predictor.load(r) for r in runs]
    mean = np.mean([m.predict_proba(got.encoded) for m in members], axis=0)
    np.testing.assert_allclose(ens.predict_proba(got.encoded), mean, atol=1e-6)
    metrics = json.loads((bundle / "metrics.json").read_text())
    member_test = json.loads((runs[0] / "metrics.json").read_text())["test"]
    assert metrics["test"]["n"] == member_test["n"] > 0  # scored on the members' own held-out test split

    result = CliRunner().invoke(app, ["export", str(bundle), "--format", "onnx"])
    assert result.exit_code == 0, result.output
    assert [p.name for p in bundle.rglob("*.onnx")] == ["model.onnx"]  # one graph holding both members
    parity = json.loads((bundle / "model.onnx.parity.json").read_text())
    assert parity["passed"], parity


def test_ensemble_refuses_runs_with_different_contracts(two_runs, tmp_path):
    _, _, runs = two_runs
    seqs, labels = planted_dna(n=240, seed=4, length=50)
    other = train(_cfg(write_csv(tmp_path / "long.csv", seqs, labels), tmp_path / "long")).run_dir
    with pytest.raises(ConfigError) as e:
        build_ensemble([runs[0], other], tmp_path / "bad")
    assert "\n" not in str(e.value) and "contract" in str(e.value)
    assert not (tmp_path / "bad").exists()  # nothing half-written


def test_rc_tta_gives_one_answer_for_a_sequence_and_its_reverse_complement(two_runs, tmp_path):
    _, data, _ = two_runs
    run = train({**_cfg(data, tmp_path / "tta"), "train": {**FAST, "tta": True}}).run_dir
    p = Predictor.load(run)
    assert p.contract.tta == ["reverse_complement"]
    seqs = [s for s in pd.read_csv(data)["sequence"][:20]]
    np.testing.assert_allclose(_probs(p, seqs), _probs(p, [_rc(s) for s in seqs]), atol=1e-5)
    plain = Predictor.load(two_runs[2][0])  # without TTA the two strands get different answers
    assert not np.allclose(_probs(plain, seqs), _probs(plain, [_rc(s) for s in seqs]), atol=1e-5)


def _probs(p: Predictor, seqs: list[str]) -> np.ndarray:
    frame = p.predict(seqs)
    return frame[[c for c in frame.columns if c.startswith("p_")]].to_numpy()


def test_ema_resume_is_exact_and_swaps_in_the_average(two_runs, tmp_path):
    _, data, _ = two_runs
    full = train(_cfg(data, tmp_path / "full", epochs=4, ema=0.9)).run_dir
    cfg = _cfg(data, tmp_path / "part", epochs=2, ema=0.9)
    train(cfg)
    cfg["train"]["epochs"] = 4
    part = train(cfg, resume=tmp_path / "part").run_dir
    assert (full / "model.safetensors").read_bytes() == (part / "model.safetensors").read_bytes()
    ck = torch.load(full / "checkpoints" / "last.pt", weights_only=True)
    assert any("ema" in str(k).lower() for k in _keys(ck))  # the average travels in the checkpoint


def _keys(d, prefix=""):
    for k, v in (d.items() if isinstance(d, dict) else []):
        yield f"{prefix}{k}"
        yield from _keys(v, f"{prefix}{k}.")


def test_tune_never_reads_test_and_resumes_to_more_trials(two_runs, tmp_path):
    _, data, _ = two_runs
    out = tmp_path / "tune"
    base = {"data": {"path": str(data)}, "model": {"name": "dilated_resnet", "params": TINY_MODEL},
            "train": {**FAST, "epochs": 1}}
    r = tune(base, out=out, trials=2, space=LR_ONLY)
    trials = sorted((out / "trials").iterdir())
    assert len(trials) == 2
    for t in trials:
        m = json.loads((t / "metrics.json").read_text())
        assert "test" not in m and "val" in m, f"{t.name} scored the test split"
        assert not (t / "predictions.csv").exists()  # the test split's predictions: never written by a trial
    summary = json.loads((out / "tune.json").read_text())
    assert summary["best"]["trial"] in (0, 1) and (r.best_run / "model.safetensors").is_file()
    frame = pd.read_csv(out / "trials.csv")
    assert len(frame) == 2 and set(frame["state"]) <= {"COMPLETE", "PRUNED"}
    r2 = tune(resume=out, trials=3)
    assert len(pd.read_csv(out / "trials.csv")) == 3 and len(list((out / "trials").iterdir())) == 3
    assert r2.best_value >= r.best_value


def test_tune_top_k_is_an_ensemble_of_the_best_trials_scored_on_test(two_runs, tmp_path):
    _, data, _ = two_runs
    out = tmp_path / "tune"
    base = {"data": {"path": str(data)}, "model": {"name": "dilated_resnet", "params": TINY_MODEL},
            "train": {**FAST, "epochs": 1}}
    r = tune(base, out=out, trials=3, space=LR_ONLY, top_k=2)
    values = {t.number: t.value for t in r.study.trials if t.value is not None}
    best_two = sorted(values, key=values.get, reverse=True)[:2]
    members = [Path(m["run"]).name for m in json.loads((r.best_run / "ensemble.json").read_text())["members"]]
    assert sorted(members) == sorted(f"trial_{n:03d}" for n in best_two)
    metrics = json.loads((r.best_run / "metrics.json").read_text())
    assert {"val", "test"} <= set(metrics) and 0 <= metrics["test"]["accuracy"] <= 1  # the final model is scored
    for t in (out / "trials").iterdir():  # while the trials themselves never were
        assert "test" not in json.loads((t / "metrics.json").read_text())

    # resumed with another top_k, the final model follows it: here the best configuration, retrained
    r1 = tune(resume=out, trials=3, top_k=1)
    assert yaml.safe_load((r1.best_run / "config.yaml").read_text())["model"]["name"] == "dilated_resnet"
    assert not (r1.best_run / "ensemble.json").exists()
    assert json.loads((out / "tune_plan.json").read_text())["top_k"] == 1


def test_tune_refuses_a_test_objective(two_runs, tmp_path):
    _, data, _ = two_runs
    with pytest.raises(ConfigError, match="never the test split"):
        tune({"data": {"path": str(data)}}, out=tmp_path / "t", objective="test_roc_auc", trials=1)


def test_temperature_is_bounded_and_small_val_splits_are_refused():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    noise = rng.normal(size=(200, 2)) * 50  # huge logits that carry no information → T runs to the upper bound
    with pytest.warns(BiolensWarning, match="outside"):
        t = fit_temperature(noise, y)
    assert t == 20.0
    good = np.stack([-(2 * y - 1) * 2.0, (2 * y - 1) * 2.0], 1) + rng.normal(size=(200, 2)) * 0.1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert 0.05 < fit_temperature(good, y) < 20
    with pytest.raises(DataError, match="at least 30"):
        check_fit_sample(np.array([0, 1] * 10), 2, "a temperature")
    notes = check_fit_sample(np.array([0] * 90 + [1] * 20), 2, "a threshold", positive=1, target=0.95,
                             method="sensitivity")
    assert len(notes) == 1 and "60 or more positives" in notes[0]


def test_auto_lr_and_the_preset_are_recorded(two_runs, tmp_path):
    _, data, _ = two_runs
    run = train({**_cfg(data, tmp_path / "auto"), "train": {**FAST, "epochs": 1, "lr": "auto"}}).run_dir
    preset = json.loads((run / "preset.json").read_text())
    lr = yaml.safe_load((run / "config.yaml").read_text())["train"]["lr"]
    assert any("LR range test" in c for c in preset["choices"]), preset
    assert isinstance(lr, float) and 1e-5 <= lr <= 1e-1  # the chosen rate is what the bundle records
    assert (run / "plots" / "lr_find.png").is_file()
    with pytest.raises(BiolensError):
        train({**_cfg(data, tmp_path / "bad"), "train": {**FAST, "lr": "fast"}})


def test_cli_cv_ensemble_tune_end_to_end(tmp_path):
    seqs, labels = planted_dna(n=160, seed=8)
    data = write_csv(tmp_path / "d.csv", seqs, labels)
    runner = CliRunner()
    common = ["--data", str(data), "--model", "dilated_resnet", "--epochs", "1", "--batch-size", "32",
              "--set", "model.params.channels=8", "--set", "model.params.blocks=1", "-q"]
    res = runner.invoke(app, ["cv", "--folds", "2", "--out", str(tmp_path / "cv"), *common])
    assert res.exit_code == 0, res.output
    assert "mean ± sd over folds" in res.output and (tmp_path / "cv" / "cv.json").is_file()
    assert "refit members on the val half of their fold" in res.output
    assert "ensemble of the 2 refit fold models" in res.output
    res = runner.invoke(app, ["predict", str(tmp_path / "cv"), str(data), "--out",
                              str(tmp_path / "p.csv")])
    assert res.exit_code == 0, res.output
    assert len(pd.read_csv(tmp_path / "p.csv")) == 160
    folds = sorted(p for p in (tmp_path / "cv" / "folds").iterdir() if p.is_dir())
    assert [p.name for p in folds] == ["fold_1", "fold_1_refit", "fold_2", "fold_2_refit"]
    res = runner.invoke(app, ["ensemble", *map(str, folds), "--out", str(tmp_path / "ens"), "-q"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["ensemble", str(folds[0]), "--out", str(tmp_path / "one"), "-q"])
    assert res.exit_code != 0 and "Traceback" not in res.output
    res = runner.invoke(app, ["tune", "--trials", "1", "--out", str(tmp_path / "tune"), *common])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "tune" / "best" / "model.safetensors").is_file()
    res = runner.invoke(app, ["tune", "--resume", str(tmp_path / "tune"), "--objective", "val_loss"])
    assert res.exit_code == 2 and "--objective: a resumed study keeps the objective" in res.output
    assert len(res.output.strip().splitlines()) == 1, res.output


@pytest.mark.slow
def test_killed_tune_resumes_and_marks_the_interrupted_trial_failed(two_runs, tmp_path):
    _, data, _ = two_runs
    out = tmp_path / "tune"
    base = {"data": {"path": str(data)}, "model": {"name": "dilated_resnet", "params": TINY_MODEL},
            "train": {**FAST, "epochs": 3}}
    kill_when(lambda: tune(base, out=out, trials=3, space=LR_ONLY), out / "trials" / "trial_001" / "checkpoints" / "last.pt")
    assert (out / "trials" / "trial_000" / "metrics.json").is_file(), "trial 0 must have finished before the kill"
    r = tune(resume=out, trials=3)
    states = pd.read_csv(out / "trials.csv")["state"].tolist()
    assert states.count("COMPLETE") + states.count("PRUNED") == 3 and states.count("FAIL") == 1, states
    assert (r.best_run / "model.safetensors").is_file()


@pytest.mark.parametrize("given", [{"objective": "val_loss"}, {"space": {"lr": {"low": 1e-4, "high": 1e-2}}}])
def test_resumed_tune_refuses_a_new_objective_or_space_from_the_api_too(tmp_path, given):
    (name,) = given
    with pytest.raises(ConfigError, match=rf"^{name}: a resumed study keeps the {name} it was searched with"):
        tune(resume=tmp_path / "study", **given)


@pytest.mark.parametrize("kw, message", [({"trials": 0}, "trials=0: a study needs at least 1 trial"),
                                         ({"trials": 3, "top_k": 0}, "top_k=0: give at least 1")])
def test_tune_refuses_no_trials_or_an_empty_top_k_naming_the_value(tmp_path, kw, message):
    with pytest.raises(ConfigError, match=message):
        tune(data="builtin:splice", out=tmp_path / "t", **kw)
    assert not (tmp_path / "t").exists()  # refused before any folder is made
