"""Load a run folder and predict on new sequences, from a notebook or the CLI."""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from biolens.config import RunConfig, validate_config
from biolens.contract import InputContract
from biolens.data.alphabets import get_alphabet
from biolens.data.dataset import SequenceBatches, SequenceData
from biolens.data.prepare import encode_for_model, labels_to_index
from biolens.data.readers import Records, iter_chunks, read_source
from biolens.deploy import images as image_io
from biolens.deploy.bundle import check_run_dir, load_weights, read_yaml, temp_beside, verify_bundle
from biolens.errors import BiolensError, BundleError, DataError
from biolens.evaluation.metrics import decide
from biolens.models import create_model
from biolens.models.inference import predict_logits, softmax
from biolens.training.setup import resolve_device

log = logging.getLogger(__name__)

Progress = Callable[[int, "int | None"], None]  # (items done so far, total or None when unknown)


class Predictor:
    """A trained model with its input contract: raw sequences in, labels and probabilities out."""

    def __init__(self, model: torch.nn.Module, contract: InputContract, config: RunConfig, run_dir: Path,
                 device: torch.device, manifest: dict[str, Any] | None = None):
        self.model = model.to(device).eval()
        self.contract = contract
        self.config = config
        self.run_dir = run_dir
        self.device = device
        self.manifest = manifest or {}
        self.alphabet = get_alphabet(contract.alphabet) if contract.task == "sequence" else None

    @classmethod
    def load(cls, run: str | Path, device: str = "auto", *, verify: bool = True) -> Predictor:
        """Verify the bundle, rebuild the model from ``config.yaml`` and load ``model.safetensors`` (no pickle).

        Every file listed in ``manifest.json`` is checked against its SHA-256 first; a missing or changed file is a
        BundleError naming it. ``verify=False`` skips only the checksums (for a run folder still being written).
        """
        run_dir = check_run_dir(run)
        manifest = verify_bundle(run_dir) if verify else {}
        contract = InputContract.load(run_dir / "contract.json")
        try:
            config = validate_config(read_yaml(run_dir / "config.yaml"), str(run_dir / "config.yaml"))
        except BiolensError as e:
            raise BundleError(str(e)) from None
        params = dict(config.model.params)
        model = create_model(config.model.name, **params)
        load_weights(model, run_dir / "model.safetensors")
        return cls(model, contract, config, run_dir, resolve_device(device), manifest)

    def read(self, source: str | Sequence[str], require_labels: bool = False
             ) -> tuple[Records, np.ndarray, np.ndarray, np.ndarray | None]:
        """Read a file (FASTA/CSV/TSV, gz ok) and encode it with this model's alphabet and max length.

        Image runs: a class-folder tree or manifest → (inputs, decoded images ``(N, C, S, S)`` uint8, None, y)."""
        d = self.config.data
        if self.contract.task == "image":
            inputs, images, y = image_io.read_labelled(source, self.contract, d.image.path_col, d.label_col, d.split_col)
            return inputs, images, None, y
        recs = read_source(source, seq_col=d.seq_col, label_col=d.label_col, id_col=d.id_col,
                           split_col=d.split_col, require_labels=require_labels)
        x, lengths = encode_for_model(recs, self.contract.alphabet, self.contract.max_len)
        y = labels_to_index(recs, self.contract.class_names) if recs.labels is not None else None
        return recs, x, lengths, y

    def logits(self, x: np.ndarray, lengths: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Raw logits ``(N, C)`` for encoded rows ``(N, L)`` (or decoded images ``(N, C, S, S)``), in input order."""
        if self.contract.task == "image":
            batches = image_io.batches(x, self.contract, batch_size, self.device)
        else:
            data = SequenceData(np.arange(len(x)), x, lengths, None, self.alphabet)
            batches = SequenceBatches(data, batch_size, device=self.device, with_gc="gc" in self.contract.aux_inputs)
        return predict_logits(self.model, batches)

    def predict_proba(self, x: np.ndarray, lengths: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Class probabilities ``(N, C)`` for encoded rows ``(N, L)`` (the contract's temperature applied)."""
        return softmax(self.logits(x, lengths, batch_size), self.contract.temperature)

    def _frame(self, ids: Sequence[str], probs: np.ndarray, labels: Sequence[str] | None = None) -> pd.DataFrame:
        c = self.contract
        pred = decide(probs, c.positive_index, c.threshold)
        cols: dict[str, object] = {"id": list(ids)}
        if labels is not None:
            cols["label"] = list(labels)
        for k, name in enumerate(c.class_names):
            cols[f"p_{name}"] = probs[:, k]
        cols["prediction"] = [c.class_names[k] for k in pred]
        if c.positive_index is not None:
            cols["decision"] = pred == c.positive_index
        return pd.DataFrame(cols)

    def predict(self, inputs: Any, batch_size: int = 256) -> pd.DataFrame:
        """Predict for raw sequences, files, or (image runs) image paths, folders, globs or in-memory images.

        Sequence runs take a sequence string, a list of them, or FASTA/CSV/TSV file paths (.gz ok). Image runs take
        image files, folders and glob patterns, or in-memory images: numpy arrays (``(H, W)``, ``(H, W, C)``,
        ``(C, H, W)`` or a batch ``(N, …)``), PIL images or torch tensors (``(C, H, W)`` / ``(N, C, H, W)``),
        preprocessed exactly as files are (resize, center crop, channels, normalization from the contract).

        Returns a DataFrame: id, [label], p_<class> per class, prediction, and for binary models ``decision``
        (P(positive) ≥ the run's threshold).
        """
        if self.contract.task == "image":
            if image_io.is_in_memory(inputs):
                ids, images = image_io.from_memory(inputs, self.contract)
                return self._frame(ids, self.predict_proba(images, None, batch_size))
            return image_io.predict_frame(self, inputs, batch_size)
        if isinstance(inputs, (str, Path)) and _is_file(inputs):
            recs, x, lengths, _ = self.read(str(inputs))
            return self._frame(recs.ids, self.predict_proba(x, lengths, batch_size), recs.labels)
        if isinstance(inputs, Path):
            raise DataError(f"file not found: {inputs}; check the path")
        items = [inputs] if isinstance(inputs, str) else list(inputs)
        if items and all(isinstance(i, Path) or (isinstance(i, str) and _is_file(i)) for i in items):
            return pd.concat([self.predict(Path(i), batch_size) for i in items], ignore_index=True)
        seqs = [str(s) for s in items]
        if not seqs:
            raise DataError("no sequences given to predict")
        recs = Records([f"seq{i + 1}" for i in range(len(seqs))], seqs, None, sources=[f"sequence {i + 1}" for i in range(len(seqs))])
        x, lengths = encode_for_model(recs, self.contract.alphabet, self.contract.max_len)
        return self._frame(recs.ids, self.predict_proba(x, lengths, batch_size))

    def predict_files(self, paths: Sequence[str | Path], out: str | Path, batch_size: int = 256,
                      chunk_size: int = 8192, progress: Progress | None = None) -> int:
        """Stream FASTA/CSV files (image runs: image files, folders, globs) through the model into one CSV (written
        atomically), ``chunk_size`` records at a time so memory does not grow with the input. Returns rows written.

        ``progress(done, total)`` is called after every chunk (``total`` is None for sequence files, whose length is
        unknown until the end of the stream).
        """
        if self.contract.task == "image":
            return image_io.predict_files(self, paths, out, batch_size, progress=progress)
        if isinstance(paths, (str, Path)):
            paths = [paths]
        for path in paths:  # every input is checked before anything is read
            if not Path(path).is_file():
                raise DataError(f"file not found: {path}; check the path")
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        d = self.config.data
        fd, tmp = temp_beside(out)
        n, header = 0, True
        try:
            with os.fdopen(fd, "w", newline="") as fh:
                for path in paths:
                    for recs in iter_chunks(path, chunk_size, seq_col=d.seq_col, label_col=d.label_col,
                                            id_col=d.id_col, split_col=d.split_col):
                        x, lengths = encode_for_model(recs, self.contract.alphabet, self.contract.max_len)
                        if recs.labels is not None:
                            labels_to_index(recs, self.contract.class_names)  # unknown labels are an error
                        frame = self._frame(recs.ids, self.predict_proba(x, lengths, batch_size), recs.labels)
                        frame.to_csv(fh, index=False, header=header, float_format="%.6f", quoting=csv.QUOTE_MINIMAL)
                        header, n = False, n + len(frame)
                        if progress is not None:
                            progress(n, None)
            os.replace(tmp, out)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return n


def _is_file(item: str | Path) -> bool:
    """True for an existing file; False for strings that cannot be paths (e.g. a 10 kb sequence: name too long)."""
    try:
        return Path(item).is_file()
    except (OSError, ValueError):
        return False


def predict(run: str | Path, inputs: str | Path | Sequence[str], **kwargs) -> pd.DataFrame:
    """One-call prediction: ``biolens.predict("runs/x", ["ACGT..."])``."""
    return Predictor.load(run).predict(inputs, **kwargs)
