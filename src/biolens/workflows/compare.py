"""``biolens compare RUN…``: test metrics side by side, honestly.

Metrics of two runs only compare when both were measured on the same items. Before anything is ranked, the runs'
dataset fingerprints (``manifest.json``) and their test predictions (``predictions.csv``: ids and labels) are
checked; when they differ the comparison is refused (``DataError``) unless ``allow_different_data=True``, which shows
the table with the reasons as loud warnings. For the same test set every pair of runs gets paired tests on the
items both scored: McNemar for accuracy (each run's own decisions) and, for binary tasks, DeLong for ROC AUC; with
more than one pair, Holm-adjusted p-values too.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from biolens.bundle import check_run_dir
from biolens.errors import BiolensWarning, BundleError, DataError
from biolens.evaluation.paired import delong_test, holm, mcnemar_test
from biolens.evaluation.paired_targets import paired_bootstrap
from biolens.evaluation.report import headline
from biolens.metrics import metric_names

log = logging.getLogger(__name__)


@dataclass
class Comparison(Sequence):
    """Runs compared on their test split: ``rows`` (one per run: run, model, data fingerprint, n, test metrics),
    whether the test sets match, the reasons when they do not, and the paired tests per pair of runs.

    It reads as the sequence of its rows (``comparison[0]["accuracy"]``), as ``compare_runs`` always returned."""

    rows: list[dict[str, Any]]
    same_test_set: bool
    problems: list[str] = field(default_factory=list)
    paired: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def __getitem__(self, i: int) -> dict[str, Any]:  # type: ignore[override]
        return self.rows[i]

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.rows)

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "same_test_set": self.same_test_set, "problems": self.problems,
                "paired": self.paired, "notes": self.notes}


@dataclass
class _Run:
    path: Path
    name: str
    model: str | None
    fingerprint: str | None
    classes: list[str]
    positive: str | None
    head: dict[str, Any]
    predictions: pd.DataFrame | None
    why_no_predictions: str | None
    target_type: str = "classification"
    thresholds: np.ndarray | None = None  # multi-label: the run's per-label thresholds
    at_least_one: bool = False  # multi-label: the run never decides an empty label set


def _read_run(run: str | Path) -> _Run:
    run_dir = check_run_dir(run)
    metrics = _json(run_dir / "metrics.json")
    contract = _json(run_dir / "contract.json")
    manifest = _json(run_dir / "manifest.json")
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
    preds, why = None, None
    path = run_dir / "predictions.csv"
    if not path.is_file():
        why = f"{path} is missing"
    else:
        preds = pd.read_csv(path, dtype={"id": str, "label": str, "prediction": str})
        kind = contract.get("target_type", "classification")
        if kind != "classification":  # regression / multi-label: true_<name> and pred_<name> / p_<name> columns
            truth = [f"true_{n}" for n in contract.get("class_names") or []]
            if not truth or not all(c in preds for c in truth):
                preds, why = None, f"{path} has no true_<target> columns (predictions of unlabelled data)"
            elif preds["id"].duplicated().any():
                preds, why = None, f"{path}: test ids are not unique, so items cannot be paired"
            return _Run(run_dir, str(run_dir), (cfg.get("model") or {}).get("name"), manifest.get("dataset_fingerprint"),
                        list(contract.get("class_names") or []), None, headline(metrics.get("test") or {}), preds, why,
                        kind, np.asarray(contract.get("label_thresholds") or [0.5] * len(truth), dtype=np.float64),
                        bool(contract.get("at_least_one_label", False)))
        if "label" not in preds or "prediction" not in preds:
            preds, why = None, f"{path} has no label column (predictions of unlabelled data)"
        elif preds["id"].duplicated().any():
            preds, why = None, f"{path}: test ids are not unique, so items cannot be paired"
    return _Run(run_dir, str(run_dir), (cfg.get("model") or {}).get("name"), manifest.get("dataset_fingerprint"),
                list(contract.get("class_names") or []), contract.get("positive_class"),
                headline(metrics.get("test") or {}), preds, why)


def _json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BundleError(f"{path}: not valid JSON ({e}); restore it from the original run") from None
    return data if isinstance(data, dict) else {}


def _short(fp: str | None) -> str | None:
    return fp[:12] if fp else None


def _problems(runs: list[_Run]) -> list[str]:
    """Why the runs' test metrics are not measured on the same data (empty: they are, as far as can be seen)."""
    out = []
    first = runs[0]
    for r in runs[1:]:
        if r.fingerprint and first.fingerprint and r.fingerprint != first.fingerprint:
            out.append(f"{first.name} and {r.name} were trained and tested on different data (dataset fingerprint "
                       f"{_short(first.fingerprint)}… vs {_short(r.fingerprint)}…)")
        if r.classes != first.classes:
            out.append(f"{first.name} and {r.name} predict different classes ({', '.join(first.classes)} vs "
                       f"{', '.join(r.classes)})")
        if first.predictions is None or r.predictions is None:
            continue
        a, b = first.predictions.set_index("id"), r.predictions.set_index("id")
        common = a.index.intersection(b.index)
        if len(common) != len(a) or len(common) != len(b):
            out.append(f"{first.name} and {r.name} were tested on different items ({len(a)} and {len(b)} test ids, "
                       f"{len(common)} in common)")
        elif r.target_type != first.target_type:
            out.append(f"{first.name} is a {first.target_type} run and {r.name} a {r.target_type} run")
        elif _different_labels(first, a.loc[common], b.loc[common]).any():
            k = int(_different_labels(first, a.loc[common], b.loc[common]).sum())
            out.append(f"{first.name} and {r.name} have different labels for {k} of {len(common)} test items")
    return out


