"""Image runs through the shared trainer: transfer from a local weights file, staged unfreezing, run folder."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from biolens.models import create_model
from biolens.workflows.train import train
from tests.image_helpers import image_folder


def image_cfg(root, tmp_path, out, model, epochs=2, **model_opts):
    return {"data": {"path": str(root), "image": {"image_size": 32, "cache_dir": str(tmp_path / "cache")}},
            "model": {"name": model, **model_opts}, "train": {"epochs": epochs, "batch_size": 8, "lr": 1e-2},
            "out": str(out)}


@pytest.mark.slow
def test_transfer_from_local_weights_freezes_backbone_and_trains_head(tmp_path):
    root = image_folder(tmp_path / "data", n=6)
    torch.manual_seed(0)
    start = create_model("resnet18", in_channels=3, num_classes=2)
    save_file(start.state_dict(), str(tmp_path / "start.safetensors"))
    out = tmp_path / "run"
    train(image_cfg(root, tmp_path, out, "resnet18", epochs=1, weights=str(tmp_path / "start.safetensors"),
                    freeze_until="layer4"))
    before, after = load_file(str(tmp_path / "start.safetensors")), load_file(str(out / "model.safetensors"))
    frozen = [k for k in before if k.startswith(("backbone.conv1", "backbone.bn1", "backbone.layer1", "backbone.layer2",
                                                 "backbone.layer3"))]
    assert frozen and all(torch.equal(before[k], after[k]) for k in frozen)  # weights and BN statistics unchanged
    assert not torch.equal(before["head.1.weight"], after["head.1.weight"])  # the head trained
    assert not torch.equal(before["backbone.layer4.1.conv2.weight"], after["backbone.layer4.1.conv2.weight"])
    contract = json.loads((out / "contract.json").read_text())
    assert contract["task"] == "image" and contract["channels"] == 3 and contract["image_size"] == 32
    assert contract["mean"] == [0.485, 0.456, 0.406]


def test_staged_schedule_unfreezes_after_head_epochs(tmp_path):
    from biolens.training.trainer import Callback

    root = image_folder(tmp_path / "data", n=4)
    seen = []

    class Watch(Callback):
        def on_epoch_end(self, trainer, logs):  # noqa: ANN001
            seen.append(sum(p.requires_grad for p in trainer.model.parameters()))

    cfg = image_cfg(root, tmp_path, tmp_path / "run", "resnet", epochs=3, head_epochs=1,
                    params={"widths": [4, 8], "blocks": [1, 1]})
    res = train(cfg, callbacks=[Watch()])
    n_all = len(list(create_model("resnet", widths=[4, 8], blocks=[1, 1]).parameters()))
    assert seen == [2, n_all, n_all]  # head only (weight, bias), then everything
    assert (res.run_dir / "filtered.tsv").is_file() and res.data_report["task"] == "image"


@pytest.mark.slow
def test_builtin_breastmnist_trains_evaluates_predicts(tmp_path):
    import numpy as np
    from PIL import Image

    from biolens.tasks import Predictor

    out = tmp_path / "breast"
    res = train({"data": {"path": "builtin:breastmnist"}, "model": {"params": {"widths": [8, 16], "blocks": [1, 1]}},
                 "train": {"epochs": 1, "batch_size": 64}, "out": str(out)})
    assert 0 <= res.metrics["test"]["accuracy"] <= 1 and res.metrics["test"]["n"] == 156
    for i in range(3):
        Image.fromarray(np.full((28, 28), 40 * i, np.uint8)).save(tmp_path / f"img{i}.png")
    frame = Predictor.load(out).predict(str(tmp_path / "img*.png"))
    assert list(frame.columns[:3]) == ["id", "p_malignant", "p_normal_or_benign"] and len(frame) == 3
    assert np.allclose(frame[["p_malignant", "p_normal_or_benign"]].sum(axis=1), 1, atol=1e-5)
