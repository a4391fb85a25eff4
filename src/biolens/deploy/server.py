"""HTTP inference server: FastAPI app around one loaded :class:`~biolens.tasks.Predictor`.

Endpoints: ``POST /v1/predict`` (JSON ``{"sequences": [...], "ids": [...]}`` for sequence runs, multipart image files
in the field ``files`` for image runs), ``GET /v1/health``, ``GET /v1/model`` and the OpenAPI docs at ``/docs``.

The model is loaded once. Requests are validated and encoded (sequences) or decoded (images) in the request handler;
the encoded items go on an asyncio queue, and a single worker task micro-batches them: it takes the first waiting
request, then keeps gathering until ``max_batch`` items are collected or ``max_wait_ms`` has passed since the first,
runs one forward pass in a worker thread (the event loop stays free) and resolves each request's future with its
rows. A lone request therefore waits at most ``max_wait_ms`` (default 5 ms) longer than its forward pass.

Every bad input is a 4xx JSON ``{"error": "<one line>", "field": "<where>"}``, never a 500.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from biolens._version import __version__
from biolens.deploy.batching import (DEFAULT_BATCH_SIZE, DEFAULT_MAX_BATCH, DEFAULT_MAX_WAIT_MS, APIError,
                                      MicroBatcher)
from biolens.deploy.requests import content_type, parse_json_items, parse_uploads, read_body
from biolens.deploy.web import add_web_routes
from biolens.errors import BiolensError, ConfigError, InputError
from biolens.tasks import Encoded, Predictor

log = logging.getLogger(__name__)

DEFAULT_MAX_UPLOAD_BYTES = 16 * 1024 * 1024
TRIM_AFTER_BYTES = 1 << 20


def _malloc_trim() -> Callable[[], None]:
    """glibc's ``malloc_trim(0)`` (returns freed heap pages to the OS), or a no-op where there is none: without it
    a flood of large rejected bodies leaves the process's resident set at its peak."""
    if os.environ.get("BIOLENS_NO_MALLOC_TRIM"):  # benchmarks/bench_serve_abuse.py measures with and without
        return lambda: None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return lambda: None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return lambda: trim(0) and None


release_memory = _malloc_trim()


def _error(status: int, field: str | None, message: str) -> JSONResponse:
    return JSONResponse({"error": " ".join(str(message).split()), "field": field}, status_code=status)


# --------------------------------------------------------------------------------------------------------------------
# Request and response models (for validation messages and the OpenAPI docs)


class SequenceRequest(BaseModel):
    """JSON body for sequence runs."""

    sequences: list[str] = Field(..., description="raw sequences in the run's alphabet", min_length=1)
    ids: list[str] | None = Field(None, description="one id per sequence (default seq1, seq2, …)")


# every predict response: notes on inputs that are valid but probably wrong, with the predictions still given
Warnings = Annotated[list[str], Field(description="inputs that are valid but probably wrong (e.g. DNA sent to a "
                                                  "protein model); the predictions are still given")]


class ItemPrediction(BaseModel):
    id: str
    prediction: str = Field(..., description="predicted class (binary: the positive class when decision is true)")
    probabilities: dict[str, float] = Field(..., description="per-class probability (temperature applied)")
    decision: bool | None = Field(None, description="binary runs: P(positive class) ≥ the run's threshold")


class PredictResponse(BaseModel):
    model: str
    task: str
    positive_class: str | None
    threshold: float | None
    predictions: list[ItemPrediction]
    warnings: Warnings = []


class RegressionItem(BaseModel):
    id: str
    values: dict[str, float] = Field(..., description="predicted value per target, in the units of the training data "
                                     "(the train-fitted standardization undone)")


class RegressionResponse(BaseModel):
    model: str
    task: str
    target_type: str = Field("regression", description="a regression model: one value per target")
    targets: list[str]
    predictions: list[RegressionItem]
    warnings: Warnings = []


