"""``biolens datasets`` and ``biolens models``: what is bundled and what is registered."""

from __future__ import annotations

import typer
from rich.table import Table

from biolens.cli._common import console, handle_errors


@handle_errors
def datasets() -> None:
    """List the bundled data sets (use one with --data builtin:NAME)."""
    from biolens.data.builtin import BUILTINS

    table = Table(title="bundled data sets (--data builtin:NAME)")
    for col in ("name", "alphabet", "classes", "n", "length", "license", "description"):
        table.add_column(col, no_wrap=col == "name", overflow="fold")
    for d in BUILTINS.values():
        table.add_row(d.name, d.alphabet, ", ".join(d.classes), str(d.n), d.length, d.license, d.description)
    console.print(table)


@handle_errors
def models(task: str = typer.Option(None, help="only models of this task: sequence or image")) -> None:
    """List the registered model architectures (use one with --model NAME)."""
    from biolens.models import list_models, model_info

    table = Table(title="registered models (--model NAME)")
    for col in ("name", "task", "inputs", "outputs", "description"):
        table.add_column(col, no_wrap=col == "name", overflow="fold")
    for name in list_models(task=task):
        spec = model_info(name)
        inputs = ", ".join(("x",) + tuple(spec.cls.aux_inputs))
        outputs = ", ".join(("logits",) + tuple(spec.cls.extra_outputs))
        table.add_row(name + (" (default)" if spec.default else ""), spec.task, inputs, outputs, spec.description)
    console.print(table)
