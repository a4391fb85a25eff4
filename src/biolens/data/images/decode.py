"""Decoding one image file to a resized uint8 array: JPEG/PNG/BMP/TIFF/GIF/WebP through Pillow, DICOM through
pydicom.

Every decoder returns ``(C, S, S)`` uint8 with ``C`` = 1 (grayscale) or 3 (RGB) and raises :class:`DecodeError`
with a short reason for a file it cannot read. Nothing here substitutes a dummy image.

- The pixel count is checked from the header before any pixel is decoded (``max_pixels``, default
  ``DEFAULT_MAX_PIXELS``; Pillow's decompression-bomb guard is a second line), so a 100,000 × 100,000 PNG header is a
  one-line reason, not gigabytes of memory.
- EXIF orientation is applied (``ImageOps.exif_transpose``): a phone photo of a film is read the way it is shown.
- Animated GIF/WebP: the first frame.
"""

from __future__ import annotations

import logging
from collections.abc import MutableSequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

log = logging.getLogger(__name__)

PIL_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".gif", ".webp")
DEFAULT_MAX_PIXELS = 40_000_000  # width × height (× frames) a file may declare: about 120 MB of RGB, decoded
DICOM_SUFFIXES = (".dcm", ".dicom")
IMAGE_SUFFIXES = PIL_SUFFIXES + DICOM_SUFFIXES
GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}


class DecodeError(Exception):
    """A file that cannot be turned into an image; the message is the reason (no path)."""


@dataclass(frozen=True)
class Window:
    """DICOM display window; ``None`` fields take the file's own window, else the pixel min-max."""

    center: float | None = None
    width: float | None = None


def is_dicom(path: str | Path) -> bool:
    return Path(path).suffix.lower() in DICOM_SUFFIXES


def _check_pixels(width: int, height: int, frames: int, max_pixels: int) -> None:
    n = int(width) * int(height) * max(int(frames), 1)
    if n > max_pixels:
        raise DecodeError(f"{width} × {height}{f' × {frames} frames' if frames > 1 else ''} = {n:,} pixels, over the "
                          f"limit of {max_pixels:,} (data.image.max_pixels); downscale the image or raise the limit")


