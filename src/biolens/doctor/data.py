"""``biolens doctor data``: check data exactly as training would read it (same config, ``make_task``, ``prepare``).

Checks (guide 3.2, 7.3): shapes and ranges of real batches, NaN/Inf, normalization after transforms (images),
class balance with the biolens flags that fix it, classes missing from a split, duplicates leaking across splits,
sequence lengths and truncation, alphabet surprises, image size/channel/mode distribution and unreadable files.
"""

from __future__ import annotations

import logging
import warnings
from collections import Counter
from collections.abc import Callable
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import torch

from biolens.config import RunConfig
from biolens.data.splits import SPLITS
from biolens.doctor.targets import data_checks
from biolens.findings import Finding, Report
from biolens.tasks import Task, make_task

log = logging.getLogger(__name__)

IMBALANCE_WARN = 3.0  # guide 3.2: "imbalance_ratio > 3"
MEAN_TOL, STD_RANGE = 0.5, (0.5, 2.0)  # "close to 0 and 1 if normalized" (guide 7.3)
PROBE_LIMIT = 2000  # image headers probed for size/mode


def prepare_task(cfg: RunConfig) -> Task:
    """The task of ``cfg``, prepared as ``biolens train`` would; unreadable images are collected, not fatal."""
    if cfg.data.image.skip_bad is False:
        cfg = cfg.model_copy(update={"data": cfg.data.model_copy(
            update={"image": cfg.data.image.model_copy(update={"skip_bad": True})})})
    task = make_task(cfg)
    with warnings.catch_warnings():  # the doctor reports these itself, with the fix
        warnings.simplefilter("ignore")
        task.prepare()
    return task


# checks that only make sense for one task kind (lengths and alphabets, image sizes): registered per kind
KIND_CHECKS: dict[str, list[Callable[[Task, Report, dict[str, Any]], None]]] = {}
ITEM_NAME = {"sequence": "sequence (or its reverse complement)", "image": "image"}


