"""Decode once: every image is decoded and resized a single time into a memory-mapped uint8 array on disk.

The cache entry is keyed by every file's path, size and modification time plus the decode settings (size, DICOM
window), so an edited or replaced file gives a new entry and an unchanged data set is never decoded again, neither
in later epochs nor in later runs. Validating a file (a truncated JPEG only fails when its pixels are decoded) is
the same work as decoding it, so the upfront scan *is* the decode: it fills the cache and collects every unreadable
file with its reason.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from biolens.data.cachedir import cache_root, file_stamp, writable_cache
from biolens.data.images.decode import DEFAULT_MAX_PIXELS, DecodeError, Window, decode_image, probe_channels

log = logging.getLogger(__name__)

CACHE_VERSION = 1
_lock = threading.Lock()
_decodes = 0


def decode_count() -> int:
    """How many image files this process has decoded (tests use it to prove the cache is reused)."""
    return _decodes


def _decode(path: Path, size: int, channels: int, window: Window, max_pixels: int) -> np.ndarray:
    global _decodes
    with _lock:
        _decodes += 1
    return decode_image(path, size, channels, window, max_pixels)


def default_cache_dir() -> Path:
    return cache_root("images")


@dataclass
class Decoded:
    """``images`` ``(N, C, S, S)`` uint8 (memory-mapped when cached); ``bad`` maps record index → reason."""

    images: np.ndarray
    bad: dict[int, str]
    cache_file: Path | None
    from_cache: bool


def cache_key(paths: Sequence[Path], size: int, window: Window, max_pixels: int = DEFAULT_MAX_PIXELS) -> str:
    limit = "" if max_pixels == DEFAULT_MAX_PIXELS else f"|px{max_pixels}"  # which files are refused depends on it
    h = hashlib.sha256(f"v{CACHE_VERSION}|{size}|{window.center}|{window.width}{limit}".encode())
    for p in paths:
        h.update(file_stamp(p).encode())
    return h.hexdigest()[:32]


def _workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def _probe_all(paths: Sequence[Path], pool: ThreadPoolExecutor, max_pixels: int) -> tuple[int, dict[int, str]]:
    def probe(i: int) -> tuple[int, int | None, str | None]:
        try:
            return i, probe_channels(paths[i], max_pixels), None
        except DecodeError as e:
            return i, None, str(e)
        except OSError as e:
            return i, None, f"cannot open ({e.strerror or e})"

    bad, channels = {}, 1
    for i, c, reason in pool.map(probe, range(len(paths))):
        if reason is not None:
            bad[i] = reason
        elif c == 3:
            channels = 3
    return channels, bad


def decode_all(paths: Sequence[Path], size: int, window: Window = Window(), cache_dir: Path | None = None,
               max_pixels: int = DEFAULT_MAX_PIXELS) -> Decoded:
    """Decode every file (or reuse the cache entry); unreadable files are collected in ``bad``, never replaced.

    Args:
        paths: image files.
        size: square side length of the stored arrays.
        window: DICOM window.
        cache_dir: where entries live; ``None`` decodes into memory without a cache.
    """
    paths = [Path(p) for p in paths]
    meta_file = data_file = None
    if cache_dir is not None:
        cache_dir = Path(cache_dir)
        key = cache_key(paths, size, window, max_pixels)
        meta_file, data_file = cache_dir / f"{key}.json", cache_dir / f"{key}.u8"
        if meta_file.is_file() and data_file.is_file():
            meta = json.loads(meta_file.read_text())
            images = np.memmap(data_file, dtype=np.uint8, mode="r", shape=tuple(meta["shape"]))
            log.info("image cache hit: %d images from %s", len(paths), data_file)
            return Decoded(images, {int(k): v for k, v in meta["bad"].items()}, data_file, True)
    with ThreadPoolExecutor(_workers()) as pool:
        channels, bad = _probe_all(paths, pool, max_pixels)
        shape = (len(paths), channels, size, size)
        if data_file is not None:
            writable_cache(cache_dir, "data.image.cache_dir")
            tmp = data_file.with_name(f".{data_file.name}.{os.getpid()}.tmp")
            images = np.memmap(tmp, dtype=np.uint8, mode="w+", shape=shape)
        else:
            images = np.zeros(shape, dtype=np.uint8)

        def work(i: int) -> tuple[int, str | None]:
            try:
                images[i] = _decode(paths[i], size, channels, window, max_pixels)
                return i, None
            except DecodeError as e:
                return i, str(e)

        todo = [i for i in range(len(paths)) if i not in bad]
        log.info("decoding %d images to %dx%d (%d channel%s)%s", len(todo), size, size, channels,
                 "s" if channels > 1 else "", f" into cache {cache_dir}" if cache_dir else "")
        for i, reason in pool.map(work, todo):
            if reason is not None:
                bad[i] = reason
    if data_file is not None:
        images.flush()
        del images
        os.replace(tmp, data_file)
        meta_tmp = meta_file.with_name(f".{meta_file.name}.{os.getpid()}.tmp")
        meta_tmp.write_text(json.dumps({"shape": list(shape), "bad": {str(k): v for k, v in sorted(bad.items())},
                                        "version": CACHE_VERSION}))
        os.replace(meta_tmp, meta_file)  # the entry counts as complete only once its meta file exists
        images = np.memmap(data_file, dtype=np.uint8, mode="r", shape=shape)
    return Decoded(images, bad, data_file, False)
