"""``biolens predict RUN INPUT… --out preds.csv``: streaming batch prediction."""

from __future__ import annotations

from pathlib import Path

import typer

from biolens.cli._common import console, handle_errors, setup_logging


@handle_errors
def predict(
    run: Path = typer.Argument(..., help="run folder from `biolens train`"),
    inputs: list[str] = typer.Argument(..., help="FASTA, CSV or TSV files (.gz ok); image runs: image files, folders or quoted globs"),
    out: Path = typer.Option(..., "--out", "-o", help="CSV to write: id, [label], p_<class>…, prediction"),
    batch_size: int = typer.Option(256, help="batch size"),
    device: str = typer.Option("auto", help="auto, cpu, cuda, cuda:N or mps"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="only warnings"),
) -> None:
    """Predict classes and probabilities for new sequences."""
    from biolens.deploy.predictor import Predictor

    setup_logging(quiet)
    n = Predictor.load(run, device=device).predict_files(inputs, out, batch_size=batch_size)
    console.print(f"wrote {n} predictions to {out}")
