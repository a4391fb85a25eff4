"""Model architectures behind one registry: ``create_model(name, **kwargs)``, ``list_models(task=...)``."""

from __future__ import annotations

from biolens.models.base import SequenceClassifier
from biolens.models.registry import (
    ModelSpec,
    create_model,
    default_model,
    list_models,
    model_info,
    register_model,
)

# Importing the architecture modules registers them.
from biolens.models import sequence_cnn as _sequence_cnn  # noqa: E402,F401  isort: skip
from biolens.models import sequence_rnn as _sequence_rnn  # noqa: E402,F401  isort: skip
from biolens.models import transformer as _transformer  # noqa: E402,F401  isort: skip
from biolens.models import rc as _rc  # noqa: E402,F401  isort: skip
from biolens.models import sequence_gru as _sequence_gru  # noqa: E402,F401  isort: skip
from biolens.models import image as _image  # noqa: E402,F401  isort: skip
from biolens.models import transfer as _transfer  # noqa: E402,F401  isort: skip
from biolens.models import ensemble as _ensemble  # noqa: E402,F401  isort: skip

__all__ = [
    "ModelSpec",
    "SequenceClassifier",
    "create_model",
    "default_model",
    "list_models",
    "model_info",
    "register_model",
]