def probe_channels(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> int:
    """1 or 3 from the header only (no pixel decode); raises DecodeError for unreadable headers and for images
    that declare more than ``max_pixels`` pixels."""
    p = Path(path)
    if p.stat().st_size == 0:
        raise DecodeError("empty file (0 bytes)")
    if is_dicom(p):
        ds = _read_dicom(p, stop_before_pixels=True)
        _check_pixels(int(getattr(ds, "Columns", 0) or 0), int(getattr(ds, "Rows", 0) or 0),
                      int(getattr(ds, "NumberOfFrames", 1) or 1), max_pixels)
        return 3 if int(getattr(ds, "SamplesPerPixel", 1)) == 3 else 1
    try:
        with Image.open(p) as im:
            _check_pixels(im.size[0], im.size[1], 1, max_pixels)
            return 1 if im.mode in GRAY_MODES or (im.mode == "P" and _palette_is_gray(im)) else 3
    except Image.DecompressionBombError as e:
        raise DecodeError(f"decompression bomb refused ({_short(e)})") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise DecodeError(f"not a readable image ({_short(e)})") from None


def _palette_is_gray(im: Image.Image) -> bool:
    pal = np.asarray(im.getpalette() or [], dtype=np.int32).reshape(-1, 3)
    return bool(len(pal)) and bool((pal == pal[:, :1]).all())


def _short(e: BaseException) -> str:
    text = str(e).splitlines()[0] if str(e) else type(e).__name__
    return text[:120]


def to_uint8(pixels: np.ndarray) -> np.ndarray:
    """Any-depth pixels → uint8 by min-max scaling (8-bit data passes through unchanged)."""
    if pixels.dtype == np.uint8:
        return pixels
    a = pixels.astype(np.float64)
    lo, hi = float(a.min()), float(a.max())
    if hi <= lo:
        return np.zeros(a.shape, dtype=np.uint8)
    return np.round((a - lo) / (hi - lo) * 255).astype(np.uint8)


def _read_dicom(path: Path, stop_before_pixels: bool = False):  # noqa: ANN202
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        return pydicom.dcmread(str(path), stop_before_pixels=stop_before_pixels)
    except (InvalidDicomError, OSError, EOFError, ValueError, AttributeError, KeyError) as e:
        raise DecodeError(f"not a readable DICOM file ({_short(e)})") from None


def dicom_pixels(path: str | Path, window: Window = Window()) -> np.ndarray:
    """A DICOM file → ``(H, W)`` or ``(H, W, 3)`` uint8.

    Applies rescale slope/intercept (Modality LUT), then the window (explicit, else the file's first
    WindowCenter/WindowWidth, else min-max), and inverts MONOCHROME1 so that bright always means dense.
    """
    ds = _read_dicom(Path(path))
    if "PixelData" not in ds:
        raise DecodeError("DICOM file has no pixel data")
    try:
        arr = ds.pixel_array
    except Exception as e:  # noqa: BLE001  pydicom raises many types for unsupported transfer syntaxes
        raise DecodeError(f"cannot decode DICOM pixel data ({_short(e)})") from None
    if arr.ndim == 3 and int(getattr(ds, "SamplesPerPixel", 1)) == 1:
        arr = arr[0]  # multi-frame: first frame
    if int(getattr(ds, "SamplesPerPixel", 1)) == 3:
        return to_uint8(arr)
    hu = arr.astype(np.float64) * float(getattr(ds, "RescaleSlope", 1) or 1) + float(getattr(ds, "RescaleIntercept", 0) or 0)
    center, width = window.center, window.width
    if center is None or width is None:
        fc, fw = getattr(ds, "WindowCenter", None), getattr(ds, "WindowWidth", None)
        if fc is not None and fw is not None:  # several windows (MultiValue): the first is the default
            center = _first(fc) if center is None else center
            width = _first(fw) if width is None else width
    if center is not None and width is not None and width > 0:
        lo, hi = center - width / 2, center + width / 2
        out = np.clip((hu - lo) / (hi - lo), 0, 1) * 255
        img = np.round(out).astype(np.uint8)
    else:
        img = to_uint8(hu)
    if str(getattr(ds, "PhotometricInterpretation", "")).upper() == "MONOCHROME1":
        img = 255 - img
    return img


def _first(value: object) -> float:
    return float(value[0]) if isinstance(value, MutableSequence | list | tuple) else float(value)


def _pil_pixels(path: Path, channels: int, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    try:
        with Image.open(path) as opened:
            _check_pixels(opened.size[0], opened.size[1], 1, max_pixels)  # from the header, before decoding
            opened.load()  # a truncated JPEG/PNG fails here, not later in training
            im = ImageOps.exif_transpose(opened) or opened  # EXIF orientation: as the image is shown
            if channels == 3:
                return np.asarray(im.convert("RGB"))
            if im.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
                return to_uint8(np.asarray(im))  # 16-bit / float grayscale: min-max to 8 bit
            return np.asarray(im.convert("L"))
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise DecodeError(f"cannot decode image ({_short(e)})") from None


def decode_image(path: str | Path, size: int, channels: int, window: Window = Window(),
                 max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode, convert to ``channels`` and resize to ``(size, size)`` → ``(C, size, size)`` uint8.

    Raises:
        DecodeError: the file is empty, not an image, truncated, or a DICOM without pixel data.
    """
    p = Path(path)
    try:
        if p.stat().st_size == 0:
            raise DecodeError("empty file (0 bytes)")
    except OSError as e:
        raise DecodeError(f"cannot open ({_short(e)})") from None
    if is_dicom(p):
        probe_channels(p, max_pixels)  # the header's size, before the pixels are decoded
        arr = dicom_pixels(p, window)
    else:
        arr = _pil_pixels(p, channels, max_pixels)
    if arr.ndim == 2 and channels == 3:
        arr = np.repeat(arr[..., None], 3, axis=-1)
    elif arr.ndim == 3 and channels == 1:
        arr = np.asarray(Image.fromarray(arr).convert("L"))
    im = Image.fromarray(arr)
    if im.size != (size, size):
        im = im.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=None)
    out = np.asarray(im)
    return out[None] if out.ndim == 2 else out.transpose(2, 0, 1)  # (S, S[, 3]) → (C, S, S)
