"""Regression evaluation: metrics with bootstrap confidence intervals, the biological reading and the figures.

Metrics come from the registry (``biolens.metrics``: Pearson r, Spearman ρ, R², MAE, RMSE; scipy and scikit-learn),
macro-averaged over targets; CIs are seeded percentile bootstraps over samples (rows). Figures: predicted vs observed
(a hexbin density where points overlap) and residuals vs predicted, one panel per target.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from biolens.evaluation.bootstrap import _interval  # noqa: E402
from biolens.metrics import metric_names, regression_values, target_metrics  # noqa: E402

DENSITY_ABOVE = 400  # points per panel above which the scatter becomes a hexbin density


def regression_cis(y: np.ndarray, pred: np.ndarray, *, n_resamples: int = 1000, seed: int = 0, alpha: float = 0.05
                   ) -> dict[str, Any]:
    """Percentile bootstrap ``[lo, hi]`` of every regression metric (macro over targets), and per target."""
    y, pred = np.asarray(y, dtype=np.float64), np.asarray(pred, dtype=np.float64)
    n, t = y.shape
    names = metric_names(target_type="regression")
    rng = np.random.default_rng(seed)
    draws = {m: np.full((n_resamples, t), np.nan) for m in names}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for r in range(n_resamples):
            idx = rng.integers(0, n, n)
            for m in names:
                draws[m][r] = regression_values(m, y[idx], pred[idx])
    out: dict[str, Any] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a resample where every target is undefined: NaN
        for m in names:
            out[m] = _interval(np.nanmean(draws[m], axis=1), alpha)
    if t > 1:
        out["per_target"] = [{m: _interval(draws[m][:, j], alpha) for m in names} for j in range(t)]
    return out


def regression_metrics(y: np.ndarray, pred: np.ndarray, names: list[str], *, n_resamples: int = 1000, seed: int = 0,
                       alpha: float = 0.05) -> dict[str, Any]:
    """``target_metrics`` plus CIs (``ci``; per target in ``per_target[name]["ci"]``) and the reading."""
    m = target_metrics("regression", y, pred, names)
    ci = regression_cis(y, pred, n_resamples=n_resamples, seed=seed, alpha=alpha)
    per = ci.pop("per_target", None)
    m["ci"], m["ci_level"] = ci, 1 - alpha
    if per is not None:
        for name, c in zip(names, per):
            m["per_target"][name]["ci"] = c
    for j, name in enumerate(names):
        seen = ~np.isnan(np.asarray(y, dtype=np.float64)[:, j])
        m["per_target"][name]["observed_sd"] = round(float(np.std(np.asarray(y)[seen, j])), 6) if seen.any() else None
    m["clinical"] = reading(m, names)
    return m


def reading(m: dict[str, Any], names: list[str]) -> list[str]:
    """Plain sentences about the figures, per target: ranking, variance explained, error size vs the spread."""
    lines = []
    for name in names:
        p = m["per_target"][name]
        rho, r, r2, mae, sd = p.get("spearman"), p.get("pearson"), p.get("r2"), p.get("mae"), p.get("observed_sd")
        if rho is None or r is None:
            lines.append(f"{name}: correlations are undefined (too few values, or constant predictions).")
            continue
        strength = ("strong" if rho >= 0.7 else "moderate" if rho >= 0.5 else "weak" if rho >= 0.3
                    else "little or no")
        lines.append(f"{name}: Spearman ρ {rho:.3f} — {strength} agreement in ranking: the model orders samples "
                     f"{'well enough to prioritise candidates' if rho >= 0.5 else 'too loosely to prioritise candidates'}"
                     f" (Pearson r {r:.3f}).")
        if r2 is not None:
            lines.append(f"{name}: R² {r2:.3f} — the predictions explain {max(r2, 0) * 100:.0f}% of the variance"
                         + (" (worse than predicting the mean: check the scale and the split)" if r2 < 0 else "") + ".")
        if mae is not None and sd:
            lines.append(f"{name}: a typical error (MAE) of {mae:.4g}, {mae / sd:.2f} × the observed standard "
                         f"deviation ({sd:.4g}); RMSE {p.get('rmse'):.4g}.")
    return lines


def _panel_grid(k: int) -> tuple[plt.Figure, np.ndarray]:
    cols = min(k, 3)
    rows = -(-k // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.4 * cols, 4.0 * rows), squeeze=False)
    for ax in axes.flat[k:]:
        ax.axis("off")
    return fig, axes


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def scatter_plot(y: np.ndarray, pred: np.ndarray, names: list[str], path: Path, per: dict[str, Any]) -> Path:
    """Predicted vs observed per target, with the identity line; a hexbin density where points overlap."""
    fig, axes = _panel_grid(len(names))
    for j, (ax, name) in enumerate(zip(axes.flat, names)):
        seen = ~np.isnan(y[:, j]) & np.isfinite(pred[:, j])
        a, b = y[seen, j], pred[seen, j]
        if not seen.any():
            ax.set_title(f"{name}: no observed values")
            continue
        lo, hi = float(min(a.min(), b.min())), float(max(a.max(), b.max()))
        if seen.sum() > DENSITY_ABOVE:
            hb = ax.hexbin(a, b, gridsize=40, cmap="viridis", mincnt=1, bins="log")
            fig.colorbar(hb, ax=ax, label="samples (log)")
        else:
            ax.scatter(a, b, s=14, alpha=0.6, edgecolor="none")
        ax.plot([lo, hi], [lo, hi], ls="--", c="grey", lw=1, label="predicted = observed")
        p = per.get(name, {})
        title = name + "".join(f"  {k} {p[k]:.3f}" for k in ("pearson", "spearman") if p.get(k) is not None)
        ax.set(xlabel=f"observed {name}", ylabel=f"predicted {name}", title=title)
        ax.legend(loc="upper left", fontsize=8)
    return _save(fig, path)


def residual_plot(y: np.ndarray, pred: np.ndarray, names: list[str], path: Path) -> Path:
    """Residuals (observed − predicted) vs predicted per target, with the zero line and a running median."""
    fig, axes = _panel_grid(len(names))
    for j, (ax, name) in enumerate(zip(axes.flat, names)):
        seen = ~np.isnan(y[:, j]) & np.isfinite(pred[:, j])
        if not seen.any():
            continue
        p, res = pred[seen, j], y[seen, j] - pred[seen, j]
        if seen.sum() > DENSITY_ABOVE:
            hb = ax.hexbin(p, res, gridsize=40, cmap="viridis", mincnt=1, bins="log")
            fig.colorbar(hb, ax=ax, label="samples (log)")
        else:
            ax.scatter(p, res, s=14, alpha=0.6, edgecolor="none")
        ax.axhline(0, ls="--", c="grey", lw=1)
        if seen.sum() >= 20:  # running median in 10 bins of the prediction: a curve means a systematic bias
            edges = np.quantile(p, np.linspace(0, 1, 11))
            mids, meds = [], []
            for lo, hi in zip(edges[:-1], edges[1:]):
                sel = (p >= lo) & (p <= hi)
                if sel.any():
                    mids.append((lo + hi) / 2)
                    meds.append(np.median(res[sel]))
            ax.plot(mids, meds, c="tab:red", lw=2, label="running median")
            ax.legend(loc="upper left", fontsize=8)
        ax.set(xlabel=f"predicted {name}", ylabel="observed − predicted", title=f"{name}: residuals")
    return _save(fig, path)


def write_plots(folder: Path, y: np.ndarray, pred: np.ndarray, names: list[str], headline: dict[str, Any]
                ) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    y, pred = np.asarray(y, dtype=np.float64), np.asarray(pred, dtype=np.float64)
    return [scatter_plot(y, pred, names, folder / "predicted_vs_observed.png", headline.get("per_target", {})),
            residual_plot(y, pred, names, folder / "residuals.png")]
