"""``biolens pretrain``: masked-token pretraining on unlabelled sequences, then ``biolens train --weights RUN``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from biolens.cli._common import console, handle_errors, setup_logging


@handle_errors
def pretrain(
    config: Path = typer.Argument(None, help="YAML config (data/model/train sections); flags override it"),
    data: list[str] = typer.Option(None, "--data", "-d", help="unlabelled FASTA/CSV/TSV (.gz ok; labels ignored) or builtin:NAME (repeat for several files)"),
    out: str = typer.Option(None, "--out", "-o", help="run folder to create, e.g. runs/pretrain"),
    model: str = typer.Option(None, "--model", "-m", help="transformer, dilated_resnet (default) or dilated_resnet_rc"),
    epochs: int = typer.Option(None, help="maximum epochs"),
    batch_size: int = typer.Option(None, help="batch size"),
    lr: float = typer.Option(None, help="learning rate (AdamW)"),
    schedule: str = typer.Option(None, help="plateau (default), cosine, warmup_cosine, onecycle, step or none"),
    mask_rate: float = typer.Option(0.15, help="fraction of tokens hidden (80% shown as N/X, 10% random, 10% kept)"),
    val_frac: float = typer.Option(0.05, help="fraction held out for the masked-token loss (early stopping, best checkpoint)"),
    window: int = typer.Option(None, help="cut every record into windows of this length first (genomes, long records)"),
    include_test: bool = typer.Option(False, "--include-test", help="also use records whose split column says test"),
    reverse_complement: bool = typer.Option(False, "--rc", help="random reverse-complement augmentation (strand-agnostic DNA)"),
    alphabet: str = typer.Option(None, help="auto, dna, rna or protein"),
    max_len: int = typer.Option(None, help="truncate longer sequences"),
    seq_col: str = typer.Option(None, help="sequence column of a CSV/TSV"),
    id_col: str = typer.Option(None, help="id column of a CSV/TSV"),
    store: str = typer.Option(None, help="auto (default), memory, or mmap (stream through the on-disk sequence store)"),
    seed: int = typer.Option(None, help="random seed"),
    device: str = typer.Option(None, help="auto, cpu, cuda, cuda:N or mps"),
    set_: list[str] = typer.Option(None, "--set", help="any config field, e.g. --set model.params.dim=128 (repeat)"),
    overwrite: bool = typer.Option(False, help="replace an existing run folder"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar or info logs"),
) -> None:
    """Pretrain a sequence model on unlabelled sequences (masked-token prediction) and write a run folder."""
    from biolens.cli.train import _drop_none
    from biolens.config import _merge, load_config, parse_set
    from biolens.workflows.pretrain import pretrain as pretrain_api

    setup_logging(quiet)
    flags: dict[str, Any] = {
        "data": {"path": data or None, "alphabet": alphabet, "max_len": max_len, "seq_col": seq_col, "id_col": id_col,
                 "store": store},
        "model": {"name": model},
        "train": {"epochs": epochs, "batch_size": batch_size, "lr": lr, "schedule": schedule, "seed": seed,
                  "device": device},
        "out": out,
    }
    raw = _merge(_drop_none(flags), parse_set(set_ or []))
    if config is None:
        raw.setdefault("train", {}).setdefault("label_smoothing", 0.0)  # targets are exact symbols
    cfg = load_config(config, raw)
    result = pretrain_api(cfg, mask_rate=mask_rate, val_frac=val_frac, window=window, include_test=include_test,
                          reverse_complement=reverse_complement, progress=not quiet, overwrite=overwrite)
    m = result.metrics
    console.print(f"masked-token accuracy on {m['n_val']} held-out sequences: {m['val_masked_accuracy']:.4f} "
                  f"(most frequent symbol: {m['val_most_frequent_symbol_rate']:.4f}; loss {m['val_masked_loss']:.4f})")
    console.print(f"run folder: {result.run_dir}  (fine-tune: biolens train --data DATA --weights {result.run_dir})")
