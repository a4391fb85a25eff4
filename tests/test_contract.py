"""The input contract's target fields: outputs in the user's units, decisions, validation, old contracts."""

from __future__ import annotations

import json

import numpy as np
import pytest

from biolens.contract import InputContract
from biolens.errors import BundleError


def _regression(**kw) -> InputContract:
    base = dict(task="sequence", class_names=["kd", "tm"], alphabet="dna", max_len=20, target_type="regression",
                target_mean=[1.0, 50.0], target_std=[0.5, 4.0])
    return InputContract(**{**base, **kw})


def test_regression_outputs_undo_the_standardization():
    c = _regression()
    z = np.array([[0.0, 1.0], [-2.0, 0.5]])
    np.testing.assert_allclose(c.outputs(z), [[1.0, 54.0], [0.0, 52.0]])
    np.testing.assert_allclose(c.probabilities(z), c.outputs(z))  # what predict, serve and evaluate call
    assert c.target_names == ["kd", "tm"] and not c.is_classification
    log = _regression(target_link="log", target_mean=[0.0, 0.0], target_std=[2.0, 10.0])
    np.testing.assert_allclose(log.outputs(np.array([[0.0, np.log(3.0)]])), [[2.0, 30.0]])


def test_multilabel_outputs_are_sigmoids_and_decisions_use_each_threshold():
    c = InputContract(task="sequence", class_names=["a", "b"], alphabet="protein", max_len=30,
                      target_type="multilabel", label_thresholds=[0.9, 0.2])
    z = np.array([[0.0, 0.0], [3.0, -2.0]])
    p = c.outputs(z)
    np.testing.assert_allclose(p, 1 / (1 + np.exp(-z)))
    np.testing.assert_array_equal(c.decide(p), [[False, True], [True, False]])
    assert c.explained_index(p).tolist() == [0, 0]


def test_never_empty_label_sets_give_the_most_probable_label_where_none_passes():
    c = InputContract(task="sequence", class_names=["a", "b", "c"], alphabet="protein", max_len=30,
                      target_type="multilabel", label_thresholds=[0.5, 0.5, 0.9], at_least_one_label=True)
    p = np.array([[0.2, 0.4, 0.8], [0.6, 0.1, 0.95], [0.0, 0.0, 0.0]])
    # row 0: nothing passes (c's 0.8 < 0.9) → c, its most probable; row 1 keeps its own set; row 2: the first label
    np.testing.assert_array_equal(c.decide(p), [[False, False, True], [True, False, True], [True, False, False]])
    off = InputContract(**{**c.to_dict(), "at_least_one_label": False})
    assert not off.decide(p)[0].any()
    with pytest.raises(BundleError, match="at_least_one_label is 'yes', not true or false"):
        InputContract(**{**c.to_dict(), "at_least_one_label": "yes"}).validate()
    with pytest.raises(BundleError, match="at_least_one_label is set for a classification run"):
        InputContract(task="sequence", class_names=["a", "b"], alphabet="dna", max_len=5,
                      at_least_one_label=True).validate()


def test_old_contracts_load_as_classification(tmp_path):
    path = tmp_path / "contract.json"
    path.write_text(json.dumps({"task": "sequence", "class_names": ["a", "b"], "positive_class": "b", "threshold": 0.5,
                                "temperature": 1.0, "alphabet": "dna", "max_len": 10}))
    c = InputContract.load(path)
    assert c.target_type == "classification" and c.is_classification and c.label_thresholds is None
    np.testing.assert_allclose(c.outputs(np.array([[0.0, 0.0]])), [[0.5, 0.5]])


def test_round_trip_through_json(tmp_path):
    c = _regression()
    c.save(tmp_path / "contract.json")
    assert InputContract.load(tmp_path / "contract.json") == c


@pytest.mark.parametrize("change, message", [
    ({"target_type": "ordinal"}, "target_type is 'ordinal'"),
    ({"target_std": [0.5, 0.0]}, r"target_std is \[0.5, 0.0\]; it needs 2 finite numbers"),
    ({"target_mean": [1.0]}, "target_mean is"),
    ({"target_link": "logit"}, "target_link is 'logit'"),
    ({"label_thresholds": [0.5, 0.5]}, "label_thresholds is set for a regression run"),
])
def test_validation_names_the_broken_target_field(change, message):
    with pytest.raises(BundleError, match=message):
        _regression(**change).validate()


def test_multilabel_thresholds_are_checked():
    c = InputContract(task="sequence", class_names=["a", "b"], alphabet="dna", max_len=5, target_type="multilabel",
                      label_thresholds=[0.5, 1.5])
    with pytest.raises(BundleError, match="label_thresholds is"):
        c.validate()
    with pytest.raises(BundleError, match="target_mean is set for a classification run"):
        InputContract(task="sequence", class_names=["a", "b"], alphabet="dna", max_len=5, target_mean=[0.0, 0.0],
                      target_std=[1.0, 1.0]).validate()
