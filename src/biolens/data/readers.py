"""Readers: FASTA (labels in headers, a CSV of labels, or one file per class) and CSV/TSV, gzip or not.

Readers return plain records (ids, sequences, labels, splits) and know where each record came from, so that
every later error can name the file and line.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyfastx

from biolens.data.images.decode import IMAGE_SUFFIXES
from biolens.data.splits import SPLITS
from biolens.data.sniff import check_text_file, open_text
from biolens.errors import DataError

log = logging.getLogger(__name__)

FASTA_SUFFIXES = {".fa", ".fasta", ".fna", ".faa", ".ffn", ".fas", ".frn", ".mpfa"}
TABLE_SUFFIXES = {".csv": ",", ".tsv": "\t", ".tab": "\t", ".txt": None}
_HEADER_KEY = re.compile(r"(?:^|\s)(label|split|group)=(\S+)")
_TARGET_KEY = re.compile(r"(?:^|\s)([A-Za-z_][\w.-]*)=(\S*)")  # any key=value of a header: targets (value=1.23)
_NOT_TARGETS = ("label", "split", "group")


@dataclass
class Records:
    """Sequences with optional labels and split names, plus where each came from."""

    ids: list[str]
    seqs: list[str]
    labels: list[str] | None
    splits: list[str] | None = None
    sources: list[str] = field(default_factory=list)  # one "file:line" per record (lazy for FASTA, see locate)
    groups: list[str] | None = None  # data.group_col (tables) or group= (FASTA headers): patient, subject, family
    # raw target texts by column (data.target_cols of a table, or key=value keys of FASTA headers), when given
    targets: dict[str, list[str]] | None = None
    _fasta_paths: list[tuple[Path, int]] = field(default_factory=list)  # (path, first record index) for FASTA

    def __len__(self) -> int:
        return len(self.seqs)

    def locate(self, i: int) -> str:
        """``file:line`` (FASTA: the header line) of record ``i``, for error messages."""
        if self.sources:
            return self.sources[i]
        for path, start in reversed(self._fasta_paths):
            if i >= start:
                return f"{path}:{_fasta_header_line(path, i - start)}"
        return f"record {i + 1}"

    @staticmethod
    def concat(parts: list[Records]) -> Records:
        offset, paths = 0, []
        for p in parts:
            paths += [(path, start + offset) for path, start in p._fasta_paths]
            offset += len(p)
        if any(p.sources for p in parts):  # mixed tables and FASTA: materialize every location
            paths = []
        has = lambda attr: all(getattr(p, attr) is not None for p in parts)  # noqa: E731
        return Records(
            ids=[i for p in parts for i in p.ids],
            seqs=[s for p in parts for s in p.seqs],
            labels=[x for p in parts for x in p.labels] if has("labels") else None,
            splits=[x for p in parts for x in p.splits] if has("splits") else None,
            groups=[x for p in parts for x in p.groups] if has("groups") else None,
            targets=_concat_targets(parts),
            sources=[s for p in parts for s in p.locations()] if not paths else [],
            _fasta_paths=paths,
        )

    def locations(self) -> list[str]:
        return self.sources or [self.locate(i) for i in range(len(self))]


def _concat_targets(parts: list[Records]) -> dict[str, list[str]] | None:
    """Target texts of concatenated parts: every key of any part, missing ("") where a part lacks it."""
    if not any(p.targets for p in parts):
        return None
    keys = list(dict.fromkeys(k for p in parts for k in (p.targets or {})))
    return {k: [x for p in parts for x in ((p.targets or {}).get(k) or [""] * len(p))] for k in keys}



def _open_text(path: Path):  # noqa: ANN202
    return open_text(path)


def _fasta_header_line(path: Path, k: int) -> int:
    """1-based line number of the k-th (0-based) FASTA header."""
    seen = -1
    with _open_text(path) as fh:
        for lineno, line in enumerate(fh, start=1):
            if line.startswith(">"):
                seen += 1
                if seen == k:
                    return lineno
    return 0


def check_file(path: str | Path) -> Path:
    """The path, if it is an existing, non-empty, complete UTF-8 text file (plain or gzip, by magic bytes); else a
    DataError saying what the file is and what to fix (``sniff.check_text_file``)."""
    return check_text_file(path).path


def file_format(path: Path) -> str:
    """``fasta`` or ``table``, from the suffix (ignoring .gz) or, failing that, the first character."""
    suffix = Path(path.stem).suffix.lower() if path.suffix == ".gz" else path.suffix.lower()
    if suffix in FASTA_SUFFIXES:
        return "fasta"
    if suffix in TABLE_SUFFIXES:
        return "table"
    with _open_text(path) as fh:
        first = fh.read(1)
    return "fasta" if first == ">" else "table"


def _without_bom(p: Path) -> Path:
    """A temporary copy of a FASTA file without its UTF-8 byte-order mark (pyfastx reads files, not streams)."""
    fd, tmp = tempfile.mkstemp(prefix="biolens-nobom-", suffix=".fa")
    with os.fdopen(fd, "w") as out, _open_text(p) as fh:  # utf-8-sig: the mark is dropped on reading
        shutil.copyfileobj(fh, out)
    return Path(tmp)


def _fastx(p: Path) -> Iterator[tuple[str, str, str]]:
    """(name, sequence, comment) for each FASTA record, via pyfastx (no index file written).

    The file was checked first (``check_file``: complete gzip, UTF-8, no NUL bytes); a byte-order mark is skipped.
    """
    source = _without_bom(p) if check_text_file(p).bom else p
    try:
        for record in pyfastx.Fastx(str(source), comment=True):
            if len(record) != 3:  # (name, seq, qual, comment): FASTQ
                raise DataError(f"{p} is FASTQ (reads with base qualities), not FASTA; convert it to FASTA "
                                "(e.g. seqtk seq -a) or give a CSV/TSV")
            yield record
    except RuntimeError as e:
        if "not fasta" in str(e):
            raise DataError(f"{p}: no FASTA records found (the first line must start with '>'); check the file format") from None
        raise DataError(f"{p}: cannot parse FASTA ({e}); check the file") from None
    except UnicodeDecodeError as e:  # the file changed after it was checked
        raise DataError(f"{p}: not UTF-8 text ({e.reason}); save the file as UTF-8") from None
    finally:
        if source != p:
            source.unlink(missing_ok=True)


def fasta_chunks(p: Path, chunk_size: int | None = None) -> Iterator[tuple[Records, list[str | None]]]:
    """The one FASTA parser (pyfastx, no index file written): records in chunks of ``chunk_size`` (all at once when
    None), with labels from ``label=`` headers (None where a header has none) and each header's ``split=``."""
    ids, seqs, labels, splits, groups, extra, n = [], [], [], [], [], [], 0
    for name, seq, comment in _fastx(p):
        keys = dict(_HEADER_KEY.findall(comment or ""))
        ids.append(name)
        seqs.append(seq)
        labels.append(keys.get("label"))
        splits.append(keys.get("split"))
        groups.append(keys.get("group"))
        extra.append({k: v for k, v in _TARGET_KEY.findall(comment or "") if k not in _NOT_TARGETS} if "=" in (
            comment or "") else {})
        if chunk_size is not None and len(seqs) == chunk_size:
            yield Records(ids, seqs, labels, None, _fasta_paths=[(p, -n)], groups=_present(groups),
                          targets=_header_targets(extra)), splits
            n += len(seqs)
            ids, seqs, labels, splits, groups, extra = [], [], [], [], [], []
    if seqs:
        yield Records(ids, seqs, labels, None, _fasta_paths=[(p, -n)], groups=_present(groups),
                      targets=_header_targets(extra)), splits


