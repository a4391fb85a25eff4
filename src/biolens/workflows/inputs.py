"""Training data given in memory (a notebook's lists, DataFrame or image arrays) written as an ordinary data file.

``biolens.train(data=df)`` stages the data as a CSV (sequences) or PNG files plus a manifest (images) in a temporary
folder, trains from it exactly as from a user's file, and then moves it into the run folder (``RUN/inputs/``), so
the run stays self-contained: ``evaluate``, ``report`` and ``--resume`` read the same data again.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from biolens.errors import ConfigError, DataError

log = logging.getLogger(__name__)

INPUTS = "inputs"


@dataclass
class Staged:
    """A data file written for in-memory data: ``path`` (in ``folder``), to be moved into the run."""

    folder: Path
    path: Path
    kind: str  # "sequence" or "image"

    def move_into(self, run_dir: Path) -> Path:
        """Move the staged files to ``RUN/inputs/`` and return the data file's new path."""
        target = run_dir / INPUTS
        shutil.move(str(self.folder), str(target))
        return target / self.path.name

    def discard(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def is_in_memory(data: Any) -> bool:
    """True for data that is not a path: a DataFrame, arrays, lists of sequences, or a (sequences, labels) pair."""
    if data is None or isinstance(data, (str, Path)):
        return False
    if isinstance(data, (list, tuple)) and data and all(isinstance(d, (str, Path)) for d in data):
        return not all(_looks_like_path(d) for d in data)
    return True


def _looks_like_path(item: str | Path) -> bool:
    text = str(item)
    return isinstance(item, Path) or "=" in text or "/" in text or "." in text or text.startswith("builtin:")


def _as_list(values: Any, what: str) -> list[Any]:
    if values is None:
        raise ConfigError(f"{what}: missing; give one label per item (labels=...)")
    if isinstance(values, (pd.Series, np.ndarray)):
        return list(values.tolist())
    return list(values)


def stage(data: Any, labels: Any = None, *, splits: Sequence[str] | None = None, seq_col: str = "sequence",
          label_col: str = "label", split_col: str = "split") -> Staged:
    """Write in-memory data to a temporary data file.

    Accepted: a pandas DataFrame with the sequence and label columns (``seq_col``, ``label_col``, optional
    ``split_col`` and ``id``); a list of sequence strings with ``labels``; a ``(sequences, labels)`` pair; a numpy
    array of images ``(N, H, W)``, ``(N, H, W, C)`` or ``(N, C, H, W)`` (uint8, or float in [0, 1]) or a list of
    ``(H, W[, C])`` arrays, with ``labels``. ``splits`` (train/val/test per item) fixes the split.
    """
    if isinstance(data, tuple) and len(data) == 2 and labels is None:
        data, labels = data
    folder = Path(tempfile.mkdtemp(prefix="biolens-inputs-"))
    try:
        if isinstance(data, pd.DataFrame):
            return Staged(folder, _frame(data, folder, seq_col, label_col), "sequence")
        if _is_images(data):
            return Staged(folder, _images(data, _as_list(labels, "labels"), splits, folder), "image")
        seqs = [str(s) for s in _as_list(data, "data")]
        labs = [str(v) for v in _as_list(labels, "labels")]
        if len(labs) != len(seqs):
            raise ConfigError(f"labels: {len(labs)} labels for {len(seqs)} sequences; give one label per sequence")
        frame = pd.DataFrame({"id": [f"seq{i + 1}" for i in range(len(seqs))], seq_col: seqs, label_col: labs})
        if splits is not None:
            frame[split_col] = _checked_splits(splits, len(seqs))
        return Staged(folder, _frame(frame, folder, seq_col, label_col), "sequence")
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def _checked_splits(splits: Sequence[str], n: int) -> list[str]:
    splits = [str(s) for s in splits]
    if len(splits) != n:
        raise ConfigError(f"splits: {len(splits)} values for {n} items; give one of train/val/test per item")
    return splits


def _frame(frame: pd.DataFrame, folder: Path, seq_col: str, label_col: str) -> Path:
    missing = [c for c in (seq_col, label_col) if c not in frame.columns]
    if missing:
        raise DataError(f"the DataFrame has no column {missing[0]!r} (columns: {', '.join(map(str, frame.columns))}); "
                        f"name the columns or set data.seq_col / data.label_col")
    if frame.empty:
        raise DataError("the DataFrame has no rows; give sequences and labels")
    path = folder / "data.csv"
    frame.to_csv(path, index=False)
    return path


def _is_images(data: Any) -> bool:
    if isinstance(data, np.ndarray):
        return data.ndim in (3, 4) and not data.dtype.kind in "USO"
    return isinstance(data, (list, tuple)) and bool(data) and all(isinstance(a, np.ndarray) and a.ndim in (2, 3)
                                                                  for a in data)


def _to_uint8(a: np.ndarray, i: int) -> np.ndarray:
    if a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[-1] not in (1, 3):
        a = a.transpose(1, 2, 0)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] != 3):
        raise DataError(f"image {i + 1}: shape {a.shape} is not (H, W), (H, W, 3) or (3, H, W)")
    if not np.isfinite(a).all():
        raise DataError(f"image {i + 1}: NaN or infinite pixels")
    if a.dtype != np.uint8:
        if np.issubdtype(a.dtype, np.floating) and a.min() >= 0 and a.max() <= 1:
            a = np.round(a * 255)
        elif a.min() < 0 or a.max() > 255:
            raise DataError(f"image {i + 1}: values {a.min()}..{a.max()} are neither uint8 nor floats in [0, 1]")
        a = a.astype(np.uint8)
    return a


def _images(data: Any, labels: list[Any], splits: Sequence[str] | None, folder: Path) -> Path:
    items = list(data) if isinstance(data, np.ndarray) else list(data)
    if len(labels) != len(items):
        raise ConfigError(f"labels: {len(labels)} labels for {len(items)} images; give one label per image")
    names = []
    for i, a in enumerate(items):
        name = f"image{i + 1:06d}.png"
        Image.fromarray(_to_uint8(np.asarray(a), i)).save(folder / name)
        names.append(name)
    frame = pd.DataFrame({"path": names, "label": [str(v) for v in labels]})
    if splits is not None:
        frame["split"] = _checked_splits(splits, len(items))
    path = folder / "manifest.csv"
    frame.to_csv(path, index=False)
    log.info("staged %d in-memory images as PNG files", len(items))
    return path
