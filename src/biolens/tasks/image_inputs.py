"""Image inputs for a trained contract: files, folders, globs, uploads and in-memory arrays, decoded exactly as in
training (``ImageCodec`` in ``tasks/image.py`` puts them together)."""

from __future__ import annotations

import glob
import logging
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from biolens.contract import InputContract
from biolens.data.images.cache import decode_all
from biolens.data.images.decode import DEFAULT_MAX_PIXELS, DICOM_SUFFIXES, GRAY_MODES, IMAGE_SUFFIXES, Window, to_uint8
from biolens.data.images.sources import read_folder, read_manifest
from biolens.errors import BiolensWarning, DataError

log = logging.getLogger(__name__)


def expand_inputs(inputs: str | Path | Sequence[str | Path]) -> list[Path]:
    """Files, folders (searched recursively for images) and glob patterns → image paths, in order."""
    items = [inputs] if isinstance(inputs, (str, Path)) else list(inputs)
    out: list[Path] = []
    for item in items:
        text = str(item)
        p = Path(text)
        if p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith("."))
            found = [f for f in files if f.suffix.lower() in IMAGE_SUFFIXES]
            if not found:
                raise DataError(f"{p}: no image files ({', '.join(IMAGE_SUFFIXES)}) in the folder; check the path")
            skipped = [f for f in files if f.suffix.lower() not in IMAGE_SUFFIXES]
            if skipped:  # every file in the folder is used or named here, --quiet or not
                warnings.warn(f"{p}: skipped {len(skipped)} file(s) that are not images ({', '.join(IMAGE_SUFFIXES)}): "
                              + ", ".join(str(f.relative_to(p)) for f in skipped[:10])
                              + (f" and {len(skipped) - 10} more" if len(skipped) > 10 else ""), BiolensWarning,
                              stacklevel=3)
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


def _window(contract: InputContract) -> Window:
    prep = contract.image_preprocessing
    return Window(prep.get("window_center"), prep.get("window_width"))


def max_pixels(contract: InputContract, limit: int | None = None) -> int:
    """The pixel limit for a run's inputs: ``limit`` (e.g. the server's ``--max-pixels``), else the run's own."""
    return int(limit or contract.image_preprocessing.get("max_pixels") or DEFAULT_MAX_PIXELS)


def decode_for_model(paths: Sequence[Path], contract: InputContract) -> np.ndarray:
    """Decode files exactly as in training (resize to ``resize_to``); unreadable files are one error listing all."""
    decoded = decode_all(paths, contract.resize_to or contract.image_size, _window(contract), cache_dir=None,
                         max_pixels=max_pixels(contract))
    if decoded.bad:
        listing = "; ".join(f"{paths[i]} ({r})" for i, r in sorted(decoded.bad.items()))
        raise DataError(f"{len(decoded.bad)} unreadable image file(s): {listing}; fix or remove them")
    return decoded.images


def read_labelled(source: str | Sequence[str], contract: InputContract, path_col: str, label_col: str,
                  split_col: str, target_cols: Sequence[str] = ()
                  ) -> tuple[list[str], np.ndarray, list[str], list[str], dict[str, list[str]] | None]:
    """A class-folder tree or a manifest (every split) → ids (paths), decoded images, labels, locations and, for
    regression and multi-label runs (``target_cols``), the raw target texts by column."""
    src = source if isinstance(source, str) else (source[0] if len(source) == 1 else None)
    if src is None:
        raise DataError("give one image folder or manifest to evaluate")
    p = Path(src)
    if target_cols:
        if not p.is_file():
            raise DataError(f"{p}: a {contract.target_type} model is evaluated on a CSV manifest with its target "
                            f"columns ({', '.join(target_cols)}), not an image folder")
        recs = read_manifest(p, path_col, label_col, split_col, target_cols=tuple(target_cols))
        images = decode_for_model(recs.paths, contract)
        return [str(x) for x in recs.paths], images, list(recs.labels), list(recs.locations), recs.targets
    recs = read_manifest(p, path_col, label_col, split_col) if p.is_file() else read_folder(p)
    lookup = set(contract.class_names)
    unknown = next((i for i, lab in enumerate(recs.labels) if lab not in lookup), None)
    if unknown is not None:
        raise DataError(f"{recs.locations[unknown]}: label {recs.labels[unknown]!r} is unknown to the model "
                        f"(classes: {', '.join(contract.class_names)}); fix the label")
    images = decode_for_model(recs.paths, contract)
    return [str(x) for x in recs.paths], images, list(recs.labels), list(recs.locations), None


def _upload_suffix(name: str, head: bytes) -> str:
    """Suffix for the temporary copy: DICOM by its preamble or name (the decoders pick pydicom by suffix), else the
    upload's image suffix; Pillow detects the format from the content either way."""
    suffix = Path(name).suffix.lower()
    if head[128:132] == b"DICM" or suffix in DICOM_SUFFIXES:
        return ".dcm"
    return suffix if suffix in IMAGE_SUFFIXES else ".img"


def _hide_path(reason: str, path: Path) -> str:
    """Drop the server's temporary file name from a decoder's reason (the client knows the upload name)."""
    text = reason.replace(repr(str(path)), "").replace(str(path), "")
    return " ".join(text.replace(" )", ")").split())


