"""Pictures: attribution logos (logomaker) and ISM heatmaps (matplotlib, Agg backend)."""

from __future__ import annotations

import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from biolens.io import atomic_write  # noqa: E402

log = logging.getLogger(__name__)


def _save(fig, path: Path) -> None:  # noqa: ANN001
    path = Path(path)
    atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=120, bbox_inches="tight"))
    plt.close(fig)


def attribution_logo(heights: np.ndarray, letters: str, path: str | Path, title: str = "",
                     highlight: tuple[int, int] | None = None) -> None:
    """Logo of ``heights (L, A)`` (attribution × one-hot: one letter per position, signed height).

    ``highlight`` shades ``[start, end)`` (e.g. the top attribution window).
    """
    import logomaker

    frame = pd.DataFrame(np.nan_to_num(heights), columns=list(letters))
    width = min(max(6.0, len(frame) * 0.2), 30.0)
    fig, ax = plt.subplots(figsize=(width, 2.2))
    logo = logomaker.Logo(frame, ax=ax, color_scheme="classic", flip_below=False)
    logo.style_spines(visible=False)
    logo.style_spines(spines=("left", "bottom"), visible=True)
    if highlight is not None:
        logo.highlight_position_range(pmin=highlight[0], pmax=highlight[1] - 1, color="gold", alpha=0.3)
    ax.axhline(0, color="gray", lw=0.5)
    ax.set_xlabel("position (0-based)")
    ax.set_ylabel("attribution")
    ax.set_title(title, fontsize=9)
    _save(fig, Path(path))


def ism_heatmap(effects: np.ndarray, letters: str, sequence: str, path: str | Path, title: str = "") -> None:
    """Heatmap of ISM effects ``(L, A)`` (mutant − reference logit), diverging colours centred on 0."""
    eff = np.nan_to_num(effects).T  # (A, L)
    lim = float(np.abs(eff).max()) or 1.0
    width = min(max(6.0, eff.shape[1] * 0.12), 30.0)
    fig, ax = plt.subplots(figsize=(width, 1.9))
    im = ax.imshow(eff, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
    ax.set_yticks(range(len(letters)), list(letters))
    if len(sequence) <= 120:
        ax.set_xticks(range(len(sequence)), list(sequence), fontsize=6)
    else:
        ax.set_xlabel("position (0-based)")
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.02, pad=0.01, label="Δ logit")
    _save(fig, Path(path))
