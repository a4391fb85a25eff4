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

    @classmethod
    def load(cls, path: str | Path) -> InputContract:
        p = Path(path)
        try:
            raw = json.loads(p.read_text())
            return cls(**raw)
        except FileNotFoundError:
            raise BundleError(f"{p} is missing; the run folder is incomplete (train again or copy the whole folder)") from None
        except (json.JSONDecodeError, TypeError) as e:
            raise BundleError(f"{p} is not a valid input contract ({e}); restore it from the original run") from None
