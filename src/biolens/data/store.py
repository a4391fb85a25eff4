"""Encode once, on disk: a sequence file streamed chunk by chunk into a memory-mapped uint8 store.

The store holds the encoded rows ``(N, L)`` (PAD=0) in a flat file, plus small per-record arrays: encoded and
original lengths, label codes, split names, ids and two 64-bit hashes per row (of the encoded bytes and of the
reverse complement's), so duplicate grouping, stratified splits and the leakage report work without holding the
sequences as strings. Like the image cache (``data/images/cache.py``), an entry is keyed by every input file's
path, size and modification time plus the settings that change the bytes (alphabet, max_len, columns), written
under a temporary name and published by ``os.replace``; the JSON meta file is written last, so an entry counts as
complete only once it exists.

Reading stays bounded: rows are copied out with positional reads in sorted order (``RowReader``), never faulted
in through the mapping, so a pass over a store larger than RAM keeps the process's resident set small (the
kernel's page cache, which serves repeated epochs, is not part of it).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from biolens.data.alphabets import ALPHABETS, INVALID, Alphabet, get_alphabet
from biolens.data.augment import reverse_complement_np
from biolens.data.cachedir import cache_root, file_stamp, writable_cache
from biolens.data.encoding import RecordError, detect_alphabet, encode
from biolens.data.readers import (Records, _open_text, _read_frame, check_file, fasta_chunks, file_format,
                                  iter_chunks)
from biolens.data.splits import SPLITS
from biolens.errors import DataError

log = logging.getLogger(__name__)

STORE_VERSION = 1
CHUNK_BYTES = 1 << 21  # encoded bytes per build chunk: bounds the temporaries of encode / reverse complement


def default_cache_dir() -> Path:
    return cache_root("sequences")


def available_memory() -> int:
    """Bytes of memory available to new allocations (``MemAvailable``; free pages where that is unknown)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Source:
    """One input file: ``label`` for every record (``LABEL=FILE``), ``split`` for every record (``--val``/``--test``
    files, or ``train`` for the main file when those are given), table columns and an optional labels CSV."""

    path: Path
    label: str | None = None
    split: str | None = None
    columns: tuple[str, str, str, str] = ("sequence", "label", "id", "split")  # seq, label, id, split
    labels_csv: Path | None = None


def store_key(sources: list[Source], alphabet: str, max_len: int | None) -> str:
    h = hashlib.sha256(f"v{STORE_VERSION}|{alphabet}|{max_len}".encode())
    for s in sources:
        for p in (s.path, s.labels_csv):
            if p is not None:
                h.update(file_stamp(p).encode())
        h.update(f"|{s.label}|{s.split}|{','.join(s.columns)}".encode())
    return h.hexdigest()[:32]


# ---------------------------------------------------------------------------------------------------------------
# the store


@dataclass
class SequenceStore:
    """Encoded rows ``x`` ``(N, L)`` uint8 (memory-mapped) and per-record arrays, in file order."""

    x: np.ndarray
    lengths: np.ndarray  # encoded (post-truncation) lengths, int64
    raw_lengths: np.ndarray  # original lengths, int64
    exact: np.ndarray  # uint64 hash of the encoded row
    canonical: np.ndarray  # uint64: min(exact, hash of the reverse complement) for dna/rna, else exact
    labels: np.ndarray  # int64 codes into label_names (sorted)
    label_names: list[str]
    splits: np.ndarray | None  # split name per record, or None when the data name no split
    ids: np.ndarray
    alphabet: Alphabet
    sources: list[tuple[str, int, str]]  # (file, index of its first record, "fasta" | "table")
    path: Path
    from_cache: bool

    def __len__(self) -> int:
        return len(self.x)

    def locate(self, i: int) -> str:
        return self.locate_many(np.array([i]))[0]

    def locate_many(self, index: np.ndarray) -> list[str]:
        """``file:line`` of each record (FASTA: its header line), reading each FASTA file at most once."""
        index = np.asarray(index, dtype=np.int64)
        out = [""] * len(index)
        starts = np.array([s for _, s, _ in self.sources] + [len(self)])
        which = np.searchsorted(starts, index, side="right") - 1
        for k, (path, start, kind) in enumerate(self.sources):
            pos = np.flatnonzero(which == k)
            if not pos.size:
                continue
            local = index[pos] - start
            if kind == "table":
                lines = local + 2  # line 1 is the header
            else:
                lines = _fasta_header_lines(Path(path), local)
            for p, line in zip(pos, lines):
                out[p] = f"{path}:{int(line)}"
        return out


