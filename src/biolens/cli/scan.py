"""``biolens scan RUN --genome g.fa [--regions x.bed] --stride N --out DIR``: genome-wide tracks from a run."""

from __future__ import annotations

from pathlib import Path

import typer

from biolens.cli._common import console, err_console, handle_errors, setup_logging


@handle_errors
def scan(
    run: Path = typer.Argument(..., help="run folder from `biolens train` (a DNA model, e.g. trained with --intervals --genome)"),
    genome: Path = typer.Option(..., "--genome", help="reference FASTA to scan (the run's own assembly)"),
    out: Path = typer.Option(..., "--out", "-o", help="folder for scan.bedGraph, scan.bw, peaks.bed and scan.json"),
    regions: Path = typer.Option(None, "--regions", help="BED of regions to scan (default: every contig)"),
    stride: int = typer.Option(None, help="bases between window starts (default: half the model's window)"),
    threshold: float = typer.Option(None, help="P(class) at or above which windows are called (default: the run's threshold)"),
    target_class: str = typer.Option(None, "--class", help="class to track (default: the positive class)"),
    strands: str = typer.Option("auto", help="auto (both, unless the run is strand-specific), both or forward"),
    chrom_alias: list[str] = typer.Option(None, "--chrom-alias", help="NAME_IN_BED=GENOME_NAME (repeat); the run's own aliases apply too"),
    allow_other_genome: bool = typer.Option(False, "--any-genome", help="scan even if the genome is not the assembly the run was trained on"),
    batch_size: int = typer.Option(256, help="batch size"),
    chunk_windows: int = typer.Option(8192, help="windows read and scored at a time (bounds memory)"),
    overwrite: bool = typer.Option(False, help="replace the scan results in --out"),
    device: str = typer.Option("auto", help="auto, cpu, cuda, cuda:N or mps"),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="show a progress bar"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="only warnings"),
) -> None:
    """Slide the model along a genome: bedGraph and bigWig tracks, and called regions as BED."""
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    from biolens.cli._genomic import parse_aliases
    from biolens.workflows.scan import scan_genome

    setup_logging(quiet)
    bar = Progress(TextColumn("scanning"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn(), console=err_console,
                   disable=quiet or not progress)
    with bar:
        task = bar.add_task("scan", total=None)

        def report(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        result = scan_genome(run, genome, out=out, regions=regions, stride=stride, threshold=threshold,
                             target_class=target_class, strands=strands, batch_size=batch_size,
                             chunk_windows=chunk_windows, aliases=parse_aliases(chrom_alias),
                             allow_other_genome=allow_other_genome, device=device, overwrite=overwrite, progress=report)
    s = result.summary
    console.print(f"scanned {result.bases / 1e6:.2f} Mb ({result.windows} windows, {s['windows_per_second']:.0f}/s): "
                  f"{result.peaks} regions at P({s['class']}) >= {s['threshold']:g}; results in {result.out}")
