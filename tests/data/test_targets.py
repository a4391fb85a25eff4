"""Target detection, parsing and the one-line errors of unusable target columns (data/targets.py), and the readers
and prepare path that feed them (CSV target columns, FASTA key=value headers, label sets, missing values)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from biolens.config import DataConfig
from biolens.data.prepare import prepare_sequences
from biolens.data.readers import read_source
from biolens.data.targets import (effective_loss, fit_standardization, never_empty, positive_weights, read_targets,
                                  strata, values_for)
from biolens.errors import ConfigError, DataError
from tests.conftest import planted_dna


def _numbers(n: int, seed: int = 0) -> list[str]:
    return [f"{v:.4f}" for v in np.random.default_rng(seed).normal(size=n)]


# ---- detection -----------------------------------------------------------------------------------------------
def test_many_distinct_numbers_are_regression_with_a_reason():
    t = read_targets({"fitness": _numbers(50)})
    assert t.type == "regression" and t.names == ["fitness"] and t.values.shape == (50, 1)
    assert t.values.dtype == np.float32
    assert "50 numbers" in t.reason and "data.target=classification" in t.reason


def test_few_integer_values_stay_classes():
    t = read_targets({"label": ["0", "1", "2", "1", "0"] * 4})
    assert t.type == "classification" and t.labels[:3] == ["0", "1", "2"]
    assert "data.target=regression" in t.reason  # the override is named


def test_text_labels_are_classes():
    t = read_targets({"label": ["promoter", "background"] * 5})
    assert t.type == "classification" and t.reason == "column 'label': 2 classes"


def test_label_sets_are_multilabel_and_empty_is_the_empty_set():
    t = read_targets({"labels": ["A|B", "B", "", "C|A", "NA"]})
    assert t.type == "multilabel" and t.names == ["A", "B", "C"]
    expected = np.array([[1, 1, 0], [0, 1, 0], [0, 0, 0], [1, 0, 1], [np.nan] * 3])
    np.testing.assert_array_equal(t.values, expected)


def test_several_01_columns_are_multilabel_with_missing_masked():
    t = read_targets({"a": ["0", "1", "1", "0"], "b": ["1", "", "0", "1"]})
    assert t.type == "multilabel" and t.names == ["a", "b"]
    assert np.isnan(t.values[1, 1]) and t.values[1, 0] == 1


def test_several_numeric_columns_are_a_multi_task_regression():
    t = read_targets({"x": _numbers(30, 1), "y": _numbers(29, 2) + [""]})
    assert t.type == "regression" and t.values.shape == (30, 2) and np.isnan(t.values[-1, 1])


def test_override_reads_numbers_as_classes_or_01_columns_as_regression():
    assert read_targets({"y": _numbers(40)}, "classification").type == "classification"
    assert read_targets({"a": ["0", "1"] * 5, "b": ["1", "0"] * 5}, "regression").type == "regression"
    assert read_targets({"label": ["0", "1", "2"] * 5}, "regression").type == "regression"


# ---- unusable target columns: one line naming the place and the fix ------------------------------------------------
@pytest.mark.parametrize("cols, wanted, message", [
    ({"y": ["", "NA", "nan"]}, "auto", r"target column 'y' holds no values \(all 3 cells are empty or NA\)"),
    ({"y": ["2.5"] * 6}, "auto", r"target column 'y' is constant \(every value is 2.5\)"),
    ({"y": ["2.5"] * 6}, "regression", r"is constant"),
    ({"y": _numbers(20) + ["high"]}, "auto", r"f.csv:22: column 'y' holds numbers but this cell is 'high'"),
    ({"y": ["1.5", "x", "2"]}, "regression", r"f.csv:3: column 'y' value 'x' is not a number"),
    ({"y": ["A|B", "A"]}, "classification", r"f.csv:2: column 'y' holds the label set 'A\|B' but "
                                            r"data.target=classification takes one label"),
    ({"a": ["0", "1"], "b": ["1", "x"]}, "auto", r"f.csv:3: column 'b' value 'x' is not a number"),
    ({"a": ["0", "2"], "b": ["1", "0"]}, "multilabel", r"column 'a' value 2 is not 0 or 1"),
    ({"a": ["1", "1"], "b": ["1", "0"]}, "multilabel", r"label 'a' is constant \(every sample has it\)"),
    ({"y": ["1", "inf", "2"] + _numbers(20)}, "auto", r"f.csv:3: column 'y' value 'inf' is not a finite number"),
])
def test_unusable_target_columns(cols, wanted, message):
    with pytest.raises(DataError, match=message) as e:
        read_targets(cols, wanted, locate=lambda i: f"f.csv:{i + 2}", source="f.csv")
    assert "\n" not in str(e.value)


def test_several_columns_in_a_classification_run_is_a_config_error():
    with pytest.raises(ConfigError, match="data.target=classification takes one target column; got 2"):
        read_targets({"a": ["x", "y"], "b": ["y", "x"]}, "classification")


# ---- readers: CSV target columns and FASTA key=value headers ----------------------------------------------------
def test_csv_target_columns_are_read_as_raw_texts(tmp_path):
    p = tmp_path / "d.csv"
    pd.DataFrame({"sequence": ["ACGT", "GGCC"], "k_on": ["1.5", ""], "k_off": ["0.1", "0.2"]}).to_csv(p, index=False)
    recs = read_source(str(p), target_cols=("k_on", "k_off"))
    assert recs.labels is None and recs.targets == {"k_on": ["1.5", ""], "k_off": ["0.1", "0.2"]}
    with pytest.raises(DataError, match="no column 'kd'.*set data.target_cols"):
        read_source(str(p), target_cols=("kd",))


def test_fasta_key_value_targets(tmp_path):
    p = tmp_path / "d.fa"
    p.write_text(">s1 value=1.25 tm=55 split=train\nACGT\n>s2 value=0.5 split=train\nGGCC\n")
    recs = read_source(str(p))
    assert recs.labels is None and recs.splits == ["train", "train"]
    assert recs.targets == {"value": ["1.25", "0.5"], "tm": ["55", ""]}


def _regression_csv(tmp_path, n=200, scale=1.0, shift=0.0, missing=0.0):
    seqs, _ = planted_dna(n=n, seed=4)
    rng = np.random.default_rng(0)
    gc = np.array([(s.count("G") + s.count("C")) / len(s) for s in seqs])
    y = (gc * 10 + rng.normal(0, 0.1, n)) * scale + shift
    texts = np.array([f"{v:.6f}" for v in y], dtype=object)
    texts[rng.random(n) < missing] = ""
    p = tmp_path / "reg.csv"
    pd.DataFrame({"sequence": seqs, "gc10": texts, "other": [f"{v:.3f}" for v in rng.normal(size=n)]}).to_csv(
        p, index=False)
    return p


def test_prepare_regression_resolves_the_target_and_keeps_missing_values(tmp_path):
    p = _regression_csv(tmp_path, missing=0.1)
    d = prepare_sequences(DataConfig(path=str(p), target_cols=["gc10", "other"]))
    assert d.config.target == "regression" and d.config.target_cols == ["gc10", "other"]
    assert d.class_names == ["gc10", "other"] and d.positive_class is None
    y = np.concatenate([d.splits[s].y for s in ("train", "val", "test")])
    assert y.shape == (200, 2) and np.isnan(y[:, 0]).sum() > 5  # missing values kept as NaN, not dropped
    assert d.config.augment.reverse_complement is False  # off for regression targets unless asked for
    report = d.report["targets"]
    assert report["type"] == "regression" and report["train"]["gc10"]["missing"] > 0


def test_prepare_label_col_auto_detects_regression_and_fasta_values(tmp_path):
    seqs, _ = planted_dna(n=120, seed=5)
    fa = tmp_path / "v.fa"
    fa.write_text("".join(f">s{i} value={i * 0.37:.3f}\n{s}\n" for i, s in enumerate(seqs)))
    d = prepare_sequences(DataConfig(path=str(fa)))
    assert d.config.target == "regression" and d.class_names == ["value"] and d.config.target_cols == ["value"]


def test_prepare_multilabel_label_sets(tmp_path):
    seqs, _ = planted_dna(n=150, seed=6)
    labels = ["A|B" if i % 3 == 0 else ("B" if i % 3 == 1 else "") for i in range(150)]
    p = tmp_path / "ml.csv"
    pd.DataFrame({"sequence": seqs, "label": labels}).to_csv(p, index=False)
    d = prepare_sequences(DataConfig(path=str(p)))
    assert d.config.target == "multilabel" and d.class_names == ["A", "B"]
    assert d.splits["train"].y.dtype == np.float32 and set(np.unique(d.splits["train"].y)) <= {0.0, 1.0}
    co = d.report["targets"]["cooccurrence_train"]["matrix"]
    assert co[0][1] == co[0][0]  # every A also carries B


def test_a_split_column_without_val_gets_a_val_part(tmp_path):
    p = _regression_csv(tmp_path)
    df = pd.read_csv(p)
    df["split"] = ["test" if i % 10 == 0 else "train" for i in range(len(df))]
    df.to_csv(p, index=False)
    d = prepare_sequences(DataConfig(path=str(p), target_cols=["gc10"]))
    assert len(d.splits["test"]) == 20 and len(d.splits["val"]) > 0
    assert len(d.splits["train"]) + len(d.splits["val"]) == 180


def test_explicit_rna_alphabet_reads_dna_overhangs():
    """siRNAs: 19 RNA bases plus a DNA overhang (…UUat); auto detection calls it mixed, alphabet=rna reads T as U."""
    from biolens.data.alphabets import RNA
    from biolens.data.encoding import detect_alphabet, encode
    from biolens.errors import DataError as Err

    seqs = ["CUAAUAUGUUAAUUGAUUUat", "AAUAUGUUAAUUGAUUUAUac"]
    with pytest.raises(Err, match="set data.alphabet=rna to read T as U"):
        detect_alphabet(seqs)
    x, _ = encode(seqs, RNA)
    y, _ = encode([s.replace("t", "u") for s in seqs], RNA)
    np.testing.assert_array_equal(x, y)


# ---- helpers used by training and prediction -------------------------------------------------------------------
def test_standardization_and_poisson_scale():
    v = np.array([[1.0, 10.0], [3.0, np.nan], [5.0, 30.0]])
    mean, std = fit_standardization(v, ["a", "b"])
    np.testing.assert_allclose(mean, [3.0, 20.0])
    np.testing.assert_allclose(std, [np.std([1, 3, 5]), 10.0])
    mean, std = fit_standardization(v, ["a", "b"], link="log")
    assert mean == [0.0, 0.0] and std == pytest.approx([3.0, 20.0])
    with pytest.raises(DataError, match="needs counts ≥ 0"):
        fit_standardization(np.array([[-1.0], [2.0]]), ["a"], link="log")
    with pytest.raises(DataError, match="constant on the train split"):
        fit_standardization(np.array([[2.0], [2.0]]), ["a"])


def test_never_empty_reads_only_fully_observed_rows():
    assert never_empty(np.array([[1, 0], [0, 1], [1, 1]], dtype=float))
    assert not never_empty(np.array([[1, 0], [0, 0]], dtype=float))
    assert never_empty(np.array([[1, 0], [0, np.nan]], dtype=float))  # the second row may carry its unknown label
    assert not never_empty(np.array([[np.nan, 0]], dtype=float))  # no fully observed row: nothing says so


def test_positive_weights_are_negatives_over_positives():
    v = np.array([[1, 0], [0, 0], [0, 1], [0, np.nan]], dtype=float)
    np.testing.assert_allclose(positive_weights(v), [3.0, 2.0])


def test_effective_loss():
    assert effective_loss("ce", "regression") == "mse" and effective_loss("ce", "multilabel") == "bce"
    assert effective_loss("huber", "regression") == "huber" and effective_loss("focal", "classification") == "focal"
    with pytest.raises(ConfigError, match="train.loss 'mse' does not fit classification targets.*data.target=regression"):
        effective_loss("mse", "classification")
    with pytest.raises(ConfigError, match="does not fit multilabel"):
        effective_loss("focal", "multilabel")


def test_strata_make_splittable_groups():
    v = np.random.default_rng(0).normal(size=(200, 1))
    s = strata("regression", v)
    assert set(s) == {"q0", "q1", "q2", "q3", "q4"} and min(np.unique(s, return_counts=True)[1]) >= 10
    ml = np.zeros((100, 3))
    ml[:50, 0], ml[50:, 1], ml[:3, 2] = 1, 1, 1  # label 2: too rare for its own stratum
    s = strata("multilabel", ml)
    assert set(s) <= {"label0", "label1"}


def test_values_for_maps_inputs_onto_the_model_targets():
    y = values_for("regression", ["a"], {"a": ["1.5", ""]})
    assert y[0, 0] == 1.5 and np.isnan(y[1, 0])
    y = values_for("multilabel", ["A", "B"], {"labels": ["B", "A|B", "NA"]})
    np.testing.assert_array_equal(y[:2], [[0, 1], [1, 1]])
    assert np.isnan(y[2]).all()
    with pytest.raises(DataError, match="f:1: label 'C' is unknown to the model"):
        values_for("multilabel", ["A", "B"], {"labels": ["C"]}, locate=lambda i: f"f:{i + 1}")
    with pytest.raises(DataError, match="no target column 'a'"):
        values_for("regression", ["a"], {"b": ["1"]})
