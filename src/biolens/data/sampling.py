"""Epoch orders for device-resident batches: shuffling, weighted sampling and sharding across processes, and
``Batches``, the base class of every task kind's batch iterable.

Pure functions of a seeded generator, so every process of a distributed run computes the same global order
and takes its own slice of each global batch.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch


def target_array(y: np.ndarray) -> np.ndarray:
    """Batch targets: class indices as int64, regression values and multi-label 0/1 (NaN = missing) as float32."""
    y = np.asarray(y)
    return y.astype(np.float32) if y.dtype.kind == "f" else y.astype(np.int64)


def balanced_weights(y: np.ndarray) -> np.ndarray:
    """Per-sample weights ``1 / count(class)``: every class is drawn equally often (guide 7.1 step 4)."""
    counts = np.bincount(y)
    return 1.0 / counts[y]


def epoch_order(n: int, *, shuffle: bool, generator: torch.Generator, weights: torch.Tensor | None = None,
                num_replicas: int = 1) -> torch.Tensor:
    """Indices for one epoch: in order, a permutation, or ``n`` weighted draws with replacement.

    With several replicas the order is padded (by wrapping round) to a multiple of ``num_replicas``, as
    ``DistributedSampler`` does, so every process gets the same number of samples.
    """
    if weights is not None:
        order = torch.multinomial(weights, n, replacement=True, generator=generator)
    elif shuffle:
        order = torch.randperm(n, generator=generator)
    else:
        order = torch.arange(n)
    pad = (-len(order)) % num_replicas
    return torch.cat([order, order[:pad]]) if pad else order


def shard(batch_idx: torch.Tensor, rank: int, num_replicas: int) -> torch.Tensor:
    """This rank's contiguous share of a global batch (sizes differ by at most one)."""
    if num_replicas == 1:
        return batch_idx
    return torch.tensor_split(batch_idx, num_replicas)[rank]


class Batches:
    """What every batch iterable shares: batch size, seeded per-epoch order (``set_epoch``), weighted sampling
    (``sample_weights``), each process's share of every global batch (``rank``, ``num_replicas``) and the names
    of the augmentations it applies (empty for evaluation batches).

    Subclasses iterate ``self.epoch_plan(generator)``: one index tensor of this process's rows per batch.
    """

    def __init__(self, n: int, batch_size: int, *, shuffle: bool = False, device: torch.device | str = "cpu",
                 seed: int = 0):
        self.n = n
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.device = torch.device(device)
        self.seed = seed
        self.epoch = 0
        self.sample_weights: torch.Tensor | None = None  # per-sample draw weights (weighted random sampling)
        self.rank, self.num_replicas = 0, 1  # distributed: each process takes its share of every global batch

    def __len__(self) -> int:
        n = self.n + (-self.n) % self.num_replicas
        return (n + self.batch_size - 1) // self.batch_size

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    @property
    def augmentations(self) -> list[str]:
        """Names of the random augmentations these batches apply (none for evaluation batches)."""
        return []

    @property
    def augmenting(self) -> bool:
        return bool(self.augmentations)

    def epoch_generator(self) -> torch.Generator:
        """The CPU generator of the current epoch: the same order (and augmentation draws) on every device."""
        return torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)

    def epoch_plan(self, generator: torch.Generator) -> Iterator[torch.Tensor]:
        """This process's row indices (CPU int64) of each batch of the epoch, in batch order."""
        order = epoch_order(self.n, shuffle=self.shuffle, generator=generator, weights=self.sample_weights,
                            num_replicas=self.num_replicas)
        for start in range(0, len(order), self.batch_size):
            yield shard(order[start:start + self.batch_size], self.rank, self.num_replicas)