def _header_targets(extra: list[dict[str, str]]) -> dict[str, list[str]] | None:
    """``key=value`` pairs of a chunk's headers (other than label/split/group) by key; "" where a header lacks it."""
    if not any(extra):
        return None
    keys = list(dict.fromkeys(k for d in extra for k in d))
    return {k: [d.get(k, "") for d in extra] for k in keys}


def _present(groups: list[str | None]) -> list[str | None] | None:
    """``group=`` values of a chunk of headers, or None when no header has one."""
    return groups if any(g is not None for g in groups) else None


def read_fasta(path: str | Path, *, label: str | None = None, labels_from_header: bool = True) -> Records:
    """Read a FASTA file; labels come from ``label=`` in headers, or ``label`` for the whole file.

    Headers may also carry ``split=train|val|test``.
    """
    p = check_file(path)
    parsed = next(fasta_chunks(p), None)
    if parsed is None:
        raise DataError(f"{p}: no FASTA records found; check the file")
    recs, splits = parsed
    ids, labels = recs.ids, recs.labels if label is None else [label] * len(recs)
    recs.labels = labels
    if labels_from_header or label is not None:
        missing = [i for i, lab in enumerate(labels) if not lab]
        if missing and len(missing) < len(labels):
            i = missing[0]
            raise DataError(f"{recs.locate(i)}: header '>{ids[i]}' has no label; add ' label=CLASS' to every header")
        if missing:
            recs.labels = None
    else:
        recs.labels = None
    if recs.groups is not None and None in recs.groups:
        i = recs.groups.index(None)
        raise DataError(f"{recs.locate(i)}: header '>{ids[i]}' has no group= while others do; add it to every header "
                        "or none")
    present = [s for s in splits if s]
    if present:
        if len(present) < len(splits):
            i = splits.index(None)
            raise DataError(f"{recs.locate(i)}: header '>{ids[i]}' has no split= while others do; add it to every header or none")
        bad = next((i for i, s in enumerate(splits) if s not in SPLITS), None)
        if bad is not None:
            raise DataError(f"{recs.locate(bad)}: split={splits[bad]!r}; expected one of {', '.join(SPLITS)}")
        recs.splits = splits
    return recs


