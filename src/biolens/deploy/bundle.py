"""Run folders: safetensors weights, resolved config, input contract and a manifest. Nothing is unpickled."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import subprocess
import tempfile
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import yaml
from safetensors import SafetensorError
from safetensors.torch import load_model, save_model
from torch import nn

from biolens.errors import BundleError

log = logging.getLogger(__name__)

REQUIRED_FILES = ("config.yaml", "contract.json", "model.safetensors")


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None]) -> None:
    """Write through a temp file in the same folder, fsync, then rename: readers never see a partial file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_weights(model: nn.Module, path: str | Path) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        save_model(model, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_weights(model: nn.Module, path: str | Path) -> nn.Module:
    try:
        missing, unexpected = load_model(model, str(path), strict=False)
    except (SafetensorError, OSError, RuntimeError) as e:
        raise BundleError(f"{path}: cannot load weights ({str(e).splitlines()[0]}); the file is damaged or from another model") from None
    if missing or unexpected:
        raise BundleError(f"{path}: weights do not match the model (missing {sorted(missing)[:3]}, unexpected "
                          f"{sorted(unexpected)[:3]}); config.yaml and model.safetensors come from different runs")
    return model


def check_run_dir(run: str | Path) -> Path:
    p = Path(run)
    if not p.is_dir():
        raise BundleError(f"run folder not found: {p}; give the --out folder of a finished `biolens train`")
    missing = [f for f in REQUIRED_FILES if not (p / f).is_file()]
    if missing:
        raise BundleError(f"{p} is not a complete run folder (missing {', '.join(missing)}); train again or copy the whole folder")
    return p


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise BundleError(f"{path}: invalid YAML ({e}); restore it from the original run") from None
    if not isinstance(data, dict):
        raise BundleError(f"{path}: expected a mapping; restore it from the original run")
    return data


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


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                             text=True, timeout=5)
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def environment() -> dict[str, Any]:
    import torch

    import biolens

    return {
        "biolens": biolens.__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "git_commit": _git_commit(),
    }


def refresh_manifest(run_dir: str | Path) -> dict[str, Any]:
    """Rewrite ``manifest.json`` after files in the run changed, keeping its extra fields (e.g. the fingerprint)."""
    run_dir = Path(run_dir)
    old = json.loads((run_dir / "manifest.json").read_text()) if (run_dir / "manifest.json").is_file() else {}
    base = set(environment()) | {"created", "files"}
    return write_manifest(run_dir, **{k: v for k, v in old.items() if k not in base})


def write_manifest(run_dir: str | Path, **extra: Any) -> dict[str, Any]:
    """``manifest.json``: versions, hardware, creation time, extra fields and SHA-256 of every other file."""
    run_dir = Path(run_dir)
    files = {
        str(p.relative_to(run_dir)): sha256_file(p)
        for p in sorted(run_dir.rglob("*"))
        if p.is_file() and p.name != "manifest.json" and not p.name.startswith(".") and p.name != "log.txt"
    }
    manifest = {"created": datetime.now(timezone.utc).isoformat(timespec="seconds"), **environment(), **extra,
                "files": files}
    (run_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest
