"""Where image data comes from: ``root/{train,val,test}/{class}/…`` folders, a CSV manifest, or a bundled set.

Each reader returns :class:`ImageRecords` (paths, labels, optional split names, a location per record for error
messages) and checks the folder layout, raising one-line :class:`DataError` messages that name the path and fix.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from biolens.data.builtin import get_builtin, is_builtin
from biolens.data.images.decode import IMAGE_SUFFIXES
from biolens.data.splits import SPLITS
from biolens.errors import DataError

log = logging.getLogger(__name__)



@dataclass
class ImageRecords:
    """Image files with labels; ``splits`` holds train/val/test per record when the source fixes them."""

    paths: list[Path]
    labels: list[str]
    splits: list[str] | None
    locations: list[str]  # "manifest.csv:12" or the file path, for error messages
    source: str
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # files of a folder that are not images, why
    groups: list[str] | None = None  # data.group_col of a manifest: patient or subject id
    targets: dict[str, list[str]] | None = None  # data.target_cols of a manifest: raw texts (regression, multi-label)

    def __len__(self) -> int:
        return len(self.paths)


def _images_in(folder: Path, skipped: list[tuple[Path, str]]) -> list[Path]:
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
    skipped += [(p, f"not an image file ({p.suffix or 'no suffix'}; images are {', '.join(IMAGE_SUFFIXES)})")
                for p in files if p.suffix.lower() not in IMAGE_SUFFIXES]
    return images


def _class_folders(folder: Path, skipped: list[tuple[Path, str]]) -> dict[str, list[Path]]:
    classes = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    out = {}
    for c in classes:
        images = _images_in(c, skipped)
        if not images:
            raise DataError(f"{c}: empty class folder (no {', '.join(IMAGE_SUFFIXES)} files); add images or remove the folder")
        out[c.name] = images
    return out


def read_folder(root: str | Path) -> ImageRecords:
    """``root/{train,val,test}/{class}/…`` (val/test optional) or ``root/{class}/…`` (no fixed split)."""
    root = Path(root)
    if not root.exists():
        raise DataError(f"image folder not found: {root}; check the path")
    if not root.is_dir():
        raise DataError(f"{root} is not a folder; give root/{{train,val,test}}/{{class}}/ images or a CSV manifest")
    split_dirs = {s: root / s for s in SPLITS if (root / s).is_dir()}
    per_split: dict[str | None, dict[str, list[Path]]] = {}
    skipped: list[tuple[Path, str]] = []
    if split_dirs:
        if "train" not in split_dirs:
            raise DataError(f"{root}: has {', '.join(split_dirs)} but no train/ folder; add {root / 'train'}")
        for s, d in split_dirs.items():
            per_split[s] = _class_folders(d, skipped)
        train_classes = set(per_split["train"])
        for s in ("val", "test"):
            if s in per_split and set(per_split[s]) != train_classes:
                raise DataError(
                    f"{root / s}: classes {', '.join(sorted(per_split[s]))} differ from train classes "
                    f"{', '.join(sorted(train_classes))}; use the same class folders in every split"
                )
    else:
        per_split[None] = _class_folders(root, skipped)
    classes = sorted({c for d in per_split.values() for c in d})
    if not classes:
        raise DataError(f"{root}: no class folders found; expected root/{{train,val,test}}/{{class}}/ or root/{{class}}/")
    if len(classes) < 2:
        raise DataError(f"{root}: only one class ({classes[0]!r}); a classifier needs at least two class folders")
    paths, labels, splits = [], [], []
    for s, d in per_split.items():
        for c, files in d.items():
            paths += files
            labels += [c] * len(files)
            splits += [s] * len(files)
    fixed = None if None in per_split else splits
    return ImageRecords(paths, labels, fixed, [str(p) for p in paths], str(root), skipped)


def read_manifest(path: str | Path, path_col: str = "path", label_col: str = "label", split_col: str = "split",
                  group_col: str | None = None, target_cols: tuple[str, ...] | list[str] = ()) -> ImageRecords:
    """A CSV with columns ``path,label[,split][,group_col]``; relative paths are taken from the CSV's folder.

    With ``target_cols`` (regression values, 0/1 label columns, label sets) those columns are read as raw texts
    into ``targets`` instead of the label column (``data/targets.py`` checks them)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"file not found: {path}; check the path")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, sep="\t" if path.suffix.lower() == ".tsv" else ",")
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: not a readable CSV manifest ({str(e).splitlines()[0]}); write path,label[,split] rows") from None
    for col in (path_col, *(target_cols or [label_col])):
        if col not in df.columns:
            fix = "set data.target_cols to the target columns" if target_cols else "a manifest needs path,label[,split]"
            raise DataError(f"{path}: no {col!r} column (columns: {', '.join(df.columns)}); {fix}")
    base = path.parent
    files = [Path(p) if Path(p).is_absolute() else base / p for p in df[path_col]]
    locations = [f"{path}:{i + 2}" for i in range(len(df))]
    missing = [i for i, f in enumerate(files) if not f.is_file()]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        i = missing[0]
        raise DataError(f"{locations[i]}: image file not found: {files[i]}{more}; fix the path or remove the row")
    targets = {c: [str(v).strip() for v in df[c]] for c in target_cols} if target_cols else None
    labels = list(df[label_col]) if targets is None else [""] * len(df)
    empty = next((i for i, lab in enumerate(labels) if not lab.strip()), None) if targets is None else None
    if empty is not None:
        raise DataError(f"{locations[empty]}: empty label; give every image a label")
    splits = None
    if split_col in df.columns:
        splits = [s.strip().lower() for s in df[split_col]]
        bad = next((i for i, s in enumerate(splits) if s not in SPLITS), None)
        if bad is not None:
            raise DataError(f"{locations[bad]}: split {df[split_col][bad]!r} is not train, val or test; fix the value")
    groups = None
    if group_col is not None:
        if group_col not in df.columns:
            raise DataError(f"{path}: no {group_col!r} column (columns: {', '.join(df.columns)}); set "
                            "data.group_col=NAME to the patient/subject column or leave it unset")
        groups = [g.strip() for g in df[group_col]]
        empty = next((i for i, g in enumerate(groups) if not g), None)
        if empty is not None:
            raise DataError(f"{locations[empty]}: empty value in column {group_col!r}; give every image a group")
    classes = sorted(set(labels))
    if len(classes) < 2 and targets is None:
        raise DataError(f"{path}: only one class ({classes[0]!r} if any); a classifier needs at least two")
    return ImageRecords(files, labels, splits, locations, str(path), groups=groups, targets=targets)


