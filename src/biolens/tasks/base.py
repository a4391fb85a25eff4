"""Task kinds behind one interface: everything that differs between sequence and image runs.

A task kind is two classes registered under one name:

- a :class:`Task` reads and validates training data (``prepare``), builds the model, makes batches, and knows the
  kind's input metadata (contract, leakage, report, preview, example inputs for ``doctor model``);
- a :class:`Codec` turns raw inputs of that kind (files, in-memory items, HTTP bodies) into model batches for a
  trained contract. The predictor, the server, export and explain use the codec, so none of them branches on the
  kind.

A third kind (multimodal, say) is a new module that registers a Task and a Codec; nothing else forks.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from biolens.config import DataConfig, RunConfig
from biolens.contract import InputContract
from biolens.data.targets import effective_loss, fit_standardization, never_empty, values_for
from biolens.errors import ConfigError, DataError, ModelError, a_or_an
from biolens.models import list_models, model_info
from biolens.models.ensemble import TestTimeAugmentation, output_kind
from biolens.models.registry import default_model


@dataclass
class Encoded:
    """Model-ready uint8 rows: sequences ``(N, L)`` with ``lengths``, or images ``(N, C, S, S)`` (``lengths`` None)."""

    x: np.ndarray
    lengths: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.x)


@dataclass
class Inputs:
    """Raw inputs read by a codec: ids, the encoded rows, labels (strings, or None) and, for streamed reads, the
    total number of items when it is known up front (image files) — None for sequence streams."""

    ids: list[str]
    encoded: Encoded
    labels: list[str] | None = None
    total: int | None = None
    locate: Any = field(default=None, repr=False)  # callable: row → "file:line", for error messages
    targets: dict[str, list[str]] | None = None  # raw target texts by column (regression, multi-label runs)

    def __len__(self) -> int:
        return len(self.ids)


class Codec:
    """Raw inputs of one kind ⇄ model batches, for a trained model's contract.

    Reading: ``read`` (labelled or not, one call), ``stream`` (chunks, bounded memory), ``coerce`` (whatever
    ``Predictor.predict`` accepts: files, raw strings, in-memory images). Batching: ``batches``. Serving:
    ``json_field`` / ``from_json`` and ``accepts_files`` / ``from_uploads``. Export: ``dynamic_length``,
    ``random_batch``.
    """

    kind: ClassVar[str]
    json_field: ClassVar[str | None] = None  # the JSON body field the server reads (None: files only)
    accepts_files: ClassVar[bool] = False  # multipart uploads
    dynamic_length: ClassVar[bool] = False  # exported graphs take any input length

    def __init__(self, contract: InputContract, data: DataConfig | None = None):
        self.contract = contract
        self.data = data

    def read(self, source: str | Sequence[str], require_labels: bool = False) -> Inputs:
        raise NotImplementedError

    def stream(self, paths: Sequence[str], chunk_size: int) -> Iterator[Inputs]:
        raise NotImplementedError

    def labelled(self, paths: Sequence[str]) -> bool:
        """Whether any of ``paths`` carries labels (so every output row gets a label column)."""
        return False

    def coerce(self, inputs: Any) -> Inputs:
        raise NotImplementedError

    def labels_to_index(self, inputs: Inputs) -> np.ndarray:
        """Class indices of labelled inputs; a label the model never saw is a DataError naming its line. Runs of
        other target types: ``(N, T)`` float targets (``target_values``)."""
        if not self.contract.is_classification:
            return self.target_values(inputs)
        lookup = {c: i for i, c in enumerate(self.contract.class_names)}
        labels = inputs.labels or []
        bad = next((i for i, lab in enumerate(labels) if lab not in lookup), None)
        if bad is not None:
            where = inputs.locate(bad) if inputs.locate is not None else inputs.ids[bad]
            raise DataError(f"{where}: label {labels[bad]!r} is unknown to the model (classes: "
                            f"{', '.join(self.contract.class_names)}); fix the label or drop the labels to predict only")
        return np.array([lookup[lab] for lab in labels], dtype=np.int64)

    def target_values(self, inputs: Inputs) -> np.ndarray:
        """``(N, T)`` regression values or multi-label 0/1 (NaN = missing) of labelled inputs, for the model's
        targets; a missing column, text in a numeric column or an unknown label is a DataError naming the line."""
        raw = inputs.targets or ({"label": inputs.labels} if inputs.labels is not None else {})
        sep = self.data.label_sep if self.data is not None else "|"
        return values_for(self.contract.target_type, self.contract.class_names, raw, sep, inputs.locate)

    def target_columns(self) -> tuple[str, ...]:
        """The columns (FASTA header keys) a labelled input of this run carries its targets in."""
        d = self.data
        if self.contract.is_classification or d is None:
            return ()
        return tuple(d.target_cols or [d.label_col])

    def batches(self, encoded: Encoded, batch_size: int, device: torch.device | str
                ) -> Iterable[dict[str, torch.Tensor]]:
        raise NotImplementedError

    def bind(self, model: nn.Module) -> None:
        """Learn what the trained model needs of its inputs (e.g. the shortest sequence it accepts)."""

    def complement_table(self) -> torch.Tensor | None:
        """Index → complementary index, for the reverse-complement view (nucleic-acid sequences only)."""
        return None

    def with_tta(self, model: nn.Module) -> nn.Module:
        """``model`` wrapped in the contract's test-time augmentation (unchanged when the contract has none)."""
        if not self.contract.tta or isinstance(model, TestTimeAugmentation):
            return model
        return TestTimeAugmentation(model, self.contract.tta, self.complement_table(),
                                    output_kind(self.contract.target_type, self.contract.target_link))

    def check_inputs(self, inputs: Inputs) -> np.ndarray:
        """A mask of the inputs that cannot be predicted at all (e.g. empty sequences), logged with a count."""
        return np.zeros(len(inputs), dtype=bool)

    def from_json(self, items: list[Any], max_length: int | None) -> Encoded:
        raise DataError(f"a {self.kind} model takes no JSON items")

    def from_uploads(self, names: Sequence[str], blobs: Sequence[bytes]) -> Encoded:
        raise DataError(f"a {self.kind} model takes no file uploads")

    def input_warnings(self, encoded: Encoded, field: str) -> list[str]:
        """Warnings about inputs that are valid but probably wrong (items named ``field[i]``); the server returns
        them with its predictions."""
        return []

    @classmethod
    def random_batch(cls, model: nn.Module, contract: Any = None, n: int = 8, seed: int = 0
                     ) -> dict[str, torch.Tensor]:
        """Contract-valid random inputs ``{"x", …aux}`` for ``model`` (export parity when the run's data cannot be
        read); ``contract`` may be any object with the contract's fields (``max_len``, ``image_size``)."""
        raise NotImplementedError

    def limits(self, max_length: int | None) -> dict[str, Any]:
        """What the server reports about this kind's input limits."""
        return {}


