"""``biolens runs DIR``: a leaderboard of every run folder below a directory.

A run folder is a directory holding ``config.yaml`` and ``contract.json`` (as ``biolens train`` writes it); the
search goes down every sub-directory except a run's own artefact folders, so nested layouts (``runs/exp1/seed0``,
cross-validation folds) are found too. Per run: task, classes, model, the data set's fingerprint (``manifest.json``),
the date it was made, the best epoch, and the headline val/test metrics from ``metrics.json`` with their bootstrap
CIs where ``biolens evaluate`` computed them. Metric names and directions come from the metric registry, so a sort
by ``test_roc_auc`` puts the highest first and one by a ``min`` metric the lowest. A folder that cannot be read is
listed with its reason instead of stopping the listing.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from biolens.errors import ConfigError, DataError
from biolens.evaluation.leaderboard import render_csv, render_html
from biolens.evaluation.report import headline
from biolens.io import atomic_write_text
from biolens.metrics import get_metric, metric_names

log = logging.getLogger(__name__)

RUN_MARKERS = ("config.yaml", "contract.json")
# a run's own folders: never searched for further runs
ARTEFACT_DIRS = {"checkpoints", "plots", "tensorboard", "mlflow", "inputs", "evaluations", "__pycache__"}
SPLITS = ("val", "test")
DEFAULT_METRICS = ("accuracy", "balanced_accuracy", "roc_auc", "mcc")
ALIASES = {"roc_auc": "roc_auc_ovr"}  # metrics.json of multi-class runs stores roc_auc under this name
TEXT_KEYS = ("name", "run", "task", "model", "data")  # sortable, ascending
DATE_KEYS = ("date", "created")  # sortable, newest first


@dataclass
class RunSummary:
    """One row of the leaderboard."""

    path: Path
    name: str  # relative to the searched directory
    task: str | None = None
    classes: list[str] = field(default_factory=list)
    model: str | None = None
    data: str | None = None  # data.path of the run's config
    fingerprint: str | None = None
    created: str | None = None  # ISO time, UTC
    best_epoch: int | None = None
    epochs: int | None = None
    metrics: dict[str, dict[str, float | None]] = field(default_factory=dict)  # split → metric → value
    cis: dict[str, dict[str, list[float | None]]] = field(default_factory=dict)  # split → metric → [lo, hi]
    evaluated: dict[str, str] = field(default_factory=dict)  # split → what it was evaluated on
    history: list[dict[str, Any]] = field(default_factory=list)
    status: str = "ok"  # ok | unfinished (no metrics.json) | unreadable: REASON

    def value(self, key: str) -> Any:
        """The value a ``--sort`` key names: ``date``, ``name``, ``task``, ``model``, ``data`` or ``SPLIT_METRIC``."""
        if key in DATE_KEYS:
            return self.created
        if key in TEXT_KEYS:
            return {"name": self.name, "run": self.name, "task": self.task, "model": self.model,
                    "data": self.fingerprint}[key]
        split, _, metric = key.partition("_")
        return self.metrics.get(split, {}).get(metric)

    def row(self, metrics: list[str]) -> dict[str, Any]:
        """A flat row: identity columns, then ``SPLIT_METRIC`` (+ ``_lo``/``_hi`` where a CI exists) per metric."""
        out: dict[str, Any] = {
            "run": self.name, "task": self.task, "classes": " ".join(self.classes), "model": self.model,
            "data_fingerprint": self.fingerprint[:12] if self.fingerprint else None, "data": self.data,
            "date": self.created, "best_epoch": self.best_epoch, "epochs": self.epochs, "status": self.status,
        }
        for split in SPLITS:
            for m in metrics:
                out[f"{split}_{m}"] = self.metrics.get(split, {}).get(m)
                ci = self.cis.get(split, {}).get(m)
                out[f"{split}_{m}_lo"] = ci[0] if ci else None
                out[f"{split}_{m}_hi"] = ci[1] if ci else None
        return out


@dataclass
class Leaderboard:
    """The runs below ``root``, sorted by ``sort``; ``metrics`` are the registry metrics any run reports."""

    root: Path
    runs: list[RunSummary]
    sort: str
    metrics: list[str]

    def rows(self) -> list[dict[str, Any]]:
        return [r.row(self.metrics) for r in self.runs]

    def write_csv(self, path: str | Path) -> Path:
        atomic_write_text(path, render_csv(self.rows()))
        return Path(path)

    def write_html(self, path: str | Path, metrics: list[str] | None = None) -> Path:
        """A self-contained page: the table, and every run's history curves on one figure (embedded PNG)."""
        shown = [m for m in (metrics or DEFAULT_METRICS) if m in self.metrics] or self.metrics[:4]
        curves = {r.name: r.history for r in self.runs if r.history}
        atomic_write_text(path, render_html(f"biolens runs: {self.root}", self.rows(), shown, SPLITS, curves,
                                            self.sort))
        return Path(path)


