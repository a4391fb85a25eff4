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


INT_RANGE = (1, 65536)  # counts and sizes: channels, filters, blocks, kernels, widths
DROPOUT_RANGE = (0.0, 1.0)  # [0, 1)


def _range(cls: type, name: str, annotation: Any) -> tuple[float, float, bool]:
    """``(low, high, high_inclusive)`` of a numeric constructor argument: the class's ``param_ranges`` entry, else
    [0, 1) for ``*dropout`` and 1..65536 for integers (and for every element of integer sequences)."""
    declared = getattr(cls, "param_ranges", {}).get(name)
    if declared is not None:
        return float(declared[0]), float(declared[1]), True
    if name.endswith("dropout"):
        return DROPOUT_RANGE[0], DROPOUT_RANGE[1], False
    return float(INT_RANGE[0]), float(INT_RANGE[1]), True


def _kind(annotation: Any) -> str:
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))
    text = str(text).replace("typing.", "")
    if text == "bool":
        return "bool"
    if text == "int":
        return "int"
    if text == "float":
        return "float"
    if text.startswith(("Sequence[int]", "tuple[int", "list[int]")):
        return "ints"
    return "other"


def check_params(spec: ModelSpec, params: dict[str, Any]) -> None:
    """Types and ranges of hyperparameters, from the constructor's annotations and the class's ``param_ranges``.

    Raises ModelError naming ``model.params.NAME``, the value and the valid range, e.g.
    ``model.params.dropout=2: must be a number in [0, 1)``."""
    parameters = _parameters(spec.cls)
    for name, value in params.items():
        if name not in parameters or name in ("vocab_size", "num_classes", "in_channels"):
            continue
        kind = _kind(parameters[name].annotation)
        where = f"model.params.{name}={value!r}"
        if kind == "other":
            continue
        if kind == "bool":
            if not isinstance(value, bool):
                raise ModelError(f"{where}: must be true or false")
            continue
        values = value if kind == "ints" else [value]
        if kind == "ints" and (isinstance(value, (str, bytes)) or not hasattr(value, "__iter__")):
            raise ModelError(f"{where}: must be a list of integers, e.g. [2, 2]")
        low, high, inclusive = _range(spec.cls, name, parameters[name].annotation)
        for v in values:
            numeric = isinstance(v, (int, float)) and not isinstance(v, bool)
            whole = numeric and (kind == "float" or float(v).is_integer())
            if not whole or (kind in ("int", "ints") and isinstance(v, float) and not v.is_integer()):
                want = "a number" if kind == "float" else "an integer"
                raise ModelError(f"{where}: must be {want} in {_fmt_range(low, high, inclusive, kind)}")
            if not (low <= v and (v <= high if inclusive else v < high)):
                want = "a number" if kind == "float" else "an integer"
                raise ModelError(f"{where}: must be {want} in {_fmt_range(low, high, inclusive, kind)}")


def _fmt_range(low: float, high: float, inclusive: bool, kind: str) -> str:
    if kind == "float":
        return f"[{low:g}, {high:g}{']' if inclusive else ')'}"
    return f"{int(low)}..{int(high)}"


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
        raise ModelError(f"model.params for {name!r}: {err}; accepted arguments: {accepted}") from None
    check_params(spec, kwargs)
    try:
        model = spec.cls(**kwargs)
    except ModelError:
        raise
    except (ValueError, TypeError, RuntimeError) as err:  # an argument combination the architecture cannot build
        raise ModelError(f"model {name!r} cannot be built with {kwargs}: {str(err).splitlines()[0][:160]}; "
                         "change model.params") from None
    n_params = sum(p.numel() for p in model.parameters())
    log.debug("created model %s with %d parameters", name, n_params)
    return model
