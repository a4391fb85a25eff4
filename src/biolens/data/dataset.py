"""Encode once, slice many: an encoded uint8 store and batches cut, padded and augmented on the device."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from biolens.data.alphabets import Alphabet
from biolens.data.augment import gc_content, random_reverse_complement, substitute
from biolens.data.sampling import epoch_order, shard


@dataclass
class SequenceData:
    """One split: ids, encoded rows ``x`` ``(N, L)`` uint8 (PAD=0), lengths and integer labels (or None)."""

    ids: np.ndarray
    x: np.ndarray
    lengths: np.ndarray
    y: np.ndarray | None
    alphabet: Alphabet

    def __len__(self) -> int:
        return len(self.x)


class SequenceBatches:
    """Iterable of batches ``{"x": (B, Lb) uint8, "y": (B,), "gc": (B,), "lengths": (B,)}`` on ``device``.

    The whole split is moved to the device once; each batch is a slice cut to its longest sequence (dynamic
    padding), then augmented as a batch. Shuffling is seeded per epoch (``set_epoch``) so runs repeat exactly.
    """

    def __init__(
        self,
        data: SequenceData,
        batch_size: int,
        *,
        shuffle: bool = False,
        device: torch.device | str = "cpu",
        seed: int = 0,
        reverse_complement: bool = False,
        substitution_rate: float = 0.0,
        with_gc: bool = False,
    ):
        self.data = data
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.device = torch.device(device)
        self.seed = seed
        self.epoch = 0
        self.rc = reverse_complement
        self.sub_rate = substitution_rate
        self.with_gc = with_gc
        self.sample_weights: torch.Tensor | None = None  # per-sample draw weights (weighted random sampling)
        self.rank, self.num_replicas = 0, 1  # distributed: each process takes its share of every global batch
        self.x = torch.from_numpy(np.ascontiguousarray(data.x)).to(self.device)
        self.lengths_cpu = torch.from_numpy(data.lengths.astype(np.int64))
        self.lengths = self.lengths_cpu.to(self.device)
        self.y = None if data.y is None else torch.from_numpy(data.y.astype(np.int64)).to(self.device)
        self.table = (
            torch.from_numpy(data.alphabet.complement_table()).to(self.device) if reverse_complement else None
        )

    def __len__(self) -> int:
        n = len(self.data) + (-len(self.data)) % self.num_replicas
        return (n + self.batch_size - 1) // self.batch_size

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    @property
    def augmenting(self) -> bool:
        return self.rc or self.sub_rate > 0

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        n = len(self.data)
        order = epoch_order(n, shuffle=self.shuffle, generator=gen, weights=self.sample_weights,
                            num_replicas=self.num_replicas)
        dev_gen = None
        if self.augmenting:
            dev_gen = torch.Generator(device=self.device).manual_seed(
                int(torch.randint(0, 2**62, (1,), generator=gen)) + self.rank)
        for start in range(0, len(order), self.batch_size):
            cpu_idx = shard(order[start : start + self.batch_size], self.rank, self.num_replicas)
            width = int(self.lengths_cpu[cpu_idx].max())  # on the host: no device sync per batch
            idx = cpu_idx.to(self.device, non_blocking=True)
            lengths = self.lengths[idx]
            x = self.x[idx, :width]
            if self.rc:
                x = random_reverse_complement(x, lengths, self.table, 0.5, dev_gen)
            if self.sub_rate > 0:
                x = substitute(x, self.sub_rate, len(self.data.alphabet.symbols), dev_gen)
            batch = {"x": x, "lengths": lengths, "index": idx}
            if self.y is not None:
                batch["y"] = self.y[idx]
            if self.with_gc:
                batch["gc"] = gc_content(x, self.data.alphabet)
            yield batch
