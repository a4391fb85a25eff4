"""Entry point: ``biolens`` (console script) and ``python -m biolens``."""

from __future__ import annotations

import logging
import os
import sys

import typer

from biolens.cli.catalog import datasets, models
from biolens.cli.doctor import advise, doctor_app
from biolens.cli.bench import bench
from biolens.cli.cv import cv, ensemble, tune
from biolens.cli.evaluate import evaluate
from biolens.cli.export import export
from biolens.cli.info import info
from biolens.cli.explain import explain
from biolens.cli.lr_find import lr_find
from biolens.cli.predict import predict
from biolens.cli.pretrain import pretrain
from biolens.cli.report import compare, report
from biolens.cli.runs import runs
from biolens.cli.scan import scan
from biolens.cli.serve import serve
from biolens.cli.train import bare_mlflow, train
from biolens.cli.variants import variants

app = typer.Typer(
    name="biolens",
    help="Train, evaluate and ship deep-learning models (classes, values, label sets) for biological sequences and "
         "biomedical images.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command()(train)
app.command()(pretrain)
app.command("lr-find")(lr_find)
app.command()(cv)
app.command()(ensemble)
app.command()(tune)
app.command()(evaluate)
app.command()(predict)
app.command()(info)
app.command()(export)
app.command()(bench)
app.command()(explain)
app.command()(report)
app.command()(compare)
app.command()(runs)
app.command()(datasets)
app.command()(models)
app.add_typer(doctor_app, name="doctor")
app.command()(advise)
app.command()(serve)
app.command()(variants)
app.command()(scan)


def run() -> None:
    sys.argv[1:] = bare_mlflow(sys.argv[1:])  # `--mlflow` alone: a store in the run folder
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        app()
        return
    # A worker launched by torchrun. Its outputs are written (atomically) and its process group is destroyed by the
    # time the command returns; skip interpreter finalization, where torch's C++ teardown was seen to abort a rank now
    # and then ("terminate called without an active exception") and fail an otherwise finished run.
    code = 0
    try:
        app()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)
