"""Knowledge distillation (Hinton et al. 2015; guide 7.6): a student learns from a trained teacher's soft targets.

``loss = α · T² · KL(softmax(t / T) ‖ softmax(s / T)) + (1 − α) · hard-label loss`` with student logits ``s``,
teacher logits ``t`` and temperature ``T``; the ``T²`` keeps the soft term's gradients on the scale of the hard
term's whatever the temperature. Teacher logits are computed on the fly, batch by batch, on exactly the inputs the
student sees (after augmentation), through the teacher's own contract: the same alphabet (checked), sequences cut to
the teacher's ``max_len``, and the auxiliary inputs (GC content) the teacher declares computed from the input.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from biolens.contract import InputContract
from biolens.errors import BiolensError, ConfigError
from biolens.models.inference import call
from biolens.tasks import Predictor

log = logging.getLogger(__name__)


def distillation_loss(student: Tensor, teacher: Tensor, y: Tensor, temperature: float, alpha: float,
                      hard: nn.Module | None = None) -> Tensor:
    """``α·T²·KL(softmax(teacher/T) ‖ softmax(student/T)) + (1 − α)·hard(student, y)``, the KL averaged over the
    batch; ``hard`` defaults to cross-entropy."""
    hard_loss = (hard or nn.CrossEntropyLoss())(student, y)
    if alpha == 0:
        return hard_loss
    t = float(temperature)
    log_s = F.log_softmax(student.float() / t, dim=1)
    log_t = F.log_softmax(teacher.float() / t, dim=1)
    kl = (log_t.exp() * (log_t - log_s)).sum(dim=1).mean()
    return alpha * t * t * kl + (1 - alpha) * hard_loss


class DistillationLoss(nn.Module):
    """The trainer's loss for a student: reads ``teacher_logits`` from the batch (``batch_keys``); batches without
    them (e.g. an LR range test) get the hard-label loss alone."""

    batch_keys = ("teacher_logits",)

    def __init__(self, hard: nn.Module, temperature: float = 4.0, alpha: float = 0.5):
        super().__init__()
        if temperature <= 0 or not 0 <= alpha <= 1:
            raise ConfigError(f"train.distill_temperature must be > 0 and train.distill_alpha in [0, 1]; got "
                              f"{temperature} and {alpha}")
        self.hard, self.temperature, self.alpha = hard, float(temperature), float(alpha)

    def forward(self, logits: Tensor, y: Tensor, teacher_logits: Tensor | None = None) -> Tensor:
        if teacher_logits is None:
            return self.hard(logits, y)
        return distillation_loss(logits, teacher_logits, y, self.temperature, self.alpha, self.hard)


class TeacherBatches:
    """Batches with the teacher's logits added as ``teacher_logits`` (``(B, C)`` float32, no gradient).

    Sampling attributes (``sample_weights``, ``rank``, ``num_replicas``) and anything else are the wrapped
    batches', so weighted sampling and sharding configure the real batches."""

    _FORWARDED = ("sample_weights", "rank", "num_replicas")

    def __init__(self, batches: Any, teacher: nn.Module, max_len: int | None = None):
        object.__setattr__(self, "batches", batches)
        object.__setattr__(self, "teacher", teacher)
        object.__setattr__(self, "max_len", max_len)

    def __getattr__(self, name: str) -> Any:
        if name in ("batches", "teacher", "max_len"):  # not set yet (copy, pickle): no recursion
            raise AttributeError(name)
        return getattr(self.batches, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self._FORWARDED:
            setattr(self.batches, name, value)
        else:
            object.__setattr__(self, name, value)

    def __len__(self) -> int:
        return len(self.batches)

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.batches, "set_epoch"):
            self.batches.set_epoch(epoch)

    @torch.no_grad()
    def logits(self, x: Tensor) -> Tensor:
        was = self.teacher.training
        self.teacher.eval()
        try:
            if self.max_len is not None and x.dim() == 2 and x.shape[1] > self.max_len:
                x = x[:, : self.max_len]  # the teacher's codec truncates to its max_len
            return call(self.teacher, x).float()
        finally:
            self.teacher.train(was)

    def __iter__(self) -> Iterator[dict[str, Tensor]]:
        for batch in self.batches:
            yield {**batch, "teacher_logits": self.logits(batch["x"])}


def load_teacher(path: str | Path, contract: InputContract, device: torch.device | str = "cpu") -> Predictor:
    """The teacher run (or ensemble bundle) as a Predictor, after checking it reads the student's inputs and
    predicts the student's classes; ConfigError naming ``model.teacher`` otherwise."""
    where = f"model.teacher={path}"
    try:
        teacher = Predictor.load(path, device=str(device))
    except BiolensError as e:
        raise ConfigError(f"{where}: {str(e).splitlines()[0]}") from None
    t = teacher.contract
    if t.task != contract.task:
        raise ConfigError(f"{where}: a {t.task} run; the data are {contract.task} data")
    if list(t.class_names) != list(contract.class_names):
        raise ConfigError(f"{where}: classes {', '.join(t.class_names)} differ from the data's "
                          f"({', '.join(contract.class_names)}); distil on data with the teacher's classes")
    if contract.task == "sequence" and t.alphabet != contract.alphabet:
        raise ConfigError(f"{where}: alphabet {t.alphabet} does not match the data ({contract.alphabet}); a teacher "
                          "must read the same alphabet")
    if contract.task == "image":
        theirs = (t.image_size, t.channels, t.mean, t.std)
        ours = (contract.image_size, contract.channels, contract.mean, contract.std)
        if theirs != ours:
            raise ConfigError(f"{where}: the teacher's image preprocessing (size, channels, mean, std) {theirs} differs "
                              f"from the student's {ours}; train the student with the teacher's image settings")
    for p in teacher.model.parameters():
        p.requires_grad_(False)
    log.info("distilling from %s (%s, %s parameters)", teacher.run_dir, teacher.config.model.name,
             f"{sum(p.numel() for p in teacher.model.parameters()):,}")
    return teacher
