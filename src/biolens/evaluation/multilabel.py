"""Multi-label evaluation: metrics with bootstrap CIs, per-label thresholds chosen on val, the reading, the figures.

Metrics come from the registry (``biolens.metrics``, scikit-learn): per-label ROC AUC and average precision, macro
and micro AUC, Hamming loss, subset accuracy and the example-based precision (aiming), coverage and accuracy of
Chou's multi-label measures. Thresholds are chosen per label on validation data (max F1, Youden, or a target
sensitivity/specificity; ``evaluation/threshold.choose_threshold``) and stored in the contract. Figures: a grid of
per-label ROC curves and a per-label AUC / F1 bar chart.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import brier_score_loss, roc_curve  # noqa: E402

from biolens.contract import decide_labels  # noqa: E402
from biolens.evaluation.bootstrap import _interval  # noqa: E402
from biolens.evaluation.threshold import choose_threshold  # noqa: E402
from biolens.metrics import get_metric, metric_names, target_metrics  # noqa: E402

log = logging.getLogger(__name__)

AUC_WORK = 2_000_000  # bootstrap budget for the AUC metrics: resamples × samples × labels


def label_thresholds(y: np.ndarray, p: np.ndarray, names: list[str], method: str = "f1",
                     target: float | None = None) -> tuple[list[float], dict[str, Any]]:
    """One threshold per label on validation data (labels with only one class there keep 0.5), and a summary."""
    y, p = np.asarray(y, dtype=np.float64), np.asarray(p, dtype=np.float64)
    out, detail = [], {}
    for j, name in enumerate(names):
        seen = ~np.isnan(y[:, j])
        yj = y[seen, j] > 0.5
        if not seen.any() or yj.all() or not yj.any():
            out.append(0.5)
            detail[name] = {"threshold": 0.5, "kept_default": True, "val_positives": int(yj.sum())}
            continue
        op = choose_threshold(yj, p[seen, j], method, target)
        out.append(float(op.threshold))  # exact: a rounded threshold could flip the decision at that very score
        detail[name] = {"threshold": float(op.threshold), "sensitivity": round(op.sensitivity, 4),
                        "specificity": round(op.specificity, 4), "reached": op.reached, "val_positives": int(yj.sum())}
    kept = [n for n, d in detail.items() if d.get("kept_default")]
    if kept:
        log.warning("%d label(s) have one class only on val (%s): their threshold stays 0.5", len(kept),
                    ", ".join(kept[:5]))
    return out, {"method": method, "target": target, "thresholds": dict(zip(names, out)), "per_label": detail}


SHARED_GRID = tuple(round(0.5 + 0.05 * i, 2) for i in range(9))  # 0.50 … 0.90
MIN_SHARED_ROWS = 200  # fully labelled val samples below which a shared threshold is not chosen (0.5 stays)


def shared_threshold(y: np.ndarray, p: np.ndarray, grid: tuple[float, ...] = SHARED_GRID,
                     min_rows: int = MIN_SHARED_ROWS) -> tuple[float, dict[str, Any]]:
    """One threshold for every label, under the never-empty rule (the most probable label is always kept): the
    value of ``grid`` with the best subset accuracy on the fully labelled rows of validation data ``y``, ``p``
    (the lowest one on a tie), and the val subset accuracy at each value.

    Why: the most probable label is kept whatever its probability, so the threshold only decides the second and
    later labels. On MFTP (21 labels) the default run's later labels above 0.5 were too often wrong: choosing the
    threshold this way on val raised test absolute true (subset accuracy) on each of seeds 0–4, by +0.6 to +1.8
    points (mean 0.619 → 0.629), and lowered test absolute false (Hamming loss) 0.0352 → 0.0346 (BENCHMARKS.md,
    2026-12-04). With fewer than ``min_rows`` rows the choice is noise: 0.5 is kept."""
    y, p = np.asarray(y, dtype=np.float64), np.asarray(p, dtype=np.float64)
    full = ~np.isnan(y).any(axis=1)
    n = int(full.sum())
    if n < min_rows:
        return 0.5, {"method": "default", "val_rows": n, "min_rows": min_rows}
    truth = y[full] > 0.5
    acc = {t: float((decide_labels(p[full], np.full(y.shape[1], t), True) == truth).all(axis=1).mean())
           for t in grid}
    best = max(grid, key=lambda t: (acc[t], -t))
    return float(best), {"method": "val_subset_accuracy", "val_rows": n, "val_subset_accuracy": acc}


def multilabel_cis(y: np.ndarray, p: np.ndarray, thresholds: np.ndarray, *, at_least_one: bool = False,
                   n_resamples: int = 1000, seed: int = 0, alpha: float = 0.05) -> dict[str, Any]:
    """Percentile bootstrap over samples for every multi-label metric; the AUC metrics use fewer resamples on large
    data (at least 100, ``auc_resamples``), as in ``bootstrap.binary_cis``."""
    y, p = np.asarray(y, dtype=np.float64), np.asarray(p, dtype=np.float64)
    n, k = y.shape
    names = metric_names(target_type="multilabel")
    scores = [m for m in names if get_metric(m).needs_scores]
    r_auc = min(n_resamples, max(100, AUC_WORK // max(n * k, 1)))
    rng = np.random.default_rng(seed)
    draws = {m: np.full(n_resamples, np.nan) for m in names}
    decided = decide_labels(p, thresholds, at_least_one)  # row by row, so a resample's decisions are these rows'
    counted = {m: get_metric(m).sample_counts(y, decided) for m in names if get_metric(m).sample_counts}
    summed = {m: np.zeros((n_resamples, c.shape[1])) for m, c in counted.items()}
    fns = {m: get_metric(m).multilabel for m in names if m not in counted}
    late = {m: fn for m, fn in fns.items() if m not in scores}  # past the AUC budget
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for r in range(n_resamples):
            idx = rng.integers(0, n, n)
            times = np.bincount(idx, minlength=n)  # how often each sample was drawn
            for m, c in counted.items():
                summed[m][r] = times.astype(c.dtype) @ c
            active = fns if r < r_auc else late
            if active:
                yr, pr, dr = y[idx], p[idx], decided[idx]
                for m, fn in active.items():
                    draws[m][r] = fn(yr, pr, dr)
    for m, c in summed.items():
        draws[m] = get_metric(m).from_counts(c)
    out: dict[str, Any] = {m: _interval(draws[m], alpha) for m in names}
    out["auc_resamples"] = r_auc
    return out


def multilabel_metrics(y: np.ndarray, p: np.ndarray, names: list[str], thresholds: np.ndarray, *,
                       at_least_one: bool = False, n_resamples: int = 1000, seed: int = 0,
                       alpha: float = 0.05) -> dict[str, Any]:
    """``target_metrics`` at ``thresholds`` (and the empty-set rule ``at_least_one``) plus CIs and the reading."""
    m = target_metrics("multilabel", y, p, names, thresholds, at_least_one)
    m["ci"] = multilabel_cis(y, p, thresholds, at_least_one=at_least_one, n_resamples=n_resamples, seed=seed,
                             alpha=alpha)
    m["ci_level"] = 1 - alpha
    m["clinical"] = reading(m)
    if at_least_one:
        m["clinical"].append("No sample is left without a label: where no label passes its threshold, the most "
                             "probable one is assigned (every training sample carried a label).")
    return m


def calibration(y: np.ndarray, p: np.ndarray, temperature: float) -> dict[str, Any]:
    """Brier score over every observed (sample, label) pair (scikit-learn) and the contract's temperature."""
    y, p = np.asarray(y, dtype=np.float64), np.asarray(p, dtype=np.float64)
    seen = ~np.isnan(y)
    brier = float(brier_score_loss(y[seen] > 0.5, p[seen])) if seen.any() else None
    return {"temperature": temperature, "brier": None if brier is None else round(brier, 6)}


