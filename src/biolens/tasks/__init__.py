"""Task kinds (sequence, image): data preparation, model building and input codecs behind one interface.

Importing the package registers the built-in kinds.
"""

from __future__ import annotations

from biolens.tasks.base import TASKS, Codec, Encoded, Inputs, Task, codec_for, make_task, register_task, task_class
from biolens.tasks import sequence as _sequence  # noqa: E402,F401  isort: skip
from biolens.tasks import image as _image  # noqa: E402,F401  isort: skip
from biolens.tasks.predictor import Predictor, prediction_frame, predict, write_predictions  # noqa: E402  isort: skip

__all__ = ["TASKS", "Codec", "Encoded", "Inputs", "Predictor", "Task", "codec_for", "make_task", "predict",
           "prediction_frame", "register_task", "task_class", "write_predictions"]
