"""Where decode-once caches live and how their keys see an input file (shared by the image cache and the sequence
store)."""

from __future__ import annotations

import os
from pathlib import Path

from biolens.errors import ConfigError


def cache_root(kind: str) -> Path:
    """``$BIOLENS_CACHE/<kind>``, else ``~/.cache/biolens/<kind>`` (``kind``: images, sequences)."""
    env = os.environ.get("BIOLENS_CACHE")
    return (Path(env) if env else Path.home() / ".cache" / "biolens") / kind


def file_stamp(path: Path) -> str:
    """The part of a cache key that changes when ``path`` does: resolved path, size and mtime (or "missing")."""
    try:
        st = path.stat()
        return f"|{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    except OSError:
        return f"|{path}|missing"


def writable_cache(folder: Path, field: str) -> Path:
    """Create a cache folder (parents too) and check it is writable; ConfigError naming ``field`` otherwise."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"{field}={folder}: cannot create the cache folder ({e.strerror}); set {field} to a "
                          "writable folder") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"{field}={folder}: the cache folder is not writable; set {field} to a writable folder")
    return folder
