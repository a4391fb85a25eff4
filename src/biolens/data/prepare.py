"""From a DataConfig to encoded, filtered, split and leakage-checked data, or a one-line error."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from biolens.config import DataConfig
from biolens.data.alphabets import Alphabet, get_alphabet
from biolens.data.builtin import get_builtin, is_builtin
from biolens.data.dataset import SequenceData
from biolens.data.encoding import RecordError, encode, find_invalid, invalid_symbol_error, length_stats, resolve_alphabet
from biolens.data.quality import quality_filter, resolve_quality, summarize
from biolens.data.readers import Records, read_source, read_table
from biolens.data.splits import SPLITS, find_leakage, sequence_keys, stratified_split
from biolens.errors import BiolensWarning, ConfigError, DataError

log = logging.getLogger(__name__)

POSITIVE_NAMES = ("1", "pos", "positive", "promoter", "yes", "true", "+", "active", "disease", "case")


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


def located(recs: Records, err: RecordError) -> DataError:
    return DataError(f"{recs.locate(err.index)}: {err.detail}")


def check_alphabet(recs: Records, alphabet: Alphabet) -> None:
    bad = find_invalid(recs.seqs, alphabet)
    if bad is not None:
        raise located(recs, invalid_symbol_error(bad, alphabet))


def _read(cfg: DataConfig) -> tuple[Records, np.ndarray | None, bool]:
    """All records (main, then --val, then --test), their split names if known, and strandedness."""
    kw = dict(seq_col=cfg.seq_col, label_col=cfg.label_col, id_col=cfg.id_col, split_col=cfg.split_col)
    stranded = False
    if is_builtin(cfg.path):
        ds = get_builtin(cfg.path)
        main, stranded = read_table(ds.path), ds.stranded
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
        log.info("explicit --val/--test given: every record of %s is used for training", cfg.path)
    if len(parts) > 1:
        names[0] = ["train"] * len(main)
    recs = Records.concat(parts) if len(parts) > 1 else main
    split = None if names[0] is None else np.array([s for n in names for s in n])
    return recs, split, stranded


def _pick_positive(class_names: list[str], wanted: str | None) -> str | None:
    if wanted is not None:
        if wanted not in class_names:
            raise ConfigError(f"positive_class {wanted!r} is not a class; classes: {', '.join(class_names)}")
        return wanted
    if len(class_names) != 2:
        return None
    for name in class_names:
        if name.lower() in POSITIVE_NAMES:
            return name
    return class_names[1]


def prepare_sequences(cfg: DataConfig, seed: int = 0) -> PreparedData:
    """Read, validate, encode, filter, split and leakage-check sequence data. Writes nothing."""
    recs, split, stranded = _read(cfg)
    try:
        alphabet = resolve_alphabet(cfg.alphabet, recs.seqs)
    except RecordError as e:
        raise located(recs, e) from None
    check_alphabet(recs, alphabet)
    labels = np.array(recs.labels, dtype=object)
    class_names = sorted(set(recs.labels))
    if len(class_names) < 2:
        raise DataError(f"{recs.locate(0).rsplit(':', 1)[0]}: only one class ({class_names[0]!r}) in the data; a classifier needs at least two")
    if split is not None:
        train_classes = set(labels[split == "train"])
        for s in ("val", "test"):
            unseen = np.flatnonzero((split == s) & ~np.isin(labels, list(train_classes)))
            if unseen.size:
                i = int(unseen[0])
                raise DataError(f"{recs.locate(i)}: label {labels[i]!r} appears in {s} but never in train; fix the label or add training examples")

    raw_lengths = np.array([len(s) for s in recs.seqs], dtype=np.int64)
    train_rows = raw_lengths if split is None else raw_lengths[split == "train"]
    max_len = cfg.max_len or int(train_rows.max(initial=1))
    x, lengths = encode(recs.seqs, alphabet, max_len)

    quality = resolve_quality(cfg.quality, alphabet)
    reasons = quality_filter(x, raw_lengths, alphabet, quality)
    keep = reasons == ""
    filtered = [
        {"id": recs.ids[i], "location": recs.locate(i), "reason": reasons[i]} for i in np.flatnonzero(~keep)
    ]
    if not keep.any():
        raise DataError(f"every sequence failed the quality filter ({summarize(reasons)}); relax data.quality thresholds")
    if filtered:
        log.warning("quality filter dropped %d of %d sequences: %s", len(filtered), len(keep),
                    {k: v for k, v in summarize(reasons).items() if v and k not in ("kept", "dropped")})

    exact, canonical = sequence_keys(x, lengths, alphabet)
    if split is None:
        groups = canonical if alphabet.is_nucleic else exact
        split = np.full(len(x), "", dtype=object)
        split[keep] = stratified_split(labels[keep], groups[keep], cfg.val_frac, cfg.test_frac, seed)
    split = split.astype(str)
    leak = find_leakage(exact[keep], canonical[keep], split[keep], check_rc=alphabet.is_nucleic)
    leaked = np.zeros(len(x), dtype=bool)
    leaked[np.flatnonzero(keep)] = leak.pop("_mask")
    n_leaked = int(leaked.sum())
    if n_leaked and cfg.dedup:
        keep &= ~leaked
        log.info("dedup: removed %d val/test sequences that also occur in an earlier split", n_leaked)
    elif n_leaked:
        warnings.warn(
            f"{n_leaked} val/test sequences also occur (or their reverse complement does) in an earlier split: "
            "metrics will be optimistic; pass --dedup to remove them",
            BiolensWarning,
            stacklevel=2,
        )

    y = np.array([class_names.index(v) for v in labels], dtype=np.int64)
    ids = np.array(recs.ids, dtype=object)
    splits: dict[str, SequenceData] = {}
    for s in SPLITS:
        rows = keep & (split == s)
        if not rows.any():
            raise DataError(f"the {s} split is empty after filtering; give more data or an explicit --{s} file")
        splits[s] = SequenceData(ids[rows], x[rows], lengths[rows], y[rows], alphabet)
    missing = {s: sorted(set(class_names) - {class_names[k] for k in splits[s].y}) for s in SPLITS}
    for s, absent in missing.items():
        if absent:
            warnings.warn(f"class(es) {', '.join(absent)} missing from the {s} split; its metrics will be incomplete",
                          BiolensWarning, stacklevel=2)

    rc = cfg.augment.reverse_complement
    if rc and not alphabet.is_nucleic:
        raise ConfigError("data.augment.reverse_complement is on but the alphabet is protein; turn it off")
    if rc is None:
        rc = alphabet.is_nucleic and not stranded
    resolved = cfg.model_copy(update={
        "alphabet": alphabet.name, "max_len": max_len, "quality": quality,
        "augment": cfg.augment.model_copy(update={"reverse_complement": rc}),
        "positive_class": _pick_positive(class_names, cfg.positive_class),
    })
    report = {
        "source": cfg.path if isinstance(cfg.path, str) else list(cfg.path),
        "alphabet": alphabet.name,
        "stranded": stranded,
        "classes": class_names,
        "lengths": {s: length_stats(raw_lengths[keep & (split == s)], max_len) for s in SPLITS},
        "class_counts": {s: {c: int((splits[s].y == k).sum()) for k, c in enumerate(class_names)} for s in SPLITS},
        "quality": summarize(reasons),
        "leakage": leak,
        "dedup_removed": n_leaked if cfg.dedup else 0,
    }
    train_len = report["lengths"]["train"]
    log.info("data: %s, %s, classes %s; train/val/test %d/%d/%d; train lengths min %d, max %d, mean %.1f, median %.1f",
             report["source"], alphabet.name, ", ".join(class_names), *(len(splits[s]) for s in SPLITS),
             train_len["min"], train_len["max"], train_len["mean"], train_len["median"])
    truncated = sum(v["truncated"] for v in report["lengths"].values())
    if truncated:
        log.warning("%d sequences are longer than max_len=%d and will be truncated", truncated, max_len)
    return PreparedData(splits, alphabet, class_names, resolved.positive_class, max_len, resolved, report, filtered)


def encode_for_model(recs: Records, alphabet_name: str, max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Encode inference records with a run's alphabet and max length; errors name the file and line."""
    alphabet = get_alphabet(alphabet_name)
    check_alphabet(recs, alphabet)
    x, lengths = encode(recs.seqs, alphabet, max_len)
    n_long = int(sum(len(s) > max_len for s in recs.seqs))
    if n_long:
        log.warning("%d sequences are longer than the model's max_len=%d and were truncated", n_long, max_len)
    return x, lengths


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
