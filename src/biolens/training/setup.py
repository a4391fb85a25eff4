"""Seeds, devices and run-folder creation."""

from __future__ import annotations

import logging
import os
import random
from pathlib import Path
from typing import Any

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


def resolve_precision(precision: str, device_type: str, task: str | None) -> str:
    """``auto`` → ``bf16`` autocast for image models on CUDA, else ``fp32``; an explicit choice is kept.

    Convolutional image models run several times faster under bf16 on tensor cores with no loss scaling needed;
    the recurrent sequence models keep fp32 (their speed is bound by the LSTM, not by matmul precision).
    """
    if precision != "auto":
        return precision
    return "bf16" if device_type == "cuda" and task == "image" else "fp32"


def resolve_channels_last(setting: bool | str, device_type: str, task: str | None) -> bool:
    """``auto`` → channels_last memory format for image models on CUDA (cuDNN's fast NHWC kernels), else off."""
    if isinstance(setting, bool):
        return setting and task == "image"
    if setting != "auto":
        raise ConfigError(f"data.image.channels_last must be auto, true or false; got {setting!r}")
    return device_type == "cuda" and task == "image"


def loader_kwargs(device: torch.device | str = "cpu", workers: int | None = None, prefetch: int = 4
                  ) -> dict[str, Any]:
    """DataLoader settings for where a per-item loader is still used: workers sized to the cores (one left for
    the main process), persistent workers, pinned memory when the batches go to CUDA, and prefetching."""
    if workers is None:
        workers = max(0, min(16, (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                                  else os.cpu_count() or 1) - 1))
    kw: dict[str, Any] = {"num_workers": workers, "pin_memory": torch.device(device).type == "cuda"}
    if workers > 0:
        kw.update(persistent_workers=True, prefetch_factor=prefetch)
    return kw
