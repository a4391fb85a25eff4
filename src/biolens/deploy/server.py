"""HTTP inference server: FastAPI app around one loaded :class:`~biolens.deploy.predictor.Predictor`.

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
import json
import logging
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from biolens.data.alphabets import get_alphabet
from biolens.data.encoding import RecordError, encode
from biolens.data.images.cache import decode_all
from biolens.data.images.decode import DICOM_SUFFIXES, IMAGE_SUFFIXES, Window
from biolens.deploy.batching import (DEFAULT_BATCH_SIZE, DEFAULT_MAX_BATCH, DEFAULT_MAX_WAIT_MS, APIError,
                                      MicroBatcher)
from biolens.deploy.predictor import Predictor
from biolens.errors import BiolensError
from biolens.evaluation.metrics import decide

log = logging.getLogger(__name__)

DEFAULT_MAX_UPLOAD_BYTES = 16 * 1024 * 1024
FILE_FIELDS = ("files", "file")


def _error(status: int, field: str | None, message: str) -> JSONResponse:
    return JSONResponse({"error": " ".join(str(message).split()), "field": field}, status_code=status)


# --------------------------------------------------------------------------------------------------------------------
# Request and response models (for validation messages and the OpenAPI docs)


class SequenceRequest(BaseModel):
    """JSON body for sequence runs."""

    sequences: list[str] = Field(..., description="raw sequences in the run's alphabet", min_length=1)
    ids: list[str] | None = Field(None, description="one id per sequence (default seq1, seq2, …)")


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
# Input handling


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it passes ``limit`` bytes (header or streamed size)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise APIError(400, "content-length", f"Content-Length {declared!r} is not a number") from None
        if size > limit:
            raise APIError(413, "body", f"request body is {size} bytes, over the limit of {limit} bytes "
                                        "(--max-upload-mb); send fewer or smaller items per request")
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise APIError(413, "body", f"request body is over the limit of {limit} bytes (--max-upload-mb); "
                                        "send fewer or smaller items per request")
        chunks.append(chunk)
    return b"".join(chunks)


def _upload_suffix(name: str, head: bytes) -> str:
    """Suffix for the temporary copy: DICOM by its preamble or name (the decoders pick pydicom by suffix), else the
    upload's image suffix; Pillow detects the format from the content either way."""
    suffix = Path(name).suffix.lower()
    if head[128:132] == b"DICM" or suffix in DICOM_SUFFIXES:
        return ".dcm"
    return suffix if suffix in IMAGE_SUFFIXES else ".img"


def _hide_path(reason: str, path: Path) -> str:
    """Drop the server's temporary file name from a decoder's reason (the client knows the upload name)."""
    text = reason.replace(repr(str(path)), "").replace(str(path), "")
    return " ".join(text.replace(" )", ")").split())


@dataclass
class ServerLimits:
    max_upload_bytes: int
    max_batch: int
    max_sequence_length: int | None


