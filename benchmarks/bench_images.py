"""Image input pipeline throughput: biolens's decode-once cache + batched augmentation vs the guide's recipe
(PIL decode of every file in every epoch + torchvision v1 transforms per image in a DataLoader, guide 3.2 / 7.1).

Both produce augmented, normalized float batches ``(64, 3, 224, 224)`` for training from the same PNG files
(PneumoniaMNIST images upsampled to 512 px and saved as PNG, like a folder of X-ray exports). No model runs: this
measures only the input pipeline.

Usage: python benchmarks/bench_images.py [--n 1000] [--epochs 2] [--workers 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def write_pngs(root: Path, n: int, side: int, rgb: bool = False) -> list[Path]:
    """``n`` PneumoniaMNIST images upsampled to ``side`` px as PNG (``rgb``: tinted 3-channel files)."""
    from biolens.data.images.sources import read_builtin_images

    data = read_builtin_images("builtin:pneumoniamnist")
    paths = []
    for i in range(n):
        k = int(data.labels[i % len(data.labels)])
        p = root / "train" / data.class_names[k] / f"{i:05d}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        img = Image.fromarray(data.images[i % len(data.labels), 0]).resize((side, side), Image.Resampling.BICUBIC)
        if rgb:
            g = np.asarray(img, dtype=np.float32)
            img = Image.fromarray(np.stack([g, g * 0.9, g * 0.8], axis=-1).astype(np.uint8), "RGB")
        img.save(p)
        paths.append(p)
    return paths


def guide_loader(paths: list[Path], batch_size: int, workers: int | None = None, *, size: int = 224,
                 resize: int = 256, labels: np.ndarray | None = None, **loader_kw):  # noqa: ANN201
    """The guide's ``MedicalImageDataset`` (without its dummy-image fallback) with its 7.1 train transforms.

    ``loader_kw`` (e.g. ``biolens.devices.loader_kwargs()``) replaces the plain ``workers`` setting.
    """
    from torch.utils.data import DataLoader, Dataset
    from torchvision import transforms

    tf = transforms.Compose([
        transforms.Resize((resize, resize)),
        transforms.RandomResizedCrop(size, scale=(0.9, 1.0)),
        transforms.RandomHorizontalFlip(p=0.5),
        transforms.RandomRotation(10),
        transforms.ColorJitter(brightness=0.1, contrast=0.1),
        transforms.ToTensor(),
        transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
    ])

    class MedicalImageDataset(Dataset):
        def __len__(self) -> int:
            return len(paths)

        def __getitem__(self, i: int):  # noqa: ANN204
            return tf(Image.open(paths[i]).convert("RGB")), int(labels[i]) if labels is not None else 0

    if not loader_kw:
        loader_kw = {"num_workers": workers or 0, "persistent_workers": bool(workers)}
    return DataLoader(MedicalImageDataset(), batch_size=batch_size, shuffle=True, **loader_kw)


def time_epochs(loader, epochs: int) -> list[float]:  # noqa: ANN001
    out = []
    for e in range(epochs):
        if hasattr(loader, "set_epoch"):
            loader.set_epoch(e + 1)
        t0 = time.perf_counter()
        for batch in loader:
            x = batch["x"] if isinstance(batch, dict) else batch[0]
            assert x.shape[1:] == (3, 224, 224)
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--side", type=int, default=512, help="side of the PNG files written")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2, help="DataLoader workers for the guide's recipe")
    ap.add_argument("--json", type=str, default=None)
    args = ap.parse_args()
    torch.set_num_threads(2)

    from biolens.data.images.cache import decode_all
    from biolens.data.images.dataset import ImageBatches, ImageSplit
    from biolens.data.images.transforms import IMAGENET_MEAN, IMAGENET_STD, PRESETS, BatchAugment

    with tempfile.TemporaryDirectory() as tmp:
        paths = write_pngs(Path(tmp) / "data", args.n, args.side)
        guide = time_epochs(guide_loader(paths, 64, args.workers), args.epochs)

        t0 = time.perf_counter()
        decoded = decode_all(paths, 256, cache_dir=Path(tmp) / "cache")  # the one decode (the upfront scan)
        build = time.perf_counter() - t0
        t0 = time.perf_counter()
        decoded = decode_all(paths, 256, cache_dir=Path(tmp) / "cache")  # a later run: cache hit
        reopen = time.perf_counter() - t0
        split = ImageSplit(decoded.images, np.arange(args.n), np.zeros(args.n, dtype=np.int64), np.arange(args.n).astype(str))
        batches = ImageBatches(split, 64, size=224, channels=3, mean=list(IMAGENET_MEAN), std=list(IMAGENET_STD),
                               shuffle=True, augment=BatchAugment(PRESETS["medical"], 224))
        ours = time_epochs(batches, args.epochs)

    g_rate = args.n / float(np.mean(guide))
    o_rate = args.n / float(np.mean(ours))
    result = {
        "images": args.n, "png_side": args.side, "epochs": args.epochs, "workers_guide": args.workers,
        "guide_s_per_epoch": [round(t, 3) for t in guide], "guide_images_per_s": round(g_rate, 1),
        "biolens_cache_build_s": round(build, 3), "biolens_cache_reopen_s": round(reopen, 4),
        "biolens_s_per_epoch": [round(t, 3) for t in ours], "biolens_images_per_s": round(o_rate, 1),
        "speedup_per_epoch": round(o_rate / g_rate, 2),
        "speedup_incl_build_over_epochs": round(sum(guide) / (build + sum(ours)), 2),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(), "torch": torch.__version__,
    }
    print(f"guide recipe (PIL decode every epoch + v1 transforms, DataLoader {args.workers} workers): "
          f"{g_rate:.1f} images/s")
    print(f"biolens (decode-once cache + batched augmentation): {o_rate:.1f} images/s per epoch; "
          f"one-time decode {build:.2f} s, later runs reopen the cache in {reopen * 1000:.1f} ms")
    print(f"ratio per epoch: {o_rate / g_rate:.1f}x; over {args.epochs} epochs including the one-time decode: "
          f"{result['speedup_incl_build_over_epochs']:.1f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
