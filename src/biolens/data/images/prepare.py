"""From a DataConfig to decoded, validated, split image data with resolved preprocessing, or a one-line error.

Writes nothing into a run folder: bad input fails before one exists (the decode cache lives elsewhere).
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sklearn.model_selection import train_test_split

from biolens.config import DataConfig
from biolens.data.builtin import is_builtin
from biolens.data.classes import pick_positive
from biolens.data.images.cache import decode_all, default_cache_dir
from biolens.data.images.dataset import ImageSplit, channel_stats
from biolens.data.images.decode import Window
from biolens.data.images.sources import ImageRecords, read_builtin_images, read_folder, read_manifest
from biolens.data.images.transforms import IMAGENET_MEAN, IMAGENET_STD
from biolens.data.similarity import merge_groups
from biolens.data.splits import SPLITS, may_be_empty, read_assignment
from biolens.data.targets import Targets, explain, read_targets, strata, target_report
from biolens.errors import BiolensWarning, ConfigError, DataError

log = logging.getLogger(__name__)

IMBALANCE_RATIO = 2.0
DEFAULT_SIZE, BUILTIN_SIZE = 224, 28


@dataclass
class PreparedImages:
    splits: dict[str, ImageSplit]
    class_names: list[str]
    positive_class: str | None
    size: int  # model input side
    resize_to: int  # stored side (eval center-crops size out of it)
    channels: int  # model input channels
    mean: list[float]
    std: list[float]
    config: DataConfig  # resolved
    report: dict[str, Any] = field(default_factory=dict)
    filtered: list[dict[str, str]] = field(default_factory=list)
    records: Any = None  # pandas DataFrame of the used images: row, id, label, split, group


def _groups(images: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Integer key per row, equal for identical pixel arrays (duplicates stay in one split)."""
    keys = [hashlib.blake2b(np.ascontiguousarray(images[r]).tobytes(), digest_size=8).hexdigest() for r in rows]
    return np.unique(np.array(keys), return_inverse=True)[1]


def _carve(labels: np.ndarray, groups: np.ndarray, frac: float, seed: int, what: str) -> np.ndarray:
    """Bool mask of rows moved to a new split: a stratified, seeded share of duplicate groups."""
    uniq, first = np.unique(groups, return_index=True)
    glabels = labels[first]
    counts = np.bincount(glabels)
    if (counts[counts > 0] < 2).any():
        raise DataError(f"a class has fewer than 2 distinct images, too few to split off a {what} set; add images or give a {what}/ folder")
    try:
        _, taken = train_test_split(np.arange(len(uniq)), test_size=frac, stratify=glabels, random_state=seed)
    except ValueError as e:
        raise DataError(f"cannot split off a stratified {what} set ({e}); add images or give a {what}/ folder") from None
    return np.isin(groups, uniq[taken])


def _assign_splits(given: np.ndarray | None, y: np.ndarray, groups: np.ndarray, cfg: DataConfig,
                   seed: int) -> np.ndarray:
    split = np.array(given if given is not None else ["train"] * len(y), dtype=object)
    for name, frac in (("test", cfg.test_frac), ("val", cfg.val_frac)):
        if (split == name).any():
            continue
        pool = np.flatnonzero(split == "train")
        share = frac / (1 - cfg.test_frac) if name == "val" and given is None else frac
        moved = _carve(y[pool], groups[pool], share, seed, name)
        split[pool[moved]] = name
        log.info("no %s split given: moved a stratified %.0f%% of train (seed %d) to %s", name, share * 100, seed, name)
    return split.astype(str)


def _image_targets(cfg: DataConfig, recs: ImageRecords, manifest: bool) -> Targets | None:
    """Regression or multi-label targets of a manifest (``data.target_cols``, or a label column of numbers or label
    sets); None for classification. Image folders hold one class per folder."""
    if not manifest:
        if cfg.target in ("regression", "multilabel") or cfg.target_cols:
            raise ConfigError(f"{recs.source}: an image folder holds one class per folder; regression and multi-label "
                              "targets need a CSV manifest (path plus target columns, data.target_cols)")
        return None
    raw = recs.targets or {cfg.label_col: recs.labels}
    targets = read_targets(raw, cfg.target, cfg.label_sep, recs.locations.__getitem__, recs.source)
    log.info("%s", explain(targets))
    return None if targets.type == "classification" else targets


def _strata(targets: Targets, y: np.ndarray) -> np.ndarray:
    return strata(targets.type, y)


def _resize_all(images: np.ndarray, side: int) -> np.ndarray:
    if images.shape[-1] == side:
        return images
    t = torch.from_numpy(images).float()
    out = F.interpolate(t, size=(side, side), mode="bilinear", antialias=True, align_corners=False)
    return out.round().clamp(0, 255).to(torch.uint8).numpy()


