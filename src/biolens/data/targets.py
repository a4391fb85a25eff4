"""What the labels are: classes, numbers (regression, one or several targets) or label sets (multi-label).

``read_targets`` turns the raw text of one or more target columns (CSV/TSV columns, FASTA ``key=value`` header
values, manifest columns) into a :class:`Targets`: the type (``data.target``, or detected from the values with a
one-line explanation), the names of the model's outputs and a float matrix ``(N, T)`` with NaN where a value is
missing (masked in the loss, never dropped or zero-filled). Unusable columns (all missing, constant, text in a
numeric column, a label set in a single-label run) are one-line ``DataError``\\ s naming the file, line and column.

Also here, because the data, tasks and training layers all need them: the train-fitted standardization of regression
targets, the strata a split is stratified by, the loss a target type trains with, and the target statistics of
``data_report.json``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from biolens.data.splits import SPLITS
from biolens.errors import ConfigError, DataError

log = logging.getLogger(__name__)

TARGET_TYPES = ("classification", "regression", "multilabel")
MISSING = ("", "na", "nan", "n/a", "none", "null", "?")  # lower-cased cell texts read as a missing value
MAX_AUTO_CLASSES = 10  # auto: integer-valued numbers with more distinct values than this are regression targets
LOSSES = {"classification": ("ce", "focal", "bce"), "regression": ("mse", "huber", "poisson"), "multilabel": ("bce",)}


@dataclass
class Targets:
    """The targets of every record.

    ``type`` classification: ``labels`` (one string per record), ``names`` empty, ``values`` None. Regression:
    ``names`` = target names, ``values`` ``(N, T)`` float32 (NaN = missing). Multilabel: ``names`` = labels,
    ``values`` ``(N, T)`` of 0/1 (NaN = unknown). ``reason`` is the one-line explanation of the type.
    """

    type: str
    names: list[str]
    values: np.ndarray | None
    labels: list[str] | None
    reason: str
    columns: list[str]

    def strata(self) -> np.ndarray:
        """A label per record to stratify a split by: the class; for regression the quintile of the first target;
        for multi-label the record's rarest label (small strata merged, so every stratum can be split)."""
        if self.type == "classification":
            return np.asarray(self.labels, dtype=object)
        return strata(self.type, self.values)


def _is_missing(texts: Sequence[str]) -> np.ndarray:
    return np.array([str(t).strip().lower() in MISSING for t in texts], dtype=bool)