def find_runs(root: str | Path) -> list[Path]:
    """Every run folder at or below ``root`` (sorted), not searching inside a run's artefact folders."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: no such directory; give the folder that holds your run folders (e.g. runs)")
    found = []
    for here, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        if all(m in files for m in RUN_MARKERS):
            found.append(Path(here))
            dirs[:] = [d for d in dirs if d not in ARTEFACT_DIRS]
    return sorted(found)


def _json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.is_file() else None


def _created(run: Path, manifest: dict[str, Any] | None) -> str:
    if manifest and manifest.get("created"):
        return str(manifest["created"])
    stamp = (run / "config.yaml").stat().st_mtime
    return datetime.fromtimestamp(stamp, tz=timezone.utc).isoformat(timespec="seconds")


def summarize(run: Path, root: Path) -> RunSummary:
    """What the leaderboard shows about one run folder (never raises: an unreadable run says why in ``status``)."""
    name = run.relative_to(root).as_posix() if run != root else run.name
    s = RunSummary(run, name or str(run))
    try:
        contract = _json(run / "contract.json") or {}
        cfg = yaml.safe_load((run / "config.yaml").read_text()) or {}
        manifest = _json(run / "manifest.json")
        metrics = _json(run / "metrics.json")
        history = _json(run / "history.json")
    except (OSError, ValueError, yaml.YAMLError) as e:
        s.status = f"unreadable: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}".rstrip(": ")
        return s
    s.task = contract.get("task")
    s.classes = [str(c) for c in contract.get("class_names") or []]
    s.model = (cfg.get("model") or {}).get("name")
    path = (cfg.get("data") or {}).get("path")
    s.data = " ".join(map(str, path)) if isinstance(path, list) else (str(path) if path is not None else None)
    s.fingerprint = (manifest or {}).get("dataset_fingerprint")
    s.created = _created(run, manifest)
    s.epochs = (cfg.get("train") or {}).get("epochs")
    s.history = history if isinstance(history, list) else []
    if not isinstance(metrics, dict):
        s.status = "unfinished"  # training still running or stopped before the end
        return s
    s.best_epoch = metrics.get("best_epoch")
    known = set(metric_names())
    for split in SPLITS:
        entry = metrics.get(split)
        if not isinstance(entry, dict):
            continue
        head = headline(entry)
        s.metrics[split] = {k: v for k, v in head.items() if k in known and (v is None or isinstance(v, (int, float)))}
        s.cis[split] = {k: v for k, v in (head.get("ci") or {}).items() if k in known}
        for name, alias in ALIASES.items():  # the registry defines roc_auc as the OvR macro AUC for multi-class
            if name not in s.metrics[split] and alias in s.metrics[split]:
                s.metrics[split][name] = s.metrics[split][alias]
                if alias in s.cis[split]:
                    s.cis[split][name] = s.cis[split][alias]
        if entry.get("evaluated"):
            s.evaluated[split] = str(entry["evaluated"])
    return s


def _check_sort(key: str, metrics: list[str]) -> None:
    split, _, metric = key.partition("_")
    if key in TEXT_KEYS or key in DATE_KEYS or (split in SPLITS and metric in metric_names()):
        return
    options = ["date", "name", "task", "model", "data"] + [f"{sp}_{m}" for sp in SPLITS for m in metrics]
    raise ConfigError(f"sort {key!r} is not a leaderboard column; sort by one of: {', '.join(options)}")


def leaderboard(root: str | Path, sort: str = "test_accuracy", ascending: bool | None = None) -> Leaderboard:
    """Every run folder below ``root``, sorted by ``sort`` (``date``, ``name``, ``task``, ``model``, ``data`` or
    ``SPLIT_METRIC`` such as ``test_roc_auc`` / ``val_mcc``). Metrics sort best first by the registry's direction,
    dates newest first, names A–Z; ``ascending`` overrides. Runs without the sort value go last.

    Raises:
        DataError: ``root`` is not a directory or holds no run folder. ConfigError: an unknown sort key.
    """
    root = Path(root)
    paths = find_runs(root)
    if not paths:
        raise DataError(f"no run folders below {root} (a run folder holds {' and '.join(RUN_MARKERS)}); train one "
                        f"with `biolens train --out {root}/NAME`")
    runs = [summarize(p, root) for p in paths]
    present = {m for r in runs for split in r.metrics.values() for m in split}
    metrics = [m for m in metric_names() if m in present]
    _check_sort(sort, metrics)
    if ascending is None:
        if sort in TEXT_KEYS:
            ascending = True
        elif sort in DATE_KEYS:
            ascending = False
        else:
            ascending = get_metric(sort.partition("_")[2]).direction == "min"
    have = [r for r in runs if r.value(sort) is not None]
    missing = [r for r in runs if r.value(sort) is None]
    have.sort(key=lambda r: r.name)
    have.sort(key=lambda r: r.value(sort), reverse=not ascending)  # stable: ties stay in name order
    log.info("%d run folders below %s", len(runs), root)
    return Leaderboard(root, have + sorted(missing, key=lambda r: r.name), sort, metrics)
