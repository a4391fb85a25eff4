"""``biolens doctor data|model|run`` and ``biolens advise``: diagnostics and the guide's decision tree.

Exit codes: 0 all checks pass or warn, 1 a check failed, 2 bad input to the doctor itself (a BiolensError).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from biolens.cli._common import console, handle_errors, setup_logging, with_flags
from biolens.cli.train import _drop_none

doctor_app = typer.Typer(help="Check data, a model or a finished run, and say what to fix (guide 7.3).",
                         no_args_is_help=True)

STYLE = {"pass": "[green]pass[/]", "warn": "[yellow]warn[/]", "fail": "[bold red]fail[/]"}


def _data_config(config: Path | None, data: list[str] | None, model: str | None, set_: list[str] | None,
                 **flags: Any) -> Any:
    """The same layered config as ``biolens train`` (YAML → flags → --set) for the data options."""
    from biolens.config import _merge, load_config, parse_set

    image = {"image_size": flags.pop("image_size", None)}
    seed = flags.pop("seed", None)
    raw = {"data": {"path": data or None, **flags, "image": image}, "model": {"name": model},
           "train": {"seed": seed}}
    return load_config(config, _merge(_drop_none(raw), parse_set(set_ or [])))


def _show(report: Any, as_json: bool) -> None:
    if as_json:
        typer.echo(report.to_json())
    else:
        table = Table(title=f"biolens doctor {report.kind}: {report.subject}", show_lines=True)
        for col in ("check", "status", "finding", "what to do"):
            table.add_column(col, overflow="fold")
        for f in report.findings:
            table.add_row(f.name, STYLE[f.status], with_flags(f.detail, {}), with_flags(f.fix, {}) if f.status != "pass" else "")
        console.print(table)
        counts = {s: sum(f.status == s for f in report.findings) for s in ("pass", "warn", "fail")}
        console.print(f"{counts['pass']} pass, {counts['warn']} warn, {counts['fail']} fail")
    if report.failed:
        raise typer.Exit(1)


def _stage_table(report: Any) -> None:
    table = Table(title="stages (forward order)")
    for col in ("stage", "output", "params", "MB", "receptive field"):
        table.add_column(col, justify="left" if col in ("stage", "output") else "right")
    for r in report.tables.get("stages", []):
        table.add_row(r["stage"], r["output"], f"{r['params']:,}", f"{r['MB']:.3f}", str(r["rf"] or "-"))
    console.print(table)


@doctor_app.command("data")
@handle_errors
def data_cmd(
    config: Path = typer.Argument(None, help="YAML config, as for `biolens train`"),
    data: list[str] = typer.Option(None, "--data", "-d", help="builtin:NAME, FASTA/CSV/TSV, image folder or manifest"),
    val: str = typer.Option(None, help="explicit validation file"),
    test: str = typer.Option(None, help="explicit test file"),
    labels: str = typer.Option(None, help="CSV mapping FASTA ids to labels"),
    model: str = typer.Option(None, "--model", "-m", help="the model you will train (images: sets channels/normalization)"),
    alphabet: str = typer.Option(None, help="auto, dna, rna or protein"),
    max_len: int = typer.Option(None, help="truncate longer sequences"),
    seq_col: str = typer.Option(None, help="sequence column of a CSV/TSV"),
    label_col: str = typer.Option(None, help="label column of a CSV/TSV"),
    target: str = typer.Option(None, help="auto, classification, regression or multilabel"),
    target_col: list[str] = typer.Option(None, "--target-col", help="target column(s), as for `biolens train`"),
    id_col: str = typer.Option(None, help="id column of a CSV/TSV"),
    dedup: bool = typer.Option(None, "--dedup/--no-dedup", help="remove val/test sequences found in earlier splits"),
    seed: int = typer.Option(None, help="split seed"),
    image_size: int = typer.Option(None, help="images: model input size"),
    set_: list[str] = typer.Option(None, "--set", help="any config field, e.g. --set data.image.normalize=none"),
    batches: int = typer.Option(3, help="real batches to inspect per split"),
    as_json: bool = typer.Option(False, "--json", help="print the report as JSON"),
) -> None:
    """Check data as training will read it: batches, NaN, normalization, balance, leakage, lengths, alphabet, images;
    regression and multi-label targets: distribution, outliers, constant targets, rare labels, co-occurrence."""
    from biolens.doctor.data import doctor_data

    setup_logging(quiet=True)
    cfg = _data_config(config, data, model, set_, val=val, test=test, labels=labels, alphabet=alphabet,
                       max_len=max_len, seq_col=seq_col, label_col=label_col, id_col=id_col, dedup=dedup, seed=seed,
                       image_size=image_size, target=target, target_cols=list(target_col or []) or None)
    _show(doctor_data(cfg, n_batches=batches), as_json)


@doctor_app.command("model")
@handle_errors
def model_cmd(
    model: str = typer.Option(..., "--model", "-m", help="registered model (see `biolens models`)"),
    input_shape: str = typer.Option(None, help="sequence: L or B,L (default 4,200); image: C,H,W or B,C,H,W (default 4,1,64,64)"),
    set_: list[str] = typer.Option(None, "--set", help="model.params.NAME=VALUE (repeat)"),
    alphabet: str = typer.Option("dna", help="sequence models: dna, rna or protein"),
    classes: int = typer.Option(2, help="number of classes"),
    motif_length: int = typer.Option(None, help="sequence models: longest motif the model must see (warns if the receptive field is shorter)"),
    as_json: bool = typer.Option(False, "--json", help="print the report as JSON"),
) -> None:
    """Forward pass with shapes per stage, NaN weights, gradient flow, size per stage and the receptive field."""
    from biolens.config import parse_set
    from biolens.doctor.model import doctor_model
    from biolens.errors import ConfigError

    setup_logging(quiet=True)
    over = parse_set(set_ or [])
    extra = set(over) - {"model"} or set(over.get("model", {})) - {"params"}
    if extra:
        raise ConfigError(f"--set: doctor model takes model.params.NAME=VALUE only; got {', '.join(sorted(extra))}")
    report = doctor_model(model, input_shape=input_shape, params=over.get("model", {}).get("params", {}),
                          alphabet=alphabet, num_classes=classes, motif_length=motif_length)
    if not as_json:
        _stage_table(report)
    _show(report, as_json)


@doctor_app.command("run")
@handle_errors
def run_cmd(
    run: Path = typer.Argument(..., help="run folder (the --out of `biolens train`)"),
    as_json: bool = typer.Option(False, "--json", help="print the report as JSON"),
) -> None:
    """Diagnose a finished run: over/underfitting, LR too high or low, one-class predictions, plateau, val/test shift."""
    from biolens.doctor.run import doctor_run

    setup_logging(quiet=True)
    _show(doctor_run(run), as_json)


@handle_errors
def advise(
    config: Path = typer.Argument(None, help="YAML config, as for `biolens train` (measured like --data)"),
    data: list[str] = typer.Option(None, "--data", "-d", help="measure this data (file, folder or builtin:NAME)"),
    kind: str = typer.Option(None, help="without --data: sequence or image"),
    n: int = typer.Option(None, help="without --data: training examples"),
    length: int = typer.Option(None, help="without --data: median sequence length"),
    image_size: int = typer.Option(None, help="without --data: native image side (pixels)"),
    classes: int = typer.Option(2, help="without --data: number of classes"),
    imbalance: float = typer.Option(1.0, help="without --data: largest / smallest class"),
    seq_col: str = typer.Option(None, help="sequence column of a CSV/TSV"),
    label_col: str = typer.Option(None, help="label column of a CSV/TSV"),
    alphabet: str = typer.Option(None, help="auto, dna, rna or protein"),
    out: str = typer.Option("runs/advised", "--out", "-o", help="run folder in the suggested command"),
    as_json: bool = typer.Option(False, "--json", help="print the advice as JSON"),
) -> None:
    """Recommend an architecture, regularization and imbalance handling (guide 4.1) and print the train command."""
    from biolens.doctor.advise import advise as advise_api
    from biolens.errors import ConfigError

    setup_logging(quiet=True)
    flags = [x for k, v in (("--seq-col", seq_col), ("--label-col", label_col), ("--alphabet", alphabet)) if v
             for x in (k, v)]
    if data or config is not None:
        from biolens.doctor.data import data_summary, prepare_task

        cfg = _data_config(config, data, None, None, seq_col=seq_col, label_col=label_col, alphabet=alphabet)
        m = data_summary(prepare_task(cfg))
        datas = data or ([cfg.data.path] if isinstance(cfg.data.path, str) else list(cfg.data.path))
        advice = advise_api(m["kind"], m["n"], length=m.get("length"), image_size=m.get("image_size"),
                            classes=m["classes"], imbalance=m["imbalance"], data=datas, data_flags=flags, out=out,
                            alphabet=m.get("alphabet", "dna"))
    else:
        if kind is None or n is None:
            raise ConfigError("give --data FILE (measured), or --kind sequence|image with --n and --length/--image-size")
        advice = advise_api(kind, n, length=length, image_size=image_size, classes=classes, imbalance=imbalance,
                            data_flags=flags, out=out, alphabet=alphabet if alphabet not in (None, "auto") else "dna")
    if as_json:
        typer.echo(json.dumps(advice.to_dict(), indent=2))
        return
    m = advice.measured
    size = f"median length {m['length']}" if "length" in m else f"images {m['image_size']} px"
    console.print(f"[bold]{m['kind']} data[/]: {m['n']:,} training examples, {m['classes']} classes, {size}, "
                  f"imbalance {m['imbalance']:.1f}")
    console.print(f"[bold]recommended model[/]: {advice.model}")
    for line in advice.why:
        console.print(f"  • {line}", highlight=False)
    for line in advice.alternatives:
        console.print(f"  alternative: {line}", highlight=False)
    console.print("[bold]command[/]:")
    console.print(advice.command_line, highlight=False, soft_wrap=True, markup=False)
