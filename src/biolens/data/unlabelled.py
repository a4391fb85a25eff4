"""Unlabelled sequences for self-supervised pretraining: FASTA/CSV/TSV (labels ignored), bundled sets, or a store.

Reading follows ``prepare_sequences`` where it can: the same readers, alphabet detection, encoding, and the same
``data.store`` rule (``auto`` streams a file too large for RAM into the memory-mapped store of ``data/store.py``,
whose rows are then read in batches, never all at once). Labels are not needed and not read. Records with a
``split`` column (bundled sets, or a split column in the file) keep it, so pretraining can leave the test split
out and a later fine-tune on the same file is tested on sequences the encoder never saw.

``window=W`` cuts every record into non-overlapping windows of ``W`` (a genome, a proteome, chromosome-sized
records), keeping a last window of at least ``W / 2``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from biolens.config import DataConfig
from biolens.data.alphabets import Alphabet
from biolens.data.builtin import get_builtin, is_builtin
from biolens.data.dataset import SequenceData
from biolens.data.encoding import RecordError, encode, find_invalid, invalid_symbol_error, resolve_alphabet
from biolens.data.prepare import resolve_store
from biolens.data.readers import Records, check_file, file_format, read_fasta, read_table
from biolens.data.store import Source, open_or_build
from biolens.errors import ConfigError, DataError

log = logging.getLogger(__name__)

PLACEHOLDER = "-"  # the store keys records by label; unlabelled records all get this one


@dataclass
class Unlabelled:
    """Encoded rows (in RAM, or the store's memmap), lengths, ids and split names (None when the data have none)."""

    x: np.ndarray
    lengths: np.ndarray
    ids: np.ndarray
    splits: np.ndarray | None
    alphabet: Alphabet
    max_len: int
    stored: dict | None = None  # the store's path and rows on the streamed path

    def __len__(self) -> int:
        return len(self.lengths)

    def part(self, rows: np.ndarray) -> SequenceData:
        """A split over ``rows`` (no labels); memory-mapped rows stay on disk."""
        rows = np.asarray(rows, dtype=np.int64)
        if self.stored is not None:
            return SequenceData(self.ids[rows], self.x, self.lengths[rows], None, self.alphabet, rows=rows)
        return SequenceData(self.ids[rows], self.x[rows], self.lengths[rows], None, self.alphabet)


def _files(cfg: DataConfig) -> list[str]:
    items = [cfg.path] if isinstance(cfg.path, str) else list(cfg.path)
    # LABEL=FILE entries: the file only (labels are not used)
    return [item.partition("=")[2] if "=" in item and not Path(item).exists() else item for item in items]


def _read_one(path: str, cols: dict[str, str]) -> Records:
    """One FASTA (labels in headers ignored, even partial ones) or table (label column not needed)."""
    p = check_file(path)
    if file_format(p) == "fasta":
        return read_fasta(p, labels_from_header=False)
    return read_table(p, require_labels=False, **cols)


def windows(recs: Records, width: int) -> Records:
    """Non-overlapping windows of ``width`` of every record (a last one of at least ``width / 2`` kept), with ids
    ``name:start-end`` (0-based, end exclusive); one slice per window, no per-character Python."""
    ids, seqs, splits, sources = [], [], [], []
    for i, (name, seq) in enumerate(zip(recs.ids, recs.seqs)):
        starts = range(0, max(len(seq), 1), width)
        for start in starts:
            piece = seq[start:start + width]
            if len(piece) < max(1, width // 2) and start > 0:
                continue
            ids.append(f"{name}:{start}-{start + len(piece)}")
            seqs.append(piece)
            splits.append(recs.splits[i] if recs.splits is not None else None)
            sources.append(recs.locate(i))
    return Records(ids, seqs, None, splits if recs.splits is not None else None, sources)


def read_unlabelled(cfg: DataConfig, window: int | None = None) -> Unlabelled:
    """The sequences of ``cfg.path`` (and ``cfg.val`` / ``cfg.test`` files, as those splits), encoded.

    Raises DataError naming the file and line for unreadable records, invalid characters or mixed alphabets.
    """
    if window is not None and window < 1:
        raise ConfigError(f"window must be a positive number of positions; got {window}")
    if resolve_store(cfg) == "mmap":
        if window is not None:
            raise ConfigError("window= reads the data in memory; cut windows beforehand for data.store=mmap, or set "
                              "data.store=memory")
        return _stored(cfg)
    cols = dict(seq_col=cfg.seq_col, label_col=cfg.label_col, id_col=cfg.id_col, split_col=cfg.split_col)
    if is_builtin(cfg.path):
        parts = [read_table(get_builtin(cfg.path).path, require_labels=False)]
    else:
        parts = [_read_one(f, cols) for f in _files(cfg)]
    names = [p.splits for p in parts]
    for split in ("val", "test"):
        path = getattr(cfg, split)
        if path is not None:  # explicit val/test files: every record of the main files is train
            extra = _read_one(path, cols)
            parts.append(extra)
            names.append([split] * len(extra))
    if cfg.val is not None or cfg.test is not None:
        main = len(parts) - sum(getattr(cfg, s) is not None for s in ("val", "test"))
        names[:main] = [["train"] * len(p) for p in parts[:main]]
    recs = Records.concat(parts) if len(parts) > 1 else parts[0]
    recs.splits = [s for n in names for s in n] if all(n is not None for n in names) else None
    recs.labels = None
    if window is not None:
        recs = windows(recs, window)
    try:
        alphabet = resolve_alphabet(cfg.alphabet, recs.seqs)
    except RecordError as e:
        raise DataError(f"{recs.locate(e.index)}: {e.detail}") from None
    bad = find_invalid(recs.seqs, alphabet)
    if bad is not None:
        e = invalid_symbol_error(bad, alphabet)
        raise DataError(f"{recs.locate(e.index)}: {e.detail}")
    lengths = np.fromiter(map(len, recs.seqs), dtype=np.int64, count=len(recs))
    max_len = cfg.max_len or int(lengths.max(initial=1))
    x, enc_lengths = encode(recs.seqs, alphabet, max_len)
    splits = np.array(recs.splits, dtype=object) if recs.splits is not None else None
    return Unlabelled(x, enc_lengths, np.array(recs.ids, dtype=object), splits, alphabet, max_len)


def _stored(cfg: DataConfig) -> Unlabelled:
    cols = (cfg.seq_col, cfg.label_col, cfg.id_col, cfg.split_col)
    if is_builtin(cfg.path):
        sources = [Source(Path(get_builtin(cfg.path).path), label=PLACEHOLDER, columns=cols)]
    else:
        forced = "train" if cfg.val is not None or cfg.test is not None else None
        sources = [Source(Path(f), label=PLACEHOLDER, split=forced, columns=cols) for f in _files(cfg)]
        sources += [Source(Path(p), label=PLACEHOLDER, split=s, columns=cols)
                    for s, p in (("val", cfg.val), ("test", cfg.test)) if p is not None]
    store = open_or_build(sources, alphabet=cfg.alphabet, max_len=cfg.max_len,
                          cache_dir=Path(cfg.store_dir) if cfg.store_dir else None)
    log.info("pretraining reads %d sequences from the store %s", len(store), store.path)
    return Unlabelled(store.x, store.lengths, store.ids.astype(object), store.splits, store.alphabet,
                      int(store.x.shape[1]), stored={"path": str(store.path), "rows": len(store),
                                                     "width": int(store.x.shape[1]), "cache_hit": store.from_cache})
