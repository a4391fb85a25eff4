"""From a DataConfig to encoded, filtered, split and leakage-checked data, or a one-line error."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from biolens.config import DataConfig, IntervalConfig
from biolens.data.alphabets import Alphabet, get_alphabet
from biolens.data.builtin import get_builtin, is_builtin
from biolens.data.classes import pick_positive
from biolens.data.dataset import SequenceData
from biolens.data.encoding import RecordError, encode, find_invalid, invalid_symbol_error, length_stats, resolve_alphabet
from biolens.data.intervals import overlap_leakage
from biolens.data.quality import quality_filter, resolve_quality, summarize
from biolens.data.readers import Records, read_source, read_table
from biolens.data.similarity import default_kmer, merge_groups, similar_sequences
from biolens.data.splits import SPLITS, find_leakage, may_be_empty, read_assignment, sequence_keys, stratified_split
from biolens.data.rows import RowReader
from biolens.data.store import Source, available_memory, open_or_build
from biolens.data.targets import Targets, read_targets, record_targets, target_report
from biolens.data.windows import NEGATIVE, interval_windows
from biolens.errors import BiolensWarning, ConfigError, DataError

log = logging.getLogger(__name__)


@dataclass
class PreparedData:
    splits: dict[str, SequenceData]
    alphabet: Alphabet
    class_names: list[str]
    positive_class: str | None
    max_len: int
    config: DataConfig  # resolved: every automatic choice written out
    report: dict[str, Any] = field(default_factory=dict)
    filtered: list[dict[str, str]] = field(default_factory=list)
    genome: dict[str, Any] | None = None  # windows cut from a genome: its identity (name, contig lengths, checksum)
    records: Any = None  # pandas DataFrame of the used records: row, id, label, split, group (see SplitRecords)


def located(recs: Records, err: RecordError) -> DataError:
    return DataError(f"{recs.locate(err.index)}: {err.detail}")


def check_alphabet(recs: Records, alphabet: Alphabet) -> None:
    bad = find_invalid(recs.seqs, alphabet)
    if bad is not None:
        raise located(recs, invalid_symbol_error(bad, alphabet))


def _read(cfg: DataConfig) -> tuple[Records, np.ndarray | None, bool]:
    """All records (main, then --val, then --test), their split names if known, and strandedness."""
    kw = dict(seq_col=cfg.seq_col, label_col=cfg.label_col, id_col=cfg.id_col, split_col=cfg.split_col,
              group_col=cfg.group_col, target_cols=tuple(cfg.target_cols),
              allow_empty_labels=cfg.target != "classification")  # judged by data/targets.py
    stranded = False
    if is_builtin(cfg.path):
        ds = get_builtin(cfg.path)
        main, stranded = read_table(ds.path, group_col=cfg.group_col, allow_empty_labels=cfg.target != "classification",
                                    target_cols=tuple(cfg.target_cols) or ds.target_cols), ds.stranded
    else:
        main = read_source(cfg.path, labels_csv=cfg.labels, **kw)
    parts, names = [main], [main.splits]
    for split in ("val", "test"):
        path = getattr(cfg, split)
        if path is not None:
            extra = read_source(path, **kw)
            parts.append(extra)
            names.append([split] * len(extra))
    if len(parts) > 1 and main.splits is not None:
        log.info("explicit val/test files given: every record of %s is used for training", cfg.path)
    if len(parts) > 1:
        names[0] = ["train"] * len(main)
    recs = Records.concat(parts) if len(parts) > 1 else main
    split = None if names[0] is None else np.array([s for n in names for s in n])
    return recs, split, stranded


def resolve_store(cfg: DataConfig) -> str:
    """``memory`` or ``mmap``: ``data.store``, or for ``auto`` mmap when encoding in RAM would need more than half
    of the available memory (about six bytes per input byte: strings, the fixed-width copy, rows and splits)."""
    if cfg.store != "auto":
        return cfg.store
    if is_builtin(cfg.path) or cfg.target in ("regression", "multilabel") or cfg.target_cols:
        return "memory"  # the streaming store keeps one class label per record
    paths = [Path(p.partition("=")[2] if "=" in p and not Path(p).exists() else p)
             for p in ([cfg.path] if isinstance(cfg.path, str) else cfg.path)]
    paths += [Path(p) for p in (cfg.val, cfg.test) if p is not None]
    size = sum(p.stat().st_size * (4 if p.suffix == ".gz" else 1) for p in paths if p.is_file())
    avail = available_memory()
    if 6 * size > avail // 2:
        log.info("data.store=auto: %.0f MB of input would need about %.0f MB in RAM (%.0f MB available): "
                 "streaming it into a memory-mapped store", size / 2**20, 6 * size / 2**20, avail / 2**20)
        return "mmap"
    return "memory"


def prepare_sequences(cfg: DataConfig, seed: int = 0) -> PreparedData:
    """Read, validate, encode, filter, split and leakage-check sequence data. Writes nothing into a run folder.

    With ``data.store`` mmap (or auto on data too large for RAM) the file is streamed into a memory-mapped store
    (``data/store.py``) instead, and the splits read their rows from it.
    """
    if cfg.genome is not None:
        return _prepare_windows(cfg, seed)
    if cfg.intervals != IntervalConfig():
        raise ConfigError("data.intervals options need data.genome (the reference FASTA the intervals of data.path "
                          "lie on); set data.genome=FILE")
    if resolve_store(cfg) == "mmap":
        return _prepare_stored(cfg, seed)
    recs, split, stranded = _read(cfg)
    return _prepare_records(cfg, seed, recs, split, stranded)


def _prepare_windows(cfg: DataConfig, seed: int) -> PreparedData:
    """Intervals on a genome (``data/windows.py``) → the in-memory path, plus the check that no val/test window
    overlaps an earlier split's; the genome's identity goes into the contract."""
    windows = interval_windows(cfg, seed)
    classes = sorted(set(windows.records.labels))
    if cfg.positive_class is None and len(classes) == 2 and NEGATIVE in classes:
        cfg = cfg.model_copy(update={"positive_class": next(c for c in classes if c != NEGATIVE)})
    prepared = _prepare_records(cfg, seed, windows.records, windows.split, windows.stranded, overlaps=windows.coords)
    prepared.filtered = windows.dropped + prepared.filtered
    prepared.report["intervals"] = windows.report
    prepared.genome = windows.genome
    return prepared


def _prepare_records(cfg: DataConfig, seed: int, recs: Records, split: np.ndarray | None, stranded: bool,
                     overlaps: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> PreparedData:
    """The in-memory path from read records on: alphabet, classes, encoding, quality, then ``_finish``."""
    try:
        alphabet = resolve_alphabet(cfg.alphabet, recs.seqs)
    except RecordError as e:
        raise located(recs, e) from None
    check_alphabet(recs, alphabet)
    targets = record_targets(recs, cfg.target, cfg.target_cols, cfg.label_col, cfg.label_sep, _source_name(cfg))
    if targets.type == "classification":
        labels = np.array(targets.labels, dtype=object)
        class_names = sorted(set(targets.labels))
        _check_classes(class_names, labels, split, recs.locate)
    else:  # the split is stratified by target quintiles (regression) or each record's rarest label (multilabel)
        labels, class_names = targets.strata(), list(targets.names)

    raw_lengths = np.array([len(s) for s in recs.seqs], dtype=np.int64)
    train_rows = raw_lengths if split is None else raw_lengths[split == "train"]
    max_len = cfg.max_len or _auto_max_len(train_rows, raw_lengths, recs)
    _check_matrix_fits(len(recs), max_len)
    x, lengths = encode(recs.seqs, alphabet, max_len)

    quality = resolve_quality(cfg.quality, alphabet)
    reasons = quality_filter(x, raw_lengths, alphabet, quality)
    ids = np.array(recs.ids, dtype=object)
    groups = np.array(recs.groups, dtype=object) if recs.groups is not None else None
    if cfg.group_col is not None and groups is None:
        raise DataError(f"{recs.locate(0)}: data.group_col={cfg.group_col!r} is set but the records carry no groups "
                        "(FASTA headers need group=ID); add them or leave data.group_col unset")
    return _finish(cfg, seed, x=x, rows=None, ids=ids, labels=labels, class_names=class_names, split=split,
                   raw_lengths=raw_lengths, lengths=lengths, reasons=reasons, quality=quality, alphabet=alphabet,
                   stranded=stranded, max_len=max_len, locate=lambda idx: [recs.locate(i) for i in idx],
                   keys=lambda keep: sequence_keys(x, lengths, alphabet), overlaps=overlaps, user_groups=groups,
                   targets=targets)


def _source_name(cfg: DataConfig) -> str:
    return cfg.path if isinstance(cfg.path, str) else ", ".join(cfg.path)


MAX_AUTO_LEN = 100_000  # the longest row width chosen without data.max_len (one record can't blow up every row)


def _auto_max_len(train_rows: np.ndarray, raw_lengths: np.ndarray, recs: Records) -> int:
    """The longest training sequence, unless that is a pathological record far longer than what models read."""
    longest = int(train_rows.max(initial=1))
    if longest > MAX_AUTO_LEN:
        i = int(np.argmax(raw_lengths))
        raise DataError(f"{recs.locate(i)}: record {recs.ids[i]!r} is {raw_lengths[i]:,} long, over the "
                        f"{MAX_AUTO_LEN:,} that biolens takes as a default row width; set data.max_len=N to truncate "
                        "(or cut long sequences into windows)")
    return max(longest, 1)


def _check_matrix_fits(n: int, width: int) -> None:
    """The encoded (N, L) uint8 matrix must fit in half the available memory; else say how to stream it."""
    need, avail = n * width, available_memory()
    if need > avail // 2:
        raise DataError(f"{n:,} sequences × {width:,} positions need {need / 2**30:.1f} GB in memory "
                        f"({avail / 2**30:.1f} GB available); set data.store=mmap to stream them, or a smaller "
                        "data.max_len")


def _check_classes(class_names: list[str], labels: np.ndarray, split: np.ndarray | None, locate) -> None:
    if len(class_names) < 2:
        raise DataError(f"{locate(0).rsplit(':', 1)[0]}: only one class ({class_names[0]!r}) in the data; a classifier needs at least two")
    if split is not None:
        train_classes = set(labels[split == "train"])
        for s in ("val", "test"):
            unseen = np.flatnonzero((split == s) & ~np.isin(labels, list(train_classes)))
            if unseen.size:
                i = int(unseen[0])
                raise DataError(f"{locate(i)}: label {labels[i]!r} appears in {s} but never in train; fix the label or add training examples")


def _sources(cfg: DataConfig) -> tuple[list[Source], bool]:
    """The input files of a config for the streaming store (as ``_read`` reads them), and strandedness."""
    cols = (cfg.seq_col, cfg.label_col, cfg.id_col, cfg.split_col)
    forced = "train" if cfg.val is not None or cfg.test is not None else None
    stranded = False
    if is_builtin(cfg.path):
        ds = get_builtin(cfg.path)
        main, stranded = [Source(Path(ds.path), split=forced)], ds.stranded
    else:
        items = [cfg.path] if isinstance(cfg.path, str) else list(cfg.path)
        per_class = [s for s in items if "=" in s and not Path(s).exists()]
        if per_class and len(per_class) != len(items):
            raise DataError("mix of LABEL=FILE and plain files; give every class file as LABEL=FILE")
        main = []
        for item in items:
            label, file = (None, item) if not per_class else (item.partition("=")[0].strip(), item.partition("=")[2])
            if per_class and not label:
                raise DataError(f"{item!r}: empty label; write LABEL=FILE")
            labels_csv = Path(cfg.labels) if cfg.labels is not None and not per_class else None
            main.append(Source(Path(file), label=label, split=forced, columns=cols, labels_csv=labels_csv))
    if forced is not None:
        log.info("explicit val/test files given: every record of %s is used for training", cfg.path)
    extra = [Source(Path(p), split=s, columns=cols) for s, p in (("val", cfg.val), ("test", cfg.test)) if p is not None]
    return main + extra, stranded


def _prepare_stored(cfg: DataConfig, seed: int) -> PreparedData:
    """``prepare_sequences`` over the memory-mapped store: the same checks, on per-record arrays and in chunks."""
    if cfg.group_col is not None:
        raise ConfigError("data.group_col needs the in-memory path: set data.store=memory (the streaming store "
                          "keeps no group column)")
    sources, stranded = _sources(cfg)
    cache_dir = Path(cfg.store_dir) if cfg.store_dir else None
    if cfg.target in ("regression", "multilabel") or cfg.target_cols:
        raise ConfigError(f"data.target={cfg.target} (data.target_cols) needs the in-memory path: set "
                          "data.store=memory (the streaming store keeps one class label per record)")
    store = open_or_build(sources, alphabet=cfg.alphabet, max_len=cfg.max_len, cache_dir=cache_dir)
    alphabet, max_len = store.alphabet, store.x.shape[1]
    class_names = store.label_names
    if cfg.target == "auto" and len(class_names) > 2:
        try:
            kind = "multilabel" if any(cfg.label_sep in c for c in class_names) else read_targets(
                {cfg.label_col: class_names}, "auto", cfg.label_sep).type
        except DataError:
            kind = "classification"
        if kind != "classification":
            raise ConfigError(f"the labels of {_source_name(cfg)} look like {kind} targets, which need the in-memory "
                              "path: set data.store=memory (or data.target=classification to read them as classes)")
    labels = np.asarray(class_names, dtype=object)[store.labels]
    split = store.splits.astype(object) if store.splits is not None else None
    _check_classes(class_names, labels, split, lambda i: store.locate(int(i)))

    quality = resolve_quality(cfg.quality, alphabet)
    reasons = np.empty(len(store), dtype=object)
    step = max(1, (1 << 20) // max(max_len, 1))  # bounds quality_filter's (rows, L) int64 temporaries
    reader = RowReader(store.x)
    for start in range(0, len(store), step):
        stop = min(start + step, len(store))
        reasons[start:stop] = quality_filter(reader.block(start, stop), store.raw_lengths[start:stop], alphabet, quality)

    def keys(keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if split is None:
            log.info("data.store=mmap: duplicates are grouped by 64-bit hashes of the encoded rows, so the seeded "
                     "split differs from store=memory's (a split column or data.val/data.test files give identical splits)")
        return store.exact, store.canonical

    info = {"mode": "mmap", "path": str(store.path), "rows": len(store), "width": max_len,
            "from_cache": store.from_cache}
    return _finish(cfg, seed, x=store.x, rows=True, ids=store.ids, labels=labels, class_names=class_names,
                   split=split, raw_lengths=store.raw_lengths, lengths=store.lengths, reasons=reasons,
                   quality=quality, alphabet=alphabet, stranded=stranded, max_len=max_len,
                   locate=store.locate_many, keys=keys, store_info=info, codes=store.labels.astype(np.int64))


def _finish(cfg: DataConfig, seed: int, *, x: np.ndarray, rows: bool | None, ids: np.ndarray, labels: np.ndarray,
            class_names: list[str], split: np.ndarray | None, raw_lengths: np.ndarray, lengths: np.ndarray,
            reasons: np.ndarray, quality: Any, alphabet: Alphabet, stranded: bool, max_len: int,
            locate: Callable[[np.ndarray], list[str]], keys: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
            store_info: dict[str, Any] | None = None, codes: np.ndarray | None = None,
            overlaps: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
            user_groups: np.ndarray | None = None, targets: Targets | None = None) -> PreparedData:
    """Quality report, split, leakage, dedup and the per-split data, shared by the in-memory and stored paths.

    ``rows`` true: ``x`` is the whole memory-mapped store and each split keeps its row numbers into it.
    ``codes``: each record's index into ``class_names`` where already known (the store's label codes).
    ``overlaps``: (contig code, start, end) per record for genome windows: overlapping windows leak too.
    """
    keep = reasons == ""
    dropped = np.flatnonzero(~keep)
    filtered = [{"id": ids[i], "location": loc, "reason": reasons[i]} for i, loc in zip(dropped, locate(dropped))]
    if not keep.any():
        raise DataError(f"every sequence failed the quality filter ({summarize(reasons)}); relax data.quality thresholds")
    if filtered:
        log.warning("quality filter dropped %d of %d sequences: %s", len(filtered), len(keep),
                    {k: v for k, v in summarize(reasons).items() if v and k not in ("kept", "dropped")})

    exact, canonical = keys(keep)
    groups, similar = _record_groups(cfg, exact, canonical, user_groups, x, lengths, alphabet, stranded)
    straddling = 0
    if cfg.split.assignment is not None:
        split = read_assignment(cfg.split.assignment, ids)
        left_out = int((keep & (split == "")).sum())
        keep &= split != ""
        log.info("data.split.assignment %s: %d records assigned, %d left out", cfg.split.assignment,
                 int(keep.sum()), left_out)
    elif split is None:
        split = np.full(len(keep), "", dtype=object)
        split[keep] = stratified_split(labels[keep], groups[keep], cfg.val_frac, cfg.test_frac, seed)
    elif user_groups is not None or similar:
        straddling = _straddling(groups[keep], np.asarray(split)[keep])
        if straddling:
            warnings.warn(f"{straddling} group(s) (data.group_col or similar sequences) have members in more than "
                          "one of the given splits: metrics will be optimistic; let biolens split (drop the split "
                          "column) or fix the split", BiolensWarning, stacklevel=3)
    split = split.astype(str)
    if cfg.split.assignment is None:  # a split column with train and test but no val (or no test): carve it
        split = _carve_missing(split, keep, labels, groups, cfg, seed)
    leak = find_leakage(exact[keep], canonical[keep], split[keep], check_rc=alphabet.is_nucleic)
    if overlaps is not None:
        overlap_leakage(leak, *(a[keep] for a in overlaps), split[keep])
    leaked = np.zeros(len(keep), dtype=bool)
    leaked[np.flatnonzero(keep)] = leak.pop("_mask")
    n_leaked = int(leaked.sum())
    if n_leaked and cfg.dedup:
        keep &= ~leaked
        log.info("dedup: removed %d val/test sequences that also occur in an earlier split", n_leaked)
    elif n_leaked:
        warnings.warn(
            f"{n_leaked} val/test sequences also occur (or their reverse complement does) in an earlier split: "
            "metrics will be optimistic; set data.dedup=true to remove them",
            BiolensWarning,
            stacklevel=3,
        )

    kind = "classification" if targets is None else targets.type
    if kind != "classification":  # (N, T) float32 values, NaN where missing; ``labels`` are only split strata
        y = targets.values
    else:
        y = np.array([class_names.index(v) for v in labels], dtype=np.int64) if codes is None else codes
    splits: dict[str, SequenceData] = {}
    for s in SPLITS:
        mask = keep & (split == s)
        if not mask.any() and not may_be_empty(s, cfg.split.assignment):
            raise DataError(f"the {s} split is empty after filtering; give more data or an explicit --{s} file")
        if rows:
            splits[s] = SequenceData(ids[mask], x, lengths[mask], y[mask], alphabet, rows=np.flatnonzero(mask))
        else:
            splits[s] = SequenceData(ids[mask], x[mask], lengths[mask], y[mask], alphabet)
    missing = {s: sorted(set(class_names) - {class_names[k] for k in np.unique(splits[s].y)}) if kind ==
               "classification" else [] for s in SPLITS}
    for s, absent in missing.items():
        if absent and len(splits[s]):  # an assignment without test rows (cv's ensemble members) has no test split
            warnings.warn(f"class(es) {', '.join(absent)} missing from the {s} split; its metrics will be incomplete",
                          BiolensWarning, stacklevel=3)

    rc = cfg.augment.reverse_complement
    if rc and not alphabet.is_nucleic:
        raise ConfigError("data.augment.reverse_complement is on but the alphabet is protein; turn it off")
    if rc is None:  # regression and multi-label targets usually belong to one strand (a construct, a guide RNA)
        rc = alphabet.is_nucleic and not stranded and kind == "classification"
        if alphabet.is_nucleic and kind != "classification":
            log.info("reverse-complement augmentation off for %s targets (they usually describe one strand); set "
                     "data.augment.reverse_complement=true when they do not", kind)
    resolved = cfg.model_copy(update={
        "alphabet": alphabet.name, "max_len": max_len, "quality": quality,
        "split": cfg.split.model_copy(update={"kmer": default_kmer(alphabet, cfg.split.kmer)}),
        "augment": cfg.augment.model_copy(update={"reverse_complement": rc}),
        "positive_class": pick_positive(class_names, cfg.positive_class) if kind == "classification" else None,
        "target": kind, "target_cols": list(targets.columns) if targets is not None and kind != "classification"
        else cfg.target_cols,
    })
    if kind != "classification" and cfg.positive_class is not None:
        raise ConfigError(f"data.positive_class is for classification; the targets are {kind}: leave it unset")
    report = {
        "source": cfg.path if isinstance(cfg.path, str) else list(cfg.path),
        "grouping": {"group_col": cfg.group_col, "group_by": cfg.split.group_by, "groups": int(len(np.unique(groups[keep]))),
                     "similar_pairs": similar, "groups_across_splits": straddling,
                     **({"max_identity": cfg.split.max_identity, "kmer": default_kmer(alphabet, cfg.split.kmer)}
                        if cfg.split.group_by == "similarity" else {})},
        "alphabet": alphabet.name,
        "stranded": stranded,
        "classes": class_names,
        "lengths": {s: length_stats(raw_lengths[keep & (split == s)], max_len) for s in SPLITS},
        "target_type": kind,
        **({"class_counts": {s: {c: int((splits[s].y == k).sum()) for k, c in enumerate(class_names)} for s in SPLITS}}
           if kind == "classification" else {"targets": target_report(kind, y[keep], class_names, split[keep])}),
        "quality": summarize(reasons),
        "leakage": leak,
        "dedup_removed": n_leaked if cfg.dedup else 0,
    }
    if store_info is not None:
        report["store"] = store_info
    train_len = report["lengths"]["train"]
    log.info("data: %s, %s, classes %s; train/val/test %d/%d/%d; train lengths min %d, max %d, mean %.1f, median %.1f",
             report["source"], alphabet.name, ", ".join(class_names), *(len(splits[s]) for s in SPLITS),
             train_len["min"], train_len["max"], train_len["mean"], train_len["median"])
    truncated = sum(v["truncated"] for v in report["lengths"].values())
    if truncated:
        log.warning("%d sequences are longer than max_len=%d and will be truncated", truncated, max_len)
    used = np.flatnonzero(keep)
    records = pd.DataFrame({"row": used, "id": ids[used], "label": np.asarray(labels, dtype=object)[used],
                            "split": split[used], "group": groups[used]})
    return PreparedData(splits, alphabet, class_names, resolved.positive_class, max_len, resolved, report, filtered,
                        records=records)


def _carve_missing(split: np.ndarray, keep: np.ndarray, labels: np.ndarray, groups: np.ndarray, cfg: DataConfig,
                   seed: int) -> np.ndarray:
    """Given splits without a val (or test) part: a seeded share of train's duplicate groups, stratified by label
    where every stratum can be split (e.g. the train/test split of a published benchmark)."""
    split = split.copy()
    for name, frac in (("val", cfg.val_frac), ("test", cfg.test_frac)):
        if (keep & (split == name)).any():
            continue
        pool = np.flatnonzero(keep & (split == "train"))
        uniq, first = np.unique(groups[pool], return_index=True)
        strata = np.asarray(labels[pool][first], dtype=str)
        try:
            _, taken = train_test_split(np.arange(len(uniq)), test_size=frac, stratify=strata, random_state=seed)
        except ValueError:  # a stratum too small to split: an unstratified share
            _, taken = train_test_split(np.arange(len(uniq)), test_size=frac, random_state=seed)
        split[pool[np.isin(groups[pool], uniq[taken])]] = name
        log.info("the given splits have no %s part: moved a seeded %.0f%% of train (%d records) to %s", name,
                 frac * 100, int((split == name).sum()), name)
    return split


def _record_groups(cfg: DataConfig, exact: np.ndarray, canonical: np.ndarray, user_groups: np.ndarray | None,
                   x: np.ndarray, lengths: np.ndarray, alphabet: Alphabet, stranded: bool) -> tuple[np.ndarray, int]:
    """Group id per record: identical (and, for nucleic acids, reverse-complement) sequences, ``data.group_col``
    groups and, with ``data.split.group_by: similarity``, sequences above ``max_identity`` — joined transitively."""
    base = canonical if alphabet.is_nucleic else exact
    labelings = [base] + ([user_groups] if user_groups is not None else [])
    pairs, similar = None, 0
    if cfg.split.group_by == "similarity":
        k = default_kmer(alphabet, cfg.split.kmer)
        pairs = similar_sequences(x, lengths, alphabet, cfg.split.max_identity, k,
                                  both_strands=alphabet.is_nucleic and not stranded)
        similar = len(pairs)
        log.info("data.split.group_by=similarity: %d pairs of sequences at ≥ %.2f identity (k-mer estimate, k=%d) are kept "
                 "in one split", similar, cfg.split.max_identity, k)
    if len(labelings) == 1 and pairs is None:
        return np.unique(base, return_inverse=True)[1], 0
    return merge_groups(len(base), labelings, pairs), similar


def _straddling(groups: np.ndarray, split: np.ndarray) -> int:
    """How many groups have members in more than one split."""
    frame = pd.DataFrame({"g": groups, "s": split})
    return int((frame.groupby("g")["s"].nunique() > 1).sum())


def encode_for_model(recs: Records, alphabet_name: str, max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Encode inference records with a run's alphabet and max length; errors name the file and line."""
    alphabet = get_alphabet(alphabet_name)
    check_alphabet(recs, alphabet)
    x, lengths = encode(recs.seqs, alphabet, max_len)
    note = nucleotide_warning(x, lengths, alphabet, recs.locate)
    if note:
        log.warning("%s", note)
    n_long = int(sum(len(s) > max_len for s in recs.seqs))
    if n_long:
        log.warning("%d sequences are longer than the model's max_len=%d and were truncated", n_long, max_len)
    return x, lengths


