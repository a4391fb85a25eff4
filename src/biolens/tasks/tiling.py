"""Long sequences in ``predict``: tiles of the model's length instead of truncation, with per-tile rows and an
aggregate per sequence.

A sequence of length ``n`` longer than the contract's ``max_len`` (``W``) is cut into tiles starting at ``0, stride,
2·stride, …`` plus one ending exactly at ``n`` (so the tail is covered); a sequence of at most ``W`` bases is one
tile. Tiles of many sequences share forward passes; a very long sequence is tiled in blocks, so memory stays bounded
by ``TILE_BLOCK`` tiles whatever the input. Two files, both written atomically (neither is left behind on an error):

- ``out``: one row per sequence: ``id``, [``label``], ``length``, ``tiles``, ``mean_p_<class>`` and ``max_p_<class>``
  for the positive class (every class for multi-class models), ``prediction`` and, for binary models, ``decision``
  from the ``aggregate`` (max: the sequence is positive when any tile is; mean: on average);
- ``<out stem>.tiles<suffix>``: one row per tile: ``id``, ``tile`` (1-based), ``start``, ``end`` (0-based,
  half-open, on the input sequence), ``p_<class>``…, ``prediction``, ``decision``.
"""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from biolens.data.encoding import encode
from biolens.data.prepare import check_alphabet
from biolens.data.readers import Records, check_file, iter_chunks
from biolens.errors import ConfigError, DataError
from biolens.io import temp_beside
from biolens.tasks.base import Encoded, Inputs

log = logging.getLogger(__name__)

TILE_BLOCK = 16384  # tiles held (and predicted) at a time
AGGREGATES = ("max", "mean")


def tile_starts(length: int, width: int, stride: int) -> np.ndarray:
    """Tile starts over a sequence of ``length``: ``0, stride, …`` and a last tile ending at ``length``."""
    if length <= width:
        return np.zeros(1, dtype=np.int64)
    starts = np.arange(0, length - width + 1, stride, dtype=np.int64)
    if starts[-1] != length - width:
        starts = np.append(starts, length - width)
    return starts


def tiles_path(out: Path) -> Path:
    """``preds.csv`` → ``preds.tiles.csv``."""
    return out.with_name(f"{out.stem}.tiles{out.suffix or '.csv'}")


@dataclass
class TileBlock:
    """Tiles of some sequences of one chunk, in input order: rows ``x (T, W)`` uint8 with lengths, each tile's
    sequence (index into the chunk's records) and its start on that sequence."""

    x: np.ndarray
    lengths: np.ndarray
    seq: np.ndarray
    start: np.ndarray


class _Held:
    def __init__(self) -> None:
        self.parts: list[tuple[np.ndarray, ...]] = []
        self.count = 0

    def add(self, x: np.ndarray, lengths: np.ndarray, seq: np.ndarray, start: np.ndarray) -> None:
        self.parts.append((x, lengths, seq, start))
        self.count += len(x)

    def flush(self) -> TileBlock:
        block = TileBlock(*(np.concatenate([p[k] for p in self.parts]) for k in range(4)))
        self.parts, self.count = [], 0
        return block


def iter_tiles(records: Records, alphabet: Any, width: int, stride: int) -> Iterator[TileBlock]:
    """Tile blocks of about ``TILE_BLOCK`` tiles over ``records``, in input order. Runs of short sequences are
    encoded together; a long one is encoded alone and its tiles are views of it, so a chromosome-long record never
    pads the short ones to its length."""
    check_alphabet(records, alphabet)
    held, pending = _Held(), []

    def take_pending() -> None:
        if pending:
            x, lengths = encode([records.seqs[i] for i in pending], alphabet, width)
            held.add(x, lengths, np.asarray(pending, dtype=np.int64), np.zeros(len(pending), dtype=np.int64))
            pending.clear()

    for i, s in enumerate(records.seqs):
        if not s:
            continue  # an empty sequence has no tile (and no prediction)
        if len(s) <= width:
            pending.append(i)
            if len(pending) + held.count >= TILE_BLOCK:
                take_pending()
                yield held.flush()
            continue
        take_pending()
        encoded, _ = encode([s], alphabet)
        view = np.lib.stride_tricks.sliding_window_view(encoded[0], width)
        at = tile_starts(len(s), width, stride)
        for lo in range(0, len(at), TILE_BLOCK):
            part = at[lo: lo + TILE_BLOCK]
            held.add(view[part], np.full(len(part), width, dtype=np.int64), np.full(len(part), i, dtype=np.int64),
                     part)
            if held.count >= TILE_BLOCK:
                yield held.flush()
    take_pending()
    if held.count:
        yield held.flush()


