"""A trained run loaded for prediction: model + contract + the task kind's codec, from a notebook or the CLI."""

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

from biolens.bundle import check_run_dir, load_weights, read_yaml, verify_bundle
from biolens.config import RunConfig, validate_config
from biolens.contract import InputContract
from biolens.devices import resolve_device
from biolens.errors import BiolensError, BundleError, ConfigError, DataError
from biolens.io import temp_beside
from biolens.models import create_model
from biolens.models.finetune import PRETRAIN_FILE
from biolens.models.inference import predict_logits
from biolens.tasks.base import Encoded, Inputs, codec_for
from biolens.tasks.outputs import target_frame, write_target_predictions
from biolens.tasks.tiling import predict_tiles

log = logging.getLogger(__name__)

Progress = Callable[[int, "int | None"], None]  # (items done so far, total or None when unknown)


def prediction_frame(contract: InputContract, ids: Sequence[str], probs: np.ndarray,
                     labels: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per input: id, [label], p_<class> per class, prediction, and ``decision`` for binary models.
    Regression and multi-label runs: ``tasks/outputs.target_frame`` (values or label probabilities per target)."""
    if not contract.is_classification:
        return target_frame(contract, ids, probs)
    pred = contract.decide(np.nan_to_num(probs))
    missing = np.isnan(probs).any(axis=1)  # inputs that could not be predicted (e.g. empty sequences)
    cols: dict[str, object] = {"id": list(ids)}
    if labels is not None:
        cols["label"] = list(labels)
    for k, name in enumerate(contract.class_names):
        cols[f"p_{name}"] = probs[:, k]
    cols["prediction"] = ["" if m else contract.class_names[k] for k, m in zip(pred, missing)]
    if contract.positive_index is not None:
        cols["decision"] = pd.array([None if m else bool(k == contract.positive_index) for k, m in zip(pred, missing)],
                                    dtype="boolean")
    return pd.DataFrame(cols)


def write_predictions(path: Path, ids: np.ndarray, y: np.ndarray | None, probs: np.ndarray,
                      contract: InputContract) -> None:
    """``predictions.csv`` of a split: id, [label], p_<class>…, prediction (at the contract's threshold); regression
    and multi-label runs: ``tasks/outputs.write_target_predictions``."""
    if not contract.is_classification:
        return write_target_predictions(path, ids, y, probs, contract)
    names = contract.class_names
    pred = contract.decide(probs)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id"] + (["label"] if y is not None else []) + [f"p_{c}" for c in names] + ["prediction"])
        for i in range(len(ids)):
            w.writerow([ids[i]] + ([names[y[i]]] if y is not None else [])
                       + [f"{p:.6f}" for p in probs[i]] + [names[pred[i]]])


class Predictor:
    """A trained model with its input contract: raw inputs in, labels and probabilities out.

    ``codec`` (the task kind's, see ``biolens.tasks``) reads files and in-memory inputs and makes batches, so the
    predictor itself never branches on the kind.
    """

    def __init__(self, model: torch.nn.Module, contract: InputContract, config: RunConfig, run_dir: Path,
                 device: torch.device, manifest: dict[str, Any] | None = None):
        self.contract = contract
        self.config = config
        self.run_dir = run_dir
        self.device = device
        self.manifest = manifest or {}
        self.codec = codec_for(contract, config.data if config is not None else None)
        # what predict, evaluate, serve and export run: the model, inside the contract's test-time augmentation
        self.model = self.codec.with_tta(model).to(device).eval()
        self.codec.bind(self.model)

    @property
    def alphabet(self):  # noqa: ANN201
        """The sequence alphabet of a sequence run (None for other kinds)."""
        return getattr(self.codec, "alphabet", None)

    @classmethod
    def load(cls, run: str | Path, device: str = "auto", *, verify: bool = True) -> Predictor:
        """Verify the bundle, rebuild the model from ``config.yaml`` and load ``model.safetensors`` (no pickle).

        Every file listed in ``manifest.json`` is checked against its SHA-256 first; a missing or changed file is a
        BundleError naming it. ``verify=False`` skips only the checksums (for a run folder still being written).
        """
        run_dir = check_run_dir(run)
        if (run_dir / PRETRAIN_FILE).is_file():
            raise BundleError(f"{run_dir} is a pretraining run (a masked-token encoder, no classifier); fine-tune it "
                              f"first: biolens train --data DATA --weights {run_dir}")
        manifest = verify_bundle(run_dir) if verify else {}
        contract = InputContract.load(run_dir / "contract.json")
        try:
            config = validate_config(read_yaml(run_dir / "config.yaml"), str(run_dir / "config.yaml"))
        except BiolensError as e:
            raise BundleError(str(e)) from None
        try:
            model = create_model(config.model.name, **dict(config.model.params))
        except BiolensError as e:
            raise BundleError(f"{run_dir / 'config.yaml'}: {e}") from None
        load_weights(model, run_dir / "model.safetensors")
        broken = [n for n, t in model.state_dict().items() if t.is_floating_point() and not torch.isfinite(t).all()]
        if broken:
            raise BundleError(f"{run_dir / 'model.safetensors'}: {len(broken)} weight tensor(s) hold NaN or Inf "
                              f"({', '.join(broken[:3])}); the model is broken: retrain it (with a lower train.lr)")
        return cls(model, contract, config, run_dir, resolve_device(device), manifest)

    # ---- inputs ---------------------------------------------------------------------------------------------------
    def read(self, source: str | Sequence[str], require_labels: bool = False) -> Inputs:
        """Read labelled (or unlabelled) data as the run's codec reads it: FASTA/CSV/TSV for sequence runs, a
        class-folder tree or manifest for image runs."""
        return self.codec.read(source, require_labels=require_labels)

    def logits(self, x: np.ndarray | Encoded, lengths: np.ndarray | None = None, batch_size: int = 256) -> np.ndarray:
        """Raw logits ``(N, C)`` for encoded rows ``(N, L)`` (or decoded images ``(N, C, S, S)``), in input order."""
        encoded = x if isinstance(x, Encoded) else Encoded(x, lengths)
        return predict_logits(self.model, self.codec.batches(encoded, batch_size, self.device))

    def predict_proba(self, x: np.ndarray | Encoded, lengths: np.ndarray | None = None,
                      batch_size: int = 256) -> np.ndarray:
        """Class probabilities ``(N, C)`` (the contract's temperature applied)."""
        return self.contract.probabilities(self.logits(x, lengths, batch_size))

    def predict(self, inputs: Any, batch_size: int = 256) -> pd.DataFrame:
        """Predict for raw inputs: what the run's codec accepts.

        Sequence runs take a sequence string, a list of them, or FASTA/CSV/TSV file paths (.gz ok). Image runs take
        image files, folders and glob patterns, or in-memory images: numpy arrays (``(H, W)``, ``(H, W, C)``,
        ``(C, H, W)`` or a batch ``(N, …)``), PIL images or torch tensors (``(C, H, W)`` / ``(N, C, H, W)``),
        preprocessed exactly as files are (resize, center crop, channels, normalization from the contract).

        Returns a DataFrame: id, [label], p_<class> per class, prediction, and for binary models ``decision``
        (P(positive) ≥ the run's threshold).
        """
        got = self.codec.coerce(inputs)
        if got.labels is not None:
            self.codec.labels_to_index(got)  # a label the model never saw is an error
        return prediction_frame(self.contract, got.ids, self._probs(got, batch_size), got.labels)

    def _probs(self, got: Inputs, batch_size: int) -> np.ndarray:
        """Probabilities of read inputs; rows the codec says cannot be predicted (empty sequences) are NaN."""
        unusable = self.codec.check_inputs(got)
        probs = self.predict_proba(got.encoded, batch_size=batch_size)
        probs[unusable] = np.nan
        return probs

    def predict_files(self, paths: Sequence[str | Path], out: str | Path, batch_size: int = 256,
                      chunk_size: int = 8192, progress: Progress | None = None, *, tile: bool = False,
                      stride: int | None = None, aggregate: str = "max") -> int:
        """Stream files (FASTA/CSV for sequence runs; image files, folders, globs for image runs) through the model
        into one CSV (written atomically), ``chunk_size`` items at a time so memory does not grow with the input.
        Returns rows written. ``progress(done, total)`` is called after every chunk (``total`` is None when the
        length of the stream is unknown until its end, as for sequence files).

        ``tile=True`` (sequence runs): sequences longer than the model's ``max_len`` are cut into tiles ``stride``
        apart (default half the length) instead of truncated; ``out`` gets one row per sequence with the mean and max
        of P(class) over its tiles (``aggregate`` picks the one that decides), ``<stem>.tiles.csv`` one row per tile
        (``tasks/tiling.py``)."""
        if isinstance(paths, (str, Path)):
            paths = [paths]
        paths = [str(p) for p in paths]
        if stride is not None and not tile:
            raise ConfigError(f"stride {stride} sets the step between tiles; pass tile=True too, or drop stride")
        if tile and not self.contract.is_classification:
            raise ConfigError(f"tile=True aggregates class probabilities over tiles; this is a "
                              f"{self.contract.target_type} run: predict sequences up to its max_len "
                              f"({self.contract.max_len}) instead")
        if tile:
            return predict_tiles(self, paths, writable_output(out), stride=stride, aggregate=aggregate,
                                 batch_size=batch_size, chunk_size=chunk_size, progress=progress)
        out = writable_output(out)
        with_labels = self.codec.labelled(paths)  # one schema for every row: a label column for all, or for none
        fd, tmp = temp_beside(out)
        n, header = 0, True
        try:
            with os.fdopen(fd, "w", newline="") as fh:
                for got in self.codec.stream(paths, chunk_size):
                    if got.labels is not None:
                        self.codec.labels_to_index(got)  # unknown labels are an error
                    labels = got.labels if got.labels is not None else ([""] * len(got) if with_labels else None)
                    frame = prediction_frame(self.contract, got.ids, self._probs(got, batch_size), labels)
                    frame.to_csv(fh, index=False, header=header, float_format="%.6f", quoting=csv.QUOTE_MINIMAL)
                    header, n = False, n + len(frame)
                    if progress is not None:
                        progress(n, got.total)
            if n == 0:
                raise DataError(f"no records in {', '.join(paths)}; nothing to predict")
            os.replace(tmp, out)
        except OSError as e:  # disk full, a file-size limit, a folder that went away: nothing half-written stays
            Path(tmp).unlink(missing_ok=True)
            raise DataError(f"cannot write {out} ({e.strerror or e}); free disk space or choose another path") from None
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return n


def writable_output(out: str | Path) -> Path:
    """``out`` as a file path whose folder exists (or is created) and is writable; one-line errors otherwise."""
    out = Path(out)
    if out.is_dir():
        raise DataError(f"out {out} is a folder; give a file name such as {out / 'predictions.csv'}")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"out {out}: cannot create the folder {out.parent} ({e.strerror}); choose another path") from None
    if not os.access(out.parent, os.W_OK | os.X_OK):
        raise DataError(f"out {out}: the folder {out.parent} is not writable; choose another path or fix its "
                        "permissions")
    if out.exists() and not os.access(out, os.W_OK):
        raise DataError(f"out {out} exists and is read-only; choose another path or fix its permissions")
    return out


def predict(run: str | Path, inputs: Any, **kwargs: Any) -> pd.DataFrame:
    """One-call prediction: ``biolens.predict("runs/x", ["ACGT..."])``."""
    return Predictor.load(run).predict(inputs, **kwargs)