def _numbers(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(values with NaN for missing or text, mask of cells that hold text that is no number)."""
    missing = _is_missing(texts)
    values = np.array(pd.to_numeric(pd.Series([str(t).strip() for t in texts], dtype=object), errors="coerce"),
                      dtype=np.float64)
    text = np.isnan(values) & ~missing
    values[missing] = np.nan
    return values, text


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def read_targets(columns: dict[str, Sequence[str]], wanted: str = "auto", sep: str = "|",
                 locate: Callable[[int], str] | None = None, source: str = "the data") -> Targets:
    """The targets of raw column texts ``{column: one text per record}`` for ``data.target`` = ``wanted``.

    Raises DataError (file:line and column, and the fix) for unusable columns; ConfigError for a type that cannot
    hold the columns (several columns in a classification run)."""
    if wanted not in ("auto", *TARGET_TYPES):
        raise ConfigError(f"data.target {wanted!r}: expected one of auto, {', '.join(TARGET_TYPES)}")
    where = locate or (lambda i: f"record {i + 1}")
    names = list(columns)
    if not names:
        raise ConfigError("no target column; set data.label_col or data.target_cols")
    if len(names) > 1:
        return _several(columns, wanted, where, source)
    col = names[0]
    texts = [str(t).strip() for t in columns[col]]
    missing = _is_missing(texts)
    if missing.all():
        raise DataError(f"{source}: target column {col!r} holds no values (all {len(texts)} cells are empty or NA); "
                        "fill it or name another column with data.target_cols")
    sets = np.array([sep in t for t in texts], dtype=bool)
    if sets.any() and wanted == "classification":
        i = _first(sets)
        raise DataError(f"{where(i)}: column {col!r} holds the label set {texts[i]!r} but data.target=classification "
                        f"takes one label per sample; set data.target=multilabel (or auto), or give one label per row")
    if wanted == "multilabel" or (wanted == "auto" and sets.any()):
        return _label_sets(col, texts, missing, sep, where, source)
    values, text = _numbers(texts)
    finite = np.isfinite(values) | np.isnan(values)
    if not finite.all():
        i = _first(~finite)
        raise DataError(f"{where(i)}: column {col!r} value {texts[i]!r} is not a finite number; fix it or leave the "
                        "cell empty for a missing value")
    numeric_share = 1.0 - text.sum() / max((~missing).sum(), 1)
    if wanted == "regression" and text.any():
        i = _first(text)
        raise DataError(f"{where(i)}: column {col!r} value {texts[i]!r} is not a number; data.target=regression needs "
                        "a number in every cell (leave a cell empty for a missing value)")
    distinct = np.unique(values[~np.isnan(values)])
    if wanted != "classification" and not text.any() and len(distinct) == 1:
        raise DataError(f"{source}: target column {col!r} is constant (every value is {distinct[0]:g}): there is "
                        "nothing to learn; name another column with data.target_cols or check the file")
    integral = bool(np.all(distinct == np.round(distinct)))
    many = len(distinct) > (MAX_AUTO_CLASSES if integral else 2)
    if wanted == "auto" and text.any() and numeric_share >= 0.9 and many:
        i = _first(text)
        raise DataError(f"{where(i)}: column {col!r} holds numbers but this cell is {texts[i]!r}; fix it (leave it "
                        "empty for a missing value), or set data.target=classification to read the column as classes")
    if wanted == "regression" or (wanted == "auto" and not text.any() and many):
        return _regression({col: values}, where, source, [col],
                           f"column {col!r} holds {int((~np.isnan(values)).sum()):,} numbers, {len(distinct):,} "
                           "distinct" + ("" if wanted == "regression" else
                                         " (set data.target=classification to read them as classes)"))
    if missing.any():
        i = _first(missing)
        raise DataError(f"{where(i)}: empty value in column {col!r}; give every row a label (regression or multi-task "
                        "data with missing values: set data.target=regression or multilabel)")
    classes = sorted(set(texts))
    why = f"column {col!r}: {len(classes)} classes"
    if wanted == "auto" and not text.any():
        why += f" (numbers with {len(distinct)} distinct values; set data.target=regression to fit them as numbers)"
    return Targets("classification", [], None, texts, why, [col])


def record_targets(records: Any, target: str = "auto", target_cols: Sequence[str] = (), label_col: str = "label",
                   sep: str = "|", source: str = "the data") -> Targets:
    """The targets of read ``Records``: ``target_cols`` (table columns or FASTA header keys), else the label
    column, else the FASTA headers' ``key=value`` targets; logged with the reason for the type."""
    raw: dict[str, Sequence[str]]
    found = records.targets or {}
    if target_cols:
        absent = [c for c in target_cols if c not in found]
        if absent:
            keys = ", ".join(found) or "none"
            raise DataError(f"{source}: no target {absent[0]!r} (key=value keys found: {keys}); fix data.target_cols "
                            "or the file")
        raw = {c: found[c] for c in target_cols}
    elif records.labels is not None:
        raw = {label_col: records.labels}
    elif found:
        raw = dict(found)
    else:
        raise DataError(f"{records.locate(0)}: no labels or targets; add a {label_col!r} column (or label=CLASS / "
                        "value=NUMBER to FASTA headers), or name the target columns with data.target_cols")
    targets = read_targets(raw, target, sep, records.locate, source)
    log.info("%s", explain(targets))
    return targets


def values_for(target_type: str, names: Sequence[str], raw: dict[str, Sequence[str]], sep: str = "|",
               locate: Callable[[int], str] | None = None, source: str = "the data") -> np.ndarray:
    """``(N, T)`` float targets of labelled inputs in a trained model's terms (``names``: its targets or labels;
    NaN = missing): regression values from the target columns; multi-label 0/1 from one column per label or from
    one label-set column (a label the model never saw is a DataError naming the line)."""
    where = locate or (lambda i: f"record {i + 1}")
    if target_type == "regression" or all(n in raw for n in names):
        absent = [n for n in names if n not in raw]
        if absent:
            raise DataError(f"{source}: no target column {absent[0]!r} (found: {', '.join(raw) or 'none'}); the model "
                            f"predicts {', '.join(names)}")
        cols = {}
        for n in names:
            texts = [str(t).strip() for t in raw[n]]
            values, text = _numbers(texts)
            if text.any() or not (np.isfinite(values) | np.isnan(values)).all():
                i = _first(text | ~(np.isfinite(values) | np.isnan(values)))
                raise DataError(f"{where(i)}: column {n!r} value {texts[i]!r} is not a number; fix it or leave the "
                                "cell empty for a missing value")
            if target_type == "multilabel" and not np.isin(values[~np.isnan(values)], (0.0, 1.0)).all():
                i = _first(~np.isnan(values) & ~np.isin(values, (0.0, 1.0)))
                raise DataError(f"{where(i)}: column {n!r} value {texts[i]!r} is not 0 or 1")
            cols[n] = values
        return np.stack([cols[n] for n in names], axis=1).astype(np.float32)
    if len(raw) != 1:
        raise DataError(f"{source}: found columns {', '.join(raw)}; the model's labels are {', '.join(names)} (one "
                        "0/1 column each, or one column of label sets)")
    texts = [str(t).strip() for t in next(iter(raw.values()))]
    index = {n: j for j, n in enumerate(names)}
    out = np.zeros((len(texts), len(names)), dtype=np.float32)
    for i, t in enumerate(texts):
        if t.lower() in MISSING[1:]:
            out[i] = np.nan
            continue
        for lab in (x.strip() for x in t.split(sep)):
            if not lab:
                continue
            if lab not in index:
                raise DataError(f"{where(i)}: label {lab!r} is unknown to the model (labels: {', '.join(names)}); fix "
                                "the label or drop the labels to predict only")
            out[i, index[lab]] = 1.0
    return out


def _regression(cols: dict[str, np.ndarray], where: Callable[[int], str], source: str, names: list[str],
                why: str) -> Targets:
    values = np.stack([cols[n] for n in names], axis=1).astype(np.float32)
    for j, n in enumerate(names):
        v = values[:, j]
        seen = v[~np.isnan(v)]
        if not seen.size:
            raise DataError(f"{source}: target column {n!r} holds no values (all cells empty or NA); fill it or drop "
                            "it from data.target_cols")
        if np.ptp(seen) == 0:
            raise DataError(f"{source}: target column {n!r} is constant (every value is {seen[0]:g}): there is "
                            "nothing to learn; drop it from data.target_cols or check the file")
    if np.isnan(values).all(axis=1).any():
        i = _first(np.isnan(values).all(axis=1))
        raise DataError(f"{where(i)}: no target value in any of {', '.join(map(repr, names))}; give the row at least "
                        "one value or remove it")
    return Targets("regression", names, values, None, why, names)


def _label_sets(col: str, texts: list[str], missing: np.ndarray, sep: str, where: Callable[[int], str],
                source: str) -> Targets:
    """One column of label sets ``A|B|C``; an empty cell is the empty set, ``NA`` an unknown row."""
    unknown = np.array([t.lower() in MISSING[1:] for t in texts], dtype=bool)
    sets = [set() if u or not t else {x.strip() for x in t.split(sep) if x.strip()} for t, u in zip(texts, unknown)]
    labels = sorted(set().union(*sets))
    if not labels:
        raise DataError(f"{source}: column {col!r} holds no labels; fill it or name another column")
    index = {lab: j for j, lab in enumerate(labels)}
    values = np.zeros((len(texts), len(labels)), dtype=np.float32)
    for i, s in enumerate(sets):
        for lab in s:
            values[i, index[lab]] = 1.0
    values[unknown] = np.nan
    _check_labels(values, labels, source)
    why = f"column {col!r} holds label sets separated by {sep!r} ({len(labels)} labels)"
    return Targets("multilabel", labels, values, None, why, [col])


def _check_labels(values: np.ndarray, labels: list[str], source: str) -> None:
    for j, lab in enumerate(labels):
        seen = values[~np.isnan(values[:, j]), j]
        if not seen.size:
            raise DataError(f"{source}: label {lab!r} is never known (all cells missing); fill it or drop it")
        if seen.min() == seen.max():
            state = "every" if seen[0] > 0.5 else "no"
            raise DataError(f"{source}: label {lab!r} is constant ({state} sample has it): there is nothing to learn; "
                            "drop it from the label columns or check the file")


def _several(columns: dict[str, Sequence[str]], wanted: str, where: Callable[[int], str], source: str) -> Targets:
    names = list(columns)
    if wanted == "classification":
        raise ConfigError(f"data.target=classification takes one target column; got {len(names)} "
                          f"({', '.join(names)}); set data.target=regression (several numbers) or multilabel (0/1 "
                          "columns), or name one column")
    cols, binary = {}, True
    for n in names:
        texts = [str(t).strip() for t in columns[n]]
        values, text = _numbers(texts)
        if text.any():
            i = _first(text)
            raise DataError(f"{where(i)}: column {n!r} value {texts[i]!r} is not a number; target columns of a "
                            "multi-task run hold numbers (0/1 for labels; leave a cell empty for a missing value)")
        if not (np.isfinite(values) | np.isnan(values)).all():
            i = _first(~(np.isfinite(values) | np.isnan(values)))
            raise DataError(f"{where(i)}: column {n!r} value {texts[i]!r} is not a finite number; fix it")
        seen = values[~np.isnan(values)]
        binary &= bool(np.isin(seen, (0.0, 1.0)).all())
        cols[n] = values
    if wanted == "multilabel" and not binary:
        n = next(n for n in names if not np.isin(cols[n][~np.isnan(cols[n])], (0.0, 1.0)).all())
        i = _first(~np.isnan(cols[n]) & ~np.isin(cols[n], (0.0, 1.0)))
        raise DataError(f"{where(i)}: column {n!r} value {cols[n][i]:g} is not 0 or 1; multi-label columns hold 0/1 "
                        "(empty = unknown), or set data.target=regression")
    if wanted == "multilabel" or (wanted == "auto" and binary):
        values = np.stack([cols[n] for n in names], axis=1).astype(np.float32)
        _check_labels(values, names, source)
        return Targets("multilabel", names, values, None, f"{len(names)} columns of 0/1 ({_short(names)})", names)
    return _regression(cols, where, source, names, f"{len(names)} numeric columns ({_short(names)}): a multi-task "
                       "regression" + ("" if wanted == "regression" else " (0/1 columns would be multi-label)"))


def _short(names: list[str], k: int = 4) -> str:
    return ", ".join(names[:k]) + (f", … ({len(names)} in all)" if len(names) > k else "")


def explain(targets: Targets) -> str:
    """The log line that says what the targets are and why."""
    return f"target: {targets.type} — {targets.reason}"


# ---- training ------------------------------------------------------------------------------------------------


def effective_loss(loss: str, target_type: str) -> str:
    """The loss a run trains with: ``train.loss``, with the default ``ce`` meaning MSE for regression and BCE per
    label for multi-label data; a loss of another target type is a ConfigError naming both."""
    if target_type == "regression" and loss == "ce":
        return "mse"
    if target_type == "multilabel" and loss == "ce":
        return "bce"
    allowed = LOSSES.get(target_type, ())
    if loss not in allowed:
        hint = {"classification": " (if the labels are numbers, set data.target=regression)",
                "regression": "", "multilabel": ""}[target_type]
        raise ConfigError(f"train.loss {loss!r} does not fit {target_type} targets; use one of: "
                          f"{', '.join(allowed)}{hint}")
    return loss


def fit_standardization(values: np.ndarray, names: list[str], link: str = "identity", standardize: bool = True
                        ) -> tuple[list[float], list[float]]:
    """``(mean, std)`` per target from the train split's values (NaN ignored): predictions are ``output × std +
    mean``. With the log link (Poisson) only a scale (the train mean) is fitted, since counts cannot be shifted."""
    v = np.asarray(values, dtype=np.float64).reshape(len(values), -1)
    if link == "log":
        bad = np.nanmin(v, axis=0) < 0
        if bad.any():
            raise DataError(f"target {names[int(np.flatnonzero(bad)[0])]!r} has negative values; a Poisson loss "
                            "(train.loss=poisson) needs counts ≥ 0: use train.loss=mse or huber")
        scale = np.nanmean(v, axis=0) if standardize else np.ones(v.shape[1])
        if (~(scale > 0)).any():
            raise DataError(f"target {names[int(np.flatnonzero(~(scale > 0))[0])]!r} is 0 on every train row; a "
                            "Poisson rate of 0 has nothing to learn")
        return [0.0] * v.shape[1], [float(s) for s in scale]
    if not standardize:
        return [0.0] * v.shape[1], [1.0] * v.shape[1]
    mean, std = np.nanmean(v, axis=0), np.nanstd(v, axis=0)
    flat = ~(std > 0)
    if flat.any():
        raise DataError(f"target {names[int(np.flatnonzero(flat)[0])]!r} is constant on the train split: there is "
                        "nothing to learn; check the split or drop the target")
    return [float(m) for m in mean], [float(s) for s in std]


def never_empty(values: np.ndarray) -> bool:
    """True when every fully observed row of a multi-label matrix (0/1, NaN = unknown) carries at least one label,
    and there is such a row: the data say a label set is never empty."""
    v = np.asarray(values, dtype=np.float64)
    full = ~np.isnan(v).any(axis=1)
    return bool(full.any() and (v[full] > 0.5).any(axis=1).all())


def positive_weights(values: np.ndarray, method: str = "inverse", beta: float = 0.999) -> np.ndarray:
    """Per-label positive weights of a BCE loss from the train split: ``inverse`` = negatives / positives (so both
    halves of each label weigh the same), ``effective`` = the same ratio of effective numbers (Cui et al. 2019)."""
    v = np.asarray(values, dtype=np.float64)
    pos = np.nansum(v > 0.5, axis=0).astype(np.float64)
    neg = (~np.isnan(v)).sum(axis=0) - pos
    pos, neg = np.maximum(pos, 1.0), np.maximum(neg, 1.0)
    if method == "effective":
        pos, neg = (1 - np.power(beta, pos)) / (1 - beta), (1 - np.power(beta, neg)) / (1 - beta)
    return neg / pos


# ---- splits and reports --------------------------------------------------------------------------------------

MIN_STRATUM = 10


def strata(target_type: str, values: np.ndarray) -> np.ndarray:
    """Stratification labels (strings) for regression (quintiles of the first target) or multi-label (each row's
    rarest label) data; strata smaller than ``MIN_STRATUM`` join the largest one."""
    v = np.asarray(values, dtype=np.float64)
    n = len(v)
    out = np.full(n, "none", dtype=object)
    if target_type == "regression":
        first = v[:, 0]
        seen = ~np.isnan(first)
        if seen.sum() >= 5 * MIN_STRATUM:
            ranks = pd.Series(first[seen]).rank(method="first").to_numpy()
            out[seen] = np.array([f"q{int(q)}" for q in np.minimum((ranks - 1) * 5 // seen.sum(), 4)], dtype=object)
        out[~seen] = "missing"
    else:
        freq = np.nansum(v > 0.5, axis=0)
        order = np.where(v > 0.5, freq[None, :], np.inf)
        has = np.isfinite(order).any(axis=1)
        out[has] = np.array([f"label{j}" for j in order[has].argmin(axis=1)], dtype=object)
    names, counts = np.unique(out, return_counts=True)
    if len(names) > 1:
        small = names[counts < MIN_STRATUM]
        big = names[np.argmax(counts)]
        out[np.isin(out, small)] = big
    return out


def target_report(target_type: str, values: np.ndarray, names: list[str], split: np.ndarray) -> dict[str, Any]:
    """Per split: count, missing, mean, std, min, max per regression target; positives per label, label
    cardinality and the co-occurrence counts of label pairs (train) for multi-label data."""
    v = np.asarray(values, dtype=np.float64)
    out: dict[str, Any] = {"type": target_type, "names": list(names)}
    for s in SPLITS:
        rows = v[np.asarray(split) == s]
        if target_type == "regression":
            out[s] = {n: _describe(rows[:, j]) for j, n in enumerate(names)}
        else:
            out[s] = {"n": int(len(rows)), "positives": {n: int(np.nansum(rows[:, j] > 0.5)) for j, n in enumerate(names)},
                      "unknown": int(np.isnan(rows).sum()),
                      "cardinality": round(float(np.nansum(rows > 0.5) / max(len(rows), 1)), 4)}
    if target_type == "multilabel":
        train = np.nan_to_num(v[np.asarray(split) == "train"]) > 0.5
        co = train.T.astype(np.int64) @ train.astype(np.int64)
        out["cooccurrence_train"] = {"labels": list(names), "matrix": co.tolist()}
    return out


def _describe(x: np.ndarray) -> dict[str, Any]:
    seen = x[~np.isnan(x)]
    if not seen.size:
        return {"n": 0, "missing": int(len(x))}
    return {"n": int(seen.size), "missing": int(len(x) - seen.size), "mean": round(float(seen.mean()), 6),
            "std": round(float(seen.std()), 6), "min": round(float(seen.min()), 6),
            "median": round(float(np.median(seen)), 6), "max": round(float(seen.max()), 6)}
