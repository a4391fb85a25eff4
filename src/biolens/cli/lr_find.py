"""``biolens lr-find``: the LR range test (guide 5.2), with a plot, a CSV and suggested learning rates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from biolens.cli._common import console, handle_errors, setup_logging
from biolens.cli.train import config_from_options, share_options, train


@handle_errors
@share_options(train)
def lr_find(
    config: Path = typer.Argument(None, help="YAML config; flags override it"),
    out: Path = typer.Option(Path("lr_find"), "--out", "-o", help="folder for lr_find.csv and lr_find.png"),
    start_lr: float = typer.Option(1e-7, help="first learning rate"),
    end_lr: float = typer.Option(10.0, help="last learning rate"),
    num_iter: int = typer.Option(100, help="steps (the LR grows geometrically)"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="only warnings and the result"),
    **options: Any,
) -> None:
    """Run the LR range test (the same data, model and training flags as train); the model and optimizer are left
    untouched, nothing is trained."""
    from biolens.errors import ConfigError
    from biolens.training.lr_finder import lr_find as lr_find_api

    setup_logging(quiet)
    if not 0 < start_lr < end_lr:
        raise ConfigError(f"--start-lr {start_lr} / --end-lr {end_lr}: need 0 < start-lr < end-lr")
    cfg = config_from_options(config, options)
    result = lr_find_api(cfg, out=out, start_lr=start_lr, end_lr=end_lr, num_iter=num_iter)
    fmt = lambda v: f"{v:.2e}" if v else "-"  # noqa: E731
    console.print(f"suggested learning rate: {fmt(result.steepest)} (steepest descent); "
                  f"{fmt(result.min_div10)} (minimum / 10)")
    console.print(f"plot: {result.files.get('png')}  table: {result.files.get('csv')}")