def _bad_files(bad: dict[int, str], recs: ImageRecords, skip: bool) -> list[dict[str, str]]:
    if not bad:
        return []
    items = sorted(bad.items())
    if not skip:
        listing = "; ".join(f"{recs.locations[i]} ({reason})" for i, reason in items)
        raise DataError(f"{len(items)} unreadable image file(s): {listing}; fix or remove them, or set data.image.skip_bad=true to leave them out")
    warnings.warn(f"skipped {len(items)} unreadable image file(s) (listed in filtered.tsv of the run)", BiolensWarning,
                  stacklevel=3)
    return [{"id": str(recs.paths[i]), "location": recs.locations[i], "reason": reason} for i, reason in items]


def _class_report(y: np.ndarray, split: np.ndarray, names: list[str]) -> dict[str, dict[str, int]]:
    return {s: {c: int(((split == s) & (y == k)).sum()) for k, c in enumerate(names)} for s in SPLITS}


def _warn_imbalance(counts: dict[str, int]) -> float:
    lo, hi = min(counts.values()), max(counts.values())
    ratio = hi / max(lo, 1)
    if ratio >= IMBALANCE_RATIO:
        rare = min(counts, key=counts.get)
        warnings.warn(
            f"class imbalance in train ({', '.join(f'{c} {n}' for c, n in counts.items())}; ratio {ratio:.1f}): judge the "
            f"model by balanced accuracy, AUC and sensitivity/specificity rather than accuracy, and consider a "
            f"class-weighted loss or tuning the decision threshold on val so {rare!r} is not missed",
            BiolensWarning, stacklevel=3)
    return round(ratio, 3)


