"""``biolens train``: train on a file, builtin data set or YAML config, writing a run folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from biolens.cli._common import console, handle_errors, setup_logging
from biolens.cli.show import print_metrics


@handle_errors
def train(
    config: Path = typer.Argument(None, help="YAML config (data/model/train sections); flags override it"),
    data: list[str] = typer.Option(None, "--data", "-d", help="builtin:NAME, FASTA/CSV/TSV (.gz ok), or LABEL=FASTA per class (repeat)"),
    val: str = typer.Option(None, help="explicit validation file"),
    test: str = typer.Option(None, help="explicit test file"),
    labels: str = typer.Option(None, help="CSV mapping FASTA ids to labels"),
    model: str = typer.Option(None, "--model", "-m", help="architecture (see `biolens models`)"),
    epochs: int = typer.Option(None, help="maximum epochs"),
    batch_size: int = typer.Option(None, help="batch size"),
    lr: float = typer.Option(None, help="learning rate (AdamW)"),
    out: str = typer.Option(None, "--out", "-o", help="run folder to create, e.g. runs/NAME"),
    alphabet: str = typer.Option(None, help="auto, dna, rna or protein"),
    max_len: int = typer.Option(None, help="truncate longer sequences"),
    seq_col: str = typer.Option(None, help="sequence column of a CSV/TSV"),
    label_col: str = typer.Option(None, help="label column of a CSV/TSV"),
    id_col: str = typer.Option(None, help="id column of a CSV/TSV"),
    positive_class: str = typer.Option(None, help="positive class of a binary task"),
    dedup: bool = typer.Option(None, "--dedup/--no-dedup", help="remove val/test sequences found in earlier splits"),
    seed: int = typer.Option(None, help="random seed"),
    device: str = typer.Option(None, help="auto, cpu, cuda, cuda:N or mps"),
    set_: list[str] = typer.Option(None, "--set", help="any config field, e.g. --set train.weight_decay=0.05 (repeat)"),
    overwrite: bool = typer.Option(False, help="replace an existing run folder"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar or info logs"),
) -> None:
    """Train a classifier and write a run folder (weights, contract, history, metrics)."""
    from biolens.config import _merge, load_config, parse_set
    from biolens.training.api import train as train_api

    setup_logging(quiet)
    flags: dict[str, Any] = {
        "data": {"path": data or None, "val": val, "test": test, "labels": labels, "alphabet": alphabet,
                 "max_len": max_len, "seq_col": seq_col, "label_col": label_col, "id_col": id_col,
                 "positive_class": positive_class, "dedup": dedup},
        "model": {"name": model},
        "train": {"epochs": epochs, "batch_size": batch_size, "lr": lr, "seed": seed, "device": device},
        "out": out,
    }
    overrides = _merge(_drop_none(flags), parse_set(set_ or []))
    cfg = load_config(config, overrides)
    result = train_api(cfg, progress=not quiet, overwrite=overwrite)
    print_metrics(result.metrics["test"], title=f"test split, best epoch {result.metrics['best_epoch']}")
    console.print(f"run folder: {result.run_dir}")


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            v = _drop_none(v)
            if v:
                out[k] = v
        elif v is not None:
            out[k] = v
    return out