class Task:
    """Interface of a task kind. ``prepare`` reads and validates all data and writes nothing."""

    kind: ClassVar[str]
    codec: ClassVar[type[Codec]]
    priority: ClassVar[int] = 0  # detection order for data.task=auto: higher first
    position_unit: ClassVar[str] = "positions"  # what a receptive field is measured in

    def __init__(self, cfg: RunConfig):
        self.cfg = cfg.model_copy(update={"model": cfg.model.model_copy(update={"name": self.model_name(cfg)})})

    # ---- what kind of data and model ---------------------------------------------------------------------------
    @classmethod
    def detect(cls, cfg: RunConfig) -> bool:
        """Whether this kind reads ``cfg.data`` (for ``data.task: auto``)."""
        raise NotImplementedError

    @classmethod
    def model_name(cls, cfg: RunConfig) -> str:
        """``model.name``, or the registry's default for this kind; a model of another kind is a ModelError."""
        name = cfg.model.name or default_model(cls.kind)
        spec = model_info(name)
        if spec.task == "ensemble":  # a bundle's data read again (evaluate); training one is refused by train
            return name
        if spec.task != cls.kind:
            raise ModelError(f"model.name {name!r} is {a_or_an(spec.task)} model but the data are {cls.kind} data; pick "
                             f"{a_or_an(cls.kind)} model: {', '.join(list_models(cls.kind))}")
        return name

    # ---- the interface ------------------------------------------------------------------------------------------
    def prepare(self) -> None:
        raise NotImplementedError

    def build_model(self) -> nn.Module:
        raise NotImplementedError

    def contract(self) -> InputContract:
        raise NotImplementedError

    def resolved_data_config(self) -> DataConfig:
        """The data section with every automatic choice written out."""
        raise NotImplementedError

    @property
    def class_names(self) -> list[str]:
        raise NotImplementedError

    def input_spec(self) -> dict[str, Any]:
        """The kind's input metadata, e.g. alphabet and max length, or image size and channels."""
        raise NotImplementedError

    @property
    def target_type(self) -> str:
        """classification, regression or multilabel (``data.target``, resolved by ``prepare``)."""
        target = self.resolved_data_config().target
        return "classification" if target == "auto" else target

    def target_fields(self) -> dict[str, Any]:
        """The contract's target fields: type, and for regression the standardization fitted on the train split
        (a Poisson loss fits only a scale: its predictions are exp(output) × scale); for multi-label runs whether a
        label set may be empty (``train.at_least_one_label``, auto: not when every train sample carries a label)."""
        kind = self.target_type
        if kind == "classification":
            return {}
        if getattr(self.cfg.train, "tta", False):
            raise ConfigError(f"train.tta averages class probabilities over views; {kind} runs do not support it yet: "
                              "set train.tta=false")
        fields: dict[str, Any] = {"target_type": kind}
        if kind == "regression":
            link = "log" if effective_loss(self.cfg.train.loss, kind) == "poisson" else "identity"
            mean, std = fit_standardization(self.labels("train"), self.class_names, link,
                                            self.cfg.train.standardize_targets)
            fields.update(target_mean=mean, target_std=std, target_link=link)
        if kind == "multilabel":
            rule = self.cfg.train.at_least_one_label
            fields["at_least_one_label"] = never_empty(self.labels("train")) if rule is None else bool(rule)
        return fields

    def batches(self, split: str, *, train: bool, device: torch.device, batch_size: int | None = None
                ) -> Iterable[dict[str, torch.Tensor]]:
        """Sized iterable of batches ``{"x", "y", "index", …aux}`` (``len`` = batches per epoch, ``set_epoch(n)`` for
        per-epoch shuffling); ``train`` turns on shuffling and augmentation."""
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

    def overlap(self, encoded: Encoded) -> dict[str, int]:
        """How many of ``encoded`` (an external evaluation set, read by the run's codec) duplicate the training
        split: ``{"n", "exact", "near"}`` (``near``: similar but not identical, the kind's own measure)."""
        return {"n": len(encoded), "exact": 0, "near": 0}

    def near_duplicates(self, max_identity: float) -> dict[str, int]:
        """Val/test items with a near-identical item in an earlier split (``doctor data``): counts by split pair."""
        return {}

    def tta_views(self) -> list[str]:
        """The test-time augmentation views the training augmentation justifies (``train.tta``): those it used."""
        return []

    def records(self) -> Any:
        """The records used, one row each (a pandas DataFrame): ``row`` (position in the data as read, what
        ``data.split.assignment`` refers to), ``id``, ``label``, ``split`` and ``group`` (records of one group —
        duplicates, reverse complements, ``data.group_col`` groups, similar sequences — stay in one split and one
        cross-validation fold)."""
        raise NotImplementedError

    def fingerprint(self) -> str:
        raise NotImplementedError

    def leakage(self) -> dict[str, Any]:
        """Duplicates across and within splits: ``data.splits.find_leakage``'s report (counts, no mask)."""
        raise NotImplementedError

    leakage_fix: ClassVar[str] = "remove the duplicates from val and test"

    def preview(self, split: str, ids: list[str]) -> dict[str, dict[str, Any]]:
        """Human-readable view of some examples, by id: ``{"sequence": str}`` or ``{"image": uint8 (H, W[, C])}``."""
        return {}

    # ---- a model without data (doctor model) -------------------------------------------------------------------
    @classmethod
    def parse_shape(cls, text: str | None) -> tuple[int, ...]:
        raise NotImplementedError

    @classmethod
    def example_model(cls, name: str, shape: tuple[int, ...], num_classes: int, params: dict[str, Any],
                      alphabet: str = "dna") -> nn.Module:
        raise NotImplementedError

    @classmethod
    def example_input(cls, model: nn.Module, shape: tuple[int, ...], seed: int = 0
                      ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        raise NotImplementedError


TASKS: dict[str, type[Task]] = {}


def register_task(cls: type[Task]) -> type[Task]:
    """Class decorator: add a task kind (its ``kind`` must be new)."""
    if cls.kind in TASKS:
        raise ValueError(f"task kind {cls.kind!r} is already registered")
    TASKS[cls.kind] = cls
    return cls


def task_class(kind: str) -> type[Task]:
    try:
        return TASKS[kind]
    except KeyError:
        raise ConfigError(f"unknown task kind {kind!r}; expected one of: {', '.join(TASKS)}") from None


def make_task(cfg: RunConfig) -> Task:
    """The task for a config: ``data.task``, or the first kind (by priority) whose ``detect`` accepts the data."""
    if cfg.data.task != "auto":
        return task_class(cfg.data.task)(cfg)
    for cls in sorted(TASKS.values(), key=lambda c: -c.priority):
        if cls.detect(cfg):
            return cls(cfg)
    raise ConfigError(f"data.path {cfg.data.path!r}: no task kind reads it; set data.task to one of {', '.join(TASKS)}")


def codec_for(contract: InputContract, data: DataConfig | None = None) -> Codec:
    """The codec of a trained contract's task kind."""
    return task_class(contract.task).codec(contract, data)