def prepare_images(cfg: DataConfig, *, seed: int = 0, transfer: bool = False) -> PreparedImages:
    """Read, decode (once), validate, split and describe image data.

    Args:
        cfg: the data section (``cfg.image`` holds the image options).
        seed: split seed.
        transfer: the model is an ImageNet-style backbone (auto channels → 3; auto normalization → ImageNet when
            ``cfg.image.normalize`` says so).
    """
    icfg = cfg.image
    if cfg.split.group_by == "similarity":
        raise ConfigError("data.split.group_by=similarity groups sequences; for images group by patient with "
                          "data.group_col (identical images are always grouped)")
    if cfg.val is not None or cfg.test is not None:
        raise ConfigError("data.val/data.test files are for sequence data; put images in root/val/ and root/test/ or add a split column to the manifest")
    targets: Targets | None = None  # regression or multi-label manifests (None: classification)
    if is_builtin(cfg.path):
        if cfg.group_col is not None:
            raise ConfigError(f"data.group_col: the bundled set {cfg.path} has no group column; leave it unset")
        b = read_builtin_images(str(cfg.path))
        size = icfg.image_size or BUILTIN_SIZE
        resize_to = max(size, round(size / icfg.crop_ratio))
        images, y, split, names = _resize_all(b.images, resize_to), b.labels, b.splits, b.class_names
        ids = np.array([f"{s}_{i}" for s in SPLITS for i in range(int((b.splits == s).sum()))], dtype=object)
        rows, filtered, source, positive = np.arange(len(y)), [], b.source, b.positive
        store_channels = 1
        groups = _groups(images, rows)
    else:
        if not isinstance(cfg.path, str):
            raise ConfigError("image data takes one data.path: a folder or a CSV manifest")
        p = Path(cfg.path)
        if cfg.group_col is not None and not p.is_file():
            raise ConfigError(f"data.group_col: {p} is an image folder, which has no columns; give a CSV manifest "
                              "with a path, label and group column")
        recs = (read_manifest(p, icfg.path_col, cfg.label_col, cfg.split_col, cfg.group_col, tuple(cfg.target_cols))
                if p.is_file() else read_folder(p))
        targets = _image_targets(cfg, recs, p.is_file())
        size = icfg.image_size or DEFAULT_SIZE
        resize_to = max(size, round(size / icfg.crop_ratio))
        cache_dir = (Path(icfg.cache_dir) if icfg.cache_dir else default_cache_dir()) if icfg.cache else None
        decoded = decode_all(recs.paths, resize_to, Window(icfg.window_center, icfg.window_width), cache_dir,
                             max_pixels=icfg.max_pixels)
        filtered = _bad_files(decoded.bad, recs, icfg.skip_bad)
        if recs.skipped:  # every file of the folder is used or listed here (and in filtered.tsv), --quiet or not
            warnings.warn(f"{recs.source}: skipped {len(recs.skipped)} file(s) that are not images (listed in "
                          f"filtered.tsv of the run): " + ", ".join(str(f) for f, _ in recs.skipped[:5])
                          + (f" and {len(recs.skipped) - 5} more" if len(recs.skipped) > 5 else ""), BiolensWarning,
                          stacklevel=2)
            filtered += [{"id": str(f), "location": str(f), "reason": why} for f, why in recs.skipped]
        rows = np.array([i for i in range(len(recs)) if i not in decoded.bad], dtype=np.int64)
        if len(rows) == 0:
            raise DataError(f"{recs.source}: no readable images left; fix the files")
        images = decoded.images
        if targets is not None:  # regression values or multi-label 0/1, (N, T) float32 with NaN where missing
            names, y = list(targets.names), targets.values[rows]
        else:
            names = sorted(set(recs.labels[i] for i in rows))
            if len(names) < 2:
                raise DataError(f"{recs.source}: only one class ({names[0]!r}) among readable images; a classifier needs two")
            lookup = {c: k for k, c in enumerate(names)}
            y = np.array([lookup[recs.labels[i]] for i in rows], dtype=np.int64)
        given = None if recs.splits is None else np.array([recs.splits[i] for i in rows], dtype=object)
        groups = _groups(images, rows)
        if recs.groups is not None:
            groups = merge_groups(len(rows), [groups, np.array([recs.groups[i] for i in rows], dtype=object)])
        strata = y if targets is None else np.unique(_strata(targets, y), return_inverse=True)[1]
        split = _assign_splits(given, strata, groups, cfg, seed) if cfg.split.assignment is None else None
        ids = np.array([str(recs.paths[i]) for i in rows], dtype=object)
        source, positive, store_channels = recs.source, None, int(images.shape[1])
    if cfg.split.assignment is not None:
        split = read_assignment(cfg.split.assignment, ids)
        log.info("data.split.assignment %s: %d images assigned, %d left out", cfg.split.assignment,
                 int((split != "").sum()), int((split == "").sum()))
    elif is_builtin(cfg.path):
        pass
    elif cfg.group_col is not None and given is not None:
        straddling = int((pd.DataFrame({"g": groups, "s": split}).groupby("g")["s"].nunique() > 1).sum())
        if straddling:
            warnings.warn(f"{straddling} group(s) of data.group_col have images in more than one split of the "
                          "manifest: metrics will be optimistic; drop the split column to let biolens split by group",
                          BiolensWarning, stacklevel=2)
    kind = "classification" if targets is None else targets.type
    shown = np.asarray(names, dtype=object)[y] if kind == "classification" else _strata(targets, y)
    records = pd.DataFrame({"row": np.arange(len(ids)), "id": ids, "label": shown,
                            "split": split, "group": groups})
    records = records[records["split"] != ""].reset_index(drop=True)
    if cfg.positive_class is not None and cfg.positive_class not in names:
        raise ConfigError(f"positive_class {cfg.positive_class!r} is not a class; classes: {', '.join(names)}")
    if cfg.positive_class is not None:
        positive = cfg.positive_class
    elif positive is None and len(names) == 2 and kind == "classification":
        positive = pick_positive(names, None)
    if kind != "classification" and cfg.positive_class is not None:
        raise ConfigError(f"data.positive_class is for classification; the targets are {kind}: leave it unset")
    splits = {}
    for s in SPLITS:
        m = split == s
        if not m.any() and not may_be_empty(s, cfg.split.assignment):
            raise DataError(f"{source}: the {s} split has no images; add images to {s}/ or give more data")
        splits[s] = ImageSplit(images, rows[m], y[m], ids[m])
    counts = _class_report(y, split, names) if kind == "classification" else None
    ratio = _warn_imbalance(counts["train"]) if counts is not None else None
    channels = {"auto": 3 if transfer else store_channels}.get(icfg.channels, icfg.channels)
    norm = icfg.normalize if icfg.normalize != "auto" else ("imagenet" if transfer else "data")
    if icfg.mean is not None and icfg.std is not None:
        mean, std, norm = list(icfg.mean), list(icfg.std), "given"
    elif norm == "imagenet":
        mean, std = (list(IMAGENET_MEAN), list(IMAGENET_STD)) if channels == 3 else ([0.449], [0.226])
    elif norm == "none":
        mean, std = [0.0] * channels, [1.0] * channels
    else:
        mean, std = channel_stats(splits["train"])
        if len(mean) != channels:  # stats of gray data fed as 3 channels (or the reverse)
            mean, std = [float(np.mean(mean))] * channels, [float(np.mean(std))] * channels
    if len(mean) != channels or len(std) != channels:
        raise ConfigError(f"data.image.mean/std need {channels} values (one per channel); got {len(mean)}/{len(std)}")
    resolved = cfg.model_copy(update={
        "positive_class": positive, "target": kind,
        "target_cols": list(targets.columns) if targets is not None else cfg.target_cols,
        "image": icfg.model_copy(update={"image_size": size, "channels": channels, "mean": mean, "std": std,
                                         "normalize": icfg.normalize if norm == "given" else norm}),
    })
    report = {
        "source": source, "task": "image", "classes": names, "target_type": kind,
        **({"class_counts": counts, "imbalance_ratio_train": ratio} if counts is not None else
           {"targets": target_report(kind, y, names, split)}),
        "image_size": size, "resize_to": resize_to, "stored_channels": store_channels, "channels": channels,
        "normalize": norm, "mean": mean, "std": std, "unreadable_skipped": len(filtered),
    }
    log.info("data: %s, images %dx%d, %d channel(s); train/val/test %d/%d/%d; train classes %s; normalize %s",
             source, size, size, channels, *(len(splits[s]) for s in SPLITS),
             ", ".join(f"{c} {n}" for c, n in counts["train"].items()) if counts else f"{kind} {', '.join(names)}",
             norm)
    return PreparedImages(splits, names, positive, size, resize_to, channels, mean, std, resolved, report, filtered,
                          records=records)
