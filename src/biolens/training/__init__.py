"""Trainer, callbacks and the public ``train`` / ``evaluate`` API."""

from biolens.training.trainer import Callback, Trainer, TrainingError

__all__ = ["Callback", "Trainer", "TrainingError"]