def is_image_manifest(path: str, path_col: str = "path") -> bool:
    """True for a CSV/TSV whose header has the image path column."""
    p = Path(path)
    if p.suffix.lower() not in (".csv", ".tsv") or not p.is_file():
        return False
    try:
        cols = pd.read_csv(p, nrows=0, sep="\t" if p.suffix.lower() == ".tsv" else ",").columns
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError):
        return False
    return path_col in cols


def is_image_source(path: object, path_col: str = "path") -> bool:
    """Image folder, image manifest or bundled image set (everything else is sequence data)."""
    if not isinstance(path, str):
        return False
    if is_builtin(path):
        try:
            return get_builtin(path).task == "image"
        except DataError:
            return False
    p = Path(path)
    return p.is_dir() or is_image_manifest(path, path_col)


@dataclass
class BuiltinImages:
    """A bundled image set in memory: ``images`` ``(N, 1, 28, 28)`` uint8, labels, split names, class names."""

    images: np.ndarray
    labels: np.ndarray  # (N,) int64 index into class_names (sorted)
    splits: np.ndarray  # (N,) str
    class_names: list[str]
    positive: str | None
    source: str


def read_builtin_images(spec: str) -> BuiltinImages:
    ds = get_builtin(spec)
    with np.load(ds.path) as z:
        parts = [(s, z[f"{s}_images"], z[f"{s}_labels"].reshape(-1)) for s in SPLITS]
    names = sorted(ds.classes)
    remap = np.array([names.index(c) for c in ds.classes], dtype=np.int64)  # file label → sorted index
    images = np.concatenate([p[1] for p in parts])[:, None]  # (N, H, W) → (N, 1, H, W)
    labels = remap[np.concatenate([p[2] for p in parts]).astype(np.int64)]
    splits = np.concatenate([[p[0]] * len(p[1]) for p in parts]).astype(str)
    return BuiltinImages(np.ascontiguousarray(images), labels, splits, names, ds.positive, f"builtin:{ds.name}")
