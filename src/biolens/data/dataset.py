"""Encode once, slice many: an encoded uint8 store and batches cut, padded and augmented on the device.

Two ways to feed a device, chosen per split: *resident* (the whole split moved to the device once, each batch a
slice of it) when it fits, and *streamed* (each batch's rows copied out of the memory-mapped store in sorted
order, staged in pinned memory on CUDA and sent with ``non_blocking``) when the split is memory-mapped or does
not fit. Both give the same batches; padding and augmentation then run on the device either way.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from biolens.data.alphabets import Alphabet
from biolens.data.augment import gc_content, random_reverse_complement, random_shift, substitute
from biolens.data.sampling import Batches, target_array
from biolens.data.rows import RowReader
from biolens.devices import fits_on_device, free_device_memory

log = logging.getLogger(__name__)

@dataclass
class SequenceData:
    """One split: ids, encoded rows ``x`` ``(N, L)`` uint8 (PAD=0), lengths and integer labels (or None).

    A streamed split keeps ``x`` as the whole memory-mapped store and ``rows``: row ``i`` of the split is row
    ``rows[i]`` of ``x``. Use ``take``/``blocks`` rather than ``x`` to read a split's rows.
    """

    ids: np.ndarray
    x: np.ndarray
    lengths: np.ndarray
    y: np.ndarray | None
    alphabet: Alphabet
    rows: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.x) if self.rows is None else len(self.rows)

    @property
    def mapped(self) -> bool:
        """Whether the rows live in a memory-mapped file rather than in RAM."""
        return self.rows is not None or isinstance(self.x, np.memmap)

    @property
    def width(self) -> int:
        return int(self.x.shape[1])

    def store_rows(self, i: np.ndarray) -> np.ndarray:
        return np.asarray(i) if self.rows is None else self.rows[i]

    def take(self, i: np.ndarray | list[int]) -> np.ndarray:
        """Rows ``i`` of the split, ``(k, L)`` uint8 in the order given."""
        i = np.asarray(i, dtype=np.int64)
        if not self.mapped:
            return self.x[i]
        rows = self.store_rows(i)
        order = np.argsort(rows, kind="stable")
        out = np.empty((len(i), self.width), dtype=np.uint8)
        out[order] = RowReader(self.x).take(rows[order])
        return out

    def blocks(self, size: int = 4096) -> Iterator[np.ndarray]:
        """The split's rows in order, as in-memory blocks of at most ``size`` rows (bounded memory when mapped)."""
        reader = RowReader(self.x) if self.mapped else None
        for start in range(0, len(self), size):
            i = np.arange(start, min(start + size, len(self)))
            yield self.x[i] if reader is None else reader.take(self.store_rows(i))


