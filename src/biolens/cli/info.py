"""``biolens info RUN``: what a run folder holds (model, contract, versions, provenance, metrics, checksums)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from biolens.cli._common import console, fmt, handle_errors


@handle_errors
def info(
    run: Path = typer.Argument(..., help="run folder from `biolens train`"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object instead of tables"),
) -> None:
    """Show a run's metadata and verify the SHA-256 of every file in its manifest (exit 2 if any differ)."""
    from rich.table import Table

    from biolens.bundle import describe_run

    d = describe_run(run)
    if as_json:
        typer.echo(json.dumps(d, indent=2, default=str))
    else:
        c = d["contract"]
        table = Table(title=f"run {d['run']}", show_header=False)
        table.add_column("field", style="bold")
        table.add_column("value", overflow="fold")
        if d["task"] == "sequence":
            inputs = f"{c.get('alphabet')} sequences, max length {c.get('max_len')}"
            if c.get("aux_inputs"):
                inputs += f", auxiliary {', '.join(c['aux_inputs'])}"
            genome = c.get("genome") or None
            if isinstance(genome, dict):  # windows cut from a reference (train --intervals --genome)
                contigs = genome.get("contigs") or {}
                inputs += (f"; windows of genome {genome.get('name')} ({len(contigs)} contig(s), "
                           f"{sum(contigs.values()):,} bp, checksum {str(genome.get('checksum'))[:12]}…)")
        else:
            inputs = (f"{c.get('channels')}-channel images, resize {c.get('resize_to')} → crop {c.get('image_size')}, "
                      f"mean {c.get('mean')}, std {c.get('std')}")
        hw = d["hardware"] or {}
        kind = d.get("target_type") or "classification"
        decision: list[tuple[str, object]] = [
            ("positive class", d["positive_class"]), ("threshold", d["threshold"]), ("temperature", d["temperature"])]
        if kind == "regression":
            decision = [("standardization", ", ".join(f"{n}: mean {m:.4g}, std {s:.4g}" for n, m, s in zip(
                d["classes"] or [], c.get("target_mean") or [], c.get("target_std") or []))
                + (" (log link)" if c.get("target_link") == "log" else ""))]
        elif kind == "multilabel":
            t = c.get("label_thresholds") or [0.5] * len(d["classes"] or [])
            decision = [("thresholds", ", ".join(f"{n} {v:.3f}" for n, v in zip(d["classes"] or [], t))),
                        ("empty label sets", "never (the most probable label when none passes)"
                         if c.get("at_least_one_label") else "allowed"),
                        ("temperature", d["temperature"])]
        rows = [
            ("task", d["task"]), ("target type", kind), ("model", d["model"]),
            ("targets" if kind == "regression" else "labels" if kind == "multilabel" else "classes",
             ", ".join(d["classes"] or [])), *decision,
            ("input contract", inputs), ("bundle format", d["bundle_format"]), ("created", d["created"]),
            ("updated", d["updated"]),
            ("versions", ", ".join(f"{k} {v}" for k, v in d["versions"].items() if v)),
            ("git commit", d["git_commit"] and d["git_commit"] + (" (dirty)" if d.get("git_dirty") else "")), ("dataset fingerprint", d["dataset_fingerprint"]),
            ("hardware", ", ".join(f"{k} {v}" for k, v in hw.items() if v not in (None, [], ""))),
            ("best epoch", d["best_epoch"]),
        ]
        for split, m in d["metrics"].items():
            rows.append((f"{split} metrics", ", ".join(f"{k} {fmt(v)}" for k, v in m.items())))
        ck = d["checksums"]
        if ck["status"] == "ok":
            status = f"[green]ok[/] ({ck['files']} files match manifest.json)"
        elif ck["status"] == "failed":
            status = "[red]FAILED[/]: " + ", ".join(f"{f} {s}" for f, s in ck["problems"].items())
        else:
            status = f"[red]cannot verify[/]: {ck.get('error')}"
        rows.append(("checksums", status))
        for key, value in rows:
            table.add_row(key, fmt(value) if not isinstance(value, str) else value)
        console.print(table)
    if d["checksums"]["status"] != "ok":
        raise typer.Exit(2)
