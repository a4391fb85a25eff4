"""The sequence task (DNA, RNA, protein) and its codec: FASTA/CSV/TSV files, raw strings and JSON items."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from biolens.config import DataConfig, RunConfig
from biolens.contract import InputContract
from biolens.data.alphabets import get_alphabet
from biolens.data.augment import gc_content
from biolens.data.dataset import SequenceBatches, SequenceData
from biolens.data.encoding import RecordError, decode, encode
from biolens.data.prepare import PreparedData, encode_for_model, nucleotide_warning, prepare_sequences
from biolens.data.readers import Records, check_file, has_labels, iter_chunks, read_source
from biolens.data.similarity import cross_split_pairs, default_kmer, similar_sequences
from biolens.data.splits import SPLITS, sequence_keys
from biolens.errors import ConfigError, DataError, InputError
from biolens.io import fingerprint_arrays
from biolens.models import create_model, model_info
from biolens.models.inference import min_input_length
from biolens.models.neighbors import request as neighbor_request
from biolens.models.finetune import (check_sequence_start, load_matching, read_starting_weights, recorded_model,
                                   set_up_finetuning)
from biolens.tasks.base import Codec, Encoded, Inputs, Task, register_task

log = logging.getLogger(__name__)


def _is_file(item: str | Path) -> bool:
    """True for an existing file; False for strings that cannot be paths (e.g. a 10 kb sequence: name too long)."""
    try:
        return Path(item).is_file()
    except (OSError, ValueError):
        return False


class SequenceCodec(Codec):
    """Sequences in the run's alphabet, encoded to its ``max_len``; GC content added where the model reads it."""

    kind = "sequence"
    json_field = "sequences"
    dynamic_length = True

    def __init__(self, contract: InputContract, data: DataConfig | None = None):
        super().__init__(contract, data)
        self.alphabet = get_alphabet(contract.alphabet)
        self.with_gc = "gc" in contract.aux_inputs
        self.min_width = 1  # set from the model by bind()

    def _columns(self) -> dict[str, str]:
        d = self.data
        if d is None:
            return {}
        return dict(seq_col=d.seq_col, label_col=d.label_col, id_col=d.id_col, split_col=d.split_col,
                    target_cols=self.target_columns())

    def _inputs(self, recs: Records) -> Inputs:
        x, lengths = encode_for_model(recs, self.contract.alphabet, self.contract.max_len)
        if not self.contract.is_classification:  # targets (values, label sets) travel as raw texts by column
            return Inputs(list(recs.ids), Encoded(x, lengths), None, locate=recs.locate, targets=recs.targets)
        return Inputs(list(recs.ids), Encoded(x, lengths), recs.labels, locate=recs.locate)

    def read(self, source: str | Sequence[str], require_labels: bool = False) -> Inputs:
        recs = read_source(source, require_labels=require_labels, **self._columns())
        return self._inputs(recs)

    def stream(self, paths: Sequence[str], chunk_size: int) -> Iterator[Inputs]:
        for path in paths:  # every input is checked (and gzip verified) before anything is read
            check_file(path)
        for path in paths:
            for recs in iter_chunks(path, chunk_size, **self._columns()):
                yield self._inputs(recs)

    def labelled(self, paths: Sequence[str]) -> bool:
        return any(has_labels(p, **self._columns()) for p in paths)

    def coerce(self, inputs: Any) -> Inputs:
        """A file path (FASTA/CSV/TSV, gz ok), a list of them, a sequence string or a list of sequences."""
        if isinstance(inputs, (str, Path)) and _is_file(inputs):
            return self.read(str(inputs))
        if isinstance(inputs, Path):
            raise DataError(f"file not found: {inputs}; check the path")
        items = [inputs] if isinstance(inputs, str) else list(inputs)
        if items and all(isinstance(i, Path) or (isinstance(i, str) and _is_file(i)) for i in items):
            parts = [self.read(str(i)) for i in items]
            labelled = all(p.labels is not None for p in parts)
            return Inputs([i for p in parts for i in p.ids],
                          Encoded(_stack([p.encoded.x for p in parts]), np.concatenate([p.encoded.lengths for p in parts])),
                          [lab for p in parts for lab in p.labels] if labelled else None)
        seqs = [str(s) for s in items]
        if not seqs:
            raise DataError("no sequences given to predict")
        recs = Records([f"seq{i + 1}" for i in range(len(seqs))], seqs, None,
                       sources=[f"sequence {i + 1}" for i in range(len(seqs))])
        return self._inputs(recs)

    def batches(self, encoded: Encoded, batch_size: int, device: torch.device | str) -> SequenceBatches:
        data = SequenceData(np.arange(len(encoded)), encoded.x, encoded.lengths, None, self.alphabet)
        return SequenceBatches(data, batch_size, device=device, with_gc=self.with_gc, min_width=self.min_width)

    def bind(self, model: nn.Module) -> None:
        self.min_width = min_input_length(model)

    def complement_table(self) -> torch.Tensor | None:
        return torch.from_numpy(self.alphabet.complement_table()) if self.alphabet.is_nucleic else None

    def check_inputs(self, inputs: Inputs) -> np.ndarray:
        """Empty sequences get no prediction; sequences shorter than the model reads are padded (PAD) to it."""
        lengths = inputs.encoded.lengths
        empty = lengths == 0
        where = (lambda i: inputs.locate(i)) if inputs.locate is not None else (lambda i: inputs.ids[i])  # noqa: E731
        if empty.any():
            log.warning("%d empty sequence(s) get no prediction (empty cells; first: %s)", int(empty.sum()),
                        where(int(np.flatnonzero(empty)[0])))
        short = (lengths > 0) & (lengths < self.min_width)
        if short.any():
            log.warning("%d sequence(s) shorter than the %d positions the model reads were padded to it (first: %s)",
                        int(short.sum()), self.min_width, where(int(np.flatnonzero(short)[0])))
        return empty

    def from_json(self, items: list[Any], max_length: int | None) -> Encoded:
        limit = max_length or self.contract.max_len
        for i, s in enumerate(items):
            where = f"{self.json_field}[{i}]"
            if not isinstance(s, str):
                raise InputError(where, f"{where}: expected a string, got {type(s).__name__}")
            if not s:
                raise InputError(where, f"{where}: empty sequence")
            if len(s) > limit:
                raise InputError(where, f"{where}: length {len(s)} is over the maximum of {limit} (model max_len "
                                        f"{self.contract.max_len}, --max-length); shorten or split the sequence")
        try:
            x, lengths = encode(items, self.alphabet, self.contract.max_len)
        except RecordError as e:
            where = f"{self.json_field}[{e.index}]"
            raise InputError(where, f"{where}: {e.detail}") from None
        return Encoded(x, lengths)

    def input_warnings(self, encoded: Encoded, field: str) -> list[str]:
        note = nucleotide_warning(encoded.x, encoded.lengths, self.alphabet, lambda i: f"{field}[{i}]")
        return [note] if note else []

    @classmethod
    def random_batch(cls, model: nn.Module, contract: Any = None, n: int = 8, seed: int = 0
                     ) -> dict[str, torch.Tensor]:
        g = torch.Generator().manual_seed(seed)
        length = min(int(getattr(contract, "max_len", None) or 64), 512)
        alphabet = get_alphabet(getattr(contract, "alphabet", None) or "dna")
        k = model.vocab_size - 2  # symbols 1..k (k+1 = unknown)
        x = torch.randint(1, k + 1, (n, length), generator=g)
        lengths = torch.randint(max(2, length // 2), length + 1, (n,), generator=g)
        x[torch.arange(length).unsqueeze(0) >= lengths.unsqueeze(1)] = 0
        batch = {"x": x}
        if "gc" in getattr(model, "aux_inputs", ()):
            batch["gc"] = gc_content(x, alphabet)
        return batch

    def limits(self, max_length: int | None) -> dict[str, Any]:
        return {"max_sequence_length": max_length or self.contract.max_len}


def _stack(parts: list[np.ndarray]) -> np.ndarray:
    width = max(p.shape[1] for p in parts)
    return np.concatenate([np.pad(p, ((0, 0), (0, width - p.shape[1]))) for p in parts])


@register_task
class SequenceTask(Task):
    kind = "sequence"
    codec = SequenceCodec
    priority = 0  # the fallback: anything that is not image data is read as sequences
    position_unit = "bases"
    leakage_fix = "set data.dedup=true to drop them from val/test"

    @classmethod
    def detect(cls, cfg: RunConfig) -> bool:
        return True  # the fallback (lowest priority): what no other kind claims is read as sequences

    @classmethod
    def model_name(cls, cfg: RunConfig) -> str:
        """``model.name``; with ``model.weights`` from a run folder and no name, the weights' own architecture."""
        if cfg.model.weights and not cfg.model.name:
            recorded = recorded_model(cfg.model.weights)
            if recorded:
                cfg = cfg.model_copy(update={"model": cfg.model.model_copy(update={"name": recorded})})
        return super().model_name(cfg)

    def prepare(self) -> None:
        self.data: PreparedData = prepare_sequences(self.cfg.data, seed=self.cfg.data_seed)
        self.with_gc = False
        self.min_width = 1

    @property
    def class_names(self) -> list[str]:
        return self.data.class_names

    def input_spec(self) -> dict[str, Any]:
        return {"alphabet": self.data.alphabet.name, "max_len": self.data.max_len}

    def build_model(self) -> nn.Module:
        cfg, data = self.cfg, self.data
        if cfg.model.pretrained:
            raise ConfigError(f"model.pretrained={cfg.model.pretrained} is for image models; start a sequence model "
                              "from model.weights=RUN (a `biolens pretrain` run or another sequence run)")
        start = read_starting_weights(cfg.model.weights) if cfg.model.weights else None
        if start is not None:
            check_sequence_start(start, cfg.model.name, data.alphabet.name)
        spec = model_info(cfg.model.name)
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
        if start is not None:
            # the weights' architecture; model.params may change e.g. dropout. Label sets belong to the start's
            # labels, not its architecture: a new run gets them only from its own model.params
            params = {**{k: v for k, v in start.params.items() if k not in ("label_sets", "neighbors")}, **params}
        if params.get("neighbors"):  # a new run fits its own memory: only what was asked for carries over
            params["neighbors"] = neighbor_request(params["neighbors"])
            if self.target_type == "regression":
                raise ConfigError("model.params.neighbors transfers class or label votes; these targets are "
                                  "regression: remove model.params.neighbors")
        if params.get("label_sets") and self.target_type != "multilabel":  # before any LR test or run folder
            raise ConfigError(f"model.params.label_sets is for multi-label targets; these are {self.target_type}: "
                              "remove model.params.label_sets")
        model = create_model(cfg.model.name, vocab_size=data.alphabet.vocab_size, num_classes=len(data.class_names),
                             **params)
        if start is not None:
            load_matching(model, start.state, start.where)
        set_up_finetuning(model, freeze_until=cfg.model.freeze_until, head_epochs=cfg.model.head_epochs,
                          backbone_lr_scale=cfg.model.backbone_lr_scale, epochs=cfg.train.epochs,
                          has_weights=start is not None, weights_scale=1.0)
        self.min_width = min_input_length(model)  # batches of shorter sequences are padded to what the model reads
        return model

    def contract(self) -> InputContract:
        d = self.data
        return InputContract(task=self.kind, class_names=d.class_names, positive_class=d.positive_class,
                             alphabet=d.alphabet.name, max_len=d.max_len, aux_inputs=["gc"] if self.with_gc else [],
                             genome=d.genome, **self.target_fields())

    def resolved_data_config(self) -> DataConfig:
        return self.data.config

    def batches(self, split: str, *, train: bool, device: torch.device, batch_size: int | None = None
                ) -> SequenceBatches:
        aug = self.data.config.augment
        return SequenceBatches(
            self.data.splits[split], batch_size or self.cfg.train.batch_size, shuffle=train, device=device,
            seed=self.cfg.train.seed, reverse_complement=bool(aug.reverse_complement) and train,
            substitution_rate=aug.substitution_rate if train else 0.0, shift=aug.shift if train else 0,
            with_gc=self.with_gc, min_width=getattr(self, "min_width", 1),
        )

    def labels(self, split: str) -> np.ndarray:
        return self.data.splits[split].y

    def ids(self, split: str) -> np.ndarray:
        return self.data.splits[split].ids

    def report(self) -> dict[str, Any]:
        return self.data.report

    def dropped(self) -> list[dict[str, str]]:
        return self.data.filtered

    def records(self) -> Any:
        return self.data.records

    def tta_views(self) -> list[str]:
        return ["reverse_complement"] if self.data.config.augment.reverse_complement else []

    def _rows(self, splits: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        parts = [self.data.splits[s] for s in splits]
        x = np.concatenate([p.take(np.arange(len(p))) for p in parts]) if parts else np.zeros((0, 1), np.uint8)
        lengths = np.concatenate([p.lengths for p in parts])
        names = np.concatenate([np.full(len(p), s, dtype=object) for s, p in zip(splits, parts)])
        return x, lengths, names

    def overlap(self, encoded: Encoded) -> dict[str, int]:
        alphabet = self.data.alphabet
        x_train, len_train, _ = self._rows(["train"])
        width = max(x_train.shape[1], encoded.x.shape[1])
        pad = lambda a: np.pad(a, ((0, 0), (0, width - a.shape[1])))  # noqa: E731
        x = np.concatenate([pad(x_train), pad(encoded.x)])
        lengths = np.concatenate([len_train, encoded.lengths])
        exact, canonical = sequence_keys(x, lengths, alphabet)
        keys = canonical if alphabet.is_nucleic else exact
        n_train = len(x_train)
        same = np.isin(keys[n_train:], keys[:n_train])
        k = default_kmer(self.data.alphabet, self.data.config.split.kmer)
        pairs = similar_sequences(x, lengths, alphabet, self.data.config.split.max_identity, k,
                                  both_strands=alphabet.is_nucleic)
        near = np.zeros(len(encoded), dtype=bool)
        if len(pairs):
            a, b = pairs[:, 0], pairs[:, 1]
            for ext, ref in ((b, a), (a, b)):
                hit = (ext >= n_train) & (ref < n_train)
                near[ext[hit] - n_train] = True
        return {"n": len(encoded), "exact": int(same.sum()), "near": int((near & ~same).sum())}

    def near_duplicates(self, max_identity: float) -> dict[str, int]:
        x, lengths, names = self._rows(list(SPLITS))
        alphabet = self.data.alphabet
        k = default_kmer(alphabet, self.data.config.split.kmer)
        pairs = similar_sequences(x, lengths, alphabet, max_identity, k, both_strands=alphabet.is_nucleic)
        return cross_split_pairs(pairs, names.astype(str))

    def leakage(self) -> dict[str, Any]:
        return self.data.report["leakage"]  # counted by prepare_sequences (exact and reverse-complement duplicates)

    def preview(self, split: str, ids: list[str]) -> dict[str, dict[str, Any]]:
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

    # ---- a model without data -----------------------------------------------------------------------------------
    @classmethod
    def parse_shape(cls, text: str | None) -> tuple[int, ...]:
        """``--input-shape``: ``L`` or ``B,L`` (default ``4,200``)."""
        return parse_shape(text, cls.kind, (1, 2), "L or B,L", (4, 200))

    @classmethod
    def example_model(cls, name: str, shape: tuple[int, ...], num_classes: int, params: dict[str, Any],
                      alphabet: str = "dna") -> nn.Module:
        return create_model(name, vocab_size=get_alphabet(alphabet).vocab_size, num_classes=num_classes, **params)

    @classmethod
    def example_input(cls, model: nn.Module, shape: tuple[int, ...], seed: int = 0
                      ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        gen = torch.Generator().manual_seed(seed)
        x = torch.randint(1, model.vocab_size, shape, generator=gen)
        aux = {"gc": torch.rand(shape[0], generator=gen)} if "gc" in getattr(model, "aux_inputs", ()) else {}
        return x, aux


def parse_shape(text: str | None, kind: str, want: tuple[int, int], form: str, default: tuple[int, ...]
                ) -> tuple[int, ...]:
    """``--input-shape`` for one kind: ``want`` = (dims without batch, dims with batch); batch defaults to 4."""
    if text is None:
        return default
    try:
        dims = tuple(int(v) for v in text.replace("x", ",").replace("×", ",").split(",") if v.strip())
    except ValueError:
        raise ConfigError(f"--input-shape {text!r}: expected integers such as 200 or 4,200 (sequence) "
                          "or 3,224,224 (image)") from None
    if len(dims) not in want or min(dims, default=0) < 1:
        raise ConfigError(f"--input-shape {text!r}: a {kind} model takes {form} (positive integers)")
    if len(dims) == want[0]:
        dims = (4,) + dims
    if dims[0] < 2:
        dims = (2,) + dims[1:]  # batch norm needs two samples in train mode (gradient check)
    return dims
