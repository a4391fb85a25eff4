"""``biolens report RUN`` and ``biolens compare RUN…``."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from biolens.cli._common import console, err_console, fmt, handle_errors, setup_logging


@handle_errors
def report(
    run: Path = typer.Argument(..., help="run folder from `biolens train`"),
    resamples: int = typer.Option(1000, help="bootstrap resamples if the run still needs evaluating"),
    baselines: bool = typer.Option(False, "--baselines", help="sequence runs: also train a BiGRU baseline (the k-mer logistic regression is always shown)"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="only warnings"),
) -> None:
    """Write report.html (self-contained) and report.md into the run folder."""
    from biolens.workflows.report import build_report

    setup_logging(quiet)
    html_path, md_path = build_report(run, n_resamples=resamples, baselines=baselines)
    console.print(f"wrote {html_path} and {md_path}")


@handle_errors
def compare(
    runs: list[Path] = typer.Argument(..., help="two or more run folders"),
    csv_out: Path = typer.Option(None, "--csv", help="also write the table as CSV"),
    json_out: Path = typer.Option(None, "--json", help="also write the table, checks and paired tests as JSON"),
    allow_different_data: bool = typer.Option(
        False, "--allow-different-data",
        help="show the table even when the runs were tested on different data (their metrics do not compare)"),
) -> None:
    """Side-by-side test metrics of several runs, with paired tests (McNemar, DeLong) when they share a test set."""
    import warnings

    from biolens.errors import BiolensWarning
    from biolens.io import atomic_write_text, write_json
    from biolens.workflows.compare import compare_runs

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BiolensWarning)  # the problems are printed below, in red
        result = compare_runs(runs, allow_different_data=allow_different_data)
    rows = result.rows
    for problem in result.problems:
        err_console.print(f"[bold red]WARNING: {escape(problem)}: these metrics are not comparable[/]",
                          soft_wrap=True, highlight=False)
    table = Table(title="test metrics (one column per run)")
    table.add_column("metric")
    for i, row in enumerate(rows, start=1):
        table.add_column(f"#{i}", justify="right")
    for key in list(rows[0])[1:]:
        table.add_row(key, *(fmt(row[key]) for row in rows))
    console.print(table)
    for i, row in enumerate(rows, start=1):
        console.print(f"#{i}: {row['run']}")
    if result.paired:
        names = {row["run"]: f"#{i}" for i, row in enumerate(rows, start=1)}
        adjusted = len(result.paired) > 1
        sizes = sorted({p["n"] for p in result.paired})
        pt = Table(title=f"paired tests on the same {'/'.join(map(str, sizes))} test items"
                         + ("; Holm-adjusted p in brackets" if adjusted else ""))
        for col in ("pair", "test", "first", "second", "Δ", "detail", "p"):
            pt.add_column(col, justify="left" if col in ("pair", "test", "detail") else "right")
        for p in result.paired:
            pair = f"{names[p['a']]}–{names[p['b']]}"
            mc, dl = p.get("mcnemar"), p.get("delong")
            if mc:
                pt.add_row(pair, "McNemar acc", f"{mc['accuracy_a']:.3f}", f"{mc['accuracy_b']:.3f}",
                           f"{mc['accuracy_a'] - mc['accuracy_b']:+.3f}", f"b={mc['b']} c={mc['c']} {mc['method']}",
                           _p(mc, adjusted))
            if dl:
                pt.add_row(pair, "DeLong AUC", f"{dl['auc_a']:.3f}", f"{dl['auc_b']:.3f}", f"{dl['difference']:+.3f}",
                           f"CI {dl['ci'][0]:+.3f},{dl['ci'][1]:+.3f}", _p(dl, adjusted))
            for metric, bs in (p.get("bootstrap") or {}).items():  # regression / multi-label runs
                if bs.get("difference") is None:
                    continue
                ci = bs["ci"]
                pt.add_row(pair, f"paired bootstrap {metric}", f"{bs['a']:.3f}", f"{bs['b']:.3f}",
                           f"{bs['difference']:+.3f}", f"CI {ci[0]:+.3f},{ci[1]:+.3f}" if ci[0] is not None else "",
                           _p(bs, adjusted) if bs.get("p_value") is not None else "-")
        console.print(pt)
        legend = []  # only for the tests in the table
        if any(p.get("mcnemar") for p in result.paired):
            legend.append("b: items only the first run got right, c: only the second")
        if any(p.get("delong") for p in result.paired):
            legend.append("DeLong CI: 95% of the AUC difference")
        if any(p.get("bootstrap") for p in result.paired):
            legend.append("bootstrap CI: 95% of the metric's difference (first − second)")
        console.print("; ".join(legend), highlight=False)
    for note in result.notes:
        console.print(note, soft_wrap=True, highlight=False)
    if csv_out is not None:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(csv_out, buf.getvalue())
        console.print(f"wrote {csv_out}")
    if json_out is not None:
        write_json(json_out, result.to_dict())
        console.print(f"wrote {json_out}")


def _p(test: dict | None, adjusted: bool) -> str:
    if not test:
        return "-"
    text = f"{test['p_value']:.4g}"
    if adjusted and test.get("p_holm") is not None:
        text += f" [{test['p_holm']:.4g}]"
    return text