def reading(m: dict[str, Any]) -> list[str]:
    """Plain sentences: how well labels are ranked, how often whole label sets are right, the weakest labels."""
    lines = []
    auc, micro, subset, ham = m.get("roc_auc"), m.get("micro_roc_auc"), m.get("subset_accuracy"), m.get("hamming_loss")
    if auc is not None:
        lines.append(f"Macro ROC AUC {auc:.3f} over {len(m['per_label'])} labels (micro {micro:.3f}): "
                     + ("labels are ranked well on the whole." if auc >= 0.85 else
                        "some labels are ranked poorly; see the per-label table and ROC grid."))
    if subset is not None:
        lines.append(f"Subset accuracy (absolute true) {subset:.3f}: {subset * 100:.1f}% of samples get exactly their "
                     f"label set; Hamming loss (absolute false) {ham:.3f}: {ham * 100:.1f}% of label decisions are "
                     "wrong.")
    if m.get("aiming") is not None:
        lines.append(f"Of the labels the model assigns, {m['aiming'] * 100:.1f}% are right (aiming); of the labels "
                     f"samples carry, {m['coverage'] * 100:.1f}% are found (coverage).")
    lc, pc = m.get("label_cardinality"), m.get("predicted_cardinality")
    if lc is not None and pc is not None:
        lines.append(f"Samples carry {lc:.2f} labels on average; the model assigns {pc:.2f}"
                     + (" (too few: lower the thresholds, e.g. biolens evaluate --optimize f1)" if pc < 0.8 * lc else
                        " (too many: raise the thresholds)" if pc > 1.25 * lc else "") + ".")
    per = [(n, v["roc_auc"]) for n, v in m["per_label"].items() if v.get("roc_auc") is not None]
    if per:
        weakest = sorted(per, key=lambda t: t[1])[:3]
        lines.append("Weakest labels by ROC AUC: " + ", ".join(f"{n} {a:.3f}" for n, a in weakest) + ".")
    rare = [n for n, v in m["per_label"].items() if v["positives"] < 10]
    if rare:
        lines.append(f"{len(rare)} label(s) have fewer than 10 positives here ({', '.join(rare[:5])}): their metrics "
                     "are uncertain.")
    return lines