class MultilabelItem(BaseModel):
    id: str
    labels: list[str] = Field(..., description="the labels whose probability reaches their threshold; empty only "
                              "when the model's at_least_one_label is false (otherwise the most probable label)")
    probabilities: dict[str, float] = Field(..., description="per-label probability (independent sigmoids, "
                                            "temperature applied); they need not sum to 1")


class MultilabelResponse(BaseModel):
    model: str
    task: str
    target_type: str = Field("multilabel", description="a multi-label model: any number of labels per item")
    thresholds: dict[str, float] = Field(..., description="per-label decision threshold (chosen on validation or 0.5)")
    at_least_one_label: bool = Field(False, description="true: no item is left without a label (where none reaches "
                                     "its threshold, the most probable one is given), as in the training data")
    predictions: list[MultilabelItem]
    warnings: Warnings = []


RESPONSES = {"classification": PredictResponse, "regression": RegressionResponse, "multilabel": MultilabelResponse}
PREDICT_SUMMARY = {
    "classification": "Predict classes for sequences (JSON) or images (multipart files)",
    "regression": "Predict a value per target (original units) for sequences (JSON) or images (multipart files)",
    "multilabel": "Predict a label set and per-label probabilities for sequences (JSON) or images (multipart files)",
}


class ErrorResponse(BaseModel):
    error: str
    field: str | None


_ERRORS = {code: {"model": ErrorResponse} for code in (413, 415, 422, 500, 503)}

_PREDICT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": SequenceRequest.model_json_schema()},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"files": {"type": "array", "items": {"type": "string", "format": "binary"},
                                             "description": "image files (PNG, JPEG, BMP, TIFF, DICOM)"}},
                    "required": ["files"],
                }
            },
        },
    }
}


# --------------------------------------------------------------------------------------------------------------------
# The service


@dataclass
class ServerLimits:
    max_upload_bytes: int
    max_batch: int
    max_sequence_length: int | None