def _fasta_header_lines(path: Path, ks: np.ndarray) -> np.ndarray:
    """1-based line numbers of the FASTA headers number ``ks`` (0-based), in one pass over the file."""
    order = np.argsort(ks, kind="stable")
    wanted = ks[order]
    found = np.zeros(len(ks), dtype=np.int64)
    j, seen = 0, -1
    with _open_text(path) as fh:
        for lineno, line in enumerate(fh, start=1):
            if line.startswith(">"):
                seen += 1
                while j < len(wanted) and wanted[j] == seen:
                    found[order[j]] = lineno
                    j += 1
                if j == len(wanted):
                    break
    return found


def _row_hashes(x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """64-bit BLAKE2b of every row's sequence bytes (its first ``lengths`` bytes)."""
    w = x.shape[1]
    buf = memoryview(np.ascontiguousarray(x).tobytes())
    starts = np.arange(len(x)) * w
    stops = starts + lengths
    digests = b"".join(hashlib.blake2b(buf[a:b], digest_size=8).digest()
                       for a, b in zip(starts.tolist(), stops.tolist()))
    return np.frombuffer(digests, dtype="<u8").astype(np.uint64)


def _sequence_hashes(x: np.ndarray, lengths: np.ndarray, alphabet: Alphabet) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of each encoded sequence and of its reverse complement (the same for protein): equal hashes ⇔ equal
    sequences (up to 64-bit collisions)."""
    exact = _row_hashes(x, lengths)
    if not alphabet.is_nucleic:
        return exact, exact
    return exact, _row_hashes(reverse_complement_np(x, lengths, alphabet), lengths)


def _same_alphabet(seqs: list[str], alphabet: Alphabet) -> bool:
    """Whether auto-detection over ``seqs`` is sure to give ``alphabet`` again (every byte a valid dna/rna one)."""
    if not alphabet.is_nucleic:
        return False  # nucleotide-only chunks are valid protein too: let detection decide
    present = np.bincount(np.frombuffer("".join(seqs).encode("latin-1", errors="replace"), dtype=np.uint8),
                          minlength=256) > 0
    return not (present & (alphabet.lut == INVALID)).any()


def _labels_map(src: Source) -> dict[str, str]:
    p = check_file(src.labels_csv)
    df = _read_frame(p)
    id_col, label_col = src.columns[2], src.columns[1]
    for col in (id_col, label_col):
        if col not in df.columns:
            raise DataError(f"{p}: no column {col!r} (columns: {', '.join(df.columns)}); it must map {id_col} to {label_col}")
    return dict(zip(df[id_col].str.strip(), df[label_col].str.strip()))


def source_chunks(src: Source, chunk_size: int) -> Iterator[Records]:
    """Labelled records of one source in chunks; every record has a label, and a split where the data name one.

    Label and split problems raise DataError naming the file and line, as the in-memory readers do.
    """
    p = check_file(src.path)
    seq_col, label_col, id_col, split_col = src.columns
    mapping = _labels_map(src) if src.labels_csv is not None else None
    if file_format(p) == "fasta":
        first_has_split: bool | None = None
        for recs, splits in fasta_chunks(p, chunk_size):
            if src.label is not None:
                recs.labels = [src.label] * len(recs)
            elif mapping is not None:
                bad = next((i for i, x in enumerate(recs.ids) if x not in mapping), None)
                if bad is not None:
                    raise DataError(f"{recs.locate(bad)}: id {recs.ids[bad]!r} has no label in {src.labels_csv}; add a row for it")
                recs.labels = [mapping[x] for x in recs.ids]
            else:
                bad = next((i for i, lab in enumerate(recs.labels) if not lab), None)
                if bad is not None:
                    raise DataError(
                        f"{recs.locate(bad)}: header '>{recs.ids[bad]}' has no label; add ' label=CLASS' to every header, "
                        "set data.labels=labels.csv, or give one FASTA per class as LABEL=FILE")
            if first_has_split is None:
                first_has_split = splits[0] is not None
            mismatch = next((i for i, s in enumerate(splits) if (s is not None) != first_has_split), None)
            if mismatch is not None:
                raise DataError(f"{recs.locate(mismatch)}: header '>{recs.ids[mismatch]}' "
                                f"{'has no split=' if first_has_split else 'has split='} while earlier headers "
                                f"{'do' if first_has_split else 'do not'}; add it to every header or none")
            if first_has_split:
                bad = next((i for i, s in enumerate(splits) if s not in SPLITS), None)
                if bad is not None:
                    raise DataError(f"{recs.locate(bad)}: split={splits[bad]!r}; expected one of {', '.join(SPLITS)}")
                recs.splits = splits
            if src.split is not None:
                recs.splits = [src.split] * len(recs)
            yield recs
        return
    cols = dict(seq_col=seq_col, label_col=label_col, id_col=id_col, split_col=split_col)
    for recs in iter_chunks(p, chunk_size, **cols):
        if src.label is not None:  # one label for every record (unlabelled data: a placeholder)
            recs.labels = [src.label] * len(recs)
        if recs.labels is None:
            raise DataError(f"{p}: no column {label_col!r}; set data.label_col=NAME")
        if src.split is not None:
            recs.splits = [src.split] * len(recs)
        yield recs


def _located(recs: Records, err: RecordError) -> DataError:
    return DataError(f"{recs.locate(err.index)}: {err.detail}")


def _resolve_width(sources: list[Source], max_len: int | None) -> int:
    """``max_len``, or the longest training sequence: one parsing pass that keeps only lengths and splits."""
    if max_len is not None:
        return max_len
    longest, any_split, longest_train = 1, True, 0
    for src in sources:
        for recs in source_chunks(src, 8192):
            lengths = np.fromiter(map(len, recs.seqs), dtype=np.int64, count=len(recs))
            longest = max(longest, int(lengths.max(initial=1)))
            if recs.splits is None:
                any_split = False
            else:
                train = lengths[np.asarray(recs.splits) == "train"]
                longest_train = max(longest_train, int(train.max(initial=0)))
    return max(longest_train, 1) if any_split else longest


def open_or_build(sources: list[Source], *, alphabet: str = "auto", max_len: int | None = None,
                  cache_dir: Path | None = None) -> SequenceStore:
    """The store of ``sources`` from the cache, or built by streaming every file once (twice without max_len).

    Args:
        sources: input files in order (main, then --val, then --test).
        alphabet: ``auto`` (detected per chunk; chunks that disagree are a mixed-alphabet error) or a name.
        max_len: row width; default the longest training sequence.
        cache_dir: where entries live; default ``$BIOLENS_CACHE/sequences`` or ``~/.cache/biolens/sequences``.
    """
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    key = store_key(sources, alphabet, max_len)
    meta_file, data_file, arrays_file = (cache_dir / f"{key}.{ext}" for ext in ("json", "u8", "npz"))
    if meta_file.is_file() and data_file.is_file() and arrays_file.is_file():
        try:
            store = _open(meta_file, data_file, arrays_file, from_cache=True)
        except DataError as e:  # a damaged entry is never reused: rebuild it
            log.warning("%s; rebuilding it", e)
        else:
            log.info("sequence store hit: %s", data_file)
            return store
    writable_cache(cache_dir, "data.store_dir")
    width = _resolve_width(sources, max_len)
    rows_per_chunk = int(np.clip(CHUNK_BYTES // width, 16, 8192))
    alpha = None if alphabet == "auto" else get_alphabet(alphabet)
    tag = f".{os.getpid()}.tmp"
    tmp_data = data_file.with_name(f".{data_file.name}{tag}")
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("lengths", "raw", "exact", "rc", "labels")}
    ids: list[str] = []
    splits: list[str | None] = []
    label_codes: dict[str, int] = {}
    sources_meta: list[tuple[str, int, str]] = []
    n = 0
    log.info("building sequence store %s (width %d) from %s", data_file, width, ", ".join(str(s.path) for s in sources))
    try:
        with open(tmp_data, "wb") as fh:
            for src in sources:
                sources_meta.append((str(src.path), n, file_format(check_file(src.path))))
                for recs in source_chunks(src, rows_per_chunk):
                    if alphabet == "auto" and not (alpha is not None and _same_alphabet(recs.seqs, alpha)):
                        try:
                            name = detect_alphabet(recs.seqs)
                        except RecordError as e:
                            raise _located(recs, e) from None
                        if alpha is None:
                            alpha = ALPHABETS[name]
                        elif alpha.is_nucleic != (name != "protein"):  # dna vs rna: encode names the odd base
                            raise DataError(f"{recs.locate(0)}: mixed alphabets: records from here on look like {name} "
                                            f"while earlier ones are {alpha.name}; use separate files or set the alphabet explicitly")
                    try:
                        x, lengths = encode(recs.seqs, alpha, width)
                    except RecordError as e:
                        raise _located(recs, e) from None
                    fh.write(x.tobytes())
                    parts["lengths"].append(lengths)
                    parts["raw"].append(np.fromiter(map(len, recs.seqs), dtype=np.int64, count=len(recs)))
                    exact, rc = _sequence_hashes(x, lengths, alpha)
                    parts["exact"].append(exact)
                    parts["rc"].append(rc)
                    codes = np.array([label_codes.setdefault(lab, len(label_codes)) for lab in recs.labels], dtype=np.int64)
                    parts["labels"].append(codes)
                    ids += recs.ids
                    splits += recs.splits if recs.splits is not None else [None] * len(recs)
                    n += len(recs)
        if n == 0:
            raise DataError(f"{sources[0].path}: no records found; check the file")
        names = sorted(label_codes)
        remap = np.array([names.index(k) for k in label_codes], dtype=np.int64)
        exact = np.concatenate(parts["exact"])
        canonical = np.minimum(exact, np.concatenate(parts["rc"]))
        arrays = {
            "lengths": np.concatenate(parts["lengths"]), "raw_lengths": np.concatenate(parts["raw"]),
            "exact": exact, "canonical": canonical, "labels": remap[np.concatenate(parts["labels"])],
            "ids": np.array(ids, dtype=str),
        }
        has_split = all(s is not None for s in splits)
        if has_split:
            arrays["splits"] = np.array(splits, dtype=str)
        tmp_arrays = arrays_file.with_name(f".{arrays_file.name}{tag}")
        with open(tmp_arrays, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp_data, data_file)
        os.replace(tmp_arrays, arrays_file)
        meta_tmp = meta_file.with_name(f".{meta_file.name}{tag}")
        meta_tmp.write_text(json.dumps({"version": STORE_VERSION, "shape": [n, width], "alphabet": alpha.name,
                                        "label_names": names, "sources": sources_meta}))
        os.replace(meta_tmp, meta_file)  # the entry counts as complete only once its meta file exists
    finally:
        for leftover in cache_dir.glob(f".{key}.*{tag}"):
            leftover.unlink(missing_ok=True)
    log.info("sequence store: %d records × %d in %s", n, width, data_file)
    return _open(meta_file, data_file, arrays_file, from_cache=False)


def _open(meta_file: Path, data_file: Path, arrays_file: Path, from_cache: bool) -> SequenceStore:
    """The entry's arrays; DataError (naming the file) when any part is damaged or does not match the others."""
    try:
        meta = json.loads(meta_file.read_text())
        version, shape = meta.get("version"), tuple(int(v) for v in meta["shape"])
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as e:
        raise DataError(f"{meta_file}: unreadable sequence store meta file ({e}); delete it to rebuild") from None
    if version != STORE_VERSION:
        raise DataError(f"{meta_file}: sequence store version {version} (expected {STORE_VERSION}); "
                        "delete the file to rebuild the store")
    if len(shape) != 2 or data_file.stat().st_size != shape[0] * shape[1]:
        raise DataError(f"{data_file}: sequence store holds {data_file.stat().st_size} bytes, not the "
                        f"{' × '.join(map(str, shape))} its meta file names; delete it to rebuild")
    try:
        with np.load(arrays_file, allow_pickle=False) as z:
            a = {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise DataError(f"{arrays_file}: unreadable sequence store arrays ({e}); delete it to rebuild") from None
    names = ("lengths", "raw_lengths", "exact", "canonical", "labels", "ids")
    bad = next((k for k in (*names, "splits") if (k in names or k in a) and len(a.get(k, ())) != shape[0]), None)
    if bad is not None:
        raise DataError(f"{arrays_file}: sequence store array {bad!r} does not hold {shape[0]} records; "
                        "delete it to rebuild")
    x = np.memmap(data_file, dtype=np.uint8, mode="r", shape=shape)
    return SequenceStore(
        x=x, lengths=a["lengths"], raw_lengths=a["raw_lengths"], exact=a["exact"], canonical=a["canonical"],
        labels=a["labels"], label_names=list(meta["label_names"]), splits=a.get("splits"), ids=a["ids"],
        alphabet=get_alphabet(meta["alphabet"]), sources=[tuple(s) for s in meta["sources"]], path=data_file,
        from_cache=from_cache,
    )
