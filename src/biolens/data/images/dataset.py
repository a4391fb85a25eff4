"""Image splits over one decoded uint8 store, and batches made, augmented and normalized as whole tensors."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from biolens.data.images.transforms import BatchAugment, center_crop, match_channels, normalize, to_float
from biolens.data.sampling import epoch_order, shard


@dataclass
class ImageSplit:
    """One split: ``rows`` index the shared store ``images`` ``(N, C, S, S)`` uint8 (memory-mapped or in RAM)."""

    images: np.ndarray
    rows: np.ndarray  # (n,) ascending int64
    y: np.ndarray | None  # (n,) int64
    ids: np.ndarray  # (n,) str

    def __len__(self) -> int:
        return len(self.rows)

    def read(self, positions: np.ndarray) -> np.ndarray:
        """uint8 ``(b, C, S, S)`` for split positions (sorted, so a memory map reads forward)."""
        return np.ascontiguousarray(self.images[self.rows[positions]])


class ImageBatches:
    """Iterable of ``{"x": (B, C, size, size) float, "y": (B,), "index": (B,)}`` on ``device``.

    Train: random resized crop / rotation / flip / jitter per image (``augment``), seeded per epoch via
    ``set_epoch``. Eval: center crop only. Both then adapt channels and normalize with the contract's mean/std.
    """

    def __init__(self, split: ImageSplit, batch_size: int, *, size: int, channels: int, mean: list[float],
                 std: list[float], shuffle: bool = False, augment: BatchAugment | None = None,
                 device: torch.device | str = "cpu", seed: int = 0):
        self.split = split
        self.batch_size = batch_size
        self.size = size
        self.channels = channels
        self.shuffle = shuffle
        self.augment = augment
        self.device = torch.device(device)
        self.seed = seed
        self.epoch = 0
        self.mean = torch.tensor(mean, dtype=torch.float32, device=self.device)
        self.std = torch.tensor(std, dtype=torch.float32, device=self.device)
        self.y = None if split.y is None else torch.from_numpy(split.y.astype(np.int64))
        self.sample_weights: torch.Tensor | None = None  # weighted random sampling (train.sampler=weighted)
        self.rank, self.num_replicas = 0, 1  # distributed: each process takes its share of every global batch

    def __len__(self) -> int:
        n = len(self.split) + (-len(self.split)) % self.num_replicas
        return (n + self.batch_size - 1) // self.batch_size

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def transform(self, x: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
        """uint8 ``(B, C, S, S)`` on the device → normalized float ``(B, channels, size, size)``."""
        x = to_float(x)
        x = self.augment(x, gen) if self.augment is not None and gen is not None else center_crop(x, self.size)
        return normalize(match_channels(x, self.channels), self.mean, self.std)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = epoch_order(len(self.split), shuffle=self.shuffle, generator=gen, weights=self.sample_weights,
                            num_replicas=self.num_replicas)
        for start in range(0, len(order), self.batch_size):
            pos = np.sort(shard(order[start:start + self.batch_size], self.rank, self.num_replicas).numpy())
            x = torch.from_numpy(self.split.read(pos)).to(self.device, non_blocking=True)
            index = torch.from_numpy(pos.astype(np.int64))
            batch = {"x": self.transform(x, gen if self.augment is not None else None), "index": index.to(self.device)}
            if self.y is not None:
                batch["y"] = self.y[index].to(self.device)
            yield batch


def channel_stats(split: ImageSplit, chunk: int = 4096) -> tuple[list[float], list[float]]:
    """Per-channel mean and std in [0, 1] units over a split's stored pixels (chunked: fine for memory maps)."""
    c = split.images.shape[1]
    total = np.zeros(c)
    sq = np.zeros(c)
    count = 0
    for start in range(0, len(split), chunk):
        a = split.read(np.arange(start, min(start + chunk, len(split)))).astype(np.float64) / 255.0
        total += a.sum(axis=(0, 2, 3))
        sq += (a * a).sum(axis=(0, 2, 3))
        count += a.shape[0] * a.shape[2] * a.shape[3]
    mean = total / max(count, 1)
    std = np.sqrt(np.maximum(sq / max(count, 1) - mean**2, 1e-12))
    return [round(float(v), 6) for v in mean], [round(float(max(v, 1e-3)), 6) for v in std]
