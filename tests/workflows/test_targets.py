"""Regression and multi-label runs end to end on tiny synthetic data: train, evaluate, report, predict, export,
serve (with its OpenAPI schema), explain, doctor and compare, through the CLI and the notebook API; the
standardization round trip (predictions invariant to a linear rescaling of the training targets)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from biolens.bundle import refresh_manifest
from biolens.cli.main import app
from biolens.config import load_config
from biolens.data.synthetic import synthetic_expression, synthetic_peptides
from biolens.errors import ConfigError
from biolens.tasks import Predictor
from biolens.workflows.train import train
from tests.conftest import TINY_MODEL

runner = CliRunner()
TINY = ["--set", f"model.params.channels={TINY_MODEL['channels']}", "--set", f"model.params.blocks={TINY_MODEL['blocks']}"]
FAST = {"epochs": 3, "batch_size": 32, "lr": 3e-3, "params": TINY_MODEL}


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def expression_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("expr") / "expr.csv"
    synthetic_expression(240, length=36, seed=1).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def peptides_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pep") / "pep.csv"
    synthetic_peptides(300, seed=2, rate=0.4).to_csv(path, index=False)
    return path


@pytest.mark.slow
def test_regression_cli_end_to_end(expression_csv, tmp_path):
    out = tmp_path / "reg"
    r = invoke("train", "--data", expression_csv, "--target-col", "expression", "--target-col", "stability",
               "--epochs", 3, "--batch-size", 32, "--lr", 3e-3, "--monitor", "val_spearman", "--out", out, "-q", *TINY)
    assert r.exit_code == 0, r.output
    assert "spearman" in r.output and "per target" in r.output
    contract = json.loads((out / "contract.json").read_text())
    assert contract["target_type"] == "regression" and contract["class_names"] == ["expression", "stability"]
    assert len(contract["target_mean"]) == 2 and all(s > 0 for s in contract["target_std"])
    cfg = (out / "config.yaml").read_text()
    assert "target: regression" in cfg and "loss: mse" in cfg
    history = json.loads((out / "history.json").read_text())
    assert "val_spearman" in history[0] and "train_acc" not in history[0]
    preds = pd.read_csv(out / "predictions.csv")
    assert list(preds.columns) == ["id", "true_expression", "true_stability", "pred_expression", "pred_stability"]
    assert preds["true_stability"].isna().any()  # missing values stay missing

    r = invoke("evaluate", out, "--resamples", 30, "-q")
    assert r.exit_code == 0, r.output
    m = json.loads((out / "metrics.json").read_text())["test"]["metrics"]
    assert m["ci"]["spearman"][0] <= m["spearman"] <= m["ci"]["spearman"][1]
    assert (out / "plots" / "predicted_vs_observed.png").is_file() and (out / "plots" / "residuals.png").is_file()
    r = invoke("evaluate", out, "--optimize", "f1", "-q")
    assert r.exit_code == 2 and "regression run predicts values" in r.output

    r = invoke("report", out, "--resamples", 30)
    assert r.exit_code == 0, r.output
    md = (out / "report.md").read_text()
    assert "Biological reading" in md and "kmer_ridge" in md and "predicted_vs_observed" in md

    new = tmp_path / "new.csv"
    synthetic_expression(20, length=36, seed=9).drop(columns=["expression", "stability"]).to_csv(new, index=False)
    r = invoke("predict", out, new, "--out", tmp_path / "p.csv", "--no-progress", "-q")
    assert r.exit_code == 0, r.output
    p = pd.read_csv(tmp_path / "p.csv")
    assert list(p.columns) == ["id", "pred_expression", "pred_stability"] and len(p) == 20

    r = invoke("export", out, "--format", "onnx")
    assert r.exit_code == 0, r.output
    parity = json.loads((out / "model.onnx.parity.json").read_text())
    assert parity["passed"] and parity["compared_outputs"].startswith("standardized")
    assert set(parity["fp32"]["value_max_abs_diff"]) == {"expression", "stability"}

    r = invoke("doctor", "run", out, "--json")
    assert r.exit_code == 0, r.output
    assert "predictions of expression" in r.output and "Fisher" in r.output  # JSON: no table wrapping
    r = invoke("info", out)
    assert r.exit_code == 0 and "regression" in r.output and "standardization" in r.output
    r = invoke("explain", out, "ACGTTATAATGGCCACGTTATAATGGCCACGTTATA", "--method", "saliency", "--target",
               "stability", "--out", tmp_path / "ex", "-q")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "ex" / "top_windows.tsv").read_text().splitlines()[1].split("\t")[2] == "stability"


@pytest.mark.slow
def test_predictions_are_invariant_to_a_linear_rescaling_of_the_training_targets(expression_csv, tmp_path):
    df = pd.read_csv(expression_csv)
    scaled = df.assign(expression=df["expression"] * 3.0 + 7.0)
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    df.to_csv(a, index=False)
    scaled.to_csv(b, index=False)
    seqs = df["sequence"].tolist()[:25]
    ra = train(data=str(a), target_cols=["expression"], out=tmp_path / "ra", deterministic=True, **FAST)
    rb = train(data=str(b), target_cols=["expression"], out=tmp_path / "rb", deterministic=True, **FAST)
    pa = ra.predict(seqs)["pred_expression"].to_numpy()
    pb = rb.predict(seqs)["pred_expression"].to_numpy()
    np.testing.assert_allclose(pb, 3.0 * pa + 7.0, rtol=1e-4, atol=1e-4)
    assert rb.metrics["test"]["spearman"] == pytest.approx(ra.metrics["test"]["spearman"], abs=1e-4)
    assert rb.metrics["test"]["mae"] == pytest.approx(3.0 * ra.metrics["test"]["mae"], rel=1e-3)


@pytest.mark.slow
def test_multilabel_api_evaluate_thresholds_serve_and_explain(peptides_csv, tmp_path):
    from fastapi.testclient import TestClient

    from biolens.deploy.server import create_app
    from biolens.workflows.evaluate import EvalOptions, evaluate_run

    run = tmp_path / "ml"
    res = train(data=str(peptides_csv), out=run, monitor="val_roc_auc", target_cols=["labels"],
                **{**FAST, "epochs": 4})
    assert res.metrics["test"]["target_type"] == "multilabel"
    assert res.metrics["test"]["roc_auc"] > 0.7  # planted motifs are learnable in a few epochs
    assert json.loads((run / "contract.json").read_text())["class_names"] == ["CYCY", "DEDE", "GPGP", "RRWW"]
    ev = evaluate_run(run, options=EvalOptions(n_resamples=20, operating_point="f1"))
    chosen = json.loads((run / "contract.json").read_text())["label_thresholds"]
    assert len(chosen) == 4 and chosen == list(ev.operating_point["thresholds"].values())
    assert ev.metrics["per_label"]["RRWW"]["threshold"] == pytest.approx(chosen[3], abs=1e-6)
    assert (run / "plots" / "roc_per_label.png").is_file()

    frame = res.predictor.predict(["ACDEFRRWWGHIKLMNPQST"])
    assert list(frame.columns) == ["id", "p_CYCY", "p_DEDE", "p_GPGP", "p_RRWW", "prediction"]
    with TestClient(create_app(run)) as client:
        body = client.post("/v1/predict", json={"sequences": ["ACDEFRRWWGHIKLMNPQST", "GGGG"]}).json()
        assert body["target_type"] == "multilabel" and set(body["thresholds"]) == {"CYCY", "DEDE", "GPGP", "RRWW"}
        assert body["warnings"] == []
        dna = client.post("/v1/predict", json={"sequences": ["ACGTTGCA" * 4, "ACGT" * 6]}).json()
        assert len(dna["predictions"]) == 2 and len(dna["warnings"]) == 1  # still answered, with the warning
        assert dna["warnings"][0].startswith("2 of 2 input sequences (first: sequences[0]) hold only A, C, G")
        assert body["at_least_one_label"] is False  # some training peptides carry no motif: empty sets are allowed
        item = body["predictions"][0]
        assert set(item) == {"id", "labels", "probabilities"}
        on = [n for n, p in item["probabilities"].items() if p >= body["thresholds"][n]]
        assert item["labels"] == on
        schema = client.get("/openapi.json").json()
        assert "MultilabelResponse" in schema["components"]["schemas"]
        assert "warnings" in schema["components"]["schemas"]["MultilabelResponse"]["properties"]
        assert "label set" in schema["paths"]["/v1/predict"]["post"]["summary"]

    r = invoke("explain", run, "ACDEFRRWWGHIKLMNPQST", "--method", "ism", "--out", tmp_path / "ex", "-q")
    assert r.exit_code == 0, r.output
    r = invoke("doctor", "data", "--data", peptides_csv, "--target-col", "labels")
    assert "label co-occurrence" in r.output and "rare labels" in r.output


def test_label_sets_never_empty_in_training_are_never_empty_in_predictions(peptides_csv, tmp_path):
    frame = pd.read_csv(peptides_csv, keep_default_na=False)
    data = tmp_path / "labelled.csv"
    frame[frame["labels"] != ""].to_csv(data, index=False)  # every peptide carries at least one motif
    run = tmp_path / "nonempty"
    # neighbour transfer off: it would make the predictions of these training peptides sure of their own labels
    fast = {**FAST, "epochs": 1, "params": {**TINY_MODEL, "neighbors": {}}}
    res = train(data=str(data), out=run, target_cols=["labels"], **fast)
    contract = json.loads((run / "contract.json").read_text())
    assert contract["at_least_one_label"] is True and contract["label_thresholds"] is None  # auto, small val: 0.5
    assert "at_least_one_label: true" in (run / "config.yaml").read_text()  # the resolved choice, reproducible
    saved = (run / "contract.json").read_text()
    contract["label_thresholds"] = [0.999] * 4  # thresholds no probability reaches: every set would be empty
    (run / "contract.json").write_text(json.dumps(contract))
    frame = Predictor.load(run, verify=False).predict(frame["sequence"].tolist()[:20])
    (run / "contract.json").write_text(saved)
    probs = frame[[f"p_{n}" for n in contract["class_names"]]].to_numpy()
    assert not (probs >= 0.999).any()
    assert frame["prediction"].tolist() == np.asarray(contract["class_names"])[probs.argmax(axis=1)].tolist()
    off = train(data=str(data), out=tmp_path / "off", target_cols=["labels"], at_least_one_label=False, **fast)
    assert off.predictor.contract.at_least_one_label is False
    assert res.metrics["test"]["subset_accuracy"] >= off.metrics["test"]["subset_accuracy"]
    # train.label_threshold: auto keeps 0.5 on a val split this small; a number is every label's threshold
    assert res.metrics["label_threshold"]["threshold"] == 0.5
    assert 0 < res.metrics["label_threshold"]["val_rows"] < 200
    fixed = train(data=str(data), out=tmp_path / "fixed", target_cols=["labels"], label_threshold=0.7, **fast)
    assert fixed.predictor.contract.label_thresholds == [0.7] * 4
    assert json.loads((tmp_path / "fixed" / "contract.json").read_text())["label_thresholds"] == [0.7] * 4
    with pytest.raises(ConfigError, match="label_threshold"):
        train(data=str(data), out=tmp_path / "bad", target_cols=["labels"], label_threshold=1.5, **fast)
    # an ensemble of members whose thresholds differ decides each label at their median, unless it is given its
    # own (as cv does); members that agree keep theirs
    from biolens.workflows.ensemble import write_ensemble

    uneven = tmp_path / "uneven"
    shutil.copytree(tmp_path / "fixed", uneven)
    changed = json.loads((uneven / "contract.json").read_text())
    changed["label_thresholds"] = [0.9, 0.6, 0.7, 0.55]
    (uneven / "contract.json").write_text(json.dumps(changed))
    refresh_manifest(uneven, written=["contract.json"])
    for name, runs, given, want in (("ens_median", [run, tmp_path / "fixed"], None, [0.6] * 4),
                                    ("ens_three", [run, tmp_path / "fixed", uneven], None, [0.7, 0.6, 0.7, 0.55]),
                                    ("ens_agree", [tmp_path / "fixed", tmp_path / "fixed"], None, [0.7] * 4),
                                    ("ens_given", [run, tmp_path / "fixed"], 0.65, [0.65] * 4)):
        (tmp_path / name).mkdir()
        write_ensemble(runs, tmp_path / name, label_threshold=given)
        ens = json.loads((tmp_path / name / "contract.json").read_text())
        assert ens["label_thresholds"] == pytest.approx(want) and ens["at_least_one_label"] is True


def test_a_cv_ensemble_chooses_its_label_threshold_on_the_out_of_fold_predictions():
    from biolens.config import RunConfig
    from biolens.contract import InputContract
    from biolens.workflows.cv import _oof_label_threshold

    # 300 pooled rows, true set = the top label; a second label at 0.6 is wrong on 200 rows: 0.65 is best
    y = np.zeros((300, 3))
    y[:, 0] = 1
    y[:100, 1] = 1
    p = np.full((300, 3), 0.1)
    p[:, 0], p[:, 1] = 0.95, 0.6
    names = ["a", "b", "c"]
    oof = pd.DataFrame({"fold": 1, "id": [str(i) for i in range(300)],
                        **{f"true_{n}": y[:, j] for j, n in enumerate(names)},
                        **{f"p_{n}": p[:, j] for j, n in enumerate(names)}})
    contract = InputContract(task="sequence", class_names=names, target_type="multilabel", at_least_one_label=True)
    cfg = RunConfig(data={"path": "x.csv"})
    got = _oof_label_threshold(cfg, oof, contract)
    assert got["threshold"] == 0.65 and got["chosen_on"] == "out-of-fold predictions" and got["val_rows"] == 300
    assert _oof_label_threshold(cfg.model_copy(update={"train": cfg.train.model_copy(update={"label_threshold": 0.5})}),
                                oof, contract) is None  # a fixed threshold: the members already share it
    contract.at_least_one_label = False
    assert _oof_label_threshold(cfg, oof, contract) is None


@pytest.mark.slow
def test_regression_server_schema_and_compare(expression_csv, tmp_path):
    from fastapi.testclient import TestClient

    from biolens.deploy.server import create_app
    from biolens.workflows.compare import compare_runs

    runs = [train(data=str(expression_csv), target_cols=["expression"], out=tmp_path / f"r{i}", seed=i, **FAST)
            for i in range(2)]
    with TestClient(create_app(runs[0].run_dir)) as client:
        body = client.post("/v1/predict", json={"sequences": ["ACGT" * 9]}).json()
        assert body["targets"] == ["expression"] and set(body["predictions"][0]["values"]) == {"expression"}
        assert body["predictions"][0]["values"]["expression"] == pytest.approx(
            float(runs[0].predict(["ACGT" * 9])["pred_expression"][0]), abs=1e-5)
        assert "RegressionResponse" in client.get("/openapi.json").json()["components"]["schemas"]
    c = compare_runs([r.run_dir for r in runs])
    assert c.same_test_set and "spearman" in c.rows[0]
    boot = c.paired[0]["bootstrap"]["spearman"]
    assert boot["difference"] == pytest.approx(boot["a"] - boot["b"], abs=1e-6)
    r = invoke("compare", runs[0].run_dir, runs[1].run_dir)
    assert r.exit_code == 0, r.output
    text = " ".join(r.output.split())
    assert "paired bootstrap" in text and "bootstrap CI: 95% of the metric's difference (first − second)" in text
    assert "McNemar" not in text and "AUC difference" not in text  # the legend names only the tests shown


def test_unusable_target_columns_are_one_line_cli_errors(expression_csv, tmp_path):
    df = pd.read_csv(expression_csv).head(60)
    df["empty"], df["flat"] = "", 1.0
    df["text"] = df["expression"].astype(str)
    df.loc[5, "text"] = "n.d."
    df["sets"] = ["A|B" if i % 2 else "A" for i in range(len(df))]
    data = tmp_path / "bad.csv"
    df.to_csv(data, index=False)
    for args, message in ((["--target-col", "empty"], "target column 'empty' holds no values"),
                          (["--target-col", "flat"], "target column 'flat' is constant"),
                          (["--target-col", "text"], "bad.csv:7: column 'text' holds numbers but this cell is 'n.d.'"),
                          (["--target-col", "sets", "--target", "classification"],
                           "holds the label set 'A|B' but data.target=classification (--target)")):
        r = invoke("train", "--data", data, *args, "--out", tmp_path / "x", "-q")
        lines = [ln for ln in r.output.splitlines() if ln.strip()]
        assert r.exit_code == 2 and len(lines) == 1 and message in lines[0], r.output
        assert not (tmp_path / "x").exists()


def test_image_manifest_with_numeric_targets_and_label_sets(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    rows = []
    for i in range(48):
        img = rng.integers(0, 40, (24, 24)).astype(np.uint8)
        left, right = bool(i % 2), bool(i % 3 == 0)
        if left:
            img[6:18, 2:8] = 220
        if right:
            img[6:18, 16:22] = 220
        Image.fromarray(img).save(tmp_path / f"{i}.png")
        rows.append({"path": f"{i}.png", "brightness": float(img.mean()),
                     "findings": "|".join(n for n, on in (("left", left), ("right", right)) if on)})
    manifest = tmp_path / "m.csv"
    pd.DataFrame(rows).to_csv(manifest, index=False)
    base = {"epochs": 1, "batch_size": 8, "image_size": 24, "model": "resnet",
            "params": {"widths": [4, 8], "blocks": [1, 1]}}
    reg = train(data=str(manifest), target_cols=["brightness"], out=tmp_path / "reg", **base)
    assert reg.predictor.contract.target_type == "regression" and reg.predictor.contract.task == "image"
    out = reg.predict([str(tmp_path / "0.png")])
    assert list(out.columns) == ["id", "pred_brightness"]
    ml = train(data=str(manifest), target_cols=["findings"], out=tmp_path / "ml", **base)
    assert ml.predictor.contract.class_names == ["left", "right"] and "subset_accuracy" in ml.metrics["test"]
    folder = tmp_path / "folder"
    for cls in ("a", "b"):
        (folder / cls).mkdir(parents=True)
        for i in range(4):
            (folder / cls / f"{i}.png").write_bytes((tmp_path / f"{i}.png").read_bytes())
    with pytest.raises(Exception, match="image folder holds one class per folder"):
        train(data=str(folder), target="regression", out=tmp_path / "f", **base)


def test_builtin_synthetic_sets_are_generated_once(tmp_path, monkeypatch):
    from biolens.config import DataConfig
    from biolens.data.builtin import get_builtin
    from biolens.data.prepare import prepare_sequences

    monkeypatch.setenv("BIOLENS_CACHE", str(tmp_path))
    path = get_builtin("builtin:synthetic_peptides").path
    assert path.is_file() and path.is_relative_to(tmp_path)
    stamp = path.stat().st_mtime_ns
    assert get_builtin("builtin:synthetic_peptides").path.stat().st_mtime_ns == stamp
    d = prepare_sequences(DataConfig(path="builtin:synthetic_expression"))
    assert d.config.target == "regression" and d.class_names == ["expression", "stability"]
    assert sum(len(d.splits[s]) for s in d.splits) == 2000


@pytest.mark.parametrize("which, metric, prefix", [("expression", "pearson", "pred_"),
                                                   ("peptides", "subset_accuracy", "p_")])
def test_cv_of_regression_and_multilabel_runs_ensembles_in_the_users_units(expression_csv, peptides_csv, tmp_path,
                                                                            which, metric, prefix):
    from biolens.tasks import Predictor
    from biolens.workflows.cv import cross_validate

    data = expression_csv if which == "expression" else peptides_csv
    targets = ["expression", "stability"] if which == "expression" else ["labels"]
    result = cross_validate(data=str(data), target_cols=targets, folds=2, out=tmp_path / "cv", model="dilated_resnet",
                            params={"channels": 8, "blocks": 1}, epochs=1, batch_size=32, refit=False)
    assert result.members == result.fold_runs and not list((tmp_path / "cv" / "folds").glob("*_refit*"))
    summary = json.loads((tmp_path / "cv" / "cv.json").read_text())
    assert "refit" not in summary and summary["plan"]["refit"] is False
    values = [f[metric] for f in summary["folds"]]
    assert summary["mean_sd"][metric]["mean"] == pytest.approx(np.mean(values), abs=1e-4)
    assert metric in summary["pooled"]["flat"]
    ens = Predictor.load(result.out)
    members = [Predictor.load(r) for r in result.fold_runs]
    if prefix == "pred_":  # each fold standardized its targets on its own train part
        assert members[0].contract.target_mean != members[1].contract.target_mean
    inputs = pd.read_csv(data).drop(columns=targets).head(12)
    new = tmp_path / "new.csv"
    inputs.to_csv(new, index=False)
    got = ens.predict([str(new)])
    cols = [c for c in got.columns if c.startswith(prefix)]
    mean = np.mean([m.predict([str(new)])[cols].to_numpy() for m in members], axis=0)
    np.testing.assert_allclose(got[cols].to_numpy(), mean, rtol=1e-5, atol=1e-6)  # the mean in the user's units


def test_tune_of_a_regression_run_optimizes_val_spearman(expression_csv, tmp_path):
    from biolens.workflows.tune import tune

    r = tune(data=str(expression_csv), target_cols=["expression", "stability"], trials=1, out=tmp_path / "t",
             model="dilated_resnet", params={"channels": 8, "blocks": 1}, epochs=1, batch_size=32)
    assert r.objective == "val_spearman" and -1 <= r.best_value <= 1
    assert json.loads((r.best_run / "contract.json").read_text())["target_type"] == "regression"


def test_short_dna_regression_starts_from_the_ridge_term_and_exports_with_parity(tmp_path):
    """24-mers: the preset adds the linear term, training starts it at the ridge solution (``stability`` is linear
    in the bases of the first 20 positions, so one epoch already predicts it), and the bundle exports with parity."""
    csv = tmp_path / "short.csv"
    synthetic_expression(400, length=24, seed=3).to_csv(csv, index=False)
    res = train(data=str(csv), target_cols=["expression", "stability"], out=tmp_path / "short", epochs=1,
                batch_size=32, params=TINY_MODEL)
    params = res.predictor.config.model.params
    assert params["linear_positions"] == 32 and params["linear_kmers"] == [2, 3] and params["linear_gc_window"] == 9
    choices = json.loads((res.run_dir / "preset.json").read_text())["choices"]
    assert any("linear_positions 32, linear_kmers [2,3], linear_gc_window 9: median DNA length 24" in c and "ridge" in c
               for c in choices), choices
    ridge = json.loads((res.run_dir / "train_summary.json").read_text())["linear_term_ridge"]
    assert ridge["features"] == 32 * 5 + 25 + 125 + 24 and ridge["targets"][1]["train_r2"] > 0.9
    assert res.metrics["test"]["per_target"]["stability"]["pearson"] > 0.95  # 0.76 without the ridge start
    r = invoke("export", res.run_dir, "--format", "onnx")
    assert r.exit_code == 0, r.output
    assert json.loads((res.run_dir / "model.onnx.parity.json").read_text())["passed"]
    for bad, says in (("[2,2]", "the k-mer lengths distinct"), ("[6]", "linear features for 5 symbols (at most 4,096)")):
        r = invoke("train", "--data", csv, "--target-col", "expression", "--out", tmp_path / "bad", "--epochs", 1,
                   "--set", f"model.params.linear_kmers={bad}", "-q")
        assert r.exit_code == 2 and says in r.output and len(r.output.strip().splitlines()) == 1, r.output
        assert not (tmp_path / "bad").exists()  # refused before any run folder


def test_a_label_set_head_trains_reloads_and_exports_with_parity(peptides_csv, expression_csv, tmp_path, monkeypatch):
    sets = [[], [0], [1], [2], [3], [0, 1]]
    res = train(data=str(peptides_csv), out=tmp_path / "sets", target_cols=["labels"],
                **{**FAST, "epochs": 2, "params": {**TINY_MODEL, "label_sets": sets}})
    assert res.predictor.config.model.params["label_sets"] == sets
    seqs = ["ACDEFRRWWGHIKLMNPQST", "GGGGCYCYAAAADEDEKK"]
    again = Predictor.load(res.run_dir).predict(seqs)
    assert np.allclose(again.filter(like="p_").to_numpy(), res.predictor.predict(seqs).filter(like="p_").to_numpy())
    r = invoke("export", res.run_dir, "--format", "onnx")
    assert r.exit_code == 0, r.output
    assert json.loads((res.run_dir / "model.onnx.parity.json").read_text())["passed"]

    def no_lr_test(*args, **kwargs):
        raise AssertionError("the LR range test ran before the label-set refusal")

    monkeypatch.setattr("biolens.workflows.train.auto_lr", no_lr_test)
    r = invoke("train", "--data", expression_csv, "--target-col", "expression", "--out", tmp_path / "bad", "--epochs",
               1, "--set", "model.params.label_sets=[[0],[]]", "--set", "train.lr=auto", *TINY, "-q")
    assert r.exit_code == 2 and "label_sets is for multi-label targets" in r.output, r.output
    assert len(r.output.strip().splitlines()) == 1 and not (tmp_path / "bad").exists()


def test_neighbour_transfer_is_fitted_saved_and_reloaded_and_refused_for_regression(peptides_csv, expression_csv,
                                                                                     tmp_path):
    res = train(data=str(peptides_csv), out=tmp_path / "nn", target_cols=["labels"],
                **{**FAST, "epochs": 2, "params": {**TINY_MODEL, "neighbors": {"k": 2, "count": 5}}})
    fit = json.loads((res.run_dir / "train_summary.json").read_text())["neighbor_transfer"]
    assert fit["k"] == 2 and fit["memory"] == res.data_report["lengths"]["train"]["n"]  # every train peptide
    params = load_config(res.run_dir / "config.yaml").model.params["neighbors"]
    assert ("size" in params) == fit["used"] and params["k"] == 2  # the fitted spec, or the request when unused
    seqs = ["ACDEFRRWWGHIKLMNPQST", "GGGGCYCYAAAADEDEKK"]
    again = Predictor.load(res.run_dir).predict(seqs)
    assert np.allclose(again.filter(like="p_").to_numpy(), res.predictor.predict(seqs).filter(like="p_").to_numpy())
    r = invoke("train", "--data", expression_csv, "--target-col", "expression", "--out", tmp_path / "bad", "--epochs",
               1, "--set", "model.params.neighbors={k: 3}", *TINY, "-q")
    assert r.exit_code == 2 and "neighbors transfers class or label votes" in r.output, r.output
    assert len(r.output.strip().splitlines()) == 1 and not (tmp_path / "bad").exists()
