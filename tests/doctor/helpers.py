"""Broken-on-purpose inputs for the doctor tests: fabricated run folders, split CSVs and image folders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import yaml


def fake_run(root: Path, train_loss: list[float], val_loss: list[float], *, train_acc: list[float] | None = None,
             val_acc: list[float] | None = None, patience: int | None = 5, predictions: list[tuple[str, str]] | None = None,
             metrics: dict | None = None, class_counts: dict | None = None) -> Path:
    """A run folder with history.json (+ config.yaml, data_report.json, predictions.csv, metrics.json)."""
    root.mkdir(parents=True, exist_ok=True)
    n = len(train_loss)
    train_acc = train_acc or [0.6 + 0.35 * i / max(n - 1, 1) for i in range(n)]
    val_acc = val_acc or train_acc
    best, rows = float("inf"), []
    for i in range(n):
        is_best = val_loss[i] < best
        best = min(best, val_loss[i])
        rows.append({"epoch": i + 1, "lr": 1e-3, "train_loss": train_loss[i], "train_acc": train_acc[i],
                     "val_loss": val_loss[i], "val_acc": val_acc[i], "time_s": 0.1, "best": is_best})
    (root / "history.json").write_text(json.dumps(rows))
    cfg = {"data": {"path": "x.csv"}, "train": {"lr": 1e-3, "monitor": "val_loss", "early_stopping_patience": patience,
                                                  "epochs": n}}
    (root / "config.yaml").write_text(yaml.safe_dump(cfg))
    counts = class_counts or {"a": 100, "b": 100}
    (root / "data_report.json").write_text(json.dumps({"class_counts": {"train": counts}}))
    if predictions is not None:
        lines = ["id,label,p_a,p_b,prediction"] + [f"s{i},{t},0.5,0.5,{p}" for i, (t, p) in enumerate(predictions)]
        (root / "predictions.csv").write_text("\n".join(lines) + "\n")
    if metrics is not None:
        (root / "metrics.json").write_text(json.dumps(metrics))
    return root


def split_csv(path: Path, seqs: list[str], labels: list[str], splits: list[str]) -> Path:
    rows = ["id,sequence,label,split"] + [f"s{i},{s},{lab},{sp}" for i, (s, lab, sp) in enumerate(zip(seqs, labels, splits))]
    path.write_text("\n".join(rows) + "\n")
    return path


def random_dna(n: int, length: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return ["".join(rng.choice(list("ACGT"), size=length)) for _ in range(n)]
