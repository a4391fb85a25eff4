"""Seeds, devices and run-folder creation."""

from __future__ import annotations

import logging
import os
import random
from pathlib import Path

import numpy as np
import torch

from biolens.errors import ConfigError

log = logging.getLogger(__name__)


def seed_everything(seed: int, deterministic: bool = False) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` → cuda, then mps, then cpu; an explicit device must exist."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} requested but CUDA is not available; use --device cpu or auto")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device {name!r} requested but MPS is not available; use --device cpu or auto")
    return dev


def make_run_dir(out: str | Path, overwrite: bool = False) -> Path:
    """Create the run folder; refuse to mix a new run into a non-empty folder unless ``overwrite``."""
    p = Path(out)
    if p.exists() and not p.is_dir():
        raise ConfigError(f"--out {p} is a file; give a folder path")
    if p.is_dir() and any(p.iterdir()):
        if not overwrite:
            raise ConfigError(f"--out {p} already exists and is not empty; choose another name or pass --overwrite")
        import shutil

        shutil.rmtree(p)
    p.mkdir(parents=True, exist_ok=True)
    return p
