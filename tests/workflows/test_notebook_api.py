"""The notebook-grade API: ``biolens.train`` on in-memory data with no output folder, then predict and evaluate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import biolens
from biolens.errors import ConfigError, DataError, ModelError
from tests.conftest import TINY_MODEL, planted_dna


@pytest.mark.slow
def test_train_from_a_dataframe_without_out_then_predict_and_evaluate():
    seqs, labels = planted_dna(n=240, seed=3)
    df = pd.DataFrame({"sequence": seqs, "label": labels})

    result = biolens.train(data=df, epochs=4, params=TINY_MODEL, lr=3e-3)          # out=None: a temporary run folder
    preds = result.predict(seqs[:6])                                                 # a ready Predictor
    ev = biolens.evaluate(result.run_dir)                                            # a typed EvaluationResult

    assert result.run_dir.is_dir() and (result.run_dir / "inputs" / "data.csv").is_file()  # the run is self-contained
    assert isinstance(result.predictor, biolens.Predictor)
    assert list(preds.columns) == ["id", "p_background", "p_promoter", "prediction", "decision"] and len(preds) == 6
    assert isinstance(ev, biolens.EvaluationResult) and ev.n == result.metrics["test"]["n"]
    assert ev.metrics["accuracy"] == pytest.approx(result.metrics["test"]["accuracy"])
    assert ev.metrics is ev.at_default and ev["at_0.5"]["accuracy"] == ev.metrics["accuracy"]  # binary, threshold 0.5
    assert result.metrics["test"]["accuracy"] > 0.6  # the planted motif is learnable in 4 epochs
    # the resolved config records what was chosen: the registry's default model for sequences, the overrides
    cfg = biolens.load(result.run_dir).config
    assert cfg.model.name == "dilated_resnet" and cfg.train.epochs == 4 and cfg.train.lr == 3e-3


@pytest.mark.slow
def test_train_from_lists_and_from_image_arrays(tmp_path):
    seqs, labels = planted_dna(n=120, seed=4)
    res = biolens.train(data=(seqs, labels), epochs=1, params=TINY_MODEL, out=tmp_path / "seq")
    assert res.run_dir == tmp_path / "seq" and (res.run_dir / "model.safetensors").is_file()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 60, size=(48, 16, 16), dtype=np.uint8)
    y = np.array(["dark", "bright"] * 24)
    images[y == "bright", 4:12, 4:12] = 250
    img = biolens.train(data=images, labels=y, epochs=1, image_size=16, batch_size=16,
                        params={"widths": [4, 8], "blocks": [1, 1]}, out=tmp_path / "img")
    assert biolens.load(img.run_dir).contract.task == "image" and img.metrics["test"]["n"] > 0
    frame = img.predict(images[:5])  # (5, 16, 16): five gray images
    assert len(frame) == 5 and set(frame["prediction"]) <= {"dark", "bright"}


def test_bad_calls_name_the_option_or_field(tmp_path):
    seqs, labels = planted_dna(n=40)
    with pytest.raises(ConfigError, match=r"unknown option 'learning_rate'; options are the fields of data, model "
                                          r"and train: .*\blr\b"):
        biolens.train(data=(seqs, labels), learning_rate=0.1, out=tmp_path / "x")
    with pytest.raises(ConfigError, match="labels: 39 labels for 40 sequences"):
        biolens.train(data=seqs, labels=labels[:-1], out=tmp_path / "x")
    with pytest.raises(DataError, match="no column 'sequence'"):
        biolens.train(data=pd.DataFrame({"seq": seqs, "label": labels}), out=tmp_path / "x")
    with pytest.raises(ConfigError, match="no data"):
        biolens.train()
    assert not (tmp_path / "x").exists()


def test_a_model_that_does_not_fit_the_data_is_an_error_not_a_swap(tmp_path):
    images = np.zeros((12, 8, 8), dtype=np.uint8)
    with pytest.raises(ModelError, match=r"model.name 'dilated_resnet' is a sequence model but the data are image "
                                         r"data; pick an image model: .*resnet"):
        biolens.train(data=images, labels=["a", "b"] * 6, model="dilated_resnet", out=tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_public_names_are_importable_and_listed():
    for name in ("train", "evaluate", "load", "predict", "report", "compare", "lr_find", "Predictor", "TrainResult",
                 "EvaluationResult", "EvalOptions", "cv", "CVResult", "tune", "TuneResult", "ensemble"):
        assert name in biolens.__all__ and getattr(biolens, name) is not None
    assert "train" in dir(biolens)
    with pytest.raises(AttributeError):
        biolens.nothing_here  # noqa: B018
