"""Inference latency of a run: eager PyTorch, TorchScript, ONNX Runtime and int8 ONNX Runtime, per batch size.

Each backend is built in memory from the run's model (nothing is written or loaded from disk), warmed up, then timed
``repeats`` times per batch size with ``time.perf_counter`` (CUDA calls synchronize first). Reported: p50 and p95
latency per batch and throughput = items / mean latency. Inputs are real rows of the run's test split tiled to the
batch size (random contract-valid inputs when the run's data cannot be read).
"""

from __future__ import annotations

import logging
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
import torch

from biolens.deploy import formats as ex
from biolens.deploy.export import sample_batch
from biolens.errors import ConfigError
from biolens.tasks import Predictor

log = logging.getLogger(__name__)

BACKENDS = ("eager", "torchscript", "onnxruntime", "onnxruntime-int8")
DEFAULT_BATCH_SIZES = (1, 8, 64)


@dataclass
class LatencyRow:
    backend: str
    device: str
    batch_size: int
    p50_ms: float
    p95_ms: float
    throughput: float  # items per second
    repeats: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def tile(batch: dict[str, torch.Tensor], n: int) -> dict[str, torch.Tensor]:
    """Repeat the rows of a batch to exactly ``n`` rows."""
    rows = len(batch["x"])
    idx = torch.arange(n) % rows
    return {k: v[idx] for k, v in batch.items()}


def time_calls(fn: Callable[[], Any], repeats: int, warmup: int, sync: Callable[[], None] | None = None
               ) -> np.ndarray:
    """Seconds per call of ``fn`` over ``repeats`` timed calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    if sync:
        sync()
    out = np.empty(repeats)
    for i in range(repeats):
        t0 = time.perf_counter()
        fn()
        if sync:
            sync()
        out[i] = time.perf_counter() - t0
    return out


def summarize(backend: str, device: str, batch_size: int, seconds: np.ndarray) -> LatencyRow:
    return LatencyRow(backend, device, batch_size, float(np.percentile(seconds, 50) * 1e3),
                      float(np.percentile(seconds, 95) * 1e3), float(batch_size / seconds.mean()), len(seconds))


def _devices(requested: Sequence[str] | None) -> list[str]:
    if requested:
        bad = [d for d in requested if d not in ("cpu", "cuda")]
        if bad:
            raise ConfigError(f"unknown device {bad[0]!r}; expected cpu or cuda")
        if "cuda" in requested and not torch.cuda.is_available():
            raise ConfigError("--device cuda: no CUDA device is available; use cpu")
        return list(requested)
    return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]


def bench_model(model: torch.nn.Module, batch: dict[str, torch.Tensor], *, batch_sizes: Sequence[int] = DEFAULT_BATCH_SIZES,
                repeats: int = 30, warmup: int = 3, backends: Sequence[str] = BACKENDS,
                devices: Sequence[str] | None = None, progress: Callable[[str], None] | None = None,
                threads: int | None = None) -> list[LatencyRow]:
    """Latency rows for every backend × device × batch size. ``batch`` holds example inputs ``{"x", …aux}``.

    ``threads`` sets the CPU threads of PyTorch and onnxruntime for the run (default: each library's own choice).
    """
    if threads is not None and threads < 1:
        raise ConfigError(f"--threads must be >= 1; got {threads}")
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(int(threads))
    try:
        return _bench(model, batch, batch_sizes, repeats, warmup, backends, devices, progress, threads)
    finally:
        torch.set_num_threads(before)


def _bench(model, batch, batch_sizes, repeats, warmup, backends, devices, progress, threads):  # noqa: ANN001, ANN202
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown:
        raise ConfigError(f"unknown backend {unknown[0]!r}; expected one of: {', '.join(BACKENDS)}")
    if not batch_sizes or any(int(b) < 1 for b in batch_sizes):
        raise ConfigError(f"batch sizes must be positive integers; got {list(batch_sizes)}")
    if repeats < 1 or warmup < 0:
        raise ConfigError(f"--repeats must be >= 1 (got {repeats}) and warmup >= 0 (got {warmup})")
    wrapper, _ = ex.prepare_model(model)
    example = ex.model_args(wrapper, batch)
    onnx_fp32 = ex.to_onnx(wrapper, example) if any(b.startswith("onnx") for b in backends) else None
    onnx_int8 = ex.quantize_int8(onnx_fp32) if "onnxruntime-int8" in backends else None
    rows: list[LatencyRow] = []
    for device in _devices(devices):
        dev = torch.device(device)
        sync = torch.cuda.synchronize if dev.type == "cuda" else None
        runners: dict[str, Callable[[tuple[torch.Tensor, ...]], Any]] = {}
        if "eager" in backends:
            m = wrapper.to(dev)
            runners["eager"] = lambda a, m=m: m(*a)
        if "torchscript" in backends:
            ts = ex.to_torchscript(wrapper.to(dev), tuple(t.to(dev) for t in example))
            runners["torchscript"] = lambda a, ts=ts: ts(*a)
        for name, data in (("onnxruntime", onnx_fp32), ("onnxruntime-int8", onnx_int8)):
            if name in backends:
                if dev.type == "cuda" and name.endswith("int8"):
                    continue  # dynamic int8 kernels are CPU-only in onnxruntime
                sess = ex.onnx_session(data, device, threads)
                if dev.type == "cuda" and "CUDAExecutionProvider" not in sess.get_providers():
                    log.warning("onnxruntime has no CUDA provider here; skipping %s on cuda", name)
                    continue
                runners[name] = lambda a, s=sess: ex.run_onnx(s, tuple(t.cpu() for t in a))
        for name in [b for b in BACKENDS if b in runners]:
            for bs in batch_sizes:
                args = ex.model_args(wrapper, tile(batch, int(bs)))
                args = tuple(t.to(dev) for t in args) if not name.startswith("onnx") else args
                if progress:
                    progress(f"{name} {device} batch {bs}")
                with torch.inference_mode():
                    seconds = time_calls(lambda: runners[name](args), repeats, warmup, sync)
                rows.append(summarize(name, device, int(bs), seconds))
        wrapper.cpu()
    return rows


def bench_run(run: str | Path, *, batch_sizes: Sequence[int] = DEFAULT_BATCH_SIZES, repeats: int = 30,
              warmup: int = 3, backends: Sequence[str] = BACKENDS, devices: Sequence[str] | None = None,
              progress: Callable[[str], None] | None = None, threads: int | None = None) -> dict[str, Any]:
    """Benchmark a run folder's model; a JSON-able dict with the rows and where they were measured."""
    predictor = Predictor.load(run, device="cpu")
    batch, source = sample_batch(predictor, 8)
    rows = bench_model(predictor.model, batch, batch_sizes=batch_sizes, repeats=repeats, warmup=warmup,
                       backends=backends, devices=devices, progress=progress, threads=threads)
    return {"run": str(predictor.run_dir), "model": predictor.config.model.name, "inputs": source,
            "input_shape": list(batch["x"].shape[1:]), "repeats": repeats, "warmup": warmup,
            "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                        "cpu_count": os.cpu_count(), "torch_threads": threads or torch.get_num_threads(),
                        "torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
                        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None},
            "rows": [r.to_dict() for r in rows]}