def predict_tiles(predictor: Any, paths: Sequence[str], out: Path, *, stride: int | None = None,
                  aggregate: str = "max", batch_size: int = 256, chunk_size: int = 8192,
                  progress: Callable[[int, int | None], None] | None = None) -> int:
    """Tile every sequence of ``paths`` to the model's length and write ``out`` and its ``.tiles`` companion
    (see the module docstring). Returns the number of sequences."""
    contract = predictor.contract
    if contract.task != "sequence":
        raise ConfigError(f"tile=True cuts long sequences into tiles; a {contract.task} model takes whole inputs, "
                          "so drop tile")
    width = int(contract.max_len)
    stride = stride if stride is not None else max(1, width // 2)
    if not 1 <= stride <= width:
        raise ConfigError(f"stride {stride}: give 1 … {width} (the model's max_len), or leave it out for "
                          f"{max(1, width // 2)}")
    if aggregate not in AGGREGATES:
        raise ConfigError(f"aggregate {aggregate!r}: expected one of {', '.join(AGGREGATES)}")
    for p in paths:
        check_file(p)
    codec = predictor.codec
    with_labels = codec.labelled(paths)
    tiles_out = tiles_path(out)
    fd, tmp = temp_beside(out)
    fd_t, tmp_t = temp_beside(tiles_out)
    n, first = 0, True
    try:
        with os.fdopen(fd, "w", newline="") as fh, os.fdopen(fd_t, "w", newline="") as ft:
            for path in paths:
                for recs in iter_chunks(path, chunk_size, **codec._columns()):
                    if recs.labels is not None:  # a label the model never saw is an error, as without tiles
                        codec.labels_to_index(Inputs(list(recs.ids), Encoded(np.zeros((len(recs), 0), np.uint8)),
                                                     recs.labels, locate=recs.locate))
                    summary = _Summary(predictor.contract, len(recs))
                    for block in iter_tiles(recs, codec.alphabet, width, stride):
                        probs = predictor.predict_proba(block.x, block.lengths, batch_size=batch_size)
                        summary.add(block, probs)
                        _tile_frame(contract, recs, block, probs, stride).to_csv(
                            ft, index=False, header=first, float_format="%.6f", quoting=csv.QUOTE_MINIMAL)
                        first = False
                    summary.frame(recs, aggregate, with_labels).to_csv(
                        fh, index=False, header=n == 0, float_format="%.6f", quoting=csv.QUOTE_MINIMAL)
                    n += len(recs)
                    if progress is not None:
                        progress(n, None)
        if n == 0:
            raise DataError(f"no records in {', '.join(paths)}; nothing to predict")
        os.replace(tmp_t, tiles_out)
        os.replace(tmp, out)
    except OSError as e:  # disk full, a folder that went away: neither file is left half-written
        for t in (tmp, tmp_t):
            Path(t).unlink(missing_ok=True)
        raise DataError(f"cannot write {out} ({e.strerror or e}); free disk space or choose another path") from None
    except BaseException:
        for t in (tmp, tmp_t):
            Path(t).unlink(missing_ok=True)
        raise
    log.info("tiled %d sequences into tiles of %d (stride %d): %s; per tile: %s", n, width, stride, out, tiles_out)
    return n


def _tile_frame(contract: Any, recs: Records, block: TileBlock, probs: np.ndarray, stride: int) -> pd.DataFrame:
    names = contract.class_names
    # tile k (1-based) starts at (k - 1) · stride; the last one, moved to end at the sequence's end, is the next number
    cols: dict[str, Any] = {"id": np.asarray(recs.ids, dtype=object)[block.seq], "tile": -(-block.start // stride) + 1,
                            "start": block.start, "end": block.start + block.lengths}
    for c, name in enumerate(names):
        cols[f"p_{name}"] = probs[:, c]
    pred = contract.decide(probs)
    cols["prediction"] = [names[p] for p in pred]
    if contract.positive_index is not None:
        cols["decision"] = pred == contract.positive_index
    return pd.DataFrame(cols)


class _Summary:
    """Running mean and max of every class's probability per sequence of a chunk."""

    def __init__(self, contract: Any, n: int):
        self.contract = contract
        k = len(contract.class_names)
        self.sums, self.maxs, self.counts = np.zeros((n, k)), np.full((n, k), -np.inf), np.zeros(n, dtype=np.int64)

    def add(self, block: TileBlock, probs: np.ndarray) -> None:
        np.add.at(self.sums, block.seq, probs)
        np.maximum.at(self.maxs, block.seq, probs)
        np.add.at(self.counts, block.seq, 1)

    def frame(self, recs: Records, aggregate: str, with_labels: bool) -> pd.DataFrame:
        c = self.contract
        names, pos = c.class_names, c.positive_index
        none = self.counts == 0  # empty sequences: no tile, no prediction
        mean = np.where(none[:, None], np.nan, self.sums / np.maximum(self.counts, 1)[:, None])
        maxs = np.where(none[:, None], np.nan, self.maxs)
        decided = c.decide(np.nan_to_num(maxs if aggregate == "max" else mean))
        cols: dict[str, Any] = {"id": list(recs.ids)}
        if recs.labels is not None or with_labels:
            cols["label"] = list(recs.labels) if recs.labels is not None else [""] * len(recs)
        cols["length"] = [len(s) for s in recs.seqs]
        cols["tiles"] = self.counts
        for k in ([pos] if pos is not None else range(len(names))):
            cols[f"mean_p_{names[k]}"] = mean[:, k]
            cols[f"max_p_{names[k]}"] = maxs[:, k]
        cols["prediction"] = ["" if e else names[p] for p, e in zip(decided, none)]
        if pos is not None:
            cols["decision"] = pd.array([None if e else bool(p == pos) for p, e in zip(decided, none)], dtype="boolean")
        return pd.DataFrame(cols)