def decode_uploads(names: Sequence[str], blobs: Sequence[bytes], contract: InputContract, limit: int | None = None
                   ) -> tuple[np.ndarray, dict[int, str]]:
    """Uploaded image bytes → uint8 ``(N, C, S, S)`` as ``decode_for_model`` decodes files, and the reason for each
    undecodable upload by index (reasons never show the temporary paths)."""
    with tempfile.TemporaryDirectory(prefix="biolens-upload-") as tmp:
        paths = []
        for i, (name, blob) in enumerate(zip(names, blobs, strict=True)):
            p = Path(tmp) / f"{i:05d}{_upload_suffix(name, blob[:132])}"  # never the upload's own name as a path
            p.write_bytes(blob)
            paths.append(p)
        decoded = decode_all(paths, contract.resize_to or contract.image_size, _window(contract), cache_dir=None,
                             max_pixels=max_pixels(contract, limit))
        images = np.array(decoded.images)
        bad = {i: _hide_path(r, paths[i]) for i, r in decoded.bad.items()}
    return images, bad


def chunks(paths: Sequence[Path], contract: InputContract, chunk_size: int) -> Iterator[tuple[list[Path], np.ndarray]]:
    """Decode in chunks so memory stays bounded for large folders."""
    for start in range(0, len(paths), chunk_size):
        part = list(paths[start:start + chunk_size])
        yield part, decode_for_model(part, contract)


# ---- in-memory images -------------------------------------------------------------------------------------------------


def is_in_memory(inputs: object) -> bool:
    """True for a numpy array, PIL image or torch tensor, or a list/tuple of them."""
    kinds = (np.ndarray, Image.Image, torch.Tensor)
    if isinstance(inputs, kinds):
        return True
    return isinstance(inputs, (list, tuple)) and bool(inputs) and all(isinstance(i, kinds) for i in inputs)


def _as_hwc(item: object, where: str) -> np.ndarray:
    """One in-memory image → ``(H, W)`` or ``(H, W, 3)`` uint8, as a decoded file would be before resizing."""
    if isinstance(item, Image.Image):
        if item.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
            return to_uint8(np.asarray(item))
        return np.asarray(item.convert("L" if item.mode in GRAY_MODES else "RGB"))
    chw = isinstance(item, torch.Tensor)
    a = item.detach().cpu().numpy() if chw else np.asarray(item)
    if a.ndim == 3:
        first, last = a.shape[0] in (1, 3), a.shape[-1] in (1, 3, 4)
        if (chw and first) or (first and not last):
            a = a.transpose(1, 2, 0)  # (C, H, W) → (H, W, C)
        if a.shape[-1] == 4:
            a = a[..., :3]  # RGBA: drop alpha
        if a.shape[-1] == 1:
            a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] != 3) or min(a.shape[:2]) < 1:
        raise DataError(f"{where}: image shape {tuple(item.shape)} is not (H, W), (H, W, C) or (C, H, W) with C = 1 or 3")
    if a.dtype == np.bool_ or not (np.issubdtype(a.dtype, np.number)):
        raise DataError(f"{where}: image dtype {a.dtype} is not numeric")
    if not np.isfinite(a).all():
        raise DataError(f"{where}: image has NaN or infinite pixels")
    if a.dtype != np.uint8:
        if np.issubdtype(a.dtype, np.floating) and a.min() >= 0 and a.max() <= 1:
            a = np.round(a * 255).astype(np.uint8)  # float images in [0, 1]
        else:
            a = to_uint8(a)  # other ranges: min-max, like 16-bit files
    return a


def from_memory(inputs: object, contract: InputContract) -> tuple[list[str], np.ndarray]:
    """In-memory images → ids ``image1…`` and uint8 ``(N, C, S, S)`` resized to the contract's ``resize_to``,
    exactly as :func:`biolens.data.images.decode.decode_image` treats files."""
    items = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    bare = not isinstance(inputs, (list, tuple))
    if len(items) == 1 and isinstance(items[0], (np.ndarray, torch.Tensor)) and (
            items[0].ndim == 4 or (bare and items[0].ndim == 3 and items[0].shape[0] not in (1, 3)
                                   and items[0].shape[-1] not in (1, 3, 4))):
        items = list(items[0])  # a batch (N, …); a bare (N, H, W) array is N gray images when N is no channel count
    arrays = [_as_hwc(item, f"image {i + 1}") for i, item in enumerate(items)]
    size = contract.resize_to or contract.image_size
    channels = 3 if any(a.ndim == 3 for a in arrays) else 1
    out = np.zeros((len(arrays), channels, size, size), dtype=np.uint8)
    for i, a in enumerate(arrays):
        if a.ndim == 2 and channels == 3:
            a = np.repeat(a[..., None], 3, axis=-1)
        im = Image.fromarray(a)
        if im.size != (size, size):
            im = im.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=None)
        r = np.asarray(im)
        out[i] = r[None] if r.ndim == 2 else r.transpose(2, 0, 1)
    return [f"image{i + 1}" for i in range(len(arrays))], out
