"""The input contract: everything needed to turn raw input into a model batch and back into a decision."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from biolens.errors import BundleError

PREPROCESSING_VERSION = 1


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of ``(N, C)`` logits divided by ``temperature`` (max-shifted, so it never overflows)."""
    z = np.asarray(logits) / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def decide(probs: np.ndarray, positive_index: int | None, threshold: float = 0.5) -> np.ndarray:
    """Predicted class per row: binary → positive iff P(positive) ≥ threshold; otherwise argmax."""
    if positive_index is None or probs.shape[1] != 2:
        return probs.argmax(axis=1)
    negative = 1 - positive_index
    return np.where(probs[:, positive_index] >= threshold, positive_index, negative)


@dataclass
class InputContract:
    task: str  # "sequence" or "image"
    class_names: list[str]
    positive_class: str | None = None  # binary tasks only
    threshold: float = 0.5  # on P(positive_class), binary tasks only
    temperature: float = 1.0
    # sequence tasks
    alphabet: str | None = None
    max_len: int | None = None
    aux_inputs: list[str] = field(default_factory=list)
    # sequence windows cut from a reference genome (train --intervals --genome): the genome's name, contig lengths and
    # checksum (data.genome.Genome.identity), so variants/scan refuse another assembly; None otherwise
    genome: dict[str, Any] | None = None
    # image tasks
    image_size: int | None = None
    channels: int | None = None
    mean: list[float] | None = None
    std: list[float] | None = None
    resize_to: int | None = None  # eval: resize to this square size, then center crop image_size
    image_preprocessing: dict[str, Any] = field(default_factory=dict)  # augment preset, normalization, DICOM window
    preprocessing_version: int = PREPROCESSING_VERSION

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def positive_index(self) -> int | None:
        return self.class_names.index(self.positive_class) if self.positive_class is not None else None

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """Class probabilities ``(N, C)`` from logits, with this contract's temperature."""
        return softmax(logits, self.temperature)

    def decide(self, probs: np.ndarray) -> np.ndarray:
        """Predicted class index per row at this contract's threshold (binary) or by argmax."""
        return decide(probs, self.positive_index, self.threshold)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    def validate(self, where: str = "contract.json") -> InputContract:
        """Every field usable, or a BundleError naming it (a hand-edited or damaged contract never reaches a model)."""
        def bad(field: str, why: str) -> BundleError:
            return BundleError(f"{where}: {field} {why}; restore the file from the original run")

        names = self.class_names
        if not isinstance(names, list) or len(names) < 1 or not all(isinstance(c, str) and c for c in names):
            raise bad("class_names", f"is {names!r}, not a list of class names")
        if len(set(names)) != len(names):
            raise bad("class_names", f"repeats a name ({names!r})")
        if self.positive_class is not None and self.positive_class not in names:
            raise bad("positive_class", f"{self.positive_class!r} is not one of the classes {names}")
        for field, value, ok in (("threshold", self.threshold, lambda v: 0.0 <= v <= 1.0),
                                 ("temperature", self.temperature, lambda v: 0.0 < v < float("inf"))):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not np.isfinite(value) or not ok(value):
                raise bad(field, f"is {value!r}, out of range")
        if self.task == "sequence":
            if not isinstance(self.max_len, int) or isinstance(self.max_len, bool) or self.max_len < 1:
                raise bad("max_len", f"is {self.max_len!r}; it must be a positive integer")
            if self.alphabet not in ("dna", "rna", "protein"):
                raise bad("alphabet", f"is {self.alphabet!r}, not dna, rna or protein")
        elif self.task == "image":
            if not isinstance(self.image_size, int) or self.image_size < 1:
                raise bad("image_size", f"is {self.image_size!r}; it must be a positive integer")
            if self.channels not in (1, 3):
                raise bad("channels", f"is {self.channels!r}, not 1 or 3")
            for field, values in (("mean", self.mean), ("std", self.std)):
                if not isinstance(values, list) or len(values) != self.channels or not all(
                        isinstance(v, (int, float)) and np.isfinite(v) for v in values):
                    raise bad(field, f"is {values!r}; it needs {self.channels} finite numbers")
            if any(v <= 0 for v in self.std):
                raise bad("std", f"is {self.std!r}; every value must be > 0")
        elif not isinstance(self.task, str) or not self.task:
            raise bad("task", f"is {self.task!r}")
        return self

    @classmethod
    def load(cls, path: str | Path) -> InputContract:
        p = Path(path)
        try:
            raw = json.loads(p.read_bytes().decode("utf-8"))
            if not isinstance(raw, dict):
                raise TypeError("not a JSON object")
            contract = cls(**raw)
        except FileNotFoundError:
            raise BundleError(f"{p} is missing; the run folder is incomplete (train again or copy the whole folder)") from None
        except (json.JSONDecodeError, UnicodeDecodeError, TypeError) as e:
            raise BundleError(f"{p} is not a valid input contract ({str(e)[:120]}); restore it from the original run") from None
        return contract.validate(str(p))
