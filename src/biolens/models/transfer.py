"""Transfer learning over torchvision backbones, and loading starting weights (guide 4.5).

The backbone is built without weights; ImageNet weights come from torchvision's weights API
(:func:`load_pretrained`) and local weights from a state dict or another biolens run (:func:`load_starting_weights`).
Weights are never part of the model's config, so a trained run rebuilds offline from its own ``model.safetensors``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn

from biolens.errors import ModelError
from biolens.models.finetune import load_matching as _load_matching
from biolens.models.finetune import read_state as _read_state
from biolens.models.image import ImageClassifier
from biolens.models.registry import register_model

log = logging.getLogger(__name__)


def _resnet_parts(net: nn.Module) -> tuple[int, list[str]]:
    n = net.fc.in_features
    net.fc = nn.Identity()
    return n, ["conv1", "bn1", "layer1", "layer2", "layer3", "layer4"]


def _features_parts(net: nn.Module, keep_head: int) -> tuple[int, list[str]]:
    """EfficientNet / ConvNeXt: ``features.i`` stages; the classifier's last Linear goes, its norm layers stay."""
    lin = net.classifier[-1]
    n = lin.in_features
    net.classifier = nn.Sequential(*list(net.classifier)[:keep_head]) if keep_head else nn.Identity()
    return n, [f"features.{i}" for i in range(len(net.features))]


# name → (torchvision builder name, weights enum entry, how to split it, first conv attribute path)
BACKBONES: dict[str, tuple[str, str, Callable[[nn.Module], tuple[int, list[str]]], str]] = {
    "resnet18": ("resnet18", "ResNet18_Weights.IMAGENET1K_V1", _resnet_parts, "conv1"),
    "resnet34": ("resnet34", "ResNet34_Weights.IMAGENET1K_V1", _resnet_parts, "conv1"),
    "resnet50": ("resnet50", "ResNet50_Weights.IMAGENET1K_V2", _resnet_parts, "conv1"),
    "efficientnet_b0": ("efficientnet_b0", "EfficientNet_B0_Weights.IMAGENET1K_V1", lambda m: _features_parts(m, 0), "features.0.0"),
    "convnext_tiny": ("convnext_tiny", "ConvNeXt_Tiny_Weights.IMAGENET1K_V1", lambda m: _features_parts(m, 2), "features.0.0"),
}


class TransferNet(ImageClassifier):
    """A torchvision backbone (classifier removed) plus a dropout + linear head."""

    transfer = True
    backbone_name: str = ""

    def __init__(self, in_channels: int = 3, num_classes: int = 2, dropout: float = 0.2):
        super().__init__(in_channels, num_classes, dropout=dropout)
        import torchvision

        builder, _, split, first = BACKBONES[self.backbone_name]
        net = torchvision.models.get_model(builder, weights=None)
        self.num_features, stage_names = split(net)
        self.backbone = net
        self.first_conv = f"backbone.{first}"
        if self.in_channels != 3:
            self._adapt_first_conv(self.in_channels)
        self.stages = tuple(f"backbone.{s}" for s in stage_names)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.num_features, num_classes))

    def _adapt_first_conv(self, channels: int) -> None:
        old: nn.Conv2d = self.get_submodule(self.first_conv)
        new = nn.Conv2d(channels, old.out_channels, old.kernel_size, old.stride, old.padding, bias=old.bias is not None)
        parent, _, attr = self.first_conv.rpartition(".")
        setattr(self.get_submodule(parent), attr, new)

    def freeze(self, until: str | None) -> None:
        """As :meth:`ImageClassifier.freeze`; stage names may omit the ``backbone.`` prefix (``layer3``)."""
        if until is not None and until != "all" and not until.startswith("backbone."):
            until = f"backbone.{until}"
        try:
            super().freeze(until)
        except ModelError:
            short = ", ".join(s.removeprefix("backbone.") for s in self.stages)
            raise ModelError(f"cannot freeze until {until.removeprefix('backbone.')!r}: {self.backbone_name} stages are {short}, or all") from None

    def forward_features(self, x: Tensor) -> Tensor:
        self.check_input(x)
        return self.backbone(x)  # (B, num_features)


def _make(name: str) -> type[TransferNet]:
    cls = type(f"Transfer_{name}", (TransferNet,), {"backbone_name": name, "__doc__": f"torchvision {name} backbone + new head."})
    return register_model(name, task="image", description=f"torchvision {name} backbone (transfer learning; --pretrained imagenet or --weights)")(cls)


for _name in BACKBONES:
    _make(_name)


def _fit_first_conv(model: ImageClassifier, state: dict[str, Tensor]) -> None:
    """ImageNet conv weights ``(O, 3, k, k)`` → ``(O, 1, k, k)`` (summed) for a grayscale model."""
    key = f"{getattr(model, 'first_conv', '')}.weight"
    if key in state and model.in_channels == 1 and state[key].shape[1] == 3:
        state[key] = state[key].sum(dim=1, keepdim=True)


def load_pretrained(model: nn.Module, source: str) -> None:
    """Load torchvision ImageNet weights into a transfer model's backbone (the head stays new)."""
    if source != "imagenet":
        raise ModelError(f"unknown model.pretrained {source!r}; expected imagenet, or use model.weights=PATH")
    if not isinstance(model, TransferNet):
        raise ModelError(f"model.pretrained=imagenet needs a torchvision backbone ({', '.join(BACKBONES)}); "
                         f"{type(model).__name__} trains from scratch (use model.weights=PATH for your own weights)")
    import torchvision

    weights = torchvision.models.get_weight(BACKBONES[model.backbone_name][1])
    try:
        raw = weights.get_state_dict(progress=False, check_hash=True)
    except (OSError, RuntimeError, ValueError) as e:
        raise ModelError(
            f"cannot get ImageNet weights for {model.backbone_name} ({str(e).splitlines()[0][:100]}); this needs the "
            f"internet once (then torch's cache in {torch.hub.get_dir()}); offline, use model.weights=PATH"
        ) from None
    state = {f"backbone.{k}": v for k, v in raw.items()}
    _fit_first_conv(model, state)
    _load_matching(model, state, str(weights))


def load_starting_weights(model: ImageClassifier, path: str | Path) -> None:
    """Load a local state dict (``.safetensors``, ``.pt``) or another biolens run into ``model``.

    Keys are matched as saved, or with a ``backbone.`` prefix (plain torchvision state dicts). The classifier is
    re-initialised when its shape differs (another number of classes); any other mismatch is an error listing keys.
    """
    path = Path(path)
    state = _read_state(path)
    own = model.state_dict()
    if not set(state) & set(own) and any(f"backbone.{k}" in own for k in state):
        state = {f"backbone.{k}": v for k, v in state.items()}
    _fit_first_conv(model, state)
    _load_matching(model, state, str(path))
