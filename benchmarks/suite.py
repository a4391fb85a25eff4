"""Side-by-side training throughput: the guide's recipes vs biolens vs Lightning vs the resident limit.

One process, the same model (same initial weights) and the same data for every row of a workload:

- (a) ``guide``: the guide's recipe. Images: PIL decode of every file in every epoch + torchvision v1 transforms
  (RandomResizedCrop, flip, rotation, ColorJitter, ToTensor, Normalize) in a DataLoader over PNG files, fp32.
  Sequences: the guide 3.3 per-character encoding loop per item in a Dataset/DataLoader, fp32. Both with the
  DataLoader hygiene of ``biolens.devices.loader_kwargs`` (workers sized to the cores, persistent workers,
  pinned memory, prefetch) and the guide's plain training loop.
- (b) ``biolens``: the package's own path: the decode-once cache / encoded store, ``ImageBatches`` /
  ``SequenceBatches`` (resident or pinned, augmented on the device) and ``Trainer`` with its defaults (precision
  ``auto``: bf16 + channels_last for image models on CUDA).
- (c) ``lightning``: ``lightning.Trainer`` over the same model and the same biolens batches, if installed.
- (d) ``resident``: the limit: synthetic batches already on the device, no augmentation, the same Trainer step.

Workloads: ResNet-18 and SimpleCNN at 224 px, the guide's promoter model (``promoter_predictor``) and biolens's
default sequence model (``dilated_resnet``) at length 1,000. Plus the input pipeline alone (no model): the
decode-once cache vs decoding every epoch.

Usage:
    python benchmarks/suite.py --small --out suite_cpu.json       # 2-core CPU: 64 px, few steps, small batches
    python benchmarks/suite.py --device cuda --out suite_gpu.json  # H100/H200: 224 px, batch 128
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import gc
import json
import os
import platform
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_encoding import guide_loop_encode  # noqa: E402
from bench_images import guide_loader, write_pngs  # noqa: E402

from biolens.data.alphabets import DNA  # noqa: E402
from biolens.data.dataset import SequenceBatches, SequenceData  # noqa: E402
from biolens.data.encoding import encode  # noqa: E402
from biolens.data.images.cache import decode_all  # noqa: E402
from biolens.data.images.dataset import ImageBatches, ImageSplit  # noqa: E402
from biolens.data.images.transforms import IMAGENET_MEAN, IMAGENET_STD, PRESETS, BatchAugment  # noqa: E402
from biolens.models import create_model  # noqa: E402
from biolens.data.augment import gc_content  # noqa: E402
from biolens.devices import loader_kwargs, resolve_channels_last  # noqa: E402
from biolens.training.trainer import Trainer  # noqa: E402

IMAGE_MODELS = {"resnet18": "ResNet-18", "simple_cnn": "SimpleCNN"}
SEQUENCE_MODELS = {"promoter_predictor": "guide promoter model", "dilated_resnet": "biolens default"}


@dataclass
class Settings:
    device: torch.device
    image_size: int
    png_side: int
    n_images: int
    image_batch: int
    image_steps: int
    seq_len: int
    seq_batch: int
    seq_steps: int
    warmup: int
    workers: int
    pipeline_epochs: int
    precision: str = "auto"
    compile: bool = False
    cores: int = 1


@dataclass
class Row:
    workload: str
    path: str
    samples_per_s: float | None
    steps: int = 0
    batch: int = 0
    seconds: float = 0.0
    precision: str = ""
    peak_rss_mb: float | None = None
    peak_gpu_mb: float | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


# ---- measurement ----------------------------------------------------------------------------------------------------
def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _reset_peaks(device: torch.device) -> None:
    gc.collect()
    with contextlib.suppress(OSError):  # Linux: reset VmHWM so each row reports its own peak
        Path("/proc/self/clear_refs").write_text("5")
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def _peak_rss_mb() -> float:
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB; the process-wide peak


def measured(device: torch.device, fn: Callable[[], tuple[int, int, float, str]], workload: str, path: str,
             note: str = "") -> Row:
    """Run ``fn`` → (steps, batch, seconds, precision) with fresh memory peaks; a failure becomes a row note."""
    _reset_peaks(device)
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    try:
        steps, batch, seconds, precision = fn()
    except Exception as e:  # noqa: BLE001 - a benchmark row that cannot run is reported, not fatal
        return Row(workload, path, None, note=f"failed: {type(e).__name__}: {str(e).splitlines()[0][:160]}")
    row = Row(workload, path, round(steps * batch / seconds, 1), steps, batch, round(seconds, 3), precision,
              round(_peak_rss_mb(), 1), note=note)
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    if workers > children:
        row.extra["worker_peak_rss_mb"] = round(workers, 1)
    if device.type == "cuda":
        row.peak_gpu_mb = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    return row


def cycle(batches: Any, n: int) -> Iterator[Any]:
    """``n`` batches from a re-iterable source, advancing its epoch (``set_epoch``) at every pass."""
    epoch, done = 0, 0
    while done < n:
        epoch += 1
        if hasattr(batches, "set_epoch"):
            batches.set_epoch(epoch)
        for b in batches:
            yield b
            done += 1
            if done == n:
                return


class Stream:
    """A re-iterable view of ``cycle(batches, n)`` (batches are made, augmented and moved while iterating)."""

    def __init__(self, batches: Any, n: int):
        self.batches, self.n = batches, n

    def __iter__(self) -> Iterator[Any]:
        return cycle(self.batches, self.n)


def timed_trainer(trainer: Trainer, batches: Iterable[dict[str, torch.Tensor]], steps: int, warmup: int,
                  device: torch.device) -> float:
    """Seconds for ``steps`` Trainer steps after ``warmup`` untimed ones (one stream of batches)."""
    it = iter(batches)
    trainer.train_epoch(b for _, b in zip(range(warmup), it))
    sync(device)
    t0 = time.perf_counter()
    trainer.train_epoch(b for _, b in zip(range(steps), it))
    sync(device)
    return time.perf_counter() - t0


def guide_loop(model: nn.Module, loader: Iterable, steps: int, warmup: int, device: torch.device,
               aux: Callable[[torch.Tensor], dict[str, torch.Tensor]] | None = None) -> float:
    """The guide's training loop (5.1): ``.to(device)``, zero_grad, forward, loss, backward, step; fp32."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    crit = nn.CrossEntropyLoss()
    model.train()
    t0 = 0.0
    for i, (x, y) in enumerate(loader):
        if i == warmup:
            sync(device)
            t0 = time.perf_counter()
        if i == warmup + steps:
            break
        x, y = x.to(device), y.to(device)
        opt.zero_grad()
        out = model(x, **(aux(x) if aux else {}))
        loss = crit(out, y)
        loss.backward()
        opt.step()
    sync(device)
    return time.perf_counter() - t0


