"""Every registered image model: shape, finite output, gradients everywhere, reset_classifier; freezing; weights."""

from __future__ import annotations

import pytest
import torch
import torchvision
from safetensors.torch import save_file

from biolens.errors import ModelError
from biolens.models import create_model, list_models, model_info
from biolens.models.transfer import load_pretrained, load_starting_weights

IMAGE_MODELS = list_models(task="image")
TINY = {"simple_cnn": {"widths": [4, 8, 8, 8], "hidden": 8}, "resnet": {"widths": [4, 8], "blocks": [1, 1]}}


def test_expected_models_registered():
    assert {"simple_cnn", "resnet", "resnet18", "resnet34", "resnet50", "efficientnet_b0", "convnext_tiny"} <= set(IMAGE_MODELS)
    assert model_info("resnet").default


@pytest.mark.parametrize("name", IMAGE_MODELS)
@pytest.mark.parametrize("channels", [1, 3])
def test_forward_backward_reset(name, channels):
    torch.manual_seed(0)
    model = create_model(name, in_channels=channels, num_classes=3, **TINY.get(name, {}))
    x = torch.randn(2, channels, 32, 32)
    out = model(x)
    assert out.shape == (2, 3) and torch.isfinite(out).all()
    assert model.forward_features(x).shape == (2, model.num_features)
    out.sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, missing[:5]
    model.reset_classifier(5)
    assert model(x).shape == (2, 5)
    assert create_model(name, **model.config)(x).shape == (2, 5)  # config rebuilds the model


def test_freeze_until_stage_and_bn_stays_eval():
    model = create_model("resnet18", in_channels=3, num_classes=2)
    model.freeze("layer3")
    frozen = {n.split(".")[1] for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen == {"conv1", "bn1", "layer1", "layer2"}
    model.train()
    assert not model.backbone.layer2[0].bn1.training and model.backbone.layer3[0].bn1.training
    model.freeze("all")
    assert all(not p.requires_grad for n, p in model.named_parameters() if not n.startswith("head."))
    with pytest.raises(ModelError, match="layer9"):
        model.freeze("layer9")


def test_param_groups_discriminative_lr():
    model = create_model("resnet18", in_channels=3, num_classes=2)
    model.backbone_lr_scale = 0.1
    groups = {g["name"]: g for g in model.param_groups(1e-3)}
    assert groups["head"]["lr"] == 1e-3 and groups["backbone"]["lr"] == pytest.approx(1e-4)
    assert sum(len(g["params"]) for g in groups.values()) == len(list(model.parameters()))


def test_weights_from_torchvision_state_dict_and_mismatch(tmp_path):
    tv = torchvision.models.resnet18(weights=None, num_classes=1000)
    save_file(tv.state_dict(), str(tmp_path / "tv.safetensors"))
    gray = create_model("resnet18", in_channels=1, num_classes=2)
    load_starting_weights(gray, tmp_path / "tv.safetensors")  # prefix added, conv1 summed over RGB
    torch.testing.assert_close(gray.backbone.conv1.weight, tv.conv1.weight.sum(1, keepdim=True))
    torch.testing.assert_close(gray.backbone.layer4[1].conv2.weight, tv.layer4[1].conv2.weight)
    other = create_model("resnet34", in_channels=3, num_classes=2)
    with pytest.raises(ModelError, match="missing"):
        load_starting_weights(other, tmp_path / "tv.safetensors")
    small = create_model("resnet", in_channels=1, num_classes=2, widths=[4, 8], blocks=[1, 1])
    save_file(small.state_dict(), str(tmp_path / "small.safetensors"))
    wider = create_model("resnet", in_channels=1, num_classes=2, widths=[8, 8], blocks=[1, 1])
    with pytest.raises(ModelError) as e:
        load_starting_weights(wider, tmp_path / "small.safetensors")
    assert "stem.0.weight (4, 1, 3, 3) vs (8, 1, 3, 3)" in str(e.value) and "\n" not in str(e.value)


def test_pretrained_offline_is_one_clear_error(monkeypatch):
    def offline(self, *a, **k):  # noqa: ANN001, ANN002, ANN003
        raise OSError("<urlopen error [Errno -3] Temporary failure in name resolution>")

    monkeypatch.setattr(torchvision.models._api.WeightsEnum, "get_state_dict", offline)
    model = create_model("resnet18", in_channels=3, num_classes=2)
    with pytest.raises(ModelError, match="cannot get ImageNet weights for resnet18.*model.weights=PATH"):
        load_pretrained(model, "imagenet")
    with pytest.raises(ModelError, match="torchvision backbone"):
        load_pretrained(create_model("simple_cnn"), "imagenet")
