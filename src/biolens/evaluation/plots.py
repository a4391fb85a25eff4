"""Evaluation figures as PNG files (matplotlib, Agg backend): ROC, PR, confusion matrices, calibration, per class."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import precision_recall_curve, roc_curve  # noqa: E402


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def roc_plot(y_pos: np.ndarray, p_pos: np.ndarray, path: Path, auc: float | None,
             points: dict[str, float] | None = None) -> Path:
    """ROC curve with operating points (name → threshold) marked."""
    fpr, tpr, _ = roc_curve(y_pos, p_pos)
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    ax.plot(fpr, tpr, lw=2, label=f"ROC (AUC {auc:.3f})" if auc is not None else "ROC")
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1)
    for name, t in (points or {}).items():
        pred = p_pos >= t
        sens = (pred & y_pos).sum() / max(y_pos.sum(), 1)
        fp_rate = (pred & ~y_pos).sum() / max((~y_pos).sum(), 1)
        ax.scatter([fp_rate], [sens], s=50, zorder=3, label=f"{name} (t={t:.3f})")
    ax.set(xlabel="1 - specificity", ylabel="sensitivity", title="ROC", xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, path)


def pr_plot(y_pos: np.ndarray, p_pos: np.ndarray, path: Path, ap: float | None) -> Path:
    prec, rec, _ = precision_recall_curve(y_pos, p_pos)
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    ax.plot(rec, prec, lw=2, label=f"PR (AP {ap:.3f})" if ap is not None else "PR")
    ax.axhline(y_pos.mean(), ls="--", c="grey", lw=1, label="prevalence")
    ax.set(xlabel="recall (sensitivity)", ylabel="precision (PPV)", title="Precision-recall", xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower left", fontsize=8)
    return _save(fig, path)


def confusion_plot(matrix: list[list[int]], labels: list[str], path: Path) -> Path:
    """Counts and row-normalized confusion matrices side by side."""
    cm = np.asarray(matrix, dtype=float)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    k = len(labels)
    fig, axes = plt.subplots(1, 2, figsize=(4 + 1.6 * k, 2 + 0.8 * k))
    for ax, data, title, fmt in ((axes[0], cm, "counts", "{:.0f}"), (axes[1], norm, "normalized by true class", "{:.2f}")):
        ax.imshow(data, cmap="Blues", vmin=0)
        ax.set(xticks=range(k), yticks=range(k), xticklabels=labels, yticklabels=labels,
               xlabel="predicted", ylabel="true", title=title)
        for i in range(k):
            for j in range(k):
                ax.text(j, i, fmt.format(data[i, j]), ha="center", va="center",
                        color="white" if data[i, j] > data.max() / 2 else "black", fontsize=9)
    return _save(fig, path)


def calibration_plot(rel: dict[str, list[float]], path: Path, ece: float) -> Path:
    conf, acc = np.array(rel["confidence"], dtype=float), np.array(rel["accuracy"], dtype=float)
    keep = np.isfinite(conf) & np.isfinite(acc)
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1, label="perfect calibration")
    ax.plot(conf[keep], acc[keep], marker="o", lw=2, label=f"model (ECE {ece:.3f})")
    ax.set(xlabel="confidence (top class)", ylabel="accuracy", title="Reliability diagram", xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="upper left", fontsize=8)
    return _save(fig, path)


def per_class_plot(per_class: dict[str, dict[str, Any]], path: Path) -> Path:
    names = list(per_class)
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(3 + 1.2 * len(names), 3.6))
    for i, metric in enumerate(("precision", "recall", "f1")):
        ax.bar(x + (i - 1) * 0.27, [per_class[n][metric] or 0 for n in names], width=0.27, label=metric)
    ax.set(xticks=x, xticklabels=names, ylim=(0, 1.05), title="Per class")
    ax.legend(fontsize=8, loc="lower right")
    return _save(fig, path)