class SequenceBatches(Batches):
    """Iterable of batches ``{"x": (B, Lb) uint8, "y": (B,), "gc": (B,), "lengths": (B,)}`` on ``device``.

    Each batch is cut to its longest sequence (dynamic padding), then augmented as a batch. Shuffling is seeded
    per epoch (``set_epoch``) so runs repeat exactly. ``resident``: keep the whole split on the device (default:
    yes unless the split is memory-mapped or does not fit); otherwise each batch's rows are read from the store,
    in sorted order, one batch ahead in a thread, and copied to the device (pinned + ``non_blocking`` on CUDA).
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
        shift: int = 0,
        with_gc: bool = False,
        resident: bool | None = None,
        min_width: int = 1,
    ):
        super().__init__(len(data), batch_size, shuffle=shuffle, device=device, seed=seed)
        self.data = data
        self.rc, self.sub_rate, self.shift, self.with_gc = reverse_complement, substitution_rate, shift, with_gc
        self.min_width = min_width  # rows are padded (PAD=0) to at least this width: the model's shortest input
        if resident is None:
            free = free_device_memory(self.device)
            resident = not data.mapped and (free is None or fits_on_device(data.x.nbytes, free))
            if not resident and not data.mapped:
                log.info("%.0f MB of sequences do not fit on %s: batches are streamed from host memory",
                         data.x.nbytes / 2**20, self.device)
        self.resident = resident
        if resident:
            x = data.x if not data.mapped else data.take(np.arange(len(data)))
            self.x = torch.from_numpy(np.ascontiguousarray(x)).to(self.device)
        else:
            self.x = None
            self.reader = RowReader(data.x)
            self.pin = self.device.type == "cuda"
        self.lengths_cpu = torch.from_numpy(data.lengths.astype(np.int64))
        self.lengths = self.lengths_cpu.to(self.device)
        self.y = None if data.y is None else torch.from_numpy(target_array(data.y)).to(self.device)
        self.table = (
            torch.from_numpy(data.alphabet.complement_table()).to(self.device) if reverse_complement else None
        )

    @property
    def augmentations(self) -> list[str]:
        return [name for name, on in (("reverse_complement", self.rc), ("substitution_rate", self.sub_rate > 0),
                                      ("shift", self.shift > 0)) if on]

    def _read(self, cpu_idx: torch.Tensor, width: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Host rows of one batch in sorted store order, and the permutation back to batch order."""
        rows = self.data.store_rows(cpu_idx.numpy())
        order = np.argsort(rows, kind="stable")
        buf = torch.empty((len(rows), width), dtype=torch.uint8, pin_memory=self.pin)
        self.reader.take(rows[order], width, out=buf.numpy())
        back = np.empty_like(order)
        back[order] = np.arange(len(order))
        return buf, torch.from_numpy(back)

    def _plan(self, gen: torch.Generator) -> Iterator[tuple[torch.Tensor, int]]:
        for cpu_idx in self.epoch_plan(gen):
            # the batch's longest row (on the host: no device sync per batch), at least 1 and at most the stored width
            yield cpu_idx, min(max(int(self.lengths_cpu[cpu_idx].max()), 1), self.data.width)

    def _streamed(self, plan: list[tuple[torch.Tensor, int]]) -> Iterator[torch.Tensor]:
        """``(B, width)`` uint8 rows of each planned batch on the device, in batch order, read one batch ahead."""
        with ThreadPoolExecutor(1, thread_name_prefix="biolens-rows") as pool:
            ahead: Future | None = None
            for k in range(len(plan)):
                current = ahead.result() if ahead is not None else self._read(*plan[k])
                ahead = pool.submit(self._read, *plan[k + 1]) if k + 1 < len(plan) else None
                buf, back = current
                x = buf.to(self.device, non_blocking=True)
                yield x[back.to(self.device, non_blocking=True)]

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        gen = self.epoch_generator()
        plan = list(self._plan(gen))  # the epoch order first, then the augmentation seed, from one generator
        dev_gen = None
        if self.augmenting:
            dev_gen = torch.Generator(device=self.device).manual_seed(
                int(torch.randint(0, 2**62, (1,), generator=gen)) + self.rank)
        streamed = None if self.resident else self._streamed(plan)
        try:
            for cpu_idx, width in plan:
                idx = cpu_idx.to(self.device, non_blocking=True)
                x = self.x[idx, :width] if streamed is None else next(streamed)
                if x.shape[1] < self.min_width:
                    x = torch.nn.functional.pad(x, (0, self.min_width - x.shape[1]))  # PAD = 0 on the right
                lengths = self.lengths[idx]
                if self.rc:
                    x = random_reverse_complement(x, lengths, self.table, 0.5, dev_gen)
                if self.sub_rate > 0:
                    x = substitute(x, self.sub_rate, len(self.data.alphabet.symbols), dev_gen)
                if self.shift > 0:
                    x, lengths = random_shift(x, lengths, self.shift, dev_gen)
                batch = {"x": x, "lengths": lengths, "index": idx}
                if self.y is not None:
                    batch["y"] = self.y[idx]
                if self.with_gc:
                    batch["gc"] = gc_content(x, self.data.alphabet)
                yield batch
        finally:  # ends the read-ahead thread now, also when the caller stops early
            if streamed is not None:
                streamed.close()
