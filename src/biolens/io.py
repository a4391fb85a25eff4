"""File helpers every layer uses: atomic writes, checksums and data fingerprints.

Outputs are written through a temporary file beside the target and renamed into place, so a reader (or a run
killed half-way) never sees a partial file; the temporary file gets the permissions a plain ``open`` would give.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

_UMASK = os.umask(0)
os.umask(_UMASK)


def file_mode() -> int:
    """The mode a plain ``open`` gives a new file under the process's umask (e.g. 0644)."""
    return 0o666 & ~_UMASK


def temp_beside(path: Path) -> tuple[int, str]:
    """A temp file next to ``path`` (same file system, so ``os.replace`` is atomic), with the permissions a plain
    ``open`` would give (``mkstemp`` alone makes it private: 0600)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.fchmod(fd, file_mode())
    return fd, tmp


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None]) -> None:
    """Write through a temp file in the same folder, fsync, then rename: readers never see a partial file."""
    path = Path(path)
    fd, tmp = temp_beside(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """``atomic_write`` of a UTF-8 string."""
    data = text.encode()
    atomic_write(path, lambda fh: fh.write(data))


def write_json(path: str | Path, data: Any) -> None:
    """Indented JSON with a trailing newline, written atomically."""
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fingerprint_arrays(*arrays: np.ndarray) -> str:
    """SHA-256 over the bytes of encoded data arrays: equal data ⇔ equal fingerprint."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(a.tobytes())
    return h.hexdigest()
