"""The guide's four-panel training-history figure (5.1) and its fit verdict."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def fit_verdict(history: list[dict[str, Any]]) -> dict[str, Any]:
    """Good fit / slight overfitting / overfitting from the last epoch's gap ``val_loss − train_loss``.

    Thresholds are the guide's (0.05, 0.15). The guide computes ``train − val``, which is negative exactly when
    a model overfits; the gap here is the other way round, so a large positive gap means overfitting.
    """
    if not history:
        return {"verdict": "no epochs", "gap": None}
    gap = float(history[-1]["val_loss"]) - float(history[-1]["train_loss"])
    if gap < 0.05:
        verdict, advice = "good fit", "train and val losses are close"
    elif gap < 0.15:
        verdict, advice = "slight overfitting", "consider more regularization"
    else:
        verdict, advice = "overfitting", "more data, stronger regularization or a simpler model"
    return {"verdict": verdict, "gap": round(gap, 4), "advice": advice}


def _metric_key(history: list[dict[str, Any]]) -> str | None:
    keys = [k[4:] for k in history[0] if k.startswith("val_") and k != "val_loss"]
    return keys[0] if keys else None


def plot_history(history: list[dict[str, Any]], path: str | Path, lr_steps: list[list[float]] | None = None) -> Path:
    """Loss, metric, LR (log scale; per step when given) and train–val gap panels, saved as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    epochs = [h["epoch"] for h in history]
    fig, ax = plt.subplots(2, 2, figsize=(11, 7))
    ax[0, 0].plot(epochs, [h["train_loss"] for h in history], label="train")
    ax[0, 0].plot(epochs, [h["val_loss"] for h in history], label="val")
    ax[0, 0].set(title="loss", xlabel="epoch")
    metric = _metric_key(history)
    if metric:
        ax[0, 1].plot(epochs, [h.get(f"train_{metric}") for h in history], label="train")
        ax[0, 1].plot(epochs, [h[f"val_{metric}"] for h in history], label="val")
    ax[0, 1].set(title=metric or "metric", xlabel="epoch")
    if lr_steps:
        ax[1, 0].plot([r[0] for r in lr_steps], [r[2] for r in lr_steps])
        ax[1, 0].set(xlabel="step")
    else:
        ax[1, 0].plot(epochs, [h["lr"] for h in history])
        ax[1, 0].set(xlabel="epoch")
    ax[1, 0].set_yscale("log")
    ax[1, 0].set_title("learning rate")
    ax[1, 1].plot(epochs, [h["val_loss"] - h["train_loss"] for h in history], color="tab:red")
    ax[1, 1].axhline(0, color="black", linestyle="--", alpha=0.5)
    verdict = fit_verdict(history)
    ax[1, 1].set(title=f"val − train loss: {verdict['verdict']}", xlabel="epoch")
    for a in ax.flat:
        a.grid(alpha=0.3)
        if a.get_legend_handles_labels()[0]:
            a.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