def _different_labels(run: _Run, a: pd.DataFrame, b: pd.DataFrame) -> np.ndarray:
    """Per item: the two runs' labels (regression / multi-label: every true_ value) differ."""
    if run.target_type == "classification":
        return (a["label"] != b["label"]).to_numpy()
    cols = [f"true_{n}" for n in run.classes]
    ya, yb = a[cols].to_numpy(dtype=np.float64), b[cols].to_numpy(dtype=np.float64)
    return (~((ya == yb) | (np.isnan(ya) & np.isnan(yb)))).any(axis=1)


PAIRED_METRIC = {"regression": ("spearman", "pearson"), "multilabel": ("roc_auc", "subset_accuracy")}


def _pair_targets(a: _Run, b: _Run) -> dict[str, Any]:
    """Regression and multi-label runs: paired bootstraps of the headline metrics on the items both scored."""
    m = a.predictions.merge(b.predictions, on="id", suffixes=("_a", "_b"))
    out: dict[str, Any] = {"a": a.name, "b": b.name, "n": int(len(m)), "mcnemar": None, "delong": None}
    prefix = "pred_" if a.target_type == "regression" else "p_"
    y = m[[f"true_{n}_a" for n in a.classes]].to_numpy(dtype=np.float64)
    pa = m[[f"{prefix}{n}_a" for n in a.classes]].to_numpy(dtype=np.float64)
    pb = m[[f"{prefix}{n}_b" for n in a.classes]].to_numpy(dtype=np.float64)
    out["bootstrap"] = {metric: paired_bootstrap(metric, a.target_type, y, pa, pb, a.thresholds, b.thresholds,
                                                 at_least_one_a=a.at_least_one, at_least_one_b=b.at_least_one).to_dict()
                        for metric in PAIRED_METRIC[a.target_type]} if len(m) else None
    return out


def _pair(a: _Run, b: _Run) -> dict[str, Any]:
    """McNemar (and DeLong for binary runs) on the test items both runs scored; regression and multi-label runs:
    paired bootstraps (``evaluation/paired_targets.py``)."""
    assert a.predictions is not None and b.predictions is not None
    if a.target_type != "classification":
        return _pair_targets(a, b)
    m = a.predictions.merge(b.predictions, on="id", suffixes=("_a", "_b"))
    m = m[m["label_a"] == m["label_b"]]
    out: dict[str, Any] = {"a": a.name, "b": b.name, "n": int(len(m))}
    if not len(m):
        out["mcnemar"] = out["delong"] = None
        return out
    label = m["label_a"].to_numpy()
    out["mcnemar"] = mcnemar_test(m["prediction_a"].to_numpy() == label,
                                  m["prediction_b"].to_numpy() == label).to_dict()
    col = f"p_{a.positive}"
    out["delong"] = None
    if a.positive is not None and len(a.classes) == 2 and f"{col}_a" in m and f"{col}_b" in m:
        y = label == a.positive
        if 0 < y.sum() < len(y):
            out["delong"] = delong_test(y, m[f"{col}_a"].to_numpy(float), m[f"{col}_b"].to_numpy(float)).to_dict()
    return out


def compare_runs(runs: Sequence[str | Path], *, allow_different_data: bool = False) -> Comparison:
    """Compare runs on their test split: one row per run (name, model, data fingerprint, n, headline test metrics at
    each run's threshold) and, when all were tested on the same items, paired tests for every pair of runs.

    Raises:
        DataError: the runs were tested on different data (dataset fingerprints, test ids or labels differ, or the
            classes do not match), unless ``allow_different_data=True``; then the reasons are warnings (and
            ``problems``) and pairs are tested only where their ids and labels match.
    """
    loaded = [_read_run(r) for r in runs]
    rows = []
    for r in loaded:
        row: dict[str, Any] = {"run": r.name, "model": r.model, "data": _short(r.fingerprint), "n": r.head.get("n")}
        row.update({k: r.head.get(k) for k in metric_names() if k in r.head})
        rows.append(row)
    keys = list(dict.fromkeys(k for r in rows for k in r))
    rows = [{k: r.get(k) for k in keys} for r in rows]

    problems = _problems(loaded) if len(loaded) > 1 else []
    if problems and not allow_different_data:
        raise DataError(f"{problems[0]}: their test metrics are not comparable; compare runs tested on the same "
                        "data, or pass allow_different_data=True to see the table anyway")
    for p in problems:
        warnings.warn(f"{p}: these metrics are not comparable", BiolensWarning, stacklevel=2)

    notes = [f"no paired tests for {r.name}: {r.why_no_predictions}" for r in loaded if r.why_no_predictions]
    paired = []
    classes_match = all(r.classes == loaded[0].classes for r in loaded)
    if not notes and classes_match:
        for a, b in combinations(loaded, 2):
            paired.append(_pair(a, b))
        if len(paired) > 1:
            for test in ("mcnemar", "delong"):
                ps = [p[test]["p_value"] if p.get(test) else float("nan") for p in paired]
                for p, adj in zip(paired, holm(ps), strict=True):
                    if p.get(test):
                        p[test]["p_holm"] = None if np.isnan(adj) else adj
            for metric in PAIRED_METRIC.get(loaded[0].target_type, ()):
                ps = [(p.get("bootstrap") or {}).get(metric, {}).get("p_value") for p in paired]
                for p, adj in zip(paired, holm([float("nan") if v is None else v for v in ps]), strict=True):
                    if (p.get("bootstrap") or {}).get(metric):
                        p["bootstrap"][metric]["p_holm"] = None if np.isnan(adj) else adj
            notes.append(f"p_holm: Holm-adjusted over the {len(paired)} pairs of runs")
    return Comparison(rows, not problems, problems, paired, notes)
