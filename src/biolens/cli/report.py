"""``biolens report RUN`` and ``biolens compare RUN…``."""

from __future__ import annotations

import csv
from pathlib import Path

import typer
from rich.table import Table

from biolens.cli._common import console, fmt, handle_errors, setup_logging


@handle_errors
def report(
    run: Path = typer.Argument(..., help="run folder from `biolens train`"),
    resamples: int = typer.Option(1000, help="bootstrap resamples if the run still needs evaluating"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="only warnings"),
) -> None:
    """Write report.html (self-contained) and report.md into the run folder."""
    from biolens.workflows.report import build_report

    setup_logging(quiet)
    html_path, md_path = build_report(run, n_resamples=resamples)
    console.print(f"wrote {html_path} and {md_path}")


@handle_errors
def compare(
    runs: list[Path] = typer.Argument(..., help="two or more run folders"),
    csv_out: Path = typer.Option(None, "--csv", help="also write the table as CSV"),
) -> None:
    """Side-by-side test metrics of several runs."""
    from biolens.workflows.report import compare_runs

    rows = compare_runs(runs)
    table = Table(title="test metrics (one column per run)")
    table.add_column("metric")
    for i, row in enumerate(rows, start=1):
        table.add_column(f"#{i}", justify="right")
    for key in list(rows[0])[1:]:
        table.add_row(key, *(fmt(row[key]) for row in rows))
    console.print(table)
    for i, row in enumerate(rows, start=1):
        console.print(f"#{i}: {row['run']}")
    if csv_out is not None:
        with open(csv_out, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        console.print(f"wrote {csv_out}")
