"""Shared CLI plumbing: consoles, logging setup and turning BiolensError into exit code 2."""

from __future__ import annotations

import functools
import logging
import warnings
from collections.abc import Callable
from typing import Any

import typer
from rich.console import Console
from rich.logging import RichHandler

from biolens.errors import BiolensError, BiolensWarning

console = Console()
err_console = Console(stderr=True)


def setup_logging(quiet: bool = False) -> None:
    level = logging.WARNING if quiet else logging.INFO
    logger = logging.getLogger("biolens")
    logger.handlers = [h for h in logger.handlers if not isinstance(h, RichHandler)]
    handler = RichHandler(console=err_console, show_time=False, show_path=False, markup=False)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)  # the run folder's log.txt gets INFO even when the terminal is quiet
    handler.setLevel(level)
    logger.propagate = False

    def show_warning(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001
        if issubclass(category, BiolensWarning):
            logging.getLogger("biolens").warning("%s", message)
        else:
            logging.getLogger("biolens.warnings").debug("%s: %s", category.__name__, message)

    warnings.showwarning = show_warning


def handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run a command; a BiolensError becomes one line on stderr and exit code 2 (never a traceback)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except BiolensError as e:
            err_console.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err_console.print("interrupted")
            raise typer.Exit(130) from None

    return wrapper


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)
