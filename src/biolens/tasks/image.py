"""The image task and its codec: image folders, manifests and bundled image sets through the shared trainer and
run folder; files, folders, globs, uploads and in-memory arrays for a trained model.

Adds to the ``Task`` interface what fine-tuning needs: starting weights (ImageNet or a local file), freezing by
stage, and discriminative learning rates for backbone and head (the staged head-only schedule is the trainer's
``StagedUnfreeze`` callback).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from biolens.config import DataConfig, RunConfig
from biolens.contract import InputContract
from biolens.data.images.dataset import ImageBatches, ImageSplit
from biolens.data.images.prepare import PreparedImages, prepare_images
from biolens.data.images.sources import is_image_source
from biolens.data.images.phash import dhash, near_matches
from biolens.data.images.transforms import PRESETS, BatchAugment
from biolens.data.splits import SPLITS, find_leakage
from biolens.devices import resolve_channels_last
from biolens.errors import ConfigError, InputError
from biolens.models import create_model, model_info
from biolens.models.finetune import set_up_finetuning
from biolens.models.image import ImageClassifier
from biolens.models.transfer import load_pretrained, load_starting_weights
from biolens.tasks import image_inputs
from biolens.tasks.base import Codec, Encoded, Inputs, Task, register_task
from biolens.tasks.sequence import parse_shape

log = logging.getLogger(__name__)

class ImageCodec(Codec):
    """Image files, folders, globs and in-memory arrays, decoded and preprocessed exactly as in training."""

    kind = "image"
    accepts_files = True

    def read(self, source: str | Sequence[str], require_labels: bool = False) -> Inputs:
        """A class-folder tree or a manifest (every split), labelled."""
        d = self.data or DataConfig(path="-")
        ids, images, labels, locations, targets = image_inputs.read_labelled(
            source, self.contract, d.image.path_col, d.label_col, d.split_col, self.target_columns())
        if targets is not None:
            return Inputs(ids, Encoded(images), None, locate=locations.__getitem__, targets=targets)
        return Inputs(ids, Encoded(images), labels, locate=locations.__getitem__)

    def stream(self, paths: Sequence[str], chunk_size: int) -> Iterator[Inputs]:
        files = image_inputs.expand_inputs(paths)  # every input is checked before anything is read
        for part, images in image_inputs.chunks(files, self.contract, chunk_size):
            yield Inputs([str(p) for p in part], Encoded(images), None, total=len(files))

    def coerce(self, inputs: Any) -> Inputs:
        """Image files, folders and globs, or in-memory images (numpy, PIL, torch; one or a batch)."""
        if image_inputs.is_in_memory(inputs):
            ids, images = image_inputs.from_memory(inputs, self.contract)
            return Inputs(ids, Encoded(images))
        paths = image_inputs.expand_inputs(inputs)
        return Inputs([str(p) for p in paths], Encoded(image_inputs.decode_for_model(paths, self.contract)))

    def batches(self, encoded: Encoded, batch_size: int, device: torch.device | str) -> ImageBatches:
        """Eval batches (center crop, channels, normalization from the contract) over decoded ``(N, C, S, S)``."""
        c, n = self.contract, len(encoded)
        split = ImageSplit(encoded.x, np.arange(n), None, np.arange(n).astype(str))
        return ImageBatches(split, batch_size, size=c.image_size, channels=c.channels, mean=c.mean, std=c.std,
                            device=device)

    max_pixels: int | None = None  # the server may lower the run's pixel limit for uploads

    def from_uploads(self, names: Sequence[str], blobs: Sequence[bytes]) -> Encoded:
        images, bad = image_inputs.decode_uploads(names, blobs, self.contract, self.max_pixels)
        if bad:
            first = min(bad)
            listing = "; ".join(f"files[{i}] {names[i]!r}: {reason}" for i, reason in sorted(bad.items()))
            raise InputError(f"files[{first}]", f"{len(bad)} undecodable image file(s): {listing}; send PNG, JPEG, "
                                                "BMP, TIFF or DICOM files")
        return Encoded(images)

    @classmethod
    def random_batch(cls, model: nn.Module, contract: Any = None, n: int = 8, seed: int = 0
                     ) -> dict[str, torch.Tensor]:
        g = torch.Generator().manual_seed(seed)
        size = getattr(contract, "image_size", None) or 32
        return {"x": torch.randn(n, model.in_channels, size, size, generator=g)}


@register_task
class ImageTask(Task):
    kind = "image"
    codec = ImageCodec
    priority = 10
    position_unit = "pixels"
    leakage_fix = "remove the duplicate images from val/ and test/ (or let biolens split a single folder)"

    def __init__(self, cfg: RunConfig):
        super().__init__(cfg)
        self._leakage: dict[str, Any] | None = None

    @classmethod
    def detect(cls, cfg: RunConfig) -> bool:
        """Image folders, image manifests and bundled image sets."""
        return is_image_source(cfg.data.path, cfg.data.image.path_col)

    def prepare(self) -> None:
        spec = model_info(self.cfg.model.name)
        self.data: PreparedImages = prepare_images(self.cfg.data, seed=self.cfg.data_seed, transfer=spec.cls.transfer)

    @property
    def class_names(self) -> list[str]:
        return self.data.class_names

    def input_spec(self) -> dict[str, Any]:
        return {"image_size": self.data.size, "channels": self.data.channels, "mean": self.data.mean,
                "std": self.data.std}

    def build_model(self) -> nn.Module:
        m, d = self.cfg.model, self.data
        params = {k: v for k, v in m.params.items() if k not in ("in_channels", "num_classes")}
        model = create_model(m.name, in_channels=d.channels, num_classes=len(d.class_names), **params)
        assert isinstance(model, ImageClassifier)
        if m.pretrained and m.weights:
            raise ConfigError("give model.pretrained or model.weights, not both")
        if m.pretrained:
            load_pretrained(model, m.pretrained)
        elif m.weights:
            load_starting_weights(model, m.weights)
        set_up_finetuning(model, freeze_until=m.freeze_until, head_epochs=m.head_epochs,
                          backbone_lr_scale=m.backbone_lr_scale, epochs=self.cfg.train.epochs,
                          has_weights=bool(m.pretrained or m.weights))
        return model

    def contract(self) -> InputContract:
        d, icfg = self.data, self.data.config.image
        return InputContract(
            task=self.kind, class_names=d.class_names, positive_class=d.positive_class, image_size=d.size,
            channels=d.channels, mean=d.mean, std=d.std, resize_to=d.resize_to,
            image_preprocessing={"augment_train": icfg.augment, "normalize": icfg.normalize, "crop_ratio": icfg.crop_ratio,
                                 "window_center": icfg.window_center, "window_width": icfg.window_width,
                                 "stored_channels": d.report["stored_channels"], "eval": "resize + center crop",
                                 "max_pixels": icfg.max_pixels},
            **self.target_fields(),
        )

    def resolved_data_config(self) -> DataConfig:
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
                            channels_last=resolve_channels_last(icfg.channels_last, torch.device(device).type, True))

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

    def records(self) -> Any:
        return self.data.records

    def tta_views(self) -> list[str]:
        return ["hflip"] if PRESETS[self.data.config.image.augment].hflip > 0 else []

    def _hashes(self, split: str) -> np.ndarray:
        part = self.data.splits[split]
        out = [dhash(part.read(np.arange(s, min(s + 1024, len(part))))) for s in range(0, len(part), 1024)]
        return np.concatenate(out) if out else np.zeros(0, dtype=np.uint64)

    def overlap(self, encoded: Encoded) -> dict[str, int]:
        train = self._hashes("train")
        ext = dhash(encoded.x)
        same = np.isin(ext, train)
        near = near_matches(ext, train)
        return {"n": len(encoded), "exact": int(same.sum()), "near": int((near & ~same).sum())}

    def near_duplicates(self, max_identity: float) -> dict[str, int]:
        h = {s: self._hashes(s) for s in SPLITS}
        return {"val_in_train": int(near_matches(h["val"], h["train"]).sum()),
                "test_in_train_or_val": int(near_matches(h["test"], np.concatenate([h["train"], h["val"]])).sum())}

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


    # ---- a model without data -----------------------------------------------------------------------------------
    @classmethod
    def parse_shape(cls, text: str | None) -> tuple[int, ...]:
        """``--input-shape``: ``C,H,W`` or ``B,C,H,W`` (default ``4,1,64,64``)."""
        shape = parse_shape(text, cls.kind, (3, 4), "C,H,W or B,C,H,W", (4, 1, 64, 64))
        if shape[1] not in (1, 3):
            raise ConfigError(f"--input-shape: image models take 1 or 3 channels; got {shape[1]}")
        return shape

    @classmethod
    def example_model(cls, name: str, shape: tuple[int, ...], num_classes: int, params: dict[str, Any],
                      alphabet: str = "dna") -> nn.Module:
        return create_model(name, in_channels=shape[1], num_classes=num_classes, **params)

    @classmethod
    def example_input(cls, model: nn.Module, shape: tuple[int, ...], seed: int = 0
                      ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return torch.randn(shape, generator=torch.Generator().manual_seed(seed)), {}