def _table_sep(p: Path) -> str | None:
    suffix = Path(p.stem).suffix.lower() if p.suffix == ".gz" else p.suffix.lower()
    return TABLE_SUFFIXES.get(suffix)


def _read_frame(p: Path, chunksize: int | None = None):
    """A DataFrame of strings (or an iterator of them with ``chunksize``); parse errors become DataError."""
    sep = _table_sep(p)
    try:
        return pd.read_csv(p, sep=sep, engine="python" if sep is None else "c", dtype=str, keep_default_na=False,
                           compression="gzip" if check_text_file(p).gzip else None, encoding="utf-8-sig",
                           chunksize=chunksize)
    except pd.errors.EmptyDataError:
        raise DataError(f"{p} has no rows; give a table with a header line and sequences") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise DataError(f"{p}: cannot parse as CSV/TSV ({str(e).splitlines()[0]}); check the delimiter and quoting") from None


def _image_path_hint(df: pd.DataFrame) -> str | None:
    """For a table read as sequences: the fix when one of its columns holds image file names (an image manifest
    whose path column is not called ``path``)."""
    for col in df.columns:
        values = [v for v in df[col].head(20) if isinstance(v, str) and v.strip()]
        if values and all(v.strip().lower().endswith(IMAGE_SUFFIXES) for v in values):
            return (f"column {col!r} holds image files: for an image manifest, rename it to 'path' or set "
                    f"data.image.path_col={col} (--set data.image.path_col={col})")
    return None


