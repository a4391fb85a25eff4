"""``biolens train``: train on a file, builtin data set or YAML config, writing a run folder."""

from __future__ import annotations

import inspect
import logging
import os
import typing
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
    lr: str = typer.Option(None, help="learning rate, or auto (the LR range test's suggestion)"),
    out: str = typer.Option(None, "--out", "-o", help="run folder to create, e.g. runs/NAME"),
    alphabet: str = typer.Option(None, help="auto, dna, rna or protein"),
    max_len: int = typer.Option(None, help="truncate longer sequences"),
    seq_col: str = typer.Option(None, help="sequence column of a CSV/TSV"),
    label_col: str = typer.Option(None, help="label column of a CSV/TSV"),
    target: str = typer.Option(None, help="auto (default: detected from the labels, with a log line saying why), "
                               "classification, regression or multilabel"),
    target_col: list[str] = typer.Option(None, "--target-col", help="target column of a CSV/TSV/manifest, or key of "
                                         "FASTA key=value headers (repeat: multi-task regression, or one 0/1 column "
                                         "per label)"),
    id_col: str = typer.Option(None, help="id column of a CSV/TSV"),
    group_col: str = typer.Option(None, help="patient/subject/family column (CSV/TSV/manifest; FASTA: group= in "
                                  "headers): every group stays in one split"),
    positive_class: str = typer.Option(None, help="positive class of a binary task"),
    dedup: bool = typer.Option(None, "--dedup/--no-dedup", help="remove val/test sequences found in earlier splits"),
    seed: int = typer.Option(None, help="random seed"),
    device: str = typer.Option(None, help="auto, cpu, cuda, cuda:N or mps"),
    set_: list[str] = typer.Option(None, "--set", help="any config field, e.g. --set train.weight_decay=0.05 (repeat)"),
    overwrite: bool = typer.Option(False, help="replace an existing run folder"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar or info logs"),
    resume: Path = typer.Option(None, help="continue RUN exactly from its checkpoints/last.pt (add --epochs to extend)"),
    optimizer: str = typer.Option(None, help="adamw (default) or sgd (Nesterov momentum)"),
    schedule: str = typer.Option(None, help="plateau (default), step, cosine, warmup_cosine, onecycle or none"),
    loss: str = typer.Option(None, help="ce (default), focal or bce (binary); regression: mse (default), huber or "
                             "poisson (counts); multi-label: bce per label (default)"),
    class_weights: str = typer.Option(None, help="loss weights from train counts: none, inverse or effective"),
    sampler: str = typer.Option(None, help="shuffle (default) or weighted (classes drawn equally often)"),
    monitor: str = typer.Option(None, help="metric for plateau/early stopping/best checkpoint, e.g. val_loss, val_acc, val_roc_auc, val_spearman (regression)"),
    precision: str = typer.Option(None, help="auto (default: bf16 autocast for image models on CUDA, else fp32), fp32, bf16 or fp16 (with GradScaler)"),
    accumulate: int = typer.Option(None, help="gradient accumulation: micro-batches per optimizer step"),
    compile_: bool = typer.Option(None, "--compile/--no-compile", help="torch.compile the model"),
    deterministic: bool = typer.Option(None, "--deterministic/--no-deterministic", help="deterministic algorithms (exact repeats)"),
    ema: float = typer.Option(None, help="exponential moving average of the weights with this decay, e.g. 0.999 "
                              "(validation and the saved model use it)"),
    tta: bool = typer.Option(None, "--tta/--no-tta", help="test-time augmentation (reverse complement / mirror, as "
                             "the training augmentation used), recorded in the contract"),
    preset: str = typer.Option(None, help="auto (default): model size, epochs and batch size chosen from the data "
                               "and the device, written into config.yaml; none: the plain config defaults"),
    tensorboard: bool = typer.Option(None, "--tensorboard/--no-tensorboard", help="TensorBoard events in RUN/tensorboard"),
    tensorboard_histograms: bool = typer.Option(None, "--tensorboard-histograms/--no-tensorboard-histograms",
                                                help="with --tensorboard: weight and gradient histograms every epoch"),
    mlflow: str = typer.Option(None, "--mlflow", metavar="[URI]",
                               help="log to MLflow: alone, a store in RUN/mlflow; or a tracking URI (http://HOST:5000)"),
    mlflow_experiment: str = typer.Option(None, "--mlflow-experiment", help="MLflow experiment name (default biolens)"),
    devices: int = typer.Option(None, help="launch N processes with torchrun (DDP); batch size is the global batch"),
    log_format: str = typer.Option("text", help="text or json (one JSON object per log line, for machines)"),
    image_size: int = typer.Option(None, help="images: model input size (default 28 for bundled sets, else 224)"),
    skip_bad: bool = typer.Option(None, "--skip-bad/--no-skip-bad", help="images: skip unreadable files (listed in filtered.tsv) instead of failing"),
    pretrained: str = typer.Option(None, help="images: start from torchvision weights: imagenet"),
    weights: str = typer.Option(None, help="start from a biolens run folder (a `biolens pretrain` run, or any run of the same kind) or a state dict (.safetensors/.pt)"),
    freeze_until: str = typer.Option(None, help="fine-tuning: freeze the stages before this one (images: layer3; sequences: blocks.1, layers.1; all = head only)"),
    teacher: str = typer.Option(None, help="distil: train on the soft targets of this run (or ensemble bundle); see train.distill_temperature, train.distill_alpha"),
    baselines: bool = typer.Option(False, "--baselines", help="sequence data: afterwards fit a k-mer logistic regression and train a BiGRU on the same splits (baselines.json, shown by report)"),
    force: bool = typer.Option(False, "--force", help="train even if a pre-training check fails (see checklist.json)"),
    intervals: list[str] = typer.Option(None, "--intervals", help="genome data: BED/narrowPeak intervals (.gz ok), or LABEL=BED per class (repeat); needs --genome"),
    genome: str = typer.Option(None, "--genome", help="genome data: reference FASTA the intervals lie on (.fa, .fa.gz: gzip or bgzip)"),
    window: int = typer.Option(None, help="genome data: window length centred on each interval's summit (narrowPeak) or middle"),
    center: str = typer.Option(None, help="genome data: auto (summit where given), summit or middle"),
    label_column: int = typer.Option(None, help="genome data: class labels from this BED column (1-based, e.g. 4 = name)"),
    negatives: str = typer.Option(None, help="genome data: none, gc-matched, shuffled (dinucleotide) or flanks"),
    negative_ratio: float = typer.Option(None, help="genome data: negatives per positive (default 1)"),
    val_chroms: list[str] = typer.Option(None, "--val-chroms", help="genome data: contigs of the val split (comma-separated or repeated)"),
    test_chroms: list[str] = typer.Option(None, "--test-chroms", help="genome data: contigs of the test split (comma-separated or repeated)"),
    blacklist: str = typer.Option(None, help="genome data: BED of regions no window may overlap"),
    chrom_alias: list[str] = typer.Option(None, "--chrom-alias", help="genome data: NAME_IN_BED=GENOME_NAME, e.g. Chromosome=NC_000913.3 (repeat)"),
) -> None:
    """Train a classifier, regression or multi-label model and write a run folder (weights, contract, history,
    metrics)."""
    from biolens.workflows.train import train as train_api

    if devices is not None:
        import subprocess
        import sys

        from biolens.training.distributed import launch_command

        raise typer.Exit(subprocess.call(launch_command(devices, sys.argv[1:])))
    setup_logging(quiet, log_format)
    rank = int(os.environ.get("RANK", "0"))
    quiet = quiet or rank != 0
    if rank != 0:
        logging.getLogger("biolens").setLevel(logging.WARNING)
    if resume is not None and config is None:
        config = resume / "config.yaml"
        if not config.is_file():
            from biolens.errors import ConfigError

            raise ConfigError(f"--resume {resume}: not a run folder (no config.yaml); give the --out folder of a run")
    cfg = config_from_options(config, locals())
    result = train_api(cfg, progress=not quiet, overwrite=overwrite, resume=resume, force=force)
    if rank != 0:
        return
    shown = "test" if "test" in result.metrics else "val"
    print_metrics(result.metrics[shown], title=f"{shown} split, best epoch {result.metrics['best_epoch']}")
    if baselines:
        from biolens.workflows.baselines import run_baselines

        for b in run_baselines(result.run_dir, kmer=True, bigru=True)["baselines"]:
            console.print(f"baseline {b['name']}: test accuracy {b['test']['accuracy']:.4f}")
    console.print(f"run folder: {result.run_dir}")


