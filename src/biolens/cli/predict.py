"""``biolens predict RUN INPUT… --out preds.csv``: streaming batch prediction with a progress bar."""

from __future__ import annotations

from pathlib import Path

import typer

from biolens.cli._common import console, err_console, handle_errors, setup_logging


@handle_errors
def predict(
    run: Path = typer.Argument(..., help="run folder from `biolens train`"),
    inputs: list[str] = typer.Argument(..., help="FASTA, CSV or TSV files (.gz ok); image runs: image files, folders or quoted globs"),
    out: Path = typer.Option(..., "--out", "-o", help="CSV to write: id, label (when the input has labels), p_<class> per class, prediction, decision (binary)"),
    batch_size: int = typer.Option(256, help="batch size"),
    chunk_size: int = typer.Option(8192, help="records read, predicted and written at a time (bounds memory)"),
    device: str = typer.Option("auto", help="auto, cpu, cuda, cuda:N or mps"),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="show a progress bar"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="only warnings"),
    tile: bool = typer.Option(False, "--tile/--no-tile", help="sequences longer than the model's length: score tiles "
                              "instead of truncating; --out gets one row per sequence (mean and max over tiles), "
                              "OUT_STEM.tiles.csv one row per tile"),
    stride: int = typer.Option(None, help="with --tile: bases between tile starts (default: half the model's length)"),
    aggregate: str = typer.Option("max", help="with --tile: max (positive when any tile is) or mean decides the "
                                  "sequence's prediction"),
) -> None:
    """Predict classes and probabilities for new sequences or images (streamed in chunks, constant memory)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from biolens.tasks import Predictor
    from biolens.errors import ConfigError

    setup_logging(quiet)
    if batch_size < 1 or chunk_size < 1:
        raise ConfigError(f"--batch-size and --chunk-size must be >= 1; got {batch_size} and {chunk_size}")
    predictor = Predictor.load(run, device=device)
    bar = Progress(TextColumn("predicting"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err_console, disable=quiet or not progress, transient=False)
    with bar:
        task = bar.add_task("predict", total=None)

        def report(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        n = predictor.predict_files(inputs, out, batch_size=batch_size, chunk_size=chunk_size, progress=report,
                                    tile=tile, stride=stride, aggregate=aggregate)
    console.print(f"wrote {n} predictions to {out}")
