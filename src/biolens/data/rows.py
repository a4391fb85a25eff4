"""Reading rows of an encoded ``(N, L)`` uint8 store back into memory, in bounded memory.

Rows are copied out with positional reads in sorted order, never faulted in through a memory mapping, so a pass
over a store larger than RAM keeps the process's resident set small (the kernel's page cache, which serves
repeated epochs, is not part of it).
"""

from __future__ import annotations

import os
import weakref

import numpy as np

from biolens.errors import DataError


class RowReader:
    """Copies rows of an ``(N, L)`` store into memory: positional reads (``preadv``, one per run of consecutive
    rows) for a memory-mapped store, so the page cache serves them without mapping pages into this process;
    ``np.take`` for an array already in RAM.

    Faulting rows in through the mapping instead would grow the resident set by far more than the rows (the kernel
    maps whole page-cache folios around each fault: about 200 KB per scattered 1 kB row on Linux 6.x).
    """

    def __init__(self, x: np.ndarray):
        self.x = x
        self.fd: int | None = None
        if isinstance(x, np.memmap) and x.filename is not None and hasattr(os, "preadv") and x.flags.c_contiguous:
            self.fd = os.open(x.filename, os.O_RDONLY)
            self.offset = int(x.offset)
            weakref.finalize(self, os.close, self.fd)

    def take(self, rows: np.ndarray, width: int | None = None, out: np.ndarray | None = None) -> np.ndarray:
        """Rows ``rows`` (sorted ascending: consecutive rows become one read), first ``width`` columns, into
        ``out`` (``(len(rows), width)`` uint8, e.g. a pinned staging buffer) if given."""
        n_rows, stride = self.x.shape
        width = stride if width is None else width
        rows = np.asarray(rows, dtype=np.int64)
        if out is None:
            out = np.empty((len(rows), width), dtype=np.uint8)
        if self.fd is None:
            np.take(self.x[:, :width], rows, axis=0, out=out, mode="clip")  # clip: no internal buffering of out
            return out
        if len(rows) and (rows.min() < 0 or rows.max() >= n_rows):
            raise IndexError(f"row index out of range 0..{n_rows - 1}")
        cut = np.flatnonzero(np.diff(rows) != 1) + 1
        starts, pos = rows[np.r_[0, cut]] if len(rows) else rows, np.r_[0, cut]
        counts = np.diff(np.r_[pos, len(rows)])
        for first, at, count in zip(starts.tolist(), pos.tolist(), counts.tolist()):
            if count == 1 or width == stride:  # straight into out
                dest = out[at : at + count]
                self._read(dest, first, count * width if width == stride else width)
            else:  # whole rows of a run, then their first `width` columns
                stage = np.empty((count, stride), dtype=np.uint8)
                self._read(stage, first, count * stride)
                out[at : at + count] = stage[:, :width]
        return out

    def _read(self, dest: np.ndarray, row: int, nbytes: int) -> None:
        view, start, got = memoryview(dest).cast("B")[:nbytes], self.offset + row * self.x.shape[1], 0
        while got < nbytes:  # a read may return fewer bytes than asked (Linux: at most ~2 GiB per call)
            n = os.preadv(self.fd, [view[got:]], start + got)
            if n <= 0:
                raise DataError(f"{self.x.filename}: sequence store is truncated (row {row}); delete it to rebuild")
            got += n

    def block(self, start: int, stop: int) -> np.ndarray:
        """Contiguous rows ``start:stop`` as an in-memory array."""
        return self.take(np.arange(start, stop))