# the options of `biolens train` that build the run config; `cv` and `tune` take the same ones (share_options)
CONFIG_OPTIONS = ("data", "val", "test", "labels", "model", "epochs", "batch_size", "lr", "out", "alphabet", "max_len",
                  "seq_col", "label_col", "target", "target_col", "id_col", "group_col", "positive_class", "dedup", "seed", "device", "set_",
                  "optimizer", "schedule", "loss", "class_weights", "sampler", "monitor", "precision", "accumulate",
                  "compile_", "deterministic", "ema", "tta", "tensorboard", "tensorboard_histograms", "mlflow",
                  "mlflow_experiment", "image_size", "skip_bad", "pretrained", "weights", "freeze_until", "teacher",
                  "intervals", "genome", "window", "center", "label_column", "negatives", "negative_ratio",
                  "val_chroms", "test_chroms", "blacklist", "chrom_alias", "preset")


def config_from_options(config: Path | None, o: dict[str, Any]) -> Any:
    """The RunConfig of a YAML file (optional) with the command's config options (``CONFIG_OPTIONS``) and
    ``--set`` items on top."""
    from biolens.cli._genomic import parse_aliases, split_names
    from biolens.config import _merge, load_config, parse_set
    from biolens.errors import ConfigError

    get = o.get
    if get("intervals") and get("data"):
        raise ConfigError("--data and --intervals both give the data; use --intervals (with --genome) for BED files "
                          "on a genome, --data for sequence files")
    flags: dict[str, Any] = {
        "data": {"path": get("intervals") or get("data") or None, "genome": get("genome"),
                 "intervals": {"window": get("window"), "center": get("center"), "label_column": get("label_column"),
                               "negatives": get("negatives"), "negative_ratio": get("negative_ratio"),
                               "val_chroms": split_names(get("val_chroms")), "test_chroms": split_names(get("test_chroms")),
                               "blacklist": get("blacklist"), "chrom_aliases": parse_aliases(get("chrom_alias")) or None},
                 "val": get("val"), "test": get("test"), "labels": get("labels"), "alphabet": get("alphabet"),
                 "max_len": get("max_len"), "seq_col": get("seq_col"), "label_col": get("label_col"),
                 "target": get("target"), "target_cols": list(get("target_col") or []) or None,
                 "id_col": get("id_col"), "group_col": get("group_col"), "positive_class": get("positive_class"),
                 "dedup": get("dedup"), "image": {"image_size": get("image_size"), "skip_bad": get("skip_bad")}},
        "model": {"name": get("model"), "pretrained": get("pretrained"), "weights": get("weights"),
                  "freeze_until": get("freeze_until"), "teacher": get("teacher")},
        "train": {k: get(opt) for k, opt in (
            ("epochs", "epochs"), ("batch_size", "batch_size"), ("lr", "lr"), ("seed", "seed"), ("device", "device"),
            ("optimizer", "optimizer"), ("schedule", "schedule"), ("loss", "loss"), ("class_weights", "class_weights"),
            ("sampler", "sampler"), ("monitor", "monitor"), ("precision", "precision"), ("accumulate", "accumulate"),
            ("compile", "compile_"), ("deterministic", "deterministic"), ("ema", "ema"), ("tta", "tta"),
            ("tensorboard", "tensorboard"), ("tensorboard_histograms", "tensorboard_histograms"),
            ("mlflow", "mlflow"), ("mlflow_experiment", "mlflow_experiment"), ("preset", "preset"))},
        "out": get("out"),
    }
    overrides = _merge(_drop_none(flags), parse_set(get("set_") or []))
    return load_config(config, overrides)