def roc_grid(y: np.ndarray, p: np.ndarray, names: list[str], path: Path, per: dict[str, Any]) -> Path:
    """One small ROC panel per label, AUC and positives in the title."""
    k = len(names)
    cols = min(k, 5)
    rows = -(-k // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.8 * cols, 2.7 * rows), squeeze=False)
    for j, ax in enumerate(axes.flat):
        if j >= k:
            ax.axis("off")
            continue
        seen = ~np.isnan(y[:, j])
        yj = y[seen, j] > 0.5
        ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=0.8)
        if seen.any() and 0 < yj.sum() < len(yj):
            fpr, tpr, _ = roc_curve(yj, p[seen, j])
            ax.plot(fpr, tpr, lw=1.6)
        auc = per.get(names[j], {}).get("roc_auc")
        ax.set_title(f"{names[j]}: {'AUC %.2f' % auc if auc is not None else 'AUC -'} (n+ {int(yj.sum())})",
                     fontsize=8)
        ax.set(xlim=(0, 1), ylim=(0, 1.01), xticks=[0, 0.5, 1], yticks=[0, 0.5, 1])
        ax.tick_params(labelsize=7)
    fig.supxlabel("1 - specificity", fontsize=9)
    fig.supylabel("sensitivity", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def per_label_plot(per: dict[str, Any], path: Path) -> Path:
    names = list(per)
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(3 + 0.5 * len(names), 3.6))
    for i, metric in enumerate(("roc_auc", "pr_auc", "f1")):
        ax.bar(x + (i - 1) * 0.27, [per[n].get(metric) or 0 for n in names], width=0.27, label=metric)
    ax.set(xticks=x, ylim=(0, 1.05), title="Per label")
    ax.set_xticklabels(names, rotation=60, ha="right", fontsize=8)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_plots(folder: Path, y: np.ndarray, p: np.ndarray, names: list[str], headline: dict[str, Any]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    y, p = np.asarray(y, dtype=np.float64), np.asarray(p, dtype=np.float64)
    per = headline.get("per_label", {})
    return [roc_grid(y, p, names, folder / "roc_per_label.png", per), per_label_plot(per, folder / "per_label.png")]