def kind_check(kind: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Register a data check ``check(task, report, context)`` for one task kind (``context`` holds the batch stats)."""
    def decorator(fn: Callable[..., None]) -> Callable[..., None]:
        KIND_CHECKS.setdefault(kind, []).append(fn)
        return fn
    return decorator


def doctor_data(cfg: RunConfig, *, n_batches: int = 3) -> Report:
    """Every data check on the data of ``cfg``. Bad input (missing file, bad option) raises a BiolensError."""
    task = prepare_task(cfg)
    report = Report("data", str(cfg.data.path))
    names = list(task.class_names)
    context = {"stats": _batches(task, n_batches, report)}
    if task.target_type == "classification":
        _balance(task, names, report)
        _missing_classes(task, names, report)
    else:  # target distribution, outliers, constant targets; rare labels and co-occurrence (doctor/targets.py)
        data_checks(task, report)
    _leakage(task, report)
    _near_duplicates(task, report)
    for check in KIND_CHECKS.get(task.kind, []):
        check(task, report, context)
    return report


def _batches(task: Task, n_batches: int, report: Report) -> dict[str, list[torch.Tensor]]:
    """Shapes, ranges and labels of the first batches of train and val; returns the float inputs by split."""
    cpu = torch.device("cpu")
    n_classes = len(task.class_names)
    rows, nonfinite, bad_y = [], [], []
    stats: dict[str, list[torch.Tensor]] = {}
    for split, train in (("train", True), ("val", False)):
        for i, b in enumerate(islice(iter(task.batches(split, train=train, device=cpu)), n_batches)):
            x, y = b["x"], b["y"]
            targets = y.is_floating_point()  # regression values / multi-label 0/1, NaN where missing
            row = {"split": split, "batch": i, "x": "×".join(map(str, x.shape)), "dtype": str(x.dtype).replace("torch.", ""),
                   "min": float(x.min()), "max": float(x.max()),
                   "y": (f"{'×'.join(map(str, y.shape))} float, {int(torch.isnan(y).sum())} missing" if targets
                         else sorted(int(v) for v in y.unique()))}
            rows.append(row)
            if x.is_floating_point():
                if not torch.isfinite(x).all():
                    nonfinite.append(f"{split} batch {i}")
                stats.setdefault(split, []).append(x.float())
            if not targets and (int(y.min()) < 0 or int(y.max()) >= n_classes):
                bad_y.append(f"{split} batch {i}")
    report.tables["batches"] = rows
    report.add(Finding("batches", "fail" if bad_y else "pass",
                       f"{len(rows)} batches, x {rows[0]['x']} {rows[0]['dtype']}, values {rows[0]['min']:.3g}..{rows[0]['max']:.3g}"
                       + (f"; labels out of 0..{n_classes - 1} in {', '.join(bad_y)}" if bad_y else ""),
                       "labels must index the class list" if bad_y else ""))
    report.add(Finding("NaN/Inf in inputs", "fail" if nonfinite else "pass",
                       f"non-finite values in {', '.join(nonfinite)}" if nonfinite else "all inputs finite",
                       "check the source files (16-bit/DICOM scaling) and data.image.mean/std (std must be > 0)"
                       if nonfinite else ""))
    return stats


@kind_check("image")
def _normalization(task: Task, report: Report, context: dict[str, Any]) -> None:
    stats: dict[str, list[torch.Tensor]] = context["stats"]
    parts = []
    worst = "pass"
    for split, xs in stats.items():
        x = torch.cat(xs)  # (B, C, H, W) after transforms, as the model sees it
        mean, std = x.mean(dim=(0, 2, 3)), x.std()
        parts.append(f"{split} mean {', '.join(f'{m:.2f}' for m in mean.tolist())}, std {float(std):.2f}")
        off = float(mean.abs().max()) > MEAN_TOL or not STD_RANGE[0] <= float(std) <= STD_RANGE[1]
        if off:
            worst = "fail" if float(mean.abs().max()) > 5 or float(std) > 10 else "warn"
    detail = "; ".join(parts)
    if worst == "pass":
        report.add(Finding("normalization", "pass", detail + " (about 0 and 1)"))
    else:
        report.add(Finding("normalization", worst, detail + ": inputs are not normalized (want mean ≈ 0, std ≈ 1)",
                           "normalize: --set data.image.normalize=data (train statistics) or imagenet for a pretrained "
                           "backbone; drop data.image.mean/std if they were set by hand"))


def _balance(task: Task, names: list[str], report: Report) -> None:
    y = task.labels("train")
    counts = np.bincount(y, minlength=len(names))
    ratio = float(counts.max() / max(counts.min(), 1))
    t = task.cfg.train
    handled = [s for s, on in (("--class-weights " + t.class_weights, t.class_weights != "none"),
                               ("--sampler weighted", t.sampler == "weighted"), ("--loss focal", t.loss == "focal")) if on]
    detail = "train: " + ", ".join(f"{c} {n}" for c, n in zip(names, counts)) + f" (ratio {ratio:.1f})"
    data = {"counts": dict(zip(names, counts.tolist())), "ratio": round(ratio, 3)}
    if ratio <= IMBALANCE_WARN:
        report.add(Finding("class balance", "pass", detail, data=data))
    elif handled:
        report.add(Finding("class balance", "pass", detail + f"; handled by {', '.join(handled)}", data=data))
    else:
        rare = names[int(counts.argmin())]
        fix = ("weighted loss: --class-weights inverse (or effective for very skewed data); or a balanced sampler: "
               "--sampler weighted; or focal loss: --loss focal (hard examples). Judge by balanced accuracy/AUC, not "
               f"accuracy, and tune the threshold on val so {rare!r} is not missed")
        report.add(Finding("class balance", "warn", detail + " (guide 3.2: above 3 needs handling)", fix, data))


def _missing_classes(task: Task, names: list[str], report: Report) -> None:
    missing = {s: [names[k] for k in sorted(set(range(len(names))) - set(task.labels(s).tolist()))] for s in SPLITS}
    bad = {s: m for s, m in missing.items() if m}
    if not bad:
        report.add(Finding("classes in every split", "pass", f"all {len(names)} classes in train, val and test"))
        return
    report.add(Finding("classes in every split", "fail",
                       "; ".join(f"{', '.join(m)} missing from {s}" for s, m in bad.items())
                       + ": per-class metrics, early stopping and the operating point cannot see them",
                       "add examples of those classes to that split (or let biolens split: drop the split column / "
                       "--val/--test files and it stratifies by class)", {"missing": bad}))


def _leakage(task: Task, report: Report) -> None:
    leak = task.leakage()
    across = {k: sum(v.values()) for k, v in leak.items() if k != "within_split_duplicates"}
    within = leak.get("within_split_duplicates", {})
    removed = task.report().get("dedup_removed", 0)  # --dedup dropped the leaked rows after counting them
    n = 0 if removed else sum(across.values())
    if n:
        where = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in across.items() if v)
        report.add(Finding("leakage across splits", "fail", f"{where}: the same {ITEM_NAME.get(task.kind, 'item')} "
                           "is in two splits, so val/test metrics are optimistic", task.leakage_fix, {"leakage": leak}))
    else:
        report.add(Finding("leakage across splits", "pass", "no duplicates across splits"
                           + (f" ({removed} removed by --dedup)" if removed else ""), data={"leakage": leak}))
    dup = sum(within.values())
    if dup:
        total = sum(task.size(s) for s in SPLITS)
        report.add(Finding("duplicates within splits", "warn" if dup > 0.05 * total else "pass",
                           f"{dup} exact duplicates inside splits ({', '.join(f'{s} {v}' for s, v in within.items() if v)})",
                           "duplicates over-weight those examples; deduplicate the source if they are not intended"
                           if dup > 0.05 * total else ""))


NEAR_DUPLICATE_LIMIT = 200_000  # items compared for near-duplicates (MinHash / perceptual hashes)


def _near_duplicates(task: Task, report: Report) -> None:
    total = sum(task.size(s) for s in SPLITS)
    cut = task.cfg.data.split.max_identity
    what = (f"sequences at ≥ {cut:g} estimated identity (k-mer MinHash)" if task.kind == "sequence"
            else "images within 4 bits of perceptual hash")
    if total > NEAR_DUPLICATE_LIMIT:
        report.add(Finding("near-duplicates across splits", "pass", f"not checked: {total:,} items is over the "
                           f"{NEAR_DUPLICATE_LIMIT:,} this check compares"))
        return
    found = task.near_duplicates(cut)
    n = sum(found.values())
    grouped = task.cfg.data.split.group_by == "similarity"
    detail = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in found.items() if v)
    if not n:
        report.add(Finding("near-duplicates across splits", "pass", f"no {what} across splits", data=found))
    else:
        fix = ("split by similarity: --set data.split.group_by=similarity (and data.split.max_identity), so similar "
               "sequences stay in one split" if task.kind == "sequence" else
               "group images of one patient or source with --group-col, or remove the re-exported copies")
        report.add(Finding("near-duplicates across splits", "pass" if grouped and task.kind == "sequence" else "warn",
                           f"{detail}: {what}; metrics on them measure recall of near-copies, not generalization",
                           "" if grouped else fix, found))


@kind_check("sequence")
def _lengths(task: Task, report: Report, context: dict[str, Any]) -> None:
    lengths = task.report()["lengths"]
    tr = lengths["train"]
    max_len = tr["max_len"]
    cut = {s: v["truncated"] for s, v in lengths.items() if v["truncated"]}
    detail = (f"train lengths {tr['min']}..{tr['max']} (median {tr['median']:.0f}, mean {tr['mean']:.1f}); "
              f"max_len {max_len}")
    report.tables["lengths"] = [{"split": s, **v} for s, v in lengths.items()]
    if cut:
        total = sum(v["n"] for v in lengths.values())
        frac = sum(cut.values()) / max(total, 1)
        report.add(Finding("sequence length", "warn", detail + f"; {sum(cut.values())} sequences ({frac:.1%}) longer "
                           f"than max_len are truncated ({', '.join(f'{s} {n}' for s, n in cut.items())})",
                           f"raise --max-len (longest: {max(v['max'] for v in lengths.values())}) if the ends matter"))
    elif tr["median"] and tr["max"] > 10 * tr["median"]:
        report.add(Finding("sequence length", "warn", detail + ": a few very long sequences make every batch they "
                           "are in mostly padding", "cap with --max-len (e.g. the 99th percentile) or split long records"))
    else:
        report.add(Finding("sequence length", "pass", detail))


@kind_check("sequence")
def _alphabet(task: Task, report: Report, context: dict[str, Any]) -> None:
    d = task.data
    alpha = d.alphabet
    counts = np.zeros(alpha.vocab_size, dtype=np.int64)
    for block in d.splits["train"].blocks():  # bounded memory when the split is streamed from the store
        counts += np.bincount(block.ravel(), minlength=alpha.vocab_size)
    counts = counts[1:]  # drop PAD (index 0)
    total = max(int(counts.sum()), 1)
    symbols = list(alpha.symbols) + [alpha.unknown]
    used = {s: int(c) for s, c in zip(symbols, counts) if c}
    comp = ", ".join(f"{s} {c / total:.0%}" for s, c in sorted(used.items(), key=lambda kv: -kv[1])[:8])
    declared = task.cfg.data.alphabet
    nucleic = sum(c for s, c in used.items() if s in "ACGTUN") / total
    unknown = used.get(alpha.unknown, 0) / total
    data = {"alphabet": alpha.name, "declared": declared, "composition": used}
    if alpha.name == "protein" and nucleic > 0.9:
        report.add(Finding("alphabet", "fail", f"read as protein (declared {declared}) but {nucleic:.0%} of residues "
                           f"are A/C/G/T/N ({comp}): these look like nucleotides",
                           "use --alphabet dna (or rna); a protein model would waste 20-letter embeddings on 4 letters", data))
    elif unknown > 0.05:
        report.add(Finding("alphabet", "warn", f"{alpha.name}: {unknown:.1%} of symbols are {alpha.unknown} "
                           f"(unknown); composition {comp}",
                           "lower data.quality.max_unknown_frac to drop N-rich records, or check the source", data))
    else:
        report.add(Finding("alphabet", "pass", f"{alpha.name} (declared {declared}); composition {comp}", data=data))


@kind_check("image")
def _images(task: Task, report: Report, context: dict[str, Any]) -> None:
    from PIL import Image

    d = task.data
    dropped = task.dropped()
    if dropped:
        listing = "; ".join(f"{r['location']} ({r['reason']})" for r in dropped[:5])
        report.add(Finding("unreadable files", "fail", f"{len(dropped)} file(s) cannot be decoded: {listing}"
                           + (" …" if len(dropped) > 5 else ""),
                           "fix or remove them, or train with --skip-bad to leave them out (listed in filtered.tsv)",
                           {"files": dropped}))
    else:
        report.add(Finding("unreadable files", "pass", "every image decodes"))
    paths = [Path(str(p)) for s in SPLITS for p in d.splits[s].ids]
    if not paths or not paths[0].is_file():  # bundled arrays: no files to probe
        store = d.splits["train"].images
        report.add(Finding("image size and mode", "pass", f"bundled array {store.shape[1]}×{store.shape[2]}×"
                           f"{store.shape[3]} (channels×H×W) → model input {d.channels}×{d.size}×{d.size}"))
        return
    sizes: Counter[str] = Counter()
    modes: Counter[str] = Counter()
    short = 0
    for p in paths[:PROBE_LIMIT]:
        try:
            with Image.open(p) as im:
                sizes[f"{im.width}×{im.height}"] += 1
                modes[im.mode] += 1
                short += min(im.width, im.height) * 2 < d.size
        except Exception:  # noqa: BLE001  DICOM and the unreadable are counted by kind
            modes["dicom" if p.suffix.lower() in (".dcm", ".dicom") else "other"] += 1
    top = ", ".join(f"{k} ({v})" for k, v in sizes.most_common(3))
    detail = (f"{sum(modes.values())} files: sizes {top}{' …' if len(sizes) > 3 else ''}; modes "
              f"{', '.join(f'{k} {v}' for k, v in modes.most_common())}; model input {d.channels}×{d.size}×{d.size}")
    data = {"sizes": dict(sizes), "modes": dict(modes)}
    kinds = set(modes) - {"dicom", "other"}
    if len(kinds) > 1:
        report.add(Finding("image size and mode", "warn", detail + ": mixed color modes",
                           "check the images come from one source; biolens converts them all to "
                           f"{d.report['stored_channels']} channel(s)", data))
    elif short:
        report.add(Finding("image size and mode", "warn", detail + f": {short} image(s) are under half the input "
                           f"size and get upsampled {d.size // 2}+ px", "use --image-size closer to the native size", data))
    else:
        report.add(Finding("image size and mode", "pass", detail, data=data))


def data_summary(task: Task) -> dict[str, Any]:
    """Sizes the advisor needs: kind, train size, classes, imbalance, median length or native image side."""
    y = task.labels("train")
    counts = np.bincount(y, minlength=len(task.class_names))
    out: dict[str, Any] = {"kind": task.kind, "n": int(len(y)), "classes": len(counts),
                           "imbalance": round(float(counts.max() / max(counts.min(), 1)), 3)}
    if task.kind == "sequence":
        out["length"] = int(task.report()["lengths"]["train"]["median"])
        out["alphabet"] = task.data.alphabet.name
    else:
        out["image_size"] = int(task.data.splits["train"].images.shape[-1])
        ids = task.data.splits["train"].ids
        if len(ids) and Path(str(ids[0])).is_file():
            from PIL import Image

            sides = []
            for p in ids[:200]:
                try:
                    with Image.open(str(p)) as im:
                        sides.append(min(im.size))
                except Exception:  # noqa: BLE001
                    continue
            if sides:
                out["image_size"] = int(np.median(sides))
    return out
