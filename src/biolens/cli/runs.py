"""``biolens runs DIR``: a leaderboard of the run folders below DIR."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from biolens.cli._common import console, handle_errors, setup_logging


@handle_errors
def runs(
    directory: Path = typer.Argument(Path("runs"), help="folder to search for run folders (nested ones too)"),
    sort: str = typer.Option("test_accuracy", "--sort",
                             help="date, name, task, model, data, or SPLIT_METRIC such as test_roc_auc, val_mcc"),
    ascending: bool = typer.Option(None, "--ascending/--descending",
                                   help="sort order (default: best first for metrics, newest first for dates)"),
    metrics: str = typer.Option("accuracy,roc_auc,mcc", "--metrics",
                                help="comma-separated metrics for the table and the HTML page (val: the first one)"),
    csv_out: Path = typer.Option(None, "--csv", help="write every column (all metrics, CI bounds) as CSV"),
    html_out: Path = typer.Option(None, "--html", help="write a self-contained page: table + history curves"),
) -> None:
    """Leaderboard of every run below DIR: task, data fingerprint, model, val/test metrics with CIs, date."""
    from biolens.errors import ConfigError
    from biolens.metrics import metric_names
    from biolens.workflows.runs import leaderboard

    setup_logging(quiet=True)
    wanted = [m.strip() for m in metrics.split(",") if m.strip()]
    unknown = [m for m in wanted if m not in metric_names()]
    if unknown:
        raise ConfigError(f"--metrics {unknown[0]!r} is not a metric; choose from {', '.join(metric_names())}")
    board = leaderboard(directory, sort=sort, ascending=ascending)
    shown = [m for m in wanted if m in board.metrics]
    sort_metric = board.sort.partition("_")[2] if board.sort.startswith(("val_", "test_")) else None
    val_metric = sort_metric if sort_metric in board.metrics else (shown[0] if shown else None)
    table = Table(title=f"{len(board.runs)} runs below {directory}, sorted by {board.sort}")
    for col in ("run", "task", "model", "data", "date"):
        table.add_column(col, overflow="fold")
    if val_metric:
        table.add_column(f"val\n{val_metric}", justify="right")
    for m in shown:
        table.add_column(f"test\n{m}", justify="right")
    for r in board.runs:
        cells = [r.name + ("" if r.status == "ok" else f" ({r.status})"), r.task or "-", r.model or "-",
                 (r.fingerprint or "-")[:8], (r.created or "-")[:10]]
        if val_metric:
            cells.append(_num(r.metrics.get("val", {}).get(val_metric)))
        for m in shown:
            value, ci = r.metrics.get("test", {}).get(m), r.cis.get("test", {}).get(m)
            cells.append(_num(value) + (f"\n{ci[0]:.3f}–{ci[1]:.3f}" if ci and None not in ci else ""))
        table.add_row(*cells)
    console.print(table)
    fingerprints = {r.fingerprint for r in board.runs if r.fingerprint}
    if len(fingerprints) > 1:
        console.print(f"note: these runs used {len(fingerprints)} different data sets (data column); compare "
                      "metrics only within one, or with `biolens compare`", highlight=False)
    if csv_out is not None:
        console.print(f"wrote {board.write_csv(csv_out)}")
    if html_out is not None:
        console.print(f"wrote {board.write_html(html_out, shown)}")


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
