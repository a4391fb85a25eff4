"""Seeded stratified splits that keep duplicates together, and leakage detection across splits."""

from __future__ import annotations

import logging

import numpy as np
from sklearn.model_selection import train_test_split

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
