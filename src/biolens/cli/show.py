"""Printing metrics as tables."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from biolens.cli._common import console, fmt

HEADLINE = ("n", "accuracy", "balanced_accuracy", "mcc", "roc_auc", "roc_auc_ovr", "pr_auc", "sensitivity",
            "specificity", "precision", "npv", "f1", "macro_f1")


def print_metrics(m: dict[str, Any], title: str = "metrics") -> None:
    console.print(f"[bold]{title}[/]")
    table = Table()
    table.add_column("metric")
    table.add_column("value", justify="right")
    ci = m.get("ci", {})
    if ci:
        table.add_column(f"{int(m.get('ci_level', 0.95) * 100)}% CI", justify="right")
    for key in HEADLINE:
        if key in m:
            lo_hi = ci.get(key) or [None, None]
            extra = [f"{fmt(lo_hi[0])} – {fmt(lo_hi[1])}" if lo_hi[0] is not None else ""] if ci else []
            table.add_row(key, fmt(m[key]) if m[key] is not None else "undefined", *extra)
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
