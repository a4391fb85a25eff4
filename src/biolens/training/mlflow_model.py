"""A biolens bundle as an MLflow pyfunc model (MLflow "models from code").

``MLflowLogger.log_model`` (``training/tracking.py``) logs this file with the bundle as the artefact ``bundle``;
``mlflow.pyfunc.load_model(URI)`` executes it and calls ``load_context``, which loads the bundle exactly as
``biolens.load`` does (checksums verified, weights from safetensors, nothing unpickled). biolens itself never imports
this module, so MLflow stays an optional dependency.

``predict`` takes what ``Predictor.predict`` takes, as a list of strings (sequences, or paths of sequence files or
images) or a DataFrame whose ``sequence`` / ``path`` / ``input`` column (else its first column) holds them, and
returns the prediction DataFrame: id, p_<class>…, prediction and, for binary models, decision.
"""

from __future__ import annotations

from typing import Any

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel

from biolens.tasks import Predictor

COLUMNS = ("sequence", "sequences", "path", "input")


def _items(model_input: Any) -> list[str]:
    if isinstance(model_input, pd.DataFrame):
        col = next((c for c in COLUMNS if c in model_input.columns), model_input.columns[0])
        return [str(v) for v in model_input[col].tolist()]
    if isinstance(model_input, pd.Series):
        return [str(v) for v in model_input.tolist()]
    if isinstance(model_input, str):
        return [model_input]
    return [str(v) for v in model_input]


class BiolensBundle(PythonModel):
    """The pyfunc wrapper: ``load_context`` loads the bundle, ``predict`` is ``Predictor.predict``."""

    def load_context(self, context: Any) -> None:
        self.predictor = Predictor.load(context.artifacts["bundle"])

    # the type hint lets MLflow record a signature (a list of strings) and turn a one-column DataFrame into a list
    def predict(self, context: Any, model_input: list[str], params: dict[str, Any] | None = None) -> pd.DataFrame:
        return self.predictor.predict(_items(model_input))


mlflow.models.set_model(BiolensBundle())
