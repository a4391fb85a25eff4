"""One registry of explanation methods, per task kind, and the library's ``explain``.

A method is registered with the kind of run it explains (``sequence`` or ``image``) and a function that computes
its scores; each kind registers one runner that turns those scores into the written outputs (tables, arrays,
pictures). ``explain(predictor, inputs, method, out_dir, **options)`` picks both from the run's contract, so a
new method is one decorated function and a new kind one runner — neither touches the CLI.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from biolens.errors import ConfigError, a_or_an


@dataclass(frozen=True)
class Method:
    name: str
    kind: str
    description: str
    compute: Callable[..., Any]
    check: Callable[[Any], None] | None = None  # raises when the method cannot explain this predictor's model

    def validate(self, predictor: Any) -> None:
        """Raise (one line) before anything is computed or written when the method does not fit the model."""
        if self.check is not None:
            self.check(predictor)


_METHODS: dict[tuple[str, str], Method] = {}
_RUNNERS: dict[str, Callable[..., Any]] = {}


def register_method(name: str, kind: str, description: str, check: Callable[[Any], None] | None = None
                    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: ``compute`` is the method's score function for runs of ``kind`` (its signature is the kind's);
    ``check(predictor)`` raises when the method cannot explain that model (e.g. attention on a CNN)."""

    def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
        if (kind, name) in _METHODS:
            raise ValueError(f"explanation method {name!r} is already registered for {kind} runs")
        _METHODS[(kind, name)] = Method(name, kind, description, fn, check)
        return fn

    return decorator


def register_runner(kind: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: ``runner(predictor, inputs, method: Method, out_dir, **options)`` explains runs of ``kind``."""

    def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
        if kind in _RUNNERS:
            raise ValueError(f"an explanation runner is already registered for {kind} runs")
        _RUNNERS[kind] = fn
        return fn

    return decorator


def methods(kind: str | None = None) -> list[str]:
    """Method names (of ``kind`` when given), in registration order, without repeats."""
    return list(dict.fromkeys(n for (k, n) in _METHODS if kind is None or k == kind))


def get_method(kind: str, name: str) -> Method:
    """The method ``name`` for runs of ``kind``; ConfigError listing the valid ones (and saying when the name is a
    method of another kind)."""
    if (kind, name) in _METHODS:
        return _METHODS[(kind, name)]
    other = [k for (k, n) in _METHODS if n == name]
    hint = f" (a method for {', '.join(other)} runs; this is {a_or_an(kind)} run)" if other else ""
    raise ConfigError(f"method {name!r} is not valid for {kind} runs{hint}; choose one of {', '.join(methods(kind))}")


def explain(predictor: Any, inputs: Any, method: str, out_dir: str | Path, **options: Any) -> Any:
    """Explain a loaded run's predictions on ``inputs`` with ``method``; outputs go to ``out_dir``.

    Sequence runs return a summary dict (``explain_sequences``), image runs one row per image
    (``explain_images``); ``options`` are the runner's keyword arguments (e.g. ``target_class``, ``motifs``).
    """
    kind = predictor.contract.task
    if kind not in _RUNNERS:
        raise ConfigError(f"no explanation methods for {kind} runs")
    return _RUNNERS[kind](predictor, inputs, get_method(kind, method), out_dir, **options)
