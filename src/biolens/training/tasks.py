"""Task kinds: everything that differs between sequence and image runs, behind one small interface.

The trainer, metrics, run folder and predictor only talk to a ``Task``; a new kind (image, multimodal) is a new
class registered in ``TASKS``, not a fork of the training code.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from biolens.config import RunConfig
from biolens.contract import InputContract
from biolens.data.dataset import SequenceBatches
from biolens.data.prepare import PreparedData, prepare_sequences
from biolens.deploy.bundle import fingerprint_arrays
from biolens.errors import ConfigError, ModelError
from biolens.models import create_model, model_info

SPLITS = ("train", "val", "test")


class Task:
    """Interface of a task kind. ``prepare`` reads and validates all data and writes nothing."""

    kind: ClassVar[str]

    def __init__(self, cfg: RunConfig):
        self.cfg = cfg

    def prepare(self) -> None:
        raise NotImplementedError

    def build_model(self) -> nn.Module:
        raise NotImplementedError

    def contract(self) -> InputContract:
        raise NotImplementedError

    def resolved_data_config(self) -> Any:
        """The data section with every automatic choice written out."""
        raise NotImplementedError

    def batches(self, split: str, *, train: bool, device: torch.device, batch_size: int | None = None
                ) -> Iterable[dict[str, torch.Tensor]]:
        """Sized iterable of batches ``{"x", "y", "index", …aux}`` (``len`` = batches per epoch, optional
        ``set_epoch(n)`` for per-epoch shuffling); ``train`` turns on shuffling and augmentation."""
        raise NotImplementedError

    def labels(self, split: str) -> np.ndarray:
        raise NotImplementedError

    def ids(self, split: str) -> np.ndarray:
        raise NotImplementedError

    def size(self, split: str) -> int:
        return len(self.labels(split))

    def report(self) -> dict[str, Any]:
        """Data statistics for ``data_report.json``."""
        return {}

    def dropped(self) -> list[dict[str, str]]:
        """Items left out of training with a reason (``id``, ``location``, ``reason``), for ``filtered.tsv``."""
        return []

    def fingerprint(self) -> str:
        raise NotImplementedError

    def leakage(self) -> dict[str, Any]:
        """Duplicates across and within splits: ``data.splits.find_leakage``'s report (counts, no mask)."""
        raise NotImplementedError

    def preview(self, split: str, ids: list[str]) -> dict[str, dict[str, Any]]:
        """Human-readable view of some examples, by id: ``{"sequence": str}`` or ``{"image": uint8 (H, W[, C])}``."""
        return {}

    def callbacks(self, model: nn.Module) -> list[Any]:
        """Task-specific trainer callbacks (e.g. staged unfreezing of an image backbone)."""
        return []


class SequenceTask(Task):
    kind = "sequence"

    def prepare(self) -> None:
        self.data: PreparedData = prepare_sequences(self.cfg.data, seed=self.cfg.train.seed)
        self.with_gc = False

    def build_model(self) -> nn.Module:
        cfg, data = self.cfg, self.data
        if cfg.model.pretrained or cfg.model.weights or cfg.model.freeze_until or cfg.model.head_epochs:
            raise ConfigError("--pretrained, --weights, --freeze-until and model.head_epochs are for image models; "
                              "remove them for sequence data")
        spec = model_info(cfg.model.name)
        if spec.task != self.kind:
            raise ModelError(f"model {cfg.model.name!r} is an {spec.task} model; pick a sequence model (biolens models)")
        wants_gc = "gc" in spec.cls.aux_inputs
        with_gc = cfg.data.gc_input if cfg.data.gc_input is not None else wants_gc
        if wants_gc and not with_gc:
            raise ConfigError(f"model {cfg.model.name!r} needs GC content; remove data.gc_input=false")
        if with_gc and not data.alphabet.is_nucleic:
            raise ConfigError("data.gc_input needs dna or rna sequences; the data are protein")
        if with_gc and not wants_gc:
            raise ConfigError(f"model {cfg.model.name!r} takes no GC input; use promoter_predictor or drop gc_input")
        self.with_gc = with_gc
        params = {k: v for k, v in cfg.model.params.items() if k not in ("vocab_size", "num_classes")}
        return create_model(cfg.model.name, vocab_size=data.alphabet.vocab_size, num_classes=len(data.class_names),
                            **params)

    def contract(self) -> InputContract:
        d = self.data
        return InputContract(task=self.kind, class_names=d.class_names, positive_class=d.positive_class,
                             alphabet=d.alphabet.name, max_len=d.max_len, aux_inputs=["gc"] if self.with_gc else [])

    def resolved_data_config(self) -> Any:
        return self.data.config

    def batches(self, split: str, *, train: bool, device: torch.device, batch_size: int | None = None
                ) -> SequenceBatches:
        aug = self.data.config.augment
        return SequenceBatches(
            self.data.splits[split], batch_size or self.cfg.train.batch_size, shuffle=train, device=device,
            seed=self.cfg.train.seed, reverse_complement=bool(aug.reverse_complement) and train,
            substitution_rate=aug.substitution_rate if train else 0.0, shift=aug.shift if train else 0,
            with_gc=self.with_gc,
        )

    def labels(self, split: str) -> np.ndarray:
        return self.data.splits[split].y

    def ids(self, split: str) -> np.ndarray:
        return self.data.splits[split].ids

    def report(self) -> dict[str, Any]:
        return self.data.report

    def dropped(self) -> list[dict[str, str]]:
        return self.data.filtered

    def leakage(self) -> dict[str, Any]:
        return self.data.report["leakage"]  # counted by prepare_sequences (exact and reverse-complement duplicates)

    def preview(self, split: str, ids: list[str]) -> dict[str, dict[str, Any]]:
        from biolens.data.encoding import decode

        part = self.data.splits[split]
        where = {str(i): n for n, i in enumerate(part.ids)}
        rows = [where[i] for i in ids if i in where]
        seqs = decode(part.take(rows), part.alphabet, part.lengths[rows]) if rows else []
        return {str(part.ids[n]): {"sequence": s} for n, s in zip(rows, seqs)}

    def fingerprint(self) -> str:
        s = self.data.splits
        if not any(s[name].mapped for name in SPLITS):
            return fingerprint_arrays(*(a for name in SPLITS for a in (s[name].x, s[name].y)))
        # a memory-mapped store: the same digest as fingerprint_arrays over each split's rows, read block by block
        h = hashlib.sha256()
        for name in SPLITS:
            part = s[name]
            h.update(str(("|u1", (len(part), part.width))).encode())
            for block in part.blocks():
                h.update(block.tobytes())
            y = np.ascontiguousarray(part.y)
            h.update(str((y.dtype.str, y.shape)).encode())
            h.update(y.tobytes())
        return h.hexdigest()


TASKS: dict[str, type[Task]] = {SequenceTask.kind: SequenceTask}


def make_task(cfg: RunConfig) -> Task:
    """The task for a config: ``data.task``, or automatically image for image folders, image manifests and bundled
    image sets, else sequence."""
    from biolens.data.images.sources import is_image_source
    from biolens.training import image_task  # noqa: F401  registers "image" in TASKS

    kind = cfg.data.task
    if kind == "auto":
        kind = "image" if is_image_source(cfg.data.path, cfg.data.image.path_col) else "sequence"
    return TASKS[kind](cfg)