def _frame_records(df: pd.DataFrame, p: Path, first_row: int, *, seq_col: str, label_col: str | None, id_col: str,
                   split_col: str, require_labels: bool, group_col: str | None = None,
                   target_cols: list[str] | tuple[str, ...] = (), allow_empty_labels: bool = False) -> Records:
    """Records from a frame whose first row is data row ``first_row`` (0-based) of file ``p``; ``target_cols`` are
    read as raw texts into ``targets`` (checked later, by ``data/targets.py``) instead of the label column."""
    df.columns = [str(c).strip() for c in df.columns]
    cols = ", ".join(df.columns)
    if seq_col not in df.columns:
        raise DataError(f"{p}: no column {seq_col!r} (columns: {cols}); {_image_path_hint(df) or 'set data.seq_col=NAME'}")
    absent = [c for c in target_cols if c not in df.columns]
    if absent and (require_labels or len(absent) < len(target_cols)):
        raise DataError(f"{p}: no column {absent[0]!r} (columns: {cols}); set data.target_cols to the target columns")
    if target_cols and not absent:
        recs = _frame_records(df, p, first_row, seq_col=seq_col, label_col=None, id_col=id_col, split_col=split_col,
                              require_labels=False, group_col=group_col)
        recs.targets = {c: [str(x).strip() for x in df[c]] for c in target_cols}
        return recs
    if require_labels and not target_cols and label_col not in df.columns:
        raise DataError(f"{p}: no column {label_col!r} (columns: {cols}); set data.label_col=NAME")
    lines = range(first_row + 2, first_row + 2 + len(df))  # line 1 is the header
    sources = [f"{p}:{n}" for n in lines]
    seqs = [s.strip() for s in df[seq_col]]
    ids = list(df[id_col]) if id_col in df.columns else [f"{p.name}:{n}" for n in lines]
    labels = None
    if label_col in df.columns:
        labels = [str(x).strip() for x in df[label_col]]
        empty = next((i for i, x in enumerate(labels) if not x), None) if not allow_empty_labels else None
        if empty is not None:
            raise DataError(f"{sources[empty]}: empty value in column {label_col!r}; give every row a label")
    splits = None
    if split_col in df.columns:
        splits = [str(x).strip().lower() for x in df[split_col]]
        bad = next((i for i, s in enumerate(splits) if s not in SPLITS), None)
        if bad is not None:
            raise DataError(f"{sources[bad]}: {split_col}={splits[bad]!r}; expected one of {', '.join(SPLITS)}")
    groups = None
    if group_col is not None:
        if group_col not in df.columns:
            raise DataError(f"{p}: no column {group_col!r} (columns: {cols}); set data.group_col=NAME or leave it unset")
        groups = [str(x).strip() for x in df[group_col]]
        empty = next((i for i, x in enumerate(groups) if not x), None)
        if empty is not None:
            raise DataError(f"{sources[empty]}: empty value in column {group_col!r}; give every row a group "
                            "(e.g. its own id when it shares none)")
    return Records(ids, seqs, labels, splits, sources, groups=groups)


def read_table(
    path: str | Path,
    *,
    seq_col: str = "sequence",
    label_col: str | None = "label",
    id_col: str = "id",
    split_col: str = "split",
    require_labels: bool = True,
    group_col: str | None = None,
    target_cols: list[str] | tuple[str, ...] = (),
    allow_empty_labels: bool = False,
) -> Records:
    """Read a CSV/TSV (optionally gzipped) with named sequence and label (and optionally group) columns, or with
    target columns (``target_cols``: regression values, 0/1 labels) read as raw texts. ``allow_empty_labels``: empty
    label cells are kept (an empty label set, a missing value) for ``data/targets.py`` to judge."""
    p = check_file(path)
    df = _read_frame(p)
    kw = dict(seq_col=seq_col, label_col=label_col, id_col=id_col, split_col=split_col, require_labels=require_labels,
              group_col=group_col, target_cols=target_cols, allow_empty_labels=allow_empty_labels)
    if df.empty:
        _frame_records(df, p, 0, **kw)  # missing columns first: a more useful message
        raise DataError(f"{p} has a header but no rows; add sequences")
    return _frame_records(df, p, 0, **kw)


def _attach_labels(recs: Records, labels_csv: str | Path, id_col: str, label_col: str) -> Records:
    p = check_file(labels_csv)
    df = _read_frame(p)
    for col in (id_col, label_col):
        if col not in df.columns:
            raise DataError(f"{p}: no column {col!r} (columns: {', '.join(df.columns)}); it must map {id_col} to {label_col}")
    mapping = dict(zip(df[id_col].str.strip(), df[label_col].str.strip()))
    missing = next((i for i, x in enumerate(recs.ids) if x not in mapping), None)
    if missing is not None:
        raise DataError(f"{recs.locate(missing)}: id {recs.ids[missing]!r} has no label in {p}; add a row for it")
    recs.labels = [mapping[x] for x in recs.ids]
    return recs