NUCLEOTIDE_CHECK_LENGTH = 20  # a peptide this long of only A, C, G, T, N, X is vanishingly rare (~0.3^20)


def nucleotide_warning(x: np.ndarray, lengths: np.ndarray, alphabet: Alphabet, locate: Callable[[int], str]
                       ) -> str | None:
    """A protein model reads DNA or RNA without an error (A, C, G, T and N are amino-acid letters too, U an
    unknown residue) and returns confident nonsense: the warning to give when at least 90% of the inputs of 20 or
    more residues hold nothing else (None otherwise)."""
    if alphabet.name != "protein":
        return None
    long = lengths >= NUCLEOTIDE_CHECK_LENGTH
    if not long.any():
        return None
    nucleic = np.zeros(256, dtype=bool)
    nucleic[[0, alphabet.unknown_index, *(int(alphabet.lut[ord(c)]) for c in "ACGTN")]] = True  # PAD, X/U, ACGTN
    looks = nucleic[x].all(axis=1) & long
    if looks.sum() < 0.9 * long.sum():
        return None
    return (f"{int(looks.sum())} of {len(lengths)} input sequences (first: {locate(int(np.flatnonzero(looks)[0]))}) "
            "hold only A, C, G, T/U and N: they look like DNA or RNA, but this model reads protein; translate them, "
            "or use a model trained on nucleotides")


def labels_to_index(recs: Records, class_names: list[str]) -> np.ndarray:
    """Map labels to class indices; a label unknown to the model is a DataError naming its line."""
    lookup = {c: i for i, c in enumerate(class_names)}
    bad = next((i for i, lab in enumerate(recs.labels) if lab not in lookup), None)
    if bad is not None:
        raise DataError(
            f"{recs.locate(bad)}: label {recs.labels[bad]!r} is unknown to the model (classes: {', '.join(class_names)}); "
            "fix the label or drop the labels to predict only"
        )
    return np.array([lookup[lab] for lab in recs.labels], dtype=np.int64)
