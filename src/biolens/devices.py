"""Seeds, devices, precision and memory-format defaults, and how much of a GPU a split may take."""

from __future__ import annotations

import logging
import os
import random
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


def resolve_precision(precision: str, device_type: str, preferred: str = "fp32") -> str:
    """``auto`` → the model's ``preferred`` CUDA precision on CUDA (``cuda_precision``: bf16 for the convolutional
    image models, whose speed is bound by matmuls on tensor cores; fp32 for the recurrent sequence models, bound by
    the LSTM), else ``fp32``; an explicit choice is kept."""
    if precision != "auto":
        return precision
    return preferred if device_type == "cuda" else "fp32"


def resolve_channels_last(setting: bool | str, device_type: str, supported: bool) -> bool:
    """``auto`` → channels_last memory format on CUDA (cuDNN's fast NHWC kernels) for models that take 4-D image
    batches (``supported``), else off; ``true`` forces it where supported."""
    if isinstance(setting, bool):
        return setting and supported
    if setting != "auto":
        raise ConfigError(f"data.image.channels_last must be auto, true or false; got {setting!r}")
    return device_type == "cuda" and supported


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


DEVICE_FRACTION = 0.5  # a split is kept whole on a GPU when it needs at most this share of the free memory


def free_device_memory(device: torch.device | str) -> int | None:
    """Free bytes on a CUDA device (``torch.cuda.mem_get_info``); None for other devices."""
    device = torch.device(device)
    if device.type != "cuda":
        return None
    free, _total = torch.cuda.mem_get_info(device)
    return int(free)


def fits_on_device(nbytes: int, free: int, fraction: float = DEVICE_FRACTION) -> bool:
    """Whether ``nbytes`` may live whole on a GPU with ``free`` bytes free: at most ``fraction`` of them (room is left
    for the model, activations and the other splits). One rule for sequence and image splits."""
    return nbytes <= fraction * free
