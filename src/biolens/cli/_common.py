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


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, plus structured fields (e.g. epoch metrics)."""

    def format(self, record: logging.LogRecord) -> str:
        import json

        out = {"time": self.formatTime(record), "level": record.levelname, "logger": record.name,
               "message": record.getMessage()}
        out.update(getattr(record, "biolens", {}))
        return json.dumps(out, default=str)


def setup_logging(quiet: bool = False, log_format: str = "text") -> None:
    level = logging.WARNING if quiet else logging.INFO
    logger = logging.getLogger("biolens")
    logger.handlers = [h for h in logger.handlers if not isinstance(h, RichHandler) and not getattr(h, "_biolens", False)]
    if log_format not in ("text", "json"):
        from biolens.errors import ConfigError

        raise ConfigError(f"--log-format {log_format!r}: expected text or json")
    if log_format == "json":
        handler: logging.Handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter())
        handler._biolens = True  # type: ignore[attr-defined]
    else:
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
