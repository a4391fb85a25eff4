"""The image task: image folders, manifests and bundled image sets through the shared trainer and run folder.

Adds to the ``Task`` interface what fine-tuning needs: starting weights (ImageNet or a local file), freezing by
stage, a staged schedule (head only, then unfreeze) and discriminative learning rates for backbone and head.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import numpy as np
import torch
from torch import nn

from biolens.config import RunConfig
from biolens.contract import InputContract
from biolens.data.images.dataset import ImageBatches
from biolens.data.images.prepare import PreparedImages, prepare_images
from biolens.data.images.transforms import PRESETS, BatchAugment
from biolens.data.splits import find_leakage
from biolens.errors import ConfigError, ModelError
from biolens.models import create_model, list_models, model_info
from biolens.models.image import ImageClassifier
from biolens.models.registry import DEFAULT_SEQUENCE_MODEL
from biolens.models.transfer import load_pretrained, load_starting_weights
from biolens.training.setup import resolve_channels_last
from biolens.training.tasks import SPLITS, TASKS, Task
from biolens.training.trainer import Callback, Trainer

log = logging.getLogger(__name__)

DEFAULT_IMAGE_MODEL = "resnet"


class StagedUnfreeze(Callback):
    """Train only the head for ``head_epochs`` epochs, then unfreeze the backbone down to ``freeze_until``."""

    def __init__(self, head_epochs: int, freeze_until: str | None):
        self.head_epochs, self.freeze_until = head_epochs, freeze_until

    def on_fit_start(self, trainer: Trainer) -> None:
        if trainer.epoch >= self.head_epochs:  # resumed after the head-only phase
            trainer.model.freeze(self.freeze_until)

    def on_epoch_start(self, trainer: Trainer) -> None:
        if trainer.epoch == self.head_epochs + 1:
            trainer.model.freeze(self.freeze_until)
            n = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
            log.info("epoch %d: unfroze the backbone%s (%s trainable parameters)", trainer.epoch,
                     f" from {self.freeze_until}" if self.freeze_until else "", f"{n:,}")


def with_image_model(cfg: RunConfig) -> RunConfig:
    """Replace the sequence default model by the image default when no image model was chosen."""
    if cfg.model.name == DEFAULT_SEQUENCE_MODEL:
        return cfg.model_copy(update={"model": cfg.model.model_copy(update={"name": DEFAULT_IMAGE_MODEL})})
    return cfg


class ImageTask(Task):
    kind = "image"

    def __init__(self, cfg: RunConfig):
        super().__init__(with_image_model(cfg))
        self._leakage: dict[str, Any] | None = None

    def _spec(self):  # noqa: ANN202
        spec = model_info(self.cfg.model.name)
        if spec.task != self.kind:
            raise ModelError(f"model {self.cfg.model.name!r} is a {spec.task} model; pick an image model: "
                             f"{', '.join(list_models(self.kind))}")
        return spec

    def prepare(self) -> None:
        spec = self._spec()
        self.data: PreparedImages = prepare_images(self.cfg.data, seed=self.cfg.train.seed, transfer=spec.cls.transfer)

    def build_model(self) -> nn.Module:
        m, d = self.cfg.model, self.data
        params = {k: v for k, v in m.params.items() if k not in ("in_channels", "num_classes")}
        model = create_model(m.name, in_channels=d.channels, num_classes=len(d.class_names), **params)
        assert isinstance(model, ImageClassifier)
        if m.pretrained and m.weights:
            raise ConfigError("give --pretrained or --weights, not both")
        if m.pretrained:
            load_pretrained(model, m.pretrained)
        elif m.weights:
            load_starting_weights(model, m.weights)
        if m.head_epochs >= self.cfg.train.epochs:
            raise ConfigError(f"model.head_epochs={m.head_epochs} leaves no epoch to fine-tune (train.epochs={self.cfg.train.epochs})")
        model.freeze("all" if m.head_epochs else m.freeze_until)
        # discriminative LRs (guide 4.5): the optimizer asks the model for param_groups(lr)
        model.backbone_lr_scale = m.backbone_lr_scale if m.backbone_lr_scale is not None else (
            0.1 if (m.pretrained or m.weights) else 1.0)
        return model

    def callbacks(self, model: nn.Module) -> list[Callback]:
        m = self.cfg.model
        return [StagedUnfreeze(m.head_epochs, m.freeze_until)] if m.head_epochs else []

    def contract(self) -> InputContract:
        d, icfg = self.data, self.data.config.image
        return InputContract(
            task=self.kind, class_names=d.class_names, positive_class=d.positive_class, image_size=d.size,
            channels=d.channels, mean=d.mean, std=d.std, resize_to=d.resize_to,
            image_preprocessing={"augment_train": icfg.augment, "normalize": icfg.normalize, "crop_ratio": icfg.crop_ratio,
                                 "window_center": icfg.window_center, "window_width": icfg.window_width,
                                 "stored_channels": d.report["stored_channels"], "eval": "resize + center crop"},
        )

    def resolved_data_config(self) -> Any:
        return self.data.config

    def batches(self, split: str, *, train: bool, device: torch.device, batch_size: int | None = None) -> ImageBatches:
        """Batches on ``device``: pixels resident there or staged through pinned memory (``data.image.resident``),
        augmented there as whole batches, channels_last on CUDA (``data.image.channels_last``)."""
        d, icfg = self.data, self.data.config.image
        preset = PRESETS[icfg.augment]
        augment = BatchAugment(preset, d.size) if train and preset.active else None
        return ImageBatches(d.splits[split], batch_size or self.cfg.train.batch_size, size=d.size, channels=d.channels,
                            mean=d.mean, std=d.std, shuffle=train, augment=augment, device=device, seed=self.cfg.train.seed,
                            resident=icfg.resident,
                            channels_last=resolve_channels_last(icfg.channels_last, torch.device(device).type, self.kind))

    def labels(self, split: str) -> np.ndarray:
        return self.data.splits[split].y

    def ids(self, split: str) -> np.ndarray:
        return self.data.splits[split].ids

    def preview(self, split: str, ids: list[str]) -> dict[str, dict[str, Any]]:
        part = self.data.splits[split]
        where = {str(i): n for n, i in enumerate(part.ids)}
        out = {}
        for i in ids:
            if i in where:
                img = part.read(np.array([where[i]]))[0]  # (C, S, S) uint8
                out[i] = {"image": img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0)}
        return out

    def report(self) -> dict[str, Any]:
        return self.data.report

    def dropped(self) -> list[dict[str, str]]:
        return self.data.filtered

    def leakage(self) -> dict[str, Any]:
        """Pixel-identical images across and within splits (a hash of every stored image; computed once)."""
        if self._leakage is None:
            keys, split = [], []
            for name in SPLITS:
                part = self.data.splits[name]
                for start in range(0, len(part), 1024):
                    block = part.read(np.arange(start, min(start + 1024, len(part))))
                    keys += [hashlib.blake2b(img.tobytes(), digest_size=8).hexdigest() for img in block]
                split += [name] * len(part)
            codes = np.unique(np.array(keys), return_inverse=True)[1]
            leak = find_leakage(codes, codes, np.array(split), check_rc=False)
            leak.pop("_mask")
            self._leakage = leak
        return self._leakage

    def fingerprint(self) -> str:
        h = hashlib.sha256()
        for name in SPLITS:
            s = self.data.splits[name]
            h.update(f"{name}|{s.images.shape[1:]}|".encode())
            h.update(np.ascontiguousarray(s.y).tobytes())
            for start in range(0, len(s), 4096):
                h.update(s.read(np.arange(start, min(start + 4096, len(s)))).tobytes())
        return h.hexdigest()


TASKS[ImageTask.kind] = ImageTask
