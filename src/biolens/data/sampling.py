"""Epoch orders for device-resident batches: shuffling, weighted sampling and sharding across processes.

Pure functions of a seeded generator, so every process of a distributed run computes the same global order
and takes its own slice of each global batch.
"""

from __future__ import annotations

import numpy as np
import torch


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
