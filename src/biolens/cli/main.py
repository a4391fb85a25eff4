"""Entry point: ``biolens`` (console script) and ``python -m biolens``."""

from __future__ import annotations

import typer

from biolens.cli.catalog import datasets, models
from biolens.cli.evaluate import evaluate
from biolens.cli.lr_find import lr_find
from biolens.cli.predict import predict
from biolens.cli.report import compare, report
from biolens.cli.train import train

app = typer.Typer(
    name="biolens",
    help="Train, evaluate and ship deep-learning classifiers for biological sequences and biomedical images.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command()(train)
app.command("lr-find")(lr_find)
app.command()(evaluate)
app.command()(predict)
app.command()(report)
app.command()(compare)
app.command()(datasets)
app.command()(models)


def run() -> None:
    app()
