"""``biolens explain RUN INPUT… --method … --out DIR``: why the model predicted what it did."""

from __future__ import annotations

from pathlib import Path

import typer

from biolens.cli._common import console, handle_errors, setup_logging

@handle_errors
def explain(
    run: Path = typer.Argument(..., help="run folder from `biolens train`"),
    inputs: list[str] = typer.Argument(..., help="sequence runs: FASTA/CSV/TSV files (.gz ok) or raw sequences; "
                                       "image runs: image files or folders"),
    method: str = typer.Option(..., "--method", "-m", help="attention, ism, ig, inputxgrad, saliency (sequences); "
                               "gradcam, saliency, occlusion (images)"),
    out: Path = typer.Option(..., "--out", "-o", help="folder for PNGs, TSV/BED tables and .npy arrays"),
    target_class: str = typer.Option(None, "--class", "--target", help="class to explain (default: the predicted "
                                     "one); regression runs: the target (default: the first); multi-label runs: the "
                                     "label (default: the most probable)"),
    motifs: list[str] = typer.Option(None, "--motifs", help="extra motifs: IUPAC string, NAME=IUPAC, or a MEME/JASPAR "
                                     "file (repeatable); TATA, CAAT and GC boxes are always scanned"),
    top: int = typer.Option(5, "--top", help="pictures for the first N inputs"),
    window: int = typer.Option(10, help="width of each sequence's top attribution window"),
    threshold: str = typer.Option("mean+std", help="region threshold: mean+std or percentile:Q"),
    flank: int = typer.Option(0, help="widen each region by this many positions per side"),
    baseline: str = typer.Option("uniform", help="integrated-gradients baseline: uniform or zero"),
    filters: bool = typer.Option(False, "--filters", help="also export first-layer filters as PWMs (filters.meme)"),
    device: str = typer.Option("auto", help="auto, cpu, cuda, cuda:N or mps"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="only warnings"),
) -> None:
    """Explain predictions: attention regions, ISM, integrated gradients, saliency, motifs; Grad-CAM for images."""
    from biolens.interpret import explain as run_explain
    from biolens.interpret import get_method
    from biolens.tasks import Predictor

    setup_logging(quiet)
    predictor = Predictor.load(run, device=device)
    get_method(predictor.contract.task, method)  # an unknown or other-kind method fails before any work
    options: dict[str, object] = {"target_class": target_class}
    if predictor.contract.task == "sequence":
        options.update(motifs=motifs or [], top=top, window=window, threshold=threshold, flank=flank,
                       baseline=baseline, filters=filters)
    result = run_explain(predictor, list(inputs), method, out, **options)
    if isinstance(result, list):  # image runs: one row per image
        console.print(f"explained {len(result)} images with {method}; results in {out}")
        return
    console.print(f"explained {result['n']} sequences with {method}: {result['regions']} regions, "
                  f"{result['motif_hits']} motif hits; results in {out}")
    for row in result["enrichment"]:
        mark = "significant" if row["significant"] else "not significant"
        console.print(f"  {row['motif']}: {row['inside']}/{row['hits']} hits in regions (expected "
                      f"{row['expected']:.1f}), p={row['p_value']:.2g} ({mark})", highlight=False)
