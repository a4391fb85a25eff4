"""Printing metrics as tables."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from biolens.cli._common import console, fmt

HEADLINE = ("n", "accuracy", "balanced_accuracy", "mcc", "roc_auc", "roc_auc_ovr", "pr_auc", "sensitivity",
            "specificity", "precision", "npv", "f1", "macro_f1")


def _headline_table(m: dict[str, Any], keys: tuple[str, ...] | list[str]) -> Table:
    """metric, value and (when computed) CI rows for ``keys`` present in ``m``."""
    table = Table()
    table.add_column("metric")
    table.add_column("value", justify="right")
    ci = m.get("ci", {})
    if ci:
        table.add_column(f"{int(m.get('ci_level', 0.95) * 100)}% CI", justify="right")
    for key in keys:
        if key in m:
            lo_hi = ci.get(key) or [None, None]
            extra = [f"{fmt(lo_hi[0])} – {fmt(lo_hi[1])}" if lo_hi[0] is not None else ""] if ci else []
            table.add_row(key, fmt(m[key]) if m[key] is not None else "undefined", *extra)
    return table


def print_metrics(m: dict[str, Any], title: str = "metrics") -> None:
    if m.get("target_type") in ("regression", "multilabel"):
        return print_target_metrics(m, title)
    console.print(f"[bold]{title}[/]")
    table = _headline_table(m, HEADLINE)
    if "tp" in m:
        table.add_row("TP / FP / TN / FN", f"{m['tp']} / {m['fp']} / {m['tn']} / {m['fn']}")
    console.print(table)
    per = Table(title="per class")
    for col in ("class", "precision", "recall", "f1", "support"):
        per.add_column(col, justify="right" if col != "class" else "left")
    for name, v in m["per_class"].items():
        per.add_row(name, fmt(v["precision"]), fmt(v["recall"]), fmt(v["f1"]), str(v["support"]))
    console.print(per)
    cm = m["confusion_matrix"]
    grid = Table(title="confusion (row: true)")
    grid.add_column("")
    for name in cm["labels"]:
        grid.add_column(name, justify="right")
    for name, row in zip(cm["labels"], cm["matrix"]):
        grid.add_row(name, *map(str, row))
    console.print(grid)
    for line in m.get("clinical", []):
        console.print(f"  {line}")


TARGET_HEADLINE = {
    "regression": ("n", "pearson", "spearman", "r2", "mae", "rmse"),
    "multilabel": ("n", "roc_auc", "micro_roc_auc", "pr_auc", "macro_f1", "hamming_loss", "subset_accuracy", "aiming",
                   "coverage", "example_accuracy"),
}


def print_target_metrics(m: dict[str, Any], title: str) -> None:
    """Regression (per target) and multi-label (per label) metrics, with CIs where computed."""
    kind = m["target_type"]
    console.print(f"[bold]{title}[/]")
    console.print(_headline_table(m, TARGET_HEADLINE[kind]))
    if kind == "regression":
        per = Table(title="per target")
        cols = ("pearson", "spearman", "r2", "mae", "rmse", "n")
        rows = m.get("per_target", {})
    else:
        per = Table(title="per label")
        cols = ("roc_auc", "pr_auc", "precision", "recall", "f1", "threshold", "positives", "n")
        rows = m.get("per_label", {})
    per.add_column("target" if kind == "regression" else "label")
    for col in cols:
        per.add_column(col, justify="right")
    for name, v in rows.items():
        per.add_row(name, *(fmt(v.get(c)) for c in cols))
    console.print(per)
    for line in m.get("clinical", []):
        console.print(f"  {line}")