def share_options(source: Any, names: tuple[str, ...] = CONFIG_OPTIONS) -> Any:
    """Give a command the config options of ``source`` (``biolens train``), after its own parameters: typer reads
    the combined signature, the command receives them in ``**options``."""
    hints = typing.get_type_hints(source)  # resolved: this module's annotations are strings (PEP 563)
    shared = [p.replace(annotation=hints.get(n, p.annotation))
              for n, p in inspect.signature(source).parameters.items() if n in names]

    def decorate(fn: Any) -> Any:
        own = [p for p in inspect.signature(fn).parameters.values() if p.kind is not p.VAR_KEYWORD]
        taken = {p.name for p in own}
        params = own + [p.replace(kind=p.KEYWORD_ONLY) for p in shared if p.name not in taken]
        fn.__signature__ = inspect.Signature([p.replace(kind=p.KEYWORD_ONLY) for p in params])
        return fn

    return decorate


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


def bare_mlflow(argv: list[str]) -> list[str]:
    """``--mlflow`` given without a URI (last, or followed by another option) means ``--mlflow local``: a store in
    the run folder. The command line is rewritten before typer parses it (``biolens.cli.main.run``)."""
    out: list[str] = []
    for i, arg in enumerate(argv):
        if arg == "--":
            return out + argv[i:]
        out.append(arg)
        if arg == "--mlflow" and (i + 1 == len(argv) or argv[i + 1].startswith("-")):
            out.append("local")
    return out
