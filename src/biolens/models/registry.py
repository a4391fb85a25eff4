"""One registry and one factory for every architecture (timm / torchvision style).

Register a class with ``@register_model("name", task=..., description=...)`` and build it with
``create_model("name", **kwargs)``. Registering a name twice raises; an unknown name or argument raises
:class:`~biolens.errors.ModelError` listing what is valid.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from torch import nn

from biolens.errors import ModelError

log = logging.getLogger(__name__)

T = TypeVar("T", bound=type)


@dataclass(frozen=True)
class ModelSpec:
    """What the registry knows about one architecture."""

    name: str
    task: str
    description: str
    cls: type
    default: bool = False
    aux_inputs: tuple[str, ...] = ()  # extra forward() inputs, e.g. ("gc",)
    extra_outputs: tuple[str, ...] = ()  # e.g. ("attention",) → forward_with_attention()
    attention_stride: int = 1  # input positions per attention weight

    def arguments(self) -> dict[str, Any]:
        """Constructor arguments and their defaults (``inspect.Parameter.empty`` where required)."""
        return {n: p.default for n, p in _parameters(self.cls).items()}

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable summary (for ``biolens models``)."""
        return {
            "name": self.name,
            "task": self.task,
            "description": self.description,
            "default": self.default,
            "aux_inputs": list(self.aux_inputs),
            "extra_outputs": list(self.extra_outputs),
            "attention_stride": self.attention_stride,
        }


_REGISTRY: dict[str, ModelSpec] = {}


def _parameters(cls: type) -> dict[str, inspect.Parameter]:
    params = inspect.signature(cls).parameters
    return {n: p for n, p in params.items() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


def register_model(name: str, *, task: str, description: str, default: bool = False) -> Callable[[T], T]:
    """Class decorator adding an architecture to the registry.

    Raises:
        ValueError: the name is already registered, or ``default=True`` when the task already has a default.
    """

    def decorator(cls: T) -> T:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is already registered (by {_REGISTRY[name].cls.__qualname__})")
        if default:
            taken = [s.name for s in _REGISTRY.values() if s.task == task and s.default]
            if taken:
                raise ValueError(f"task {task!r} already has a default model: {taken[0]!r}")
        _REGISTRY[name] = ModelSpec(
            name=name,
            task=task,
            description=description,
            cls=cls,
            default=default,
            aux_inputs=tuple(getattr(cls, "aux_inputs", ())),
            extra_outputs=tuple(getattr(cls, "extra_outputs", ())),
            attention_stride=int(getattr(cls, "attention_stride", 1)),
        )
        return cls

    return decorator


def list_models(task: str | None = None) -> list[str]:
    """Registered model names, sorted; only those of ``task`` when given."""
    return sorted(n for n, s in _REGISTRY.items() if task is None or s.task == task)


def default_model(task: str) -> str:
    """The registered default architecture of a task kind (``register_model(..., default=True)``)."""
    found = [s.name for s in _REGISTRY.values() if s.task == task and s.default]
    if not found:
        raise ModelError(f"no default model is registered for {task} data; pass --model (biolens models)")
    return found[0]


def model_info(name: str) -> ModelSpec:
    """The :class:`ModelSpec` of a registered model."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ModelError(f"unknown model {name!r}; known models: {', '.join(sorted(_REGISTRY))}") from None


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered model.

    Args:
        name: registered name (see :func:`list_models`).
        **kwargs: constructor arguments, e.g. ``vocab_size``, ``num_classes`` and hyperparameters.

    Raises:
        ModelError: unknown name, or an argument the constructor does not accept (or a required one missing).
    """
    spec = model_info(name)
    try:
        inspect.signature(spec.cls).bind(**kwargs)
    except TypeError as err:
        accepted = ", ".join(_parameters(spec.cls))
        raise ModelError(f"model {name!r}: {err}; accepted arguments: {accepted}") from None
    model = spec.cls(**kwargs)
    n_params = sum(p.numel() for p in model.parameters())
    log.debug("created model %s with %d parameters", name, n_params)
    return model
