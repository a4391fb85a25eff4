"""biolens: trustworthy deep-learning models for biomedical images and biological sequences.

The public API, from a notebook::

    import biolens
    result = biolens.train(data=df, epochs=10)        # or data="reads.fa", "builtin:splice", (seqs, labels), images
    result.predict(["ACGT..."])                         # a pandas DataFrame
    biolens.evaluate(result.run_dir).metrics            # an EvaluationResult
    model = biolens.load("runs/x")                      # a Predictor (checksums verified, no pickle)

``import biolens`` stays light (the CLI's ``--help`` does not load torch): the names below are loaded on first use
(PEP 562); IDEs and type checkers see them through the ``TYPE_CHECKING`` imports.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from biolens._version import __version__
from biolens.errors import BiolensError, BundleError, ConfigError, DataError, InputError, ModelError

if TYPE_CHECKING:
    from biolens.evaluation.evaluate import EvalOptions, EvaluationResult
    from biolens.tasks import Predictor, predict
    from biolens.training.lr_finder import lr_find
    from biolens.workflows.evaluate import evaluate_run as evaluate
    from biolens.workflows.report import build_report as report
    from biolens.workflows.compare import compare_runs as compare
    from biolens.workflows.baselines import run_baselines as baselines
    from biolens.workflows.pretrain import PretrainResult, pretrain
    from biolens.workflows.train import TrainResult, train
    from biolens.workflows.scan import scan_genome as scan
    from biolens.workflows.variants import score_variants as variants
    from biolens.workflows.cv import CVResult, cross_validate as cv
    from biolens.workflows.tune import TuneResult, tune
    from biolens.workflows.ensemble import build_ensemble as ensemble

    load = Predictor.load

# public name → (module, attribute)
_LAZY: dict[str, tuple[str, str]] = {
    "train": ("biolens.workflows.train", "train"),
    "pretrain": ("biolens.workflows.pretrain", "pretrain"),
    "PretrainResult": ("biolens.workflows.pretrain", "PretrainResult"),
    "baselines": ("biolens.workflows.baselines", "run_baselines"),
    "TrainResult": ("biolens.workflows.train", "TrainResult"),
    "evaluate": ("biolens.workflows.evaluate", "evaluate_run"),
    "EvalOptions": ("biolens.evaluation.evaluate", "EvalOptions"),
    "EvaluationResult": ("biolens.evaluation.evaluate", "EvaluationResult"),
    "report": ("biolens.workflows.report", "build_report"),
    "compare": ("biolens.workflows.compare", "compare_runs"),
    "lr_find": ("biolens.training.lr_finder", "lr_find"),
    "Predictor": ("biolens.tasks", "Predictor"),
    "predict": ("biolens.tasks", "predict"),
    "variants": ("biolens.workflows.variants", "score_variants"),
    "scan": ("biolens.workflows.scan", "scan_genome"),
    "cv": ("biolens.workflows.cv", "cross_validate"),
    "CVResult": ("biolens.workflows.cv", "CVResult"),
    "tune": ("biolens.workflows.tune", "tune"),
    "TuneResult": ("biolens.workflows.tune", "TuneResult"),
    "ensemble": ("biolens.workflows.ensemble", "build_ensemble"),
}

__all__ = ["__version__", "BiolensError", "BundleError", "ConfigError", "DataError", "InputError", "ModelError",
           "EvalOptions", "EvaluationResult", "Predictor", "TrainResult", "compare", "evaluate", "load", "lr_find",
           "predict", "report", "train", "pretrain", "PretrainResult", "baselines", "variants", "scan", "cv", "CVResult",
           "tune", "TuneResult", "ensemble"]


def __getattr__(name: str) -> Any:
    if name == "load":
        return importlib.import_module("biolens.tasks").Predictor.load
    if name in _LAZY:
        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'biolens' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
