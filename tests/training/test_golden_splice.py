"""Golden number: the default model on bundled UCI splice junctions, exactly as `make demo` trains it."""

import pytest

from biolens.workflows.train import train


@pytest.mark.slow
def test_default_model_reaches_95_percent_on_splice(tmp_path):
    result = train({"data": {"path": "builtin:splice"}, "train": {"epochs": 20}, "out": str(tmp_path / "splice")})
    test = result.metrics["test"]
    assert test["n"] == 317
    assert test["accuracy"] >= 0.95, test["accuracy"]  # KBANN-era methods: 92-95%
    assert test["roc_auc_ovr"] >= 0.98