class InferenceService:
    """Validation, encoding (through the run's codec) and response formatting around a predictor and its batcher."""

    def __init__(self, predictor: Predictor, limits: ServerLimits, batcher: MicroBatcher):
        self.predictor = predictor
        self.contract = predictor.contract
        self.codec = predictor.codec
        self.limits = limits
        self.batcher = batcher
        self.model_name = predictor.config.model.name
        self.requests = 0
        self.errors = 0

    async def inputs(self, request: Request, body: bytes, carries: str) -> tuple[list[str], Encoded]:
        """(ids, encoded inputs) of a validated request; every bad item is an APIError naming it."""
        try:
            if carries == "json":
                items, ids = parse_json_items(body, self.codec, self.limits.max_batch)
                return ids, self.codec.from_json(items, self.limits.max_sequence_length)
            names, blobs = await parse_uploads(request, body, self.limits.max_batch)
            return names, await asyncio.to_thread(self.codec.from_uploads, names, blobs)
        except InputError as e:
            raise APIError(422, e.field, str(e)) from None

    def warnings(self, encoded: Encoded, carries: str) -> list[str]:
        """The codec's warnings about a validated JSON request's items, logged too (uploads: none)."""
        notes = self.codec.input_warnings(encoded, self.codec.json_field) if carries == "json" else []
        for note in notes:
            log.warning("%s", note)
        return notes

    def format(self, ids: Sequence[str], probs: np.ndarray, warnings: Sequence[str] = ()) -> dict[str, Any]:
        """The response body of the contract's target type, with the request's warnings."""
        return {**self._body(ids, probs), "warnings": list(warnings)}

    def _body(self, ids: Sequence[str], probs: np.ndarray) -> dict[str, Any]:
        c = self.contract
        if c.target_type == "regression":  # probs are the values (contract.outputs)
            return {"model": self.model_name, "task": c.task, "target_type": "regression", "targets": c.target_names,
                    "predictions": [{"id": ident, "values": {n: float(probs[i, k]) for k, n in enumerate(c.target_names)}}
                                    for i, ident in enumerate(ids)]}
        if c.target_type == "multilabel":
            on = c.decide(probs)
            return {"model": self.model_name, "task": c.task, "target_type": "multilabel",
                    "thresholds": dict(zip(c.target_names, map(float, c.thresholds))),
                    "at_least_one_label": c.at_least_one_label,
                    "predictions": [{"id": ident, "labels": [n for k, n in enumerate(c.target_names) if on[i, k]],
                                     "probabilities": {n: float(probs[i, k]) for k, n in enumerate(c.target_names)}}
                                    for i, ident in enumerate(ids)]}
        pred = c.decide(probs)
        items = []
        for i, ident in enumerate(ids):
            items.append({
                "id": ident,
                "prediction": c.class_names[int(pred[i])],
                "probabilities": {name: float(probs[i, k]) for k, name in enumerate(c.class_names)},
                "decision": bool(pred[i] == c.positive_index) if c.positive_index is not None else None,
            })
        return {"model": self.model_name, "task": c.task, "positive_class": c.positive_class,
                "threshold": c.threshold if c.positive_index is not None else None, "predictions": items}

    def metadata(self) -> dict[str, Any]:
        c = self.contract
        run_dir = Path(self.predictor.run_dir)
        # the manifest the predictor verified on load (versions, creation time, git commit, dataset fingerprint,
        # hardware, SHA-256 per file: a client can tell exactly which weights answer it)
        manifest: dict[str, Any] = dict(getattr(self.predictor, "manifest", None) or {})
        if not manifest:
            try:
                manifest = json.loads((run_dir / "manifest.json").read_text())
            except (OSError, json.JSONDecodeError):
                log.warning("%s/manifest.json is missing or unreadable; /v1/model shows no versions", run_dir)
        limits = {"max_upload_bytes": self.limits.max_upload_bytes, "max_batch": self.limits.max_batch,
                  "max_sequence_length": None, "max_wait_ms": self.batcher.max_wait * 1000.0}
        limits.update(self.codec.limits(self.limits.max_sequence_length))
        return {
            "task": c.task,
            "model": {"name": self.model_name, "params": dict(self.predictor.config.model.params)},
            "classes": list(c.class_names),
            "target_type": c.target_type,
            "positive_class": c.positive_class,
            "threshold": c.threshold if c.positive_index is not None else None,
            "temperature": c.temperature,
            "contract": c.to_dict(),
            "manifest": manifest,
            "limits": limits,
            "device": str(self.predictor.device),
        }


# --------------------------------------------------------------------------------------------------------------------
# The app


