"""``biolens bench RUN``: p50/p95 latency and throughput per backend and batch size."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from biolens.cli._common import console, handle_errors, setup_logging


@handle_errors
def bench(
    run: Path = typer.Argument(..., help="run folder from `biolens train`"),
    batch_sizes: str = typer.Option("1,8,64", help="comma-separated batch sizes"),
    repeats: int = typer.Option(30, help="timed calls per backend and batch size"),
    warmup: int = typer.Option(3, help="untimed calls first"),
    backends: str = typer.Option("eager,torchscript,onnxruntime,onnxruntime-int8", help="comma-separated backends"),
    device: list[str] = typer.Option(None, "--device", help="cpu and/or cuda (default: cpu, plus cuda when present)"),
    threads: int = typer.Option(None, help="CPU threads for PyTorch and onnxruntime (default: their own choice)"),
    json_out: Path = typer.Option(None, "--json", help="also write the results to this JSON file"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="only warnings and the table"),
) -> None:
    """Benchmark inference latency: eager PyTorch, TorchScript, ONNX Runtime and int8 ONNX Runtime."""
    from rich.table import Table

    from biolens.io import atomic_write
    from biolens.deploy.latency import bench_run
    from biolens.errors import ConfigError

    setup_logging(quiet)
    try:
        sizes = [int(s) for s in batch_sizes.split(",") if s.strip()]
    except ValueError:
        raise ConfigError(f"--batch-sizes {batch_sizes!r}: expected comma-separated integers, e.g. 1,8,64") from None
    names = [b.strip() for b in backends.split(",") if b.strip()]
    with console.status("benchmarking…") as status:
        result = bench_run(run, batch_sizes=sizes, repeats=repeats, warmup=warmup, backends=names,
                           devices=device or None, threads=threads, progress=lambda msg: status.update(f"benchmarking {msg}…"))
    m = result["machine"]
    table = Table(title=f"{result['model']}: latency per batch ({result['repeats']} calls; input {result['input_shape']}; "
                        f"{m['processor']}, {m['cpu_count']} CPUs, {m['torch_threads']} thread{'s' if m['torch_threads'] != 1 else ''})")
    for col in ("backend", "device", "batch", "p50 ms", "p95 ms", "items/s"):
        table.add_column(col, justify="left" if col in ("backend", "device") else "right")
    for r in result["rows"]:
        table.add_row(r["backend"], r["device"], str(r["batch_size"]), f"{r['p50_ms']:.3f}", f"{r['p95_ms']:.3f}",
                      f"{r['throughput']:,.0f}")
    console.print(table)
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(json_out, lambda fh: fh.write((json.dumps(result, indent=2) + "\n").encode()))
        console.print(f"wrote {json_out}")