def make_trainer(model: nn.Module, s: Settings) -> Trainer:
    """biolens's step: AdamW, label-smoothed CE, clipping at 1.0 (the train config defaults), precision auto."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    return Trainer(model, opt, nn.CrossEntropyLoss(label_smoothing=0.1), grad_clip=1.0, precision=s.precision,
                   net=torch.compile(model) if s.compile else None)


def lightning_row(model: nn.Module, batches: Iterable[dict[str, torch.Tensor]], s: Settings, steps: int,
                  precision: str) -> tuple[int, float]:
    """``lightning.Trainer`` over the same model and batches: (steps, seconds after warm-up)."""
    import lightning as L  # noqa: N812

    class Module(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = model
            self.loss = nn.CrossEntropyLoss(label_smoothing=0.1)

        def training_step(self, batch: dict[str, torch.Tensor], _i: int) -> torch.Tensor:
            kw = {k: batch[k] for k in getattr(model, "aux_inputs", ())}
            return self.loss(self.net(batch["x"], **kw), batch["y"])

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.AdamW(self.parameters(), lr=1e-3, weight_decay=0.01)

    class Clock(L.Callback):
        t0 = 0.0

        def on_train_batch_start(self, trainer: Any, *_: Any) -> None:
            if trainer.global_step == s.warmup:
                sync(s.device)
                self.t0 = time.perf_counter()

    clock = Clock()
    prec = {"bf16": "bf16-mixed", "fp16": "16-mixed"}.get(precision, "32-true")
    trainer = L.Trainer(max_steps=s.warmup + steps, accelerator="gpu" if s.device.type == "cuda" else "cpu",
                        devices=1, precision=prec, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, gradient_clip_val=1.0,
                        callbacks=[clock], num_sanity_val_steps=0)
    trainer.fit(Module(), train_dataloaders=Stream(batches, s.warmup + steps))
    sync(s.device)
    return steps, time.perf_counter() - clock.t0


def lightning_available() -> bool:
    try:
        import lightning  # noqa: F401
    except ImportError:
        return False
    return True


# ---- images ---------------------------------------------------------------------------------------------------------
def image_workload(name: str, s: Settings, paths: list[Path], labels: np.ndarray, decoded: Any) -> list[Row]:
    title = f"{IMAGE_MODELS[name]} {s.image_size} px"
    dev, steps, bs = s.device, s.image_steps, s.image_batch
    torch.manual_seed(0)
    base = create_model(name, in_channels=3, num_classes=2)
    fresh = lambda: copy.deepcopy(base).to(dev)  # noqa: E731 - the same initial weights for every row
    cl = resolve_channels_last("auto", dev.type, True)
    rows = []

    def guide() -> tuple[int, int, float, str]:
        loader = guide_loader(paths, bs, size=s.image_size, resize=round(s.image_size * 256 / 224), labels=labels,
                              **loader_kwargs(dev, s.workers))
        seconds = guide_loop(fresh(), cycle(loader, steps + s.warmup), steps, s.warmup, dev)
        del loader
        return steps, bs, seconds, "fp32"

    rows.append(measured(dev, guide, title, "(a) guide: PIL + v1 transforms, DataLoader",
                         f"{loader_kwargs(dev, s.workers)['num_workers']} workers"))

    def ours_batches() -> ImageBatches:
        split = ImageSplit(decoded.images, np.arange(len(paths)), labels, np.arange(len(paths)).astype(str))
        return ImageBatches(split, bs, size=s.image_size, channels=3, mean=list(IMAGENET_MEAN), std=list(IMAGENET_STD),
                            shuffle=True, augment=BatchAugment(PRESETS["medical"], s.image_size), device=dev,
                            channels_last=cl)

    transfer = {}

    def ours() -> tuple[int, int, float, str]:
        model = fresh()
        if cl:
            model.to(memory_format=torch.channels_last)
        b = ours_batches()
        transfer["t"] = b.transfer
        trainer = make_trainer(model, s)
        return steps, bs, timed_trainer(trainer, cycle(b, steps + s.warmup), steps, s.warmup, dev), trainer.precision

    row = measured(dev, ours, title, "(b) biolens: cache + device aug + Trainer")
    row.note = f"transfer {transfer.get('t')}, channels_last {cl}" + (", compiled" if s.compile else "")
    rows.append(row)
    prec = row.precision or "fp32"

    if lightning_available():
        def light() -> tuple[int, int, float, str]:
            model = fresh()
            if cl:
                model.to(memory_format=torch.channels_last)
            n, seconds = lightning_row(model, ours_batches(), s, steps, prec)
            return n, bs, seconds, prec

        rows.append(measured(dev, light, title, "(c) Lightning: same model + batches"))
    else:
        rows.append(Row(title, "(c) Lightning: same model + batches", None, note="skipped: lightning not installed"))

    def resident() -> tuple[int, int, float, str]:
        model = fresh()
        if cl:
            model.to(memory_format=torch.channels_last)
        g = torch.Generator().manual_seed(0)
        fixed = []
        for _ in range(4):
            x = torch.randn(bs, 3, s.image_size, s.image_size, generator=g).to(dev)
            fixed.append({"x": x.contiguous(memory_format=torch.channels_last) if cl else x,
                          "y": torch.randint(0, 2, (bs,), generator=g).to(dev)})
        trainer = make_trainer(model, s)
        return steps, bs, timed_trainer(trainer, cycle(fixed, steps + s.warmup), steps, s.warmup, dev), trainer.precision

    rows.append(measured(dev, resident, title, "(d) resident limit: synthetic, no aug"))
    return rows


def pipeline_rows(s: Settings, paths: list[Path], labels: np.ndarray, cache_dir: Path) -> list[Row]:
    """Input pipeline alone (no model): decoding every epoch vs the decode-once cache; ``pipeline_epochs`` timed
    epochs after one warm-up epoch each."""
    dev, bs, n = s.device, s.image_batch, len(paths)
    title = f"input pipeline {s.image_size} px (no model)"
    epochs = s.pipeline_epochs

    def drain(batches: Any, first: int = 1) -> None:
        for e in range(first, first + epochs):
            if hasattr(batches, "set_epoch"):
                batches.set_epoch(e)
            for b in batches:
                x = b["x"] if isinstance(b, dict) else b[0].to(dev)
                assert x.shape[-1] == s.image_size
        sync(dev)

    def guide() -> tuple[int, int, float, str]:
        loader = guide_loader(paths, bs, size=s.image_size, resize=round(s.image_size * 256 / 224), labels=labels,
                              **loader_kwargs(dev, s.workers))
        for _ in loader:  # warm-up epoch: workers started (persistent), first-call costs paid
            pass
        t0 = time.perf_counter()
        drain(loader)
        return epochs, n, time.perf_counter() - t0, "-"

    def ours() -> tuple[int, int, float, str]:
        t0 = time.perf_counter()
        decoded = decode_all(paths, round(s.image_size * 256 / 224), cache_dir=cache_dir)  # the one decode
        build = time.perf_counter() - t0
        split = ImageSplit(decoded.images, np.arange(n), labels, np.arange(n).astype(str))
        b = ImageBatches(split, bs, size=s.image_size, channels=3, mean=list(IMAGENET_MEAN), std=list(IMAGENET_STD),
                         shuffle=True, augment=BatchAugment(PRESETS["medical"], s.image_size), device=dev)
        for _ in b:  # warm-up epoch, as for the guide's loader
            pass
        t0 = time.perf_counter()
        drain(b)
        cache_s["build"] = build
        return epochs, n, time.perf_counter() - t0, "-"

    cache_s: dict[str, float] = {}
    rows = [measured(dev, guide, title, "(a) decode every epoch: PIL + v1, DataLoader",
                     f"{loader_kwargs(dev, s.workers)['num_workers']} workers"),
            measured(dev, ours, title, "(b) biolens decode-once cache + batched aug")]
    if "build" in cache_s:
        rows[1].note = f"one-time decode into the cache {cache_s['build']:.2f} s (not in the rate)"
        rows[1].extra["cache_build_s"] = round(cache_s["build"], 3)
    return rows


# ---- sequences ------------------------------------------------------------------------------------------------------
def random_dna(n: int, length: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 4, (n, length))
    seqs = ["".join("ACGT"[c] for c in row) for row in codes]
    return seqs, rng.integers(0, 2, n).astype(np.int64)


def guide_sequence_loader(seqs: list[str], y: np.ndarray, max_length: int, batch: int, device: torch.device,
                          workers: int) -> Any:
    """Guide 3.3 ``BiologicalSequenceDataset``: encodes every item in ``__getitem__`` with a per-character loop."""
    from torch.utils.data import DataLoader, Dataset

    class BiologicalSequenceDataset(Dataset):
        def __len__(self) -> int:
            return len(seqs)

        def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
            encoded = guide_loop_encode([seqs[i]], max_length)[0]
            return torch.tensor(encoded, dtype=torch.long), torch.tensor(y[i], dtype=torch.long)

    return DataLoader(BiologicalSequenceDataset(), batch_size=batch, shuffle=True, **loader_kwargs(device, workers))


def sequence_workload(name: str, s: Settings, seqs: list[str], y: np.ndarray) -> list[Row]:
    title = f"{name} ({SEQUENCE_MODELS[name]}) L={s.seq_len}"
    dev, steps, bs = s.device, s.seq_steps, s.seq_batch
    torch.manual_seed(0)
    base = create_model(name, vocab_size=DNA.vocab_size, num_classes=2)
    fresh = lambda: copy.deepcopy(base).to(dev)  # noqa: E731
    needs_gc = "gc" in base.aux_inputs
    rows = []

    def guide() -> tuple[int, int, float, str]:
        loader = guide_sequence_loader(seqs, y, s.seq_len, bs, dev, s.workers)
        aux = (lambda x: {"gc": gc_content(x)}) if needs_gc else None
        seconds = guide_loop(fresh(), cycle(loader, steps + s.warmup), steps, s.warmup, dev, aux)
        del loader
        return steps, bs, seconds, "fp32"

    rows.append(measured(dev, guide, title, "(a) guide: per-item Python encoding, DataLoader",
                         f"{loader_kwargs(dev, s.workers)['num_workers']} workers"))

    def ours_batches() -> SequenceBatches:
        x, lengths = encode(seqs, DNA, max_len=s.seq_len)
        data = SequenceData(np.arange(len(seqs)).astype(str), x, lengths, y, DNA)
        return SequenceBatches(data, bs, shuffle=True, device=dev, reverse_complement=True, with_gc=needs_gc)

    def ours() -> tuple[int, int, float, str]:
        trainer = make_trainer(fresh(), s)
        return steps, bs, timed_trainer(trainer, cycle(ours_batches(), steps + s.warmup), steps, s.warmup,
                                        dev), trainer.precision

    row = measured(dev, ours, title, "(b) biolens: encoded store + device aug + Trainer", "reverse complement on")
    rows.append(row)
    prec = row.precision or "fp32"
    if lightning_available():
        def light() -> tuple[int, int, float, str]:
            n, seconds = lightning_row(fresh(), ours_batches(), s, steps, prec)
            return n, bs, seconds, prec

        rows.append(measured(dev, light, title, "(c) Lightning: same model + batches"))
    else:
        rows.append(Row(title, "(c) Lightning: same model + batches", None, note="skipped: lightning not installed"))

    def resident() -> tuple[int, int, float, str]:
        g = torch.Generator().manual_seed(0)
        fixed = []
        for _ in range(4):
            x = torch.randint(1, 5, (bs, s.seq_len), dtype=torch.uint8, generator=g).to(dev)
            b = {"x": x, "y": torch.randint(0, 2, (bs,), generator=g).to(dev),
                 "lengths": torch.full((bs,), s.seq_len, device=dev)}
            if needs_gc:
                b["gc"] = gc_content(x)
            fixed.append(b)
        trainer = make_trainer(fresh(), s)
        return steps, bs, timed_trainer(trainer, cycle(fixed, steps + s.warmup), steps, s.warmup, dev), trainer.precision

    rows.append(measured(dev, resident, title, "(d) resident limit: synthetic, no aug"))
    return rows


# ---- report ---------------------------------------------------------------------------------------------------------
def rate(rows: list[Row], workload_prefix: str, path_prefix: str) -> float | None:
    for r in rows:
        if r.workload.startswith(workload_prefix) and r.path.startswith(path_prefix):
            return r.samples_per_s
    return None


def ratios(rows: list[Row]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}

    def ratio(key: str, num: float | None, den: float | None) -> None:
        out[key] = round(num / den, 2) if num and den else None

    for wl in dict.fromkeys(r.workload for r in rows):
        b = rate(rows, wl, "(b)")
        if wl.startswith("input pipeline"):
            ratio("image cache vs decoding every epoch (target >= 3x on CPU)", b, rate(rows, wl, "(a)"))
            continue
        ratio(f"{wl}: biolens / guide", b, rate(rows, wl, "(a)"))
        ratio(f"{wl}: biolens / resident limit", b, rate(rows, wl, "(d)"))
        ratio(f"{wl}: biolens / Lightning", b, rate(rows, wl, "(c)"))
    d = rate(rows, "dilated_resnet", "(b)")
    ratio("sequences: dilated_resnet (biolens) / promoter_predictor (guide)", d, rate(rows, "promoter_predictor", "(a)"))
    return out


def table(rows: list[Row]) -> str:
    lines = ["| workload | path | samples/s | steps × batch | precision | peak RSS MB | peak GPU MB | note |",
             "|---|---|---:|---|---|---:|---:|---|"]
    for r in rows:
        sps = f"{r.samples_per_s:,.1f}" if r.samples_per_s is not None else "–"
        sb = f"{r.steps} × {r.batch}" if r.steps else "–"
        rss = f"{r.peak_rss_mb:,.0f}" if r.peak_rss_mb is not None else "–"
        gpu = f"{r.peak_gpu_mb:,.0f}" if r.peak_gpu_mb is not None else "–"
        note = r.note + (f"; workers' peak RSS {r.extra['worker_peak_rss_mb']:,.0f} MB" if "worker_peak_rss_mb" in r.extra else "")
        lines.append(f"| {r.workload} | {r.path} | {sps} | {sb} | {r.precision or '–'} | {rss} | {gpu} | {note} |")
    return "\n".join(lines)


def settings(args: argparse.Namespace) -> Settings:
    dev = torch.device(args.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda given but no CUDA device is available")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if args.small:
        s = Settings(dev, image_size=64, png_side=96, n_images=128, image_batch=16, image_steps=5, seq_len=1000,
                     seq_batch=8, seq_steps=2, warmup=1, workers=max(1, cores - 1), pipeline_epochs=2)
    else:
        s = Settings(dev, image_size=224, png_side=256, n_images=4096, image_batch=128, image_steps=30, seq_len=1000,
                     seq_batch=64, seq_steps=20, warmup=5, workers=max(1, min(16, cores - 1)), pipeline_epochs=2)
    for k in ("image_size", "n_images", "image_batch", "image_steps", "seq_batch", "seq_steps", "warmup", "workers"):
        if getattr(args, k) is not None:
            setattr(s, k, getattr(args, k))
    s.precision, s.compile, s.cores = args.precision, args.compile, cores
    return s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="2-core CPU mode: 64 px, few steps, small batches")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--out", default=None, help="write the rows, ratios and settings here as JSON")
    ap.add_argument("--only", default="images,sequences,pipeline", help="comma list of: images, sequences, pipeline")
    ap.add_argument("--precision", default="auto", help="biolens rows: auto (bf16 for images on CUDA), fp32, bf16")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model of the biolens rows")
    for k in ("image_size", "n_images", "image_batch", "image_steps", "seq_batch", "seq_steps", "warmup", "workers"):
        ap.add_argument(f"--{k.replace('_', '-')}", dest=k, type=int, default=None)
    ap.add_argument("--threads", type=int, default=0,
                    help="torch CPU threads (default: --small: cores minus the guide's workers; else torch's default)")
    args = ap.parse_args()
    s = settings(args)
    threads = args.threads or (max(1, s.cores - s.workers) if args.small else 0)
    if threads:  # --small: the main process and the guide's workers share the cores, nobody oversubscribes
        torch.set_num_threads(threads)
    only = set(args.only.split(","))
    if s.device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    hardware = (torch.cuda.get_device_name(s.device) if s.device.type == "cuda"
                else f"{platform.machine()} CPU, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads")
    print(f"biolens benchmark suite: {hardware}, torch {torch.__version__}, "
          f"lightning {'installed' if lightning_available() else 'not installed'}", flush=True)
    t_start = time.perf_counter()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        if only & {"images", "pipeline"}:
            paths = write_pngs(Path(tmp) / "png", s.n_images, s.png_side, rgb=True)
            labels = np.array([int(p.parent.name != "normal") for p in paths], dtype=np.int64)
        if "pipeline" in only:
            rows += pipeline_rows(s, paths, labels, Path(tmp) / "cache")
            print(table(rows[-2:]), flush=True)
        if "images" in only:
            decoded = decode_all(paths, round(s.image_size * 256 / 224), cache_dir=Path(tmp) / "cache")
            for name in IMAGE_MODELS:
                rows += image_workload(name, s, paths, labels, decoded)
                print(table(rows[-4:]), flush=True)
    if "sequences" in only:
        n = max(s.seq_batch * (s.seq_steps + s.warmup + 1), 256)
        seqs, y = random_dna(n, s.seq_len)
        for name in SEQUENCE_MODELS:
            rows += sequence_workload(name, s, seqs, y)
            print(table(rows[-4:]), flush=True)
    r = ratios(rows)
    print("\n" + table(rows) + "\n")
    for k, v in r.items():
        print(f"{k}: {f'{v}x' if v is not None else '–'}")
    wall = time.perf_counter() - t_start
    print(f"wall time {wall:.0f} s")
    if args.out:
        result = {"hardware": hardware, "torch": torch.__version__, "python": platform.python_version(),
                  "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()), "command": " ".join(sys.argv),
                  "settings": {k: (str(v) if isinstance(v, torch.device) else v) for k, v in asdict(s).items()},
                  "rows": [asdict(x) for x in rows], "ratios": r, "wall_s": round(wall, 1)}
        tmp_out = Path(args.out).with_suffix(".tmp")
        tmp_out.write_text(json.dumps(result, indent=2) + "\n")
        os.replace(tmp_out, args.out)


if __name__ == "__main__":
    main()
