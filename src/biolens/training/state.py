"""Full training state for exact resume: RNG streams, and checkpoint files written atomically.

Checkpoints hold only tensors and plain values, so ``torch.load(path, weights_only=True)`` reads them: nothing
is unpickled.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from biolens.io import atomic_write
from biolens.errors import BundleError


def capture_rng() -> dict[str, Any]:
    """Python, numpy, torch CPU and every CUDA device's generator state."""
    np_state = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": {"name": np_state[0], "keys": torch.from_numpy(np_state[1].astype(np.int64)),
                  "pos": int(np_state[2]), "has_gauss": int(np_state[3]), "gauss": float(np_state[4])},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore_rng(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    torch.set_rng_state(state["torch"].cpu())
    if state.get("cuda") and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def save_checkpoint(state: dict[str, Any], path: str | Path) -> None:
    """Temp file + fsync + rename: a kill at any moment leaves the previous file whole."""
    atomic_write(path, lambda fh: torch.save(state, fh))


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise BundleError(f"checkpoint not found: {path}; resume from a run that finished at least one epoch")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is the same problem for the user
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise BundleError(f"{path}: cannot read checkpoint ({first}); use checkpoints/best.pt or retrain") from None
