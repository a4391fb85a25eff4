"""Image classifiers trained from scratch: the guide's SimpleCNN (4.2) and a ResNet with configurable depth (4.3).

Input ``x`` is ``(B, in_channels, H, W)`` float, normalized; any ``H, W`` ≥ 8 works (global average pooling).
"""

from __future__ import annotations

import copy
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from biolens.errors import ModelError
from biolens.models.base import ClassifierHead, Freezable, _jsonable
from biolens.models.registry import register_model


class ImageClassifier(ClassifierHead, Freezable, nn.Module):
    """Base class: ``forward(x) = forward_head(forward_features(x))``; ``stages`` name the freezable parts in order.

    Subclasses call ``super().__init__(in_channels, num_classes, **hyperparams)``, set ``self.num_features`` and
    build ``self.head`` (``nn.Linear`` or ``nn.Sequential`` ending in one).
    """

    task: str = "image"
    cuda_precision: str = "bf16"  # train.precision=auto on CUDA (devices.resolve_precision)
    aux_inputs: tuple[str, ...] = ()
    extra_outputs: tuple[str, ...] = ()
    transfer: bool = False  # an ImageNet-style backbone: 3 channels and ImageNet statistics by default
    stages: tuple[str, ...] = ()  # attribute paths of the backbone's stages, input to output

    def __init__(self, in_channels: int, num_classes: int, **hyperparams: Any):
        super().__init__()
        if int(in_channels) not in (1, 3):
            raise ModelError(f"in_channels must be 1 or 3; got {in_channels}")
        if int(num_classes) < 1:
            raise ModelError(f"num_classes must be at least 1; got {num_classes}")
        self.in_channels, self.num_classes = int(in_channels), int(num_classes)
        self._config = {"in_channels": self.in_channels, "num_classes": self.num_classes,
                        **{k: _jsonable(v) for k, v in hyperparams.items()}}
        self.num_features = 0
        self.head: nn.Module = nn.Identity()
        self._frozen: set[str] = set()

    @property
    def config(self) -> dict[str, Any]:
        """Every constructor argument: ``create_model(name, **model.config)`` rebuilds it."""
        return copy.deepcopy(self._config)

    def check_input(self, x: Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != self.in_channels or not x.is_floating_point():
            raise ModelError(f"input must be float (B, {self.in_channels}, H, W); got {tuple(x.shape)} ({x.dtype})")

    def forward_features(self, x: Tensor) -> Tensor:
        """``(B, C, H, W)`` → ``(B, num_features)``."""
        raise NotImplementedError

    def forward_head(self, z: Tensor) -> Tensor:
        """``(B, num_features)`` → ``(B, num_classes)`` logits."""
        return self.head(z)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))

    # ---- fine-tuning: freeze / param_groups / train come from Freezable -------------------------------------
    def cam_layer(self) -> nn.Module:
        """The last conv stage, as read by Grad-CAM; a trailing pool is skipped (it only coarsens the map)."""
        stage = self.get_submodule(self.stages[-1])
        if isinstance(stage, nn.Sequential) and len(stage) > 1 and isinstance(stage[-1], (nn.MaxPool2d, nn.AvgPool2d)):
            return stage[-2]
        return stage


class ConvBlock(nn.Sequential):
    """Conv → BatchNorm → ReLU (guide 4.2)."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


@register_model("simple_cnn", task="image", description="the guide's SimpleCNN: 4 stages of 2 ConvBlocks + max pool, GAP, dropout head (4.2)")
class SimpleCNN(ImageClassifier):
    stages = ("stage1", "stage2", "stage3", "stage4")

    def __init__(self, in_channels: int = 1, num_classes: int = 2, widths: tuple[int, ...] = (32, 64, 128, 256),
                 hidden: int = 128, dropout: float = 0.5):
        super().__init__(in_channels, num_classes, widths=list(widths), hidden=hidden, dropout=dropout)
        if len(widths) != 4:
            raise ModelError(f"simple_cnn needs 4 stage widths; got {list(widths)}")
        cin = self.in_channels
        for i, w in enumerate(widths):
            setattr(self, f"stage{i + 1}", nn.Sequential(ConvBlock(cin, w), ConvBlock(w, w), nn.MaxPool2d(2, ceil_mode=True)))
            cin = w
        self.num_features = cin
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(cin, hidden), nn.ReLU(inplace=True),
                                  nn.Dropout(dropout * 0.6), nn.Linear(hidden, num_classes))

    def forward_features(self, x: Tensor) -> Tensor:
        self.check_input(x)
        for name in self.stages:
            x = getattr(self, name)(x)  # (B, w_i, H / 2^i, W / 2^i)
        return x.mean(dim=(2, 3))  # (B, w_4)


class ResidualBlock(nn.Module):
    """``relu(F(x) + shortcut(x))`` with two 3×3 convs (guide 4.3)."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


@register_model("resnet", task="image", default=True,
                description="ResNet from scratch with configurable blocks per stage and widths; small-image stem for < 64 px (4.3)")
class ResNet(ImageClassifier):
    """``blocks`` residual blocks per stage; stage ``i`` has ``widths[i]`` channels and stride 2 after the first.

    ``stem="small"`` (3×3 conv, no pooling) keeps detail in small images such as 28 px MedMNIST; ``"imagenet"`` is
    the 7×7 stride-2 conv + max pool of the guide.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 2, blocks: tuple[int, ...] = (2, 2, 2, 2),
                 widths: tuple[int, ...] = (64, 128, 256, 512), stem: str = "small", dropout: float = 0.0):
        super().__init__(in_channels, num_classes, blocks=list(blocks), widths=list(widths), stem=stem, dropout=dropout)
        if len(blocks) != len(widths) or not blocks or min(blocks) < 1:
            raise ModelError(f"resnet: blocks {list(blocks)} and widths {list(widths)} need the same length, ≥ 1 each")
        if stem not in ("small", "imagenet"):
            raise ModelError(f"resnet: unknown stem {stem!r}; expected small or imagenet")
        w0 = widths[0]
        if stem == "small":
            self.stem = nn.Sequential(nn.Conv2d(self.in_channels, w0, 3, 1, 1, bias=False), nn.BatchNorm2d(w0), nn.ReLU(inplace=True))
        else:
            self.stem = nn.Sequential(nn.Conv2d(self.in_channels, w0, 7, 2, 3, bias=False), nn.BatchNorm2d(w0),
                                      nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1))
        cin, names = w0, ["stem"]
        for i, (n, w) in enumerate(zip(blocks, widths)):
            stride = 1 if i == 0 else 2
            layers = [ResidualBlock(cin, w, stride)] + [ResidualBlock(w, w) for _ in range(n - 1)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*layers))
            names.append(f"layer{i + 1}")
            cin = w
        self.stages = tuple(names)
        self.num_features = cin
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(cin, num_classes)) if dropout else nn.Linear(cin, num_classes)

    def forward_features(self, x: Tensor) -> Tensor:
        self.check_input(x)
        for name in self.stages:
            x = getattr(self, name)(x)  # (B, w_i, H_i, W_i)
        return x.mean(dim=(2, 3))  # (B, widths[-1])
