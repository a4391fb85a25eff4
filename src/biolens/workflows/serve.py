"""``biolens serve``: the inference API, its web page and the explanations behind it, in one app.

The server (``deploy/server.py``) and the page's routes (``deploy/web.py``) are the deploy engine's; explanations
are the interpret engine's, and engines never import each other. This workflow joins them: it builds the app with
``create_app`` and hands ``add_explain_route`` an explainer that computes explanations with ``biolens.interpret``
(the same registered methods as ``biolens explain``) on a private copy of the model, so the micro-batcher's
forward passes in other threads never meet the hooks and gradients of an explanation.
"""

from __future__ import annotations

import copy
import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI

from biolens.deploy.server import create_app
from biolens.deploy.web import DEFAULT_MAX_EXPLAIN, ExplainRequest, add_explain_route
from biolens.interpret.live import (default_method, explain_images_live, explain_sequences_live, original_pixels,
                                    usable_methods)
from biolens.tasks import Predictor

log = logging.getLogger(__name__)


class InterpretExplainer:
    """The page's explanations through ``biolens.interpret``: Grad-CAM (or saliency, occlusion) overlays for image
    runs, per-position attributions and the top window for sequence runs."""

    def __init__(self, predictor: Predictor):
        self.predictor = predictor
        self.kind = predictor.contract.task
        self.methods = usable_methods(predictor)
        self.default = default_method(predictor)
        self._copy: Predictor | None = None
        self._lock = threading.Lock()

    def _model(self) -> Predictor:
        """The explanations' own copy of the model (made on first use)."""
        with self._lock:
            if self._copy is None:
                p = self.predictor
                self._copy = Predictor(copy.deepcopy(p.model), p.contract, p.config, p.run_dir, p.device, p.manifest)
            return self._copy

    def __call__(self, request: ExplainRequest) -> tuple[np.ndarray, list[dict[str, Any]]]:
        p = self._model()
        if self.kind == "image":
            assert request.blobs is not None
            originals = original_pixels(request.ids, request.blobs, p.contract)
            got = explain_images_live(p, request.encoded.x, originals, request.ids, request.method,
                                      request.target_class)
        else:
            got = explain_sequences_live(p, request.encoded, request.ids, request.method, request.target_class)
        return got.probs, got.items


def build_app(run_or_predictor: str | Path | Predictor, *, explain: bool = True,
              max_explain_items: int = DEFAULT_MAX_EXPLAIN, device: str = "auto", **options: Any) -> FastAPI:
    """The app ``biolens serve`` runs: ``create_app(run, **options)`` (the API and the page at ``/``) plus
    ``POST /v1/explain`` unless ``explain=False``.

    Args:
        run_or_predictor: a run folder (loaded once, checksums verified) or a loaded Predictor.
        explain: offer explanations (the page then shows them next to each prediction).
        max_explain_items: most inputs one explanation request may carry (413 above).
        device, options: as for :func:`biolens.deploy.server.create_app` (limits, batching).
    """
    predictor = (run_or_predictor if isinstance(run_or_predictor, Predictor)
                 else Predictor.load(run_or_predictor, device=device))
    app = create_app(predictor, **options)
    if explain:
        explainer = InterpretExplainer(predictor)
        if explainer.methods:
            add_explain_route(app, app.state.service, explainer, max_items=max_explain_items)
        else:
            log.warning("no explanation method fits model %s; the page shows predictions only",
                        predictor.config.model.name)
    return app
