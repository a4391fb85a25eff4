"""``biolens export RUN --format onnx|torchscript``: a portable model file with a parity check against PyTorch."""

from __future__ import annotations

from pathlib import Path

import typer

from biolens.cli._common import console, handle_errors, setup_logging


@handle_errors
def export(
    run: Path = typer.Argument(..., help="run folder from `biolens train`"),
    format: str = typer.Option("onnx", "--format", "-f", help="onnx or torchscript"),  # noqa: A002
    quantize: str = typer.Option(None, help="int8: dynamic int8 weights (ONNX, via onnxruntime)"),
    fuse_bn: bool = typer.Option(False, "--fuse-bn", help="fold batch norm into the preceding convolutions"),
    out: Path = typer.Option(None, "--out", "-o", help="file to write (default: RUN/model.onnx, model.int8.onnx or "
                                                       "model.torchscript.pt)"),
    samples: int = typer.Option(8, help="inputs from the run's test split used for the parity check"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="only warnings and the parity table"),
) -> None:
    """Export the model (dynamic batch axis, contract embedded) and check it against PyTorch eager."""
    from rich.table import Table

    from biolens.deploy.export import export_run

    setup_logging(quiet)
    res = export_run(run, format, out, quantize=quantize, fuse_bn=fuse_bn, n_samples=samples)
    p = res.parity
    table = Table(title=f"parity vs PyTorch eager ({p['parity_inputs']})")
    for col in ("check", "input shape", "max |Δ| outputs", "max |Δ| probs", "tolerance", "result"):
        table.add_column(col, justify="left" if col in ("check", "result") else "right")
    for kind in ("fp32", "int8"):
        if kind not in p:
            continue
        r = p[kind]
        tol = ", ".join(f"{k} ≤ {v:g}" for k, v in r["tolerance"].items())
        for i, c in enumerate(r["checks"]):
            diffs = ", ".join(f"{k} {v:.2e}" for k, v in c["max_abs_diff"].items())
            table.add_row(f"{res.format}{' int8' if kind == 'int8' else ''} #{i + 1}", "×".join(map(str, c["shape"])),
                          diffs, f"{c['prob_max_abs_diff']:.2e}", tol if i == 0 else "",
                          "" if i else ("[green]pass[/]" if r["passed"] else "[red]FAIL[/]"))
        if kind == "int8":
            table.add_row("int8 argmax agreement", "", "", "", "", f"{r['argmax_agreement']:.1%}")
    console.print(table)
    extra = f"; fused {p['fused_batchnorm']} conv+BN pairs" if p.get("fused_batchnorm") is not None else ""
    console.print(f"wrote {res.path} ({res.parity['bytes'] / 1e6:.2f} MB; inputs {', '.join(p['inputs'])} → "
                  f"outputs {', '.join(p['outputs'])}{extra}) and {res.parity_path}")