def create_app(run_or_predictor: str | Path | Predictor, *, max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
               max_batch: int = DEFAULT_MAX_BATCH, max_sequence_length: int | None = None,
               max_wait_ms: float = DEFAULT_MAX_WAIT_MS, batch_size: int = DEFAULT_BATCH_SIZE,
               device: str = "auto", max_pixels: int | None = None) -> FastAPI:
    """A FastAPI app serving one run (loaded here, once) or an already loaded :class:`Predictor`.

    Args:
        run_or_predictor: a run folder or a Predictor.
        max_upload_bytes: largest request body accepted (413 above).
        max_batch: most items (sequences or files) in one request, and most items in one forward pass.
        max_sequence_length: longest sequence accepted (422 above); default the model's ``max_len``. A larger value
            lets longer sequences through, truncated to ``max_len`` as ``Predictor.predict`` does.
        max_wait_ms: how long the batcher waits after the first queued request for more to join its forward pass.
        batch_size: rows per model call inside a forward pass.
        device: where a run folder's model is loaded ("auto", "cpu", "cuda", …).
        max_pixels: largest uploaded image (width × height, read from its header before decoding); default the
            run's ``data.image.max_pixels``.
    """
    for name, value in (("max_upload_bytes", max_upload_bytes), ("max_batch", max_batch), ("batch_size", batch_size)):
        if int(value) < 1:
            raise ConfigError(f"{name}={value}: must be at least 1")
    if max_wait_ms < 0:
        raise ConfigError(f"max_wait_ms={max_wait_ms}: must be ≥ 0")
    if max_sequence_length is not None and max_sequence_length < 1:
        raise ConfigError(f"max_sequence_length={max_sequence_length}: must be at least 1")
    if max_pixels is not None and max_pixels < 1:
        raise ConfigError(f"max_pixels={max_pixels}: must be at least 1")
    predictor = run_or_predictor if isinstance(run_or_predictor, Predictor) else Predictor.load(run_or_predictor,
                                                                                                  device=device)
    if max_pixels is not None and hasattr(predictor.codec, "max_pixels"):
        predictor.codec.max_pixels = int(max_pixels)
    batcher = MicroBatcher(predictor, max_batch, max_wait_ms, batch_size)
    service = InferenceService(predictor, ServerLimits(max_upload_bytes, max_batch, max_sequence_length), batcher)
    started = time.time()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await batcher.start()
        log.info("serving %s (%s model %s), micro-batching up to %d items or %.1f ms", predictor.run_dir,
                 predictor.contract.task, service.model_name, max_batch, max_wait_ms)
        try:
            yield
        finally:
            await batcher.stop()

    app = FastAPI(title="biolens inference API", version=__version__, lifespan=lifespan,
                  description=f"Predictions from the {predictor.contract.task} model `{service.model_name}`: "
                              + {"classification": "classes", "regression": "regression of",
                                 "multilabel": "multi-label,"}[predictor.contract.target_type]
                              + f" {', '.join(predictor.contract.class_names)}.")
    app.state.service = service
    app.state.batcher = batcher

    @app.exception_handler(APIError)
    async def _api_error(request: Request, exc: APIError) -> JSONResponse:
        service.errors += 1
        return _error(exc.status, exc.field, str(exc))

    @app.exception_handler(BiolensError)
    async def _biolens_error(request: Request, exc: BiolensError) -> JSONResponse:
        service.errors += 1
        return _error(422, "body", str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, "path" if exc.status_code in (404, 405) else None, str(exc.detail))

    @app.post("/v1/predict", response_model=RESPONSES[predictor.contract.target_type], responses=_ERRORS,
              openapi_extra=_PREDICT_BODY, summary=PREDICT_SUMMARY[predictor.contract.target_type])
    async def predict(request: Request) -> dict[str, Any]:
        carries = content_type(request, service.codec)
        body = b""
        try:
            body = await read_body(request, max_upload_bytes)
            ids, encoded = await service.inputs(request, body, carries)
            notes = service.warnings(encoded, carries)
            probs = await batcher.submit(encoded.x, encoded.lengths)
        finally:
            if len(body) > TRIM_AFTER_BYTES:
                release_memory()  # large bodies, answered or refused: give the freed heap back to the system
        service.requests += 1
        return service.format(ids, probs, notes)

    @app.get("/v1/health", summary="Liveness and batcher counters")
    async def health() -> dict[str, Any]:
        ok = batcher.running
        body = {"status": "ok" if ok else "unavailable", "model": service.model_name, "task": predictor.contract.task,
                "uptime_s": round(time.time() - started, 3), "requests": service.requests, "errors": service.errors,
                "forward_passes": batcher.forward_passes, "batched_items": batcher.batched_items,
                "queue_depth": batcher.queue_depth}
        return body if ok else JSONResponse(body, status_code=503)

    @app.get("/v1/model", summary="Model metadata: task, classes, threshold, input contract, versions")
    async def model() -> dict[str, Any]:
        return service.metadata()

    add_web_routes(app, service)  # the page at /, /static/…, /v1/card (deploy/web.py)
    return app
