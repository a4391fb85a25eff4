"""Shared CLI plumbing: consoles, logging setup and turning BiolensError into exit code 2."""

from __future__ import annotations

import functools
import inspect
import json
import logging
import re
import warnings
from collections.abc import Callable
from typing import Any

import typer
from rich.console import Console
from rich.logging import RichHandler

from biolens.errors import BiolensError, BiolensWarning, ConfigError

console = Console()
err_console = Console(stderr=True)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, plus structured fields (e.g. epoch metrics)."""

    def format(self, record: logging.LogRecord) -> str:
        out = {"time": self.formatTime(record), "level": record.levelname, "logger": record.name,
               "message": record.getMessage()}
        out.update(getattr(record, "biolens", {}))
        return json.dumps(out, default=str)


def setup_logging(quiet: bool = False, log_format: str = "text") -> None:
    level = logging.WARNING if quiet else logging.INFO
    logger = logging.getLogger("biolens")
    logger.handlers = [h for h in logger.handlers if not isinstance(h, RichHandler) and not getattr(h, "_biolens", False)]
    if log_format not in ("text", "json"):
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
            logging.getLogger("biolens").warning("%s", with_flags(str(message), {}))
        else:
            logging.getLogger("biolens.warnings").debug("%s: %s", category.__name__, message)

    warnings.showwarning = show_warning


# config fields that have a flag of their own on `biolens train` (every field also takes --set FIELD=VALUE)
CONFIG_FLAGS = {
    "data.path": "--data", "data.val": "--val", "data.test": "--test", "data.labels": "--labels",
    "data.alphabet": "--alphabet", "data.max_len": "--max-len", "data.seq_col": "--seq-col",
    "data.label_col": "--label-col", "data.id_col": "--id-col", "data.positive_class": "--positive-class",
    "data.dedup": "--dedup", "data.image.image_size": "--image-size", "data.image.skip_bad": "--skip-bad",
    "model.name": "--model", "model.pretrained": "--pretrained", "model.weights": "--weights",
    "model.freeze_until": "--freeze-until", "model.teacher": "--teacher", "train.epochs": "--epochs", "train.batch_size": "--batch-size",
    "train.lr": "--lr", "train.seed": "--seed", "train.device": "--device", "train.optimizer": "--optimizer",
    "train.schedule": "--schedule", "train.loss": "--loss", "train.class_weights": "--class-weights",
    "train.sampler": "--sampler", "train.monitor": "--monitor", "train.precision": "--precision",
    "train.accumulate": "--accumulate", "train.compile": "--compile", "train.deterministic": "--deterministic",
    "train.tensorboard": "--tensorboard", "train.tensorboard_histograms": "--tensorboard-histograms",
    "train.mlflow": "--mlflow", "train.mlflow_experiment": "--mlflow-experiment",
    "data.genome": "--genome", "data.intervals.window": "--window", "data.intervals.center": "--center",
    "data.intervals.label_column": "--label-column", "data.intervals.negatives": "--negatives",
    "data.intervals.negative_ratio": "--negative-ratio", "data.intervals.val_chroms": "--val-chroms",
    "data.intervals.test_chroms": "--test-chroms", "data.intervals.blacklist": "--blacklist",
    "data.intervals.chrom_aliases": "--chrom-alias",
    "data.group_col": "--group-col", "data.target": "--target", "data.target_cols": "--target-col", "train.ema": "--ema", "train.tta": "--tta", "train.preset": "--preset",
}
_FIELD = re.compile(r"(?<!')\b((?:data|model|train)\.[a-z_]+(?:\.[a-z_]+)*)=[^\s;,):']+")


def _option_flags(fn: Callable[..., Any]) -> dict[str, str]:
    """Parameter name → its long flag (``resume`` → ``--resume``) for a typer command function."""
    flags = {}
    for name, param in inspect.signature(fn).parameters.items():
        decls = [d for d in (getattr(param.default, "param_decls", None) or ()) if d.startswith("--")]
        if isinstance(param.default, typer.models.OptionInfo):
            flags[name] = decls[0].split("/")[0] if decls else "--" + name.replace("_", "-")
    return flags


def with_flags(message: str, flags: dict[str, str]) -> str:
    """The library's error in CLI words: a leading parameter name becomes its flag (``resume X: …`` → ``--resume X:
    …``, ``objective: …`` → ``--objective: …``) and a config field with a flag of its own gets it added
    (``set data.dedup=true`` → ``… (--dedup)``)."""
    head, sep, rest = message.partition(" ")
    param, colon = (head[:-1], ":") if head.endswith(":") else (head, "")
    if sep and param in flags:  # "resume X: …" and "objective: …" alike
        message = f"{flags[param]}{colon} {rest}"
    for name, flag in flags.items():  # a switch the library names as a keyword: force=True → --force
        message = re.sub(rf"(?<![\w.]){re.escape(name)}=True\b", flag, message)
    if message.startswith("--set "):  # the user's own --set text, quoted as given
        return message

    def annotate(m: re.Match[str]) -> str:
        flag = CONFIG_FLAGS.get(m.group(1))
        return m.group(0) if flag is None or flag in message else f"{m.group(0)} ({flag})"

    return _FIELD.sub(annotate, message, count=1)


def handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run a command; a BiolensError becomes one line on stderr and exit code 2 (never a traceback), in the
    command's own words (flags instead of library parameter and config field names)."""
    flags = _option_flags(fn)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except BiolensError as e:
            err_console.print(f"[bold red]error:[/] {with_flags(str(e), flags)}", highlight=False, soft_wrap=True)
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
