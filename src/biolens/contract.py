"""The input contract: everything needed to turn raw input into a model batch and back into a decision."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from biolens.errors import BundleError

PREPROCESSING_VERSION = 1

# test-time augmentation views a task kind can average over (contract.tta; models/ensemble.TestTimeAugmentation)
TTA_VIEWS = {"sequence": ("reverse_complement",), "image": ("hflip",)}
TARGET_TYPES = ("classification", "regression", "multilabel")


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


def decide_labels(probs: np.ndarray, thresholds: np.ndarray, at_least_one: bool = False) -> np.ndarray:
    """Multi-label decisions, ``(N, C)`` bool: each label's probability at or above its threshold; with
    ``at_least_one``, a row where no label passes gets its most probable label (label sets are never empty)."""
    p = np.asarray(probs, dtype=np.float64)
    on = p >= np.asarray(thresholds, dtype=np.float64)
    if at_least_one and p.size:
        empty = ~on.any(axis=1)
        on[np.flatnonzero(empty), p[empty].argmax(axis=1)] = True
    return on


@dataclass
class InputContract:
    task: str  # "sequence" or "image"
    class_names: list[str]
    positive_class: str | None = None  # binary tasks only
    threshold: float = 0.5  # on P(positive_class), binary tasks only
    temperature: float = 1.0
    # what the outputs are (data/targets.py): "classification" (softmax over class_names), "regression" (one value per
    # target, class_names = the target names) or "multilabel" (one sigmoid per label, class_names = the labels)
    target_type: str = "classification"
    target_mean: list[float] | None = None  # regression: value = output × target_std + target_mean (fitted on train)
    target_std: list[float] | None = None
    target_link: str = "identity"  # regression: "log" for a Poisson loss (value = exp(output) × target_std)
    label_thresholds: list[float] | None = None  # multilabel: P(label) ≥ its threshold (default 0.5 each)
    # multilabel: no label passes its threshold → the most probable label (set when every fully observed training
    # sample carries a label: train.at_least_one_label)
    at_least_one_label: bool = False
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
    # test-time augmentation: predictions average the identity and these views (TTA_VIEWS), in the model's graph
    tta: list[str] = field(default_factory=list)
    preprocessing_version: int = PREPROCESSING_VERSION

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def is_classification(self) -> bool:
        return self.target_type == "classification"

    @property
    def target_names(self) -> list[str]:
        """The model's outputs by name: classes, regression targets or labels."""
        return list(self.class_names)

    @property
    def thresholds(self) -> np.ndarray:
        """Multi-label decision thresholds, one per label (0.5 where none were chosen)."""
        t = self.label_thresholds if self.label_thresholds is not None else [0.5] * self.num_classes
        return np.asarray(t, dtype=np.float64)

    def outputs(self, logits: np.ndarray) -> np.ndarray:
        """What the model says, in the user's units, ``(N, C)``: class probabilities (softmax with the temperature),
        per-label probabilities (sigmoid with the temperature) or regression values (standardization undone)."""
        z = np.asarray(logits, dtype=np.float64)
        if self.target_type == "regression":
            mean = np.asarray(self.target_mean if self.target_mean is not None else [0.0] * z.shape[1])
            std = np.asarray(self.target_std if self.target_std is not None else [1.0] * z.shape[1])
            if self.target_link == "log":
                return np.exp(np.clip(z, -80, 80)) * std
            return z * std + mean
        if self.target_type == "multilabel":
            return 0.5 * (1.0 + np.tanh(0.5 * z / self.temperature))  # the sigmoid, without overflow warnings
        return softmax(z, self.temperature)

    @property
    def positive_index(self) -> int | None:
        return self.class_names.index(self.positive_class) if self.positive_class is not None else None

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """Class probabilities ``(N, C)`` from logits, with this contract's temperature (``outputs`` for runs of
        other target types: per-label probabilities or regression values)."""
        if self.target_type != "classification":
            return self.outputs(logits)
        return softmax(logits, self.temperature)

    def decide(self, probs: np.ndarray) -> np.ndarray:
        """Predicted class index per row at this contract's threshold (binary) or by argmax; multi-label runs: a
        ``(N, C)`` bool matrix (each label's probability at or above its threshold; never an empty row when
        ``at_least_one_label``)."""
        if self.target_type == "multilabel":
            return decide_labels(probs, self.thresholds, self.at_least_one_label)
        return decide(probs, self.positive_index, self.threshold)

    def explained_index(self, outputs: np.ndarray) -> np.ndarray:
        """The output an explanation is about when none is chosen, per row: the predicted class; multi-label: the
        most probable label; regression: the first target."""
        if self.target_type == "multilabel":
            return np.asarray(outputs).argmax(axis=1)
        if self.target_type == "regression":
            return np.zeros(len(outputs), dtype=np.int64)
        return self.decide(outputs)

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
        known = TTA_VIEWS.get(self.task, ())
        if not isinstance(self.tta, list) or any(v not in known for v in self.tta):
            raise bad("tta", f"is {self.tta!r}; {self.task} models know the views {list(known)}")
        self._validate_targets(bad)
        return self

    def _validate_targets(self, bad: Any) -> None:
        """The target fields: a known type, and standardization or thresholds with one finite value per output."""
        k = len(self.class_names)

        def numbers(field: str, values: Any, ok: Any, why: str) -> None:
            if not isinstance(values, list) or len(values) != k or not all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) and ok(v)
                    for v in values):
                raise bad(field, f"is {values!r}; it needs {k} finite numbers ({why})")

        if self.target_type not in TARGET_TYPES:
            raise bad("target_type", f"is {self.target_type!r}, not one of {', '.join(TARGET_TYPES)}")
        if self.target_type == "regression":
            if self.target_link not in ("identity", "log"):
                raise bad("target_link", f"is {self.target_link!r}, not identity or log")
            numbers("target_mean", self.target_mean if self.target_mean is not None else [0.0] * k,
                    lambda v: True, "one per target")
            numbers("target_std", self.target_std if self.target_std is not None else [1.0] * k,
                    lambda v: v > 0, "one per target, each > 0")
        elif self.target_mean is not None or self.target_std is not None:
            raise bad("target_mean", f"is set for a {self.target_type} run; only regression runs standardize targets")
        if self.label_thresholds is not None:
            if self.target_type != "multilabel":
                raise bad("label_thresholds", f"is set for a {self.target_type} run; only multi-label runs have them")
            numbers("label_thresholds", self.label_thresholds, lambda v: 0.0 <= v <= 1.0, "one per label, in [0, 1]")
        if not isinstance(self.at_least_one_label, bool):
            raise bad("at_least_one_label", f"is {self.at_least_one_label!r}, not true or false")
        if self.at_least_one_label and self.target_type != "multilabel":
            raise bad("at_least_one_label", f"is set for a {self.target_type} run; only multi-label runs have it")

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