class InferenceService:
    """Validation, encoding and response formatting around a predictor and its batcher."""

    def __init__(self, predictor: Predictor, limits: ServerLimits, batcher: MicroBatcher):
        self.predictor = predictor
        self.contract = predictor.contract
        self.limits = limits
        self.batcher = batcher
        self.model_name = predictor.config.model.name
        self.requests = 0
        self.errors = 0
        if self.contract.task == "sequence":
            self.alphabet = get_alphabet(self.contract.alphabet)
            self.max_length = limits.max_sequence_length or self.contract.max_len

    # sequences ------------------------------------------------------------------------------------------------------

    def parse_sequences(self, body: bytes) -> tuple[list[str], list[str]]:
        try:
            data = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise APIError(422, "body", f"not valid JSON ({e}); send {{\"sequences\": [\"ACGT...\"]}}") from None
        if not isinstance(data, dict):
            raise APIError(422, "body", f"expected a JSON object {{\"sequences\": [...]}}, got {type(data).__name__}")
        unknown = sorted(set(data) - {"sequences", "ids"})
        if unknown:
            raise APIError(422, unknown[0], f"unknown field {unknown[0]!r}; the body takes \"sequences\" and \"ids\"")
        if "sequences" not in data:
            raise APIError(422, "sequences", "missing field \"sequences\"; send {\"sequences\": [\"ACGT...\"]}")
        seqs = data["sequences"]
        if not isinstance(seqs, list):
            raise APIError(422, "sequences", f"expected a list of strings, got {type(seqs).__name__}")
        if not seqs:
            raise APIError(422, "sequences", "empty list; send at least one sequence")
        if len(seqs) > self.limits.max_batch:
            raise APIError(413, "sequences", f"{len(seqs)} sequences, over the limit of {self.limits.max_batch} per "
                                             "request (--max-batch); split the request")
        for i, s in enumerate(seqs):
            if not isinstance(s, str):
                raise APIError(422, f"sequences[{i}]", f"sequences[{i}]: expected a string, got {type(s).__name__}")
            if not s:
                raise APIError(422, f"sequences[{i}]", f"sequences[{i}]: empty sequence")
            if len(s) > self.max_length:
                raise APIError(422, f"sequences[{i}]", f"sequences[{i}]: length {len(s)} is over the maximum of "
                                                       f"{self.max_length} (model max_len {self.contract.max_len}, "
                                                       "--max-length); shorten or split the sequence")
        ids = data.get("ids")
        if ids is None:
            ids = [f"seq{i + 1}" for i in range(len(seqs))]
        elif not isinstance(ids, list) or not all(isinstance(x, str) for x in ids):
            raise APIError(422, "ids", "expected a list of strings, one id per sequence")
        elif len(ids) != len(seqs):
            raise APIError(422, "ids", f"{len(ids)} ids for {len(seqs)} sequences; give one id per sequence")
        return seqs, ids

    def encode_sequences(self, seqs: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        try:
            return encode(seqs, self.alphabet, self.contract.max_len)
        except RecordError as e:
            raise APIError(422, f"sequences[{e.index}]", f"sequences[{e.index}]: {e.detail}") from None

    # images ---------------------------------------------------------------------------------------------------------

    async def parse_images(self, request: Request, body: bytes) -> tuple[list[str], list[bytes]]:
        async def replay() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        replayed = Request(request.scope, receive=replay)
        try:
            form = await replayed.form(max_files=self.limits.max_batch + 1, max_fields=100)
        except StarletteHTTPException as e:
            raise APIError(422, "files", f"malformed multipart body ({e.detail}); send image files in the field "
                                         "\"files\"") from None
        names: list[str] = []
        blobs: list[bytes] = []
        try:
            for key, value in form.multi_items():
                if isinstance(value, str) or not hasattr(value, "read"):
                    raise APIError(422, key, f"unexpected form field {key!r}; send image files in the field \"files\"")
                if key not in FILE_FIELDS:
                    raise APIError(422, key, f"unexpected file field {key!r}; send image files in the field \"files\"")
                names.append(value.filename or f"file{len(names) + 1}")
                blobs.append(await value.read())
        finally:
            await form.close()
        if not blobs:
            raise APIError(422, "files", "no image files in the request; send them in the multipart field \"files\"")
        if len(blobs) > self.limits.max_batch:
            raise APIError(413, "files", f"{len(blobs)} files, over the limit of {self.limits.max_batch} per request "
                                         "(--max-batch); split the request")
        return names, blobs

    def decode_images(self, names: Sequence[str], blobs: Sequence[bytes]) -> np.ndarray:
        """Decode uploads exactly as ``Predictor.predict`` decodes files; bad files are one 422 naming each."""
        c = self.contract
        prep = c.image_preprocessing
        with tempfile.TemporaryDirectory(prefix="biolens-upload-") as tmp:
            paths = []
            for i, (name, blob) in enumerate(zip(names, blobs, strict=True)):
                p = Path(tmp) / f"{i:05d}{_upload_suffix(name, blob[:132])}"
                p.write_bytes(blob)
                paths.append(p)
            decoded = decode_all(paths, c.resize_to or c.image_size,
                                 Window(prep.get("window_center"), prep.get("window_width")), cache_dir=None)
            images = np.array(decoded.images)
        if decoded.bad:
            first = min(decoded.bad)
            # reasons may quote the temporary path; the client knows the file by its upload name
            listing = "; ".join(f"files[{i}] {names[i]!r}: {_hide_path(r, paths[i])}"
                                for i, r in sorted(decoded.bad.items()))
            raise APIError(422, f"files[{first}]", f"{len(decoded.bad)} undecodable image file(s): {listing}; "
                                                   "send PNG, JPEG, BMP, TIFF or DICOM files")
        return images

    # responses ------------------------------------------------------------------------------------------------------

    def format(self, ids: Sequence[str], probs: np.ndarray) -> dict[str, Any]:
        c = self.contract
        pred = decide(probs, c.positive_index, c.threshold)
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
        return {
            "task": c.task,
            "model": {"name": self.model_name, "params": dict(self.predictor.config.model.params)},
            "classes": list(c.class_names),
            "positive_class": c.positive_class,
            "threshold": c.threshold if c.positive_index is not None else None,
            "temperature": c.temperature,
            "contract": c.to_dict(),
            "manifest": manifest,
            "limits": {"max_upload_bytes": self.limits.max_upload_bytes, "max_batch": self.limits.max_batch,
                       "max_sequence_length": self.max_length if c.task == "sequence" else None,
                       "max_wait_ms": self.batcher.max_wait * 1000.0},
            "device": str(self.predictor.device),
        }


# --------------------------------------------------------------------------------------------------------------------
# The app


def create_app(run_or_predictor: str | Path | Predictor, *, max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
               max_batch: int = DEFAULT_MAX_BATCH, max_sequence_length: int | None = None,
               max_wait_ms: float = DEFAULT_MAX_WAIT_MS, batch_size: int = DEFAULT_BATCH_SIZE,
               device: str = "auto") -> FastAPI:
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
    """
    from biolens.errors import ConfigError

    for name, value in (("max_upload_bytes", max_upload_bytes), ("max_batch", max_batch), ("batch_size", batch_size)):
        if int(value) < 1:
            raise ConfigError(f"{name}={value}: must be at least 1")
    if max_wait_ms < 0:
        raise ConfigError(f"max_wait_ms={max_wait_ms}: must be ≥ 0")
    if max_sequence_length is not None and max_sequence_length < 1:
        raise ConfigError(f"max_sequence_length={max_sequence_length}: must be at least 1")
    predictor = run_or_predictor if isinstance(run_or_predictor, Predictor) else Predictor.load(run_or_predictor,
                                                                                                  device=device)
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

    import biolens

    app = FastAPI(title="biolens inference API", version=biolens.__version__, lifespan=lifespan,
                  description=f"Predictions from the {predictor.contract.task} model `{service.model_name}` "
                              f"({', '.join(predictor.contract.class_names)}).")
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

    @app.post("/v1/predict", response_model=PredictResponse, responses=_ERRORS, openapi_extra=_PREDICT_BODY,
              summary="Predict for sequences (JSON) or images (multipart files)")
    async def predict(request: Request) -> dict[str, Any]:
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype not in ("application/json", "multipart/form-data"):
            raise APIError(415, "content-type", f"content type {ctype or '(none)'!r} is not accepted; send "
                                                "application/json {\"sequences\": [...]} or multipart/form-data "
                                                "image files")
        task = predictor.contract.task
        if ctype == "application/json" and task == "image":
            raise APIError(422, "sequences", "this is an image model; send image files as multipart/form-data in "
                                             "the field \"files\"")
        if ctype == "multipart/form-data" and task == "sequence":
            raise APIError(422, "files", "this is a sequence model; send JSON {\"sequences\": [...]}")
        body = await _read_body(request, max_upload_bytes)
        if task == "sequence":
            seqs, ids = service.parse_sequences(body)
            x, lengths = service.encode_sequences(seqs)
            probs = await batcher.submit(x, lengths)
        else:
            ids, blobs = await service.parse_images(request, body)
            images = await asyncio.to_thread(service.decode_images, ids, blobs)
            probs = await batcher.submit(images, None)
        service.requests += 1
        return service.format(ids, probs)

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

    return app
