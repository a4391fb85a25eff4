"""Shared by the sequence-model benchmarks: train a run quietly and read back what a table needs."""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from pathlib import Path
from typing import Any

import torch


def quiet() -> None:
    logging.getLogger("biolens").setLevel(logging.WARNING)


def machine() -> dict[str, Any]:
    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def fit(out: Path, **kwargs: Any) -> dict[str, Any]:
    """``biolens.train(out=out, overwrite=True, **kwargs)`` → test metrics, epochs, parameters and seconds."""
    from biolens.workflows.train import train

    start = time.perf_counter()
    res = train(out=out, overwrite=True, **kwargs)
    seconds = time.perf_counter() - start
    params = sum(p.numel() for p in res.predictor.model.parameters())
    test = res.metrics["test"]
    return {"run": str(out), "test_accuracy": test["accuracy"], "test_balanced_accuracy": test["balanced_accuracy"],
            "test_roc_auc": test.get("roc_auc"), "test_macro_f1": test.get("macro_f1"), "n_test": test["n"],
            "best_epoch": res.metrics["best_epoch"], "epochs": len(res.history), "params": params,
            "seconds": round(seconds, 1)}


def write(path: str | None, payload: dict[str, Any]) -> None:
    if path:
        Path(path).write_text(json.dumps(payload, indent=2) + "\n")