def read_source(
    spec: str | list[str],
    *,
    labels_csv: str | None = None,
    seq_col: str = "sequence",
    label_col: str = "label",
    id_col: str = "id",
    split_col: str = "split",
    require_labels: bool = True,
    group_col: str | None = None,
    target_cols: list[str] | tuple[str, ...] = (),
    allow_empty_labels: bool = False,
) -> Records:
    """Read one data source: a file, or a list of ``LABEL=FASTA`` entries (one file per class).

    Groups (patient, subject, family) come from ``group_col`` of a table, or from ``group=`` in FASTA headers.
    Targets other than one label per record come from ``target_cols`` of a table or ``key=value`` FASTA headers."""
    items = [spec] if isinstance(spec, str) else list(spec)
    per_class = [s for s in items if "=" in s and not Path(s).exists()]
    if per_class:
        if len(per_class) != len(items):
            raise DataError("mix of LABEL=FILE and plain files; give every class file as LABEL=FILE")
        parts = []
        for item in items:
            label, _, file = item.partition("=")
            if not label.strip():
                raise DataError(f"{item!r}: empty label; write LABEL=FILE")
            parts.append(read_fasta(file, label=label.strip()))
        return Records.concat(parts)
    if len(items) > 1:
        return Records.concat([read_source(s, labels_csv=labels_csv, seq_col=seq_col, label_col=label_col, id_col=id_col,
                                           split_col=split_col, require_labels=require_labels, group_col=group_col,
                                           target_cols=target_cols, allow_empty_labels=allow_empty_labels)
                               for s in items])
    p = check_file(items[0])
    if file_format(p) == "fasta":
        recs = read_fasta(p, labels_from_header=labels_csv is None)
        if labels_csv is not None:
            recs = _attach_labels(recs, labels_csv, id_col, label_col)
    else:
        recs = read_table(p, seq_col=seq_col, label_col=label_col, id_col=id_col, split_col=split_col,
                          require_labels=require_labels, group_col=group_col, target_cols=target_cols,
                          allow_empty_labels=allow_empty_labels)
    if require_labels and recs.labels is None and not recs.targets:
        raise DataError(
            f"{recs.locate(0)}: header '>{recs.ids[0]}' has no label; add ' label=CLASS' to every header, "
            "set data.labels=labels.csv, or give one FASTA per class as LABEL=FILE"
        )
    return recs


def has_labels(path: str | Path, **kwargs) -> bool:
    """Whether a FASTA/table carries labels (from its first record or its header line)."""
    first = next(iter_chunks(path, 1, **kwargs), None)
    return first is not None and (first.labels is not None or bool(first.targets))


def iter_chunks(path: str | Path, chunk_size: int = 8192, **kwargs) -> Iterator[Records]:
    """Stream a FASTA or table in chunks of ``chunk_size`` records (constant memory), labels optional but all or
    none: a FASTA whose headers stop (or start) carrying ``label=`` half-way is a DataError naming the record.

    ``kwargs`` are the table column names (seq_col, label_col, id_col, split_col).
    """
    p = check_file(path)
    if file_format(p) == "fasta":
        kwargs.pop("target_cols", None)  # FASTA targets are the headers' key=value pairs
        labelled: bool | None = None
        for recs, _ in fasta_chunks(p, chunk_size):
            has = [bool(lab) for lab in recs.labels]
            if labelled is None:
                labelled = has[0]
            odd = next((i for i, h in enumerate(has) if h != labelled), None)
            if odd is not None:
                state = "has no label while earlier headers have one" if labelled else "has a label while earlier ones do not"
                raise DataError(f"{recs.locate(odd)}: header '>{recs.ids[odd]}' {state}; give ' label=CLASS' on every "
                                "header or on none")
            if not labelled:
                recs.labels = None
            yield recs
        return
    reader, first = _read_frame(p, chunksize=chunk_size), 0
    while True:
        try:
            df = next(reader)
        except StopIteration:
            return
        except (pd.errors.ParserError, UnicodeDecodeError) as e:
            raise DataError(f"{p}: cannot parse as CSV/TSV ({str(e).splitlines()[0]}); check the delimiter and quoting") from None
        cols = {"seq_col": "sequence", "label_col": "label", "id_col": "id", "split_col": "split", **kwargs}
        recs = _frame_records(df, p, first, require_labels=False, **cols)  # columns are checked even with no rows
        if len(recs):
            yield recs
        first += len(df)
