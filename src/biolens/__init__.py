"""biolens: trustworthy deep-learning classifiers for biomedical images and biological sequences."""

from __future__ import annotations

__version__ = "0.1.0"

from biolens.errors import BiolensError, BundleError, ConfigError, DataError, ModelError  # noqa: E402

__all__ = [
    "__version__",
    "BiolensError",
    "BundleError",
    "ConfigError",
    "DataError",
    "ModelError",
    "train",
    "lr_find",
    "load",
    "evaluate",
    "predict",
]


def __getattr__(name: str):
    # The public API imports torch; keep `import biolens` light for the CLI's --help and for data-only use.
    if name == "train":
        from biolens.training.api import train

        return train
    if name == "lr_find":
        from biolens.training.lr_finder import lr_find

        return lr_find
    if name == "evaluate":
        from biolens.evaluation.runner import evaluate_run

        return evaluate_run
    if name in {"load", "predict"}:
        from biolens.deploy import predictor

        return {"load": predictor.Predictor.load, "predict": predictor.predict}[name]
    raise AttributeError(f"module 'biolens' has no attribute {name!r}")
