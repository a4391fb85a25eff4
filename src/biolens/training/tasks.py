"""Task kinds: everything that differs between sequence and image runs, behind one small interface.

The trainer, metrics, run folder and predictor only talk to a ``Task``; a new kind (image, multimodal) is a new
class registered in ``TASKS``, not a fork of the training code.
"""

from __future__ import annotations

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


class SequenceTask(Task):
    kind = "sequence"

    def prepare(self) -> None:
        self.data: PreparedData = prepare_sequences(self.cfg.data, seed=self.cfg.train.seed)
        self.with_gc = False

    def build_model(self) -> nn.Module:
        cfg, data = self.cfg, self.data
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
            substitution_rate=aug.substitution_rate if train else 0.0, with_gc=self.with_gc,
        )

    def labels(self, split: str) -> np.ndarray:
        return self.data.splits[split].y

    def ids(self, split: str) -> np.ndarray:
        return self.data.splits[split].ids

    def report(self) -> dict[str, Any]:
        return self.data.report

    def dropped(self) -> list[dict[str, str]]:
        return self.data.filtered

    def fingerprint(self) -> str:
        s = self.data.splits
        return fingerprint_arrays(*(a for name in SPLITS for a in (s[name].x, s[name].y)))


TASKS: dict[str, type[Task]] = {SequenceTask.kind: SequenceTask}


def make_task(cfg: RunConfig) -> Task:
    """The task for a config (sequence for now; image tasks register themselves in ``TASKS``)."""
    return TASKS["sequence"](cfg)
