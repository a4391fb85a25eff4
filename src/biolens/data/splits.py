"""Seeded stratified splits that keep duplicates together, and leakage detection across splits."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold, train_test_split

from biolens.data.alphabets import Alphabet
from biolens.data.augment import reverse_complement_np
from biolens.errors import DataError

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


def sequence_keys(x: np.ndarray, lengths: np.ndarray, alphabet: Alphabet) -> tuple[np.ndarray, np.ndarray]:
    """Integer keys per row: ``exact`` (equal iff sequences are identical) and ``canonical`` (equal iff identical
    or reverse complements, for nucleic acids; same as exact for protein)."""
    x = np.ascontiguousarray(x, dtype=np.uint8)
    n = len(x)
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    rows = x.view(np.dtype((np.void, x.shape[1]))).ravel()
    if not alphabet.is_nucleic:
        _, exact = np.unique(rows, return_inverse=True)
        return exact, exact
    rc = np.ascontiguousarray(reverse_complement_np(x, lengths, alphabet)).view(np.dtype((np.void, x.shape[1]))).ravel()
    _, inv = np.unique(np.concatenate([rows, rc]), return_inverse=True)
    exact, rc_key = inv[:n], inv[n:]
    return exact, np.minimum(exact, rc_key)


def stratified_split(
    labels: np.ndarray, groups: np.ndarray, val_frac: float, test_frac: float, seed: int
) -> np.ndarray:
    """Assign each row to train/val/test, stratified by label, with every group (duplicate set) in one split.

    Returns an array of split names.
    """
    labels = np.asarray(labels)
    uniq_groups, first = np.unique(groups, return_index=True)
    group_labels = labels[first]
    counts = dict(zip(*np.unique(group_labels, return_counts=True)))
    few = [k for k, c in counts.items() if c < 3]
    if few:
        raise DataError(
            f"class {few[0]!r} has only {counts[few[0]]} distinct sequence(s); a train/val/test split needs at least 3 "
            "per class: add data, or give explicit val and test files (data.val=FILE, data.test=FILE)"
        )
    idx = np.arange(len(uniq_groups))
    try:
        rest, test = train_test_split(idx, test_size=test_frac, stratify=group_labels, random_state=seed)
        train, val = train_test_split(
            rest, test_size=val_frac / (1 - test_frac), stratify=group_labels[rest], random_state=seed
        )
    except ValueError as e:
        raise DataError(f"cannot make a stratified split ({e}); add data or give explicit val and test files (data.val=FILE, data.test=FILE)") from None
    group_split = np.empty(len(uniq_groups), dtype=object)
    group_split[train], group_split[val], group_split[test] = "train", "val", "test"
    return group_split[np.searchsorted(uniq_groups, groups)].astype(str)


def find_leakage(exact: np.ndarray, canonical: np.ndarray, split: np.ndarray, check_rc: bool) -> dict:
    """Count sequences of a later split that occur in an earlier one (exact, and reverse-complement only).

    Returns ``{"val_in_train": {"exact": n, "reverse_complement": m}, ..., "within": {...}}`` and the row mask of
    leaked rows under ``"_mask"`` (rows in val/test whose sequence appears in an earlier split).
    """
    report: dict = {}
    mask = np.zeros(len(split), dtype=bool)
    for later, earlier in (("val", ("train",)), ("test", ("train", "val"))):
        rows = split == later
        prev = np.isin(split, earlier)
        hit_exact = rows & np.isin(exact, exact[prev])
        hit_canon = rows & np.isin(canonical, canonical[prev])
        mask |= hit_canon if check_rc else hit_exact
        key = f"{later}_in_{'_or_'.join(earlier)}"
        report[key] = {"exact": int(hit_exact.sum())}
        if check_rc:
            report[key]["reverse_complement"] = int((hit_canon & ~hit_exact).sum())
    report["within_split_duplicates"] = {
        s: int((split == s).sum() - len(np.unique(exact[split == s]))) for s in SPLITS
    }
    report["_mask"] = mask
    return report


ASSIGNMENT_COLUMNS = ("row", "id", "split")


def write_assignment(path: str | Path, rows: np.ndarray, ids: np.ndarray, split: np.ndarray) -> None:
    """A split assignment TSV (``row``, ``id``, ``split``) for ``data.split.assignment``."""
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh, delimiter="\t", lineterminator="\n")
        w.writerow(ASSIGNMENT_COLUMNS)
        w.writerows(zip((int(r) for r in rows), (str(i) for i in ids), (str(s) for s in split)))


def may_be_empty(split: str, assignment: str | None) -> bool:
    """Whether ``split`` may hold no rows: only the test split, and only under ``data.split.assignment`` (a cv refit
    member's assignment has train and val rows alone); every other empty split is a DataError."""
    return split == "test" and assignment is not None


def read_assignment(path: str | Path, ids: np.ndarray) -> np.ndarray:
    """The split of every record (``""`` for records the file does not list) from a ``data.split.assignment`` TSV;
    each listed row must carry the id the data have at that row, so an assignment never applies to changed data."""
    try:
        df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise DataError(f"data.split.assignment {path}: file not found; check the path") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise DataError(f"data.split.assignment {path}: cannot parse ({str(e).splitlines()[0]}); it is a TSV with "
                        f"columns {', '.join(ASSIGNMENT_COLUMNS)}") from None
    missing = [c for c in ASSIGNMENT_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(f"data.split.assignment {path}: no column {missing[0]!r}; it needs "
                        f"{', '.join(ASSIGNMENT_COLUMNS)}")
    out = np.full(len(ids), "", dtype=object)
    for line, (row, rid, s) in enumerate(zip(df["row"], df["id"], df["split"]), start=2):
        if s not in SPLITS:
            raise DataError(f"{path}:{line}: split {s!r}; expected one of {', '.join(SPLITS)}")
        if not row.isdigit() or int(row) >= len(ids):
            raise DataError(f"{path}:{line}: row {row!r} is not a record of the data ({len(ids)} records); the "
                            "assignment belongs to other data")
        if str(ids[int(row)]) != rid:
            raise DataError(f"{path}:{line}: record {row} is {ids[int(row)]!r} in the data, not {rid!r}; the data "
                            "changed since the assignment was written")
        out[int(row)] = s
    return out


def grouped_folds(labels: np.ndarray, groups: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Fold number (0 … folds-1) per row: stratified by label, every group in one fold, seeded
    (scikit-learn's ``StratifiedGroupKFold``)."""
    labels, groups = np.asarray(labels), np.asarray(groups)
    n_groups = len(np.unique(groups))
    if folds < 2:
        raise DataError(f"folds={folds}: cross-validation needs at least 2 folds")
    if n_groups < folds:
        raise DataError(f"{folds} folds need at least {folds} groups of records; the data have {n_groups} (duplicates "
                        "and data.group_col groups stay together): use fewer folds or add data")
    counts = dict(zip(*np.unique(labels, return_counts=True)))
    rare = min(counts, key=counts.get)
    if counts[rare] < folds:
        raise DataError(f"class {rare!r} has {counts[rare]} record(s), fewer than the {folds} folds; every fold needs "
                        "each class: use fewer folds or add data")
    fold = np.full(len(labels), -1, dtype=np.int64)
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed % (2**32))
    for k, (_, held) in enumerate(splitter.split(np.zeros(len(labels)), labels, groups)):
        fold[held] = k
    return fold


def inner_val(labels: np.ndarray, groups: np.ndarray, val_frac: float, seed: int) -> np.ndarray:
    """Bool mask of a stratified, grouped share (about ``val_frac``) of rows held out for validation. A class with
    fewer records than ``1 / val_frac`` parts gets a larger share (one record of it per part), logged."""
    parts = max(2, round(1 / val_frac))
    rarest = int(np.unique(np.asarray(labels), return_counts=True)[1].min())
    if 2 <= rarest < parts:
        log.info("inner val: the rarest class has %d records, fewer than the %d parts a %.2f share needs; holding out "
                 "1/%d instead", rarest, parts, val_frac, rarest)
        parts = rarest
    fold = grouped_folds(labels, groups, parts, seed)
    return fold == 0
