"""Image transforms on whole batches: pure functions plus a thin class that only samples parameters.

torchvision's v2 transform classes draw one set of random parameters per call, so applied to a ``(B, C, H, W)``
tensor they would crop, rotate and flip every image of the batch the same way. Here each image gets its own
parameters (drawn from a seeded generator) and the crop, scale, rotation and flip of the whole batch run as one
``affine_grid`` + ``grid_sample``; eval uses ``torchvision.transforms.v2.functional.center_crop``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.transforms.v2 import functional as TF

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_LUMA = (0.299, 0.587, 0.114)


@dataclass(frozen=True)
class AugmentPreset:
    """RandomResizedCrop scale and aspect ratio, horizontal flip probability, rotation (±degrees), jitter."""

    scale: tuple[float, float] = (1.0, 1.0)
    ratio: tuple[float, float] = (1.0, 1.0)
    hflip: float = 0.0
    degrees: float = 0.0
    brightness: float = 0.0
    contrast: float = 0.0

    @property
    def active(self) -> bool:
        return self != AugmentPreset()


PRESETS: dict[str, AugmentPreset] = {
    # guide 7.1: conservative for medical images; no vertical flip (anatomy has an up and a down)
    "medical": AugmentPreset(scale=(0.9, 1.0), ratio=(0.95, 1.05), hflip=0.5, degrees=10, brightness=0.1, contrast=0.1),
    "natural": AugmentPreset(scale=(0.6, 1.0), ratio=(0.75, 4 / 3), hflip=0.5, degrees=20, brightness=0.3, contrast=0.3),
    "none": AugmentPreset(),
}


def to_float(x: Tensor) -> Tensor:
    """``(B, C, H, W)`` uint8 → float32 in [0, 1]."""
    return x.float().div_(255.0)


def match_channels(x: Tensor, channels: int) -> Tensor:
    """Grayscale ``(B, 1, H, W)`` → 3 identical channels, or RGB → 1 luminance channel; else unchanged."""
    if x.shape[1] == channels:
        return x
    if x.shape[1] == 1 and channels == 3:
        return x.expand(-1, 3, -1, -1)
    if x.shape[1] == 3 and channels == 1:
        w = torch.tensor(_LUMA, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
        return (x * w).sum(dim=1, keepdim=True)
    raise ValueError(f"cannot convert {x.shape[1]} channels to {channels}")


def normalize(x: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """``(B, C, H, W)`` float; ``mean``/``std`` ``(C,)``."""
    return (x - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)


def center_crop(x: Tensor, size: int) -> Tensor:
    """Eval transform: the images are already resized to ``resize_to`` when decoded; crop the center."""
    return x if x.shape[-1] == size and x.shape[-2] == size else TF.center_crop(x, [size, size])


def affine_resample(x: Tensor, theta: Tensor, size: int) -> Tensor:
    """Resample every image by its own affine map: ``(B, C, H, W)``, ``theta (B, 2, 3)`` → ``(B, C, size, size)``.

    ``theta`` maps output coordinates in [-1, 1] to input coordinates; outside the input is filled with 0.
    """
    grid = F.affine_grid(theta.to(x.dtype), [x.shape[0], x.shape[1], size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def jitter(x: Tensor, brightness: Tensor, contrast: Tensor) -> Tensor:
    """Per-image brightness and contrast factors ``(B,)`` on ``(B, C, H, W)`` in [0, 1]."""
    x = x * brightness.view(-1, 1, 1, 1)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return ((x - mean) * contrast.view(-1, 1, 1, 1) + mean).clamp_(0, 1)


class BatchAugment:
    """Samples per-image parameters for a preset and applies them to a float batch in [0, 1]."""

    def __init__(self, preset: AugmentPreset, size: int):
        self.preset = preset
        self.size = size

    def _uniform(self, n: int, lo: float, hi: float, gen: torch.Generator) -> Tensor:
        return torch.rand(n, generator=gen) * (hi - lo) + lo

    def sample_theta(self, n: int, gen: torch.Generator) -> Tensor:
        """``(n, 2, 3)`` maps for a random resized crop, rotation and horizontal flip."""
        p = self.preset
        area = self._uniform(n, *p.scale, gen)
        log_r = self._uniform(n, math.log(p.ratio[0]), math.log(p.ratio[1]), gen)
        w = torch.sqrt(area * torch.exp(log_r)).clamp(max=1.0)  # crop width / image width
        h = torch.sqrt(area / torch.exp(log_r)).clamp(max=1.0)
        cx = (torch.rand(n, generator=gen) * 2 - 1) * (1 - w)
        cy = (torch.rand(n, generator=gen) * 2 - 1) * (1 - h)
        angle = self._uniform(n, -p.degrees, p.degrees, gen) * math.pi / 180
        flip = torch.where(torch.rand(n, generator=gen) < p.hflip, -1.0, 1.0)
        cos, sin = torch.cos(angle), torch.sin(angle)
        theta = torch.zeros(n, 2, 3)
        theta[:, 0, 0], theta[:, 0, 1], theta[:, 0, 2] = w * cos * flip, -w * sin, cx
        theta[:, 1, 0], theta[:, 1, 1], theta[:, 1, 2] = h * sin * flip, h * cos, cy
        return theta

    def __call__(self, x: Tensor, gen: torch.Generator) -> Tensor:
        """``(B, C, H, W)`` float in [0, 1] → ``(B, C, size, size)``."""
        n, p = x.shape[0], self.preset
        x = affine_resample(x, self.sample_theta(n, gen).to(x.device), self.size)
        if p.brightness or p.contrast:
            b = self._uniform(n, 1 - p.brightness, 1 + p.brightness, gen).to(x.device)
            c = self._uniform(n, 1 - p.contrast, 1 + p.contrast, gen).to(x.device)
            x = jitter(x, b, c)
        return x
