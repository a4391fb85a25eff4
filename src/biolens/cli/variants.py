"""``biolens variants RUN --vcf x.vcf[.gz] --genome g.fa --out effects.tsv``: variant effects from a trained run."""

from __future__ import annotations

from pathlib import Path

import typer

from biolens.cli._common import console, handle_errors, setup_logging


@handle_errors
def variants(
    run: Path = typer.Argument(..., help="run folder from `biolens train` (a DNA model, e.g. trained with --intervals --genome)"),
    vcf: Path = typer.Option(..., "--vcf", help="VCF of SNVs and short indels (.vcf or .vcf.gz, gzip or bgzip)"),
    genome: Path = typer.Option(..., "--genome", help="reference FASTA the VCF refers to (the run's own assembly)"),
    out: Path = typer.Option(Path("effects.tsv"), "--out", "-o", help="TSV: one row per ALT allele with ref/alt P(class), diff, log_odds_ratio, status, note"),
    vcf_out: Path = typer.Option(None, "--vcf-out", help="also write the VCF with BL_STATUS, BL_REF, BL_ALT, BL_DIFF, BL_LOR INFO fields"),
    strands: str = typer.Option("auto", help="auto (both, unless the run is strand-specific), both or forward"),
    target_class: str = typer.Option(None, "--class", help="class to report (default: the positive class; every class for multi-class runs)"),
    max_allele: int = typer.Option(50, help="longest REF/ALT allele scored, in bases"),
    chrom_alias: list[str] = typer.Option(None, "--chrom-alias", help="NAME_IN_VCF=GENOME_NAME (repeat); the run's own aliases apply too"),
    allow_other_genome: bool = typer.Option(False, "--any-genome", help="score even if the genome is not the assembly the run was trained on"),
    batch_size: int = typer.Option(256, help="batch size"),
    chunk_size: int = typer.Option(2048, help="VCF records read and scored at a time (bounds memory)"),
    device: str = typer.Option("auto", help="auto, cpu, cuda, cuda:N or mps"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="only warnings"),
) -> None:
    """Score SNVs and short indels: reference vs alternative windows centred on each variant, both strands."""
    from biolens.cli._genomic import parse_aliases
    from biolens.workflows.variants import score_variants

    setup_logging(quiet)
    result = score_variants(run, vcf, genome, out=out, vcf_out=vcf_out, strands=strands, target_class=target_class,
                            max_allele=max_allele, batch_size=batch_size, chunk_size=chunk_size,
                            aliases=parse_aliases(chrom_alias), allow_other_genome=allow_other_genome, device=device)
    skipped = {k: v for k, v in result.status.items() if k != "scored"}
    console.print(f"scored {result.scored} of {result.alleles} alleles ({result.records} records)"
                  + (f"; not scored: {', '.join(f'{v} {k}' for k, v in sorted(skipped.items()))}" if skipped else "")
                  + f"; wrote {result.out}" + (f" and {result.vcf_out}" if result.vcf_out else ""))
