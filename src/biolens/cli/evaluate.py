"""``biolens evaluate RUN``: metrics on the run's test split or on any labelled file."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from biolens.cli._common import console, handle_errors, setup_logging
from biolens.cli.show import print_metrics


@handle_errors
def evaluate(
    run: Path = typer.Argument(..., help="run folder from `biolens train`"),
    data: list[str] = typer.Option(None, "--data", "-d", help="labelled file(s); default: the run's own split"),
    split: str = typer.Option("test", help="train, val or test (when --data is not given)"),
    out: Path = typer.Option(None, "--out", "-o", help="also write the metrics as JSON here"),
    batch_size: int = typer.Option(256, help="batch size"),
    device: str = typer.Option("auto", help="auto, cpu, cuda, cuda:N or mps"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="only warnings and the table"),
) -> None:
    """Evaluate a trained run: accuracy, per-class precision/recall/F1, confusion matrix, AUC."""
    from biolens.training.api import evaluate as evaluate_api

    setup_logging(quiet)
    metrics = evaluate_api(run, data or None, split=split, batch_size=batch_size, device=device)
    where = ", ".join(data) if data else f"{split} split"
    print_metrics(metrics, title=f"{run} on {where}")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(metrics, indent=2) + "\n")
        console.print(f"metrics written to {out}")
