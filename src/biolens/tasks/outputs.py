"""Prediction tables of regression and multi-label runs (classification's are in ``predictor.py``).

- regression: ``id``, [``true_<target>`` …], ``pred_<target>`` per target, in the targets' original units;
- multi-label: ``id``, [``true_<label>`` 0/1 …], ``p_<label>`` per label, ``prediction`` (the labels at or above
  their thresholds, joined by ``|``; empty when none).

NaN outputs (inputs that could not be predicted, e.g. empty sequences) are empty cells.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from biolens.contract import InputContract


def target_frame(contract: InputContract, ids: Sequence[str], out: np.ndarray, y: np.ndarray | None = None
                 ) -> pd.DataFrame:
    """One row per input; ``out`` are ``contract.outputs`` (values or per-label probabilities), ``y`` the
    observed ``(N, T)`` targets when known."""
    names = contract.target_names
    cols: dict[str, object] = {"id": [str(i) for i in ids]}
    if y is not None:
        y = np.asarray(y, dtype=np.float64).reshape(len(ids), -1)
        for j, name in enumerate(names):
            cols[f"true_{name}"] = y[:, j]
    prefix = "pred_" if contract.target_type == "regression" else "p_"
    for j, name in enumerate(names):
        cols[f"{prefix}{name}"] = out[:, j]
    if contract.target_type == "multilabel":
        missing = np.isnan(out).any(axis=1)
        decided = contract.decide(np.nan_to_num(out))
        cols["prediction"] = ["" if m else "|".join(n for n, on in zip(names, row) if on)
                              for row, m in zip(decided, missing)]
    return pd.DataFrame(cols)


def write_target_predictions(path: Path, ids: np.ndarray, y: np.ndarray | None, out: np.ndarray,
                             contract: InputContract) -> None:
    """``predictions.csv`` of a regression or multi-label split (see the module docstring)."""
    target_frame(contract, ids, out, y).to_csv(path, index=False, float_format="%.6g")


def read_target_predictions(frame: pd.DataFrame, names: Sequence[str], target_type: str
                            ) -> tuple[np.ndarray | None, np.ndarray]:
    """``(observed or None, outputs)`` ``(N, T)`` back from a predictions table (``doctor run``, ``compare``)."""
    prefix = "pred_" if target_type == "regression" else "p_"
    out = frame[[f"{prefix}{n}" for n in names]].to_numpy(dtype=np.float64)
    truth = [f"true_{n}" for n in names]
    y = frame[truth].to_numpy(dtype=np.float64) if all(c in frame.columns for c in truth) else None
    return y, out
