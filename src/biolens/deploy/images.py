"""Prediction on image files for image runs: files, folders and globs in; preprocessing rebuilt from the contract.

Used by :class:`biolens.deploy.predictor.Predictor` when ``contract.task == "image"``.
"""

from __future__ import annotations

import glob
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from biolens.contract import InputContract
from biolens.data.images.cache import decode_all
from biolens.data.images.dataset import ImageBatches, ImageSplit
from biolens.data.images.decode import IMAGE_SUFFIXES, Window
from biolens.data.images.sources import read_folder, read_manifest
from biolens.errors import DataError

log = logging.getLogger(__name__)


@dataclass
class ImageInputs:
    """What ``Predictor.read`` returns for images: ids (paths), labels (or None), sources."""

    ids: list[str]
    labels: list[str] | None


def expand_inputs(inputs: str | Path | Sequence[str | Path]) -> list[Path]:
    """Files, folders (searched recursively for images) and glob patterns → image paths, in order."""
    items = [inputs] if isinstance(inputs, (str, Path)) else list(inputs)
    out: list[Path] = []
    for item in items:
        text = str(item)
        p = Path(text)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise DataError(f"{p}: no image files ({', '.join(IMAGE_SUFFIXES)}) in the folder; check the path")
            out += found
        elif p.is_file():
            out.append(p)
        elif any(ch in text for ch in "*?["):
            found = sorted(Path(f) for f in glob.glob(text, recursive=True) if Path(f).is_file())
            if not found:
                raise DataError(f"{text}: the pattern matches no files; check it (quote it so the shell does not expand it)")
            out += found
        else:
            raise DataError(f"file not found: {p}; check the path")
    if not out:
        raise DataError("no images given to predict")
    return out


def decode_for_model(paths: Sequence[Path], contract: InputContract) -> np.ndarray:
    """Decode files exactly as in training (resize to ``resize_to``); unreadable files are one error listing all."""
    prep = contract.image_preprocessing
    decoded = decode_all(paths, contract.resize_to or contract.image_size,
                         Window(prep.get("window_center"), prep.get("window_width")), cache_dir=None)
    if decoded.bad:
        listing = "; ".join(f"{paths[i]} ({r})" for i, r in sorted(decoded.bad.items()))
        raise DataError(f"{len(decoded.bad)} unreadable image file(s): {listing}; fix or remove them")
    return decoded.images


def read_labelled(source: str | Sequence[str], contract: InputContract, path_col: str, label_col: str,
                  split_col: str) -> tuple[ImageInputs, np.ndarray, np.ndarray]:
    """A class-folder tree or a manifest (every split) → inputs, decoded images, class indices."""
    src = source if isinstance(source, str) else (source[0] if len(source) == 1 else None)
    if src is None:
        raise DataError("give one image folder or manifest to evaluate")
    p = Path(src)
    recs = read_manifest(p, path_col, label_col, split_col) if p.is_file() else read_folder(p)
    lookup = {c: k for k, c in enumerate(contract.class_names)}
    unknown = next((i for i, lab in enumerate(recs.labels) if lab not in lookup), None)
    if unknown is not None:
        raise DataError(f"{recs.locations[unknown]}: label {recs.labels[unknown]!r} is unknown to the model "
                        f"(classes: {', '.join(contract.class_names)}); fix the label")
    images = decode_for_model(recs.paths, contract)
    y = np.array([lookup[lab] for lab in recs.labels], dtype=np.int64)
    return ImageInputs([str(x) for x in recs.paths], list(recs.labels)), images, y


def batches(images: np.ndarray, contract: InputContract, batch_size: int, device) -> ImageBatches:  # noqa: ANN001
    """Eval batches (center crop, channels, normalization from the contract) over decoded ``(N, C, S, S)``."""
    n = len(images)
    split = ImageSplit(images, np.arange(n), None, np.arange(n).astype(str))
    return ImageBatches(split, batch_size, size=contract.image_size, channels=contract.channels, mean=contract.mean,
                        std=contract.std, device=device)


def chunks(paths: Sequence[Path], contract: InputContract, chunk_size: int) -> Iterator[tuple[list[Path], np.ndarray]]:
    """Decode in chunks so memory stays bounded for large folders."""
    for start in range(0, len(paths), chunk_size):
        part = list(paths[start:start + chunk_size])
        yield part, decode_for_model(part, contract)


def predict_frame(predictor, inputs: str | Path | Sequence[str | Path], batch_size: int = 256):  # noqa: ANN001, ANN201
    """``Predictor.predict`` for image runs: a DataFrame id (path), p_<class>…, prediction[, decision]."""
    from biolens.models.inference import softmax

    paths = expand_inputs(inputs)
    images = decode_for_model(paths, predictor.contract)
    probs = softmax(predictor.logits(images, None, batch_size), predictor.contract.temperature)
    return predictor._frame([str(p) for p in paths], probs)


def predict_files(predictor, inputs: Sequence[str | Path], out: str | Path, batch_size: int = 256,  # noqa: ANN001
                  chunk_size: int = 2048) -> int:
    """``Predictor.predict_files`` for image runs: stream files, folders and globs into one CSV written atomically."""
    import csv
    import os
    import tempfile

    from biolens.models.inference import softmax

    paths = expand_inputs(inputs)  # every input is checked before anything is written
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    n = 0
    try:
        with os.fdopen(fd, "w", newline="") as fh:
            for part, images in chunks(paths, predictor.contract, chunk_size):
                probs = softmax(predictor.logits(images, None, batch_size), predictor.contract.temperature)
                frame = predictor._frame([str(p) for p in part], probs)
                frame.to_csv(fh, index=False, header=n == 0, float_format="%.6f", quoting=csv.QUOTE_MINIMAL)
                n += len(frame)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return n
