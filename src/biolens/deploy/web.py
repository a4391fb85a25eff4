"""The web page of ``biolens serve`` and the API behind it: ``GET /`` (the page), ``GET /static/…`` (its script and
style sheet), ``GET /v1/card`` (the model card) and ``POST /v1/explain`` (predictions with their explanations).

The page is plain HTML, CSS and JavaScript shipped inside the package (``deploy/static/``): no CDN, no build step,
it works offline and is served with a strict Content-Security-Policy (same-origin scripts and styles only, images
from ``data:``/``blob:`` URLs). It reads ``/v1/card`` to show the model card and the right input (image files, or
FASTA / raw sequences), posts to ``/v1/explain`` and shows, per input, the predicted class, the probabilities as
bars, the decision at the saved operating point and the explanation; a refused request shows the server's one-line
``error``.

The explanation is computed by a callable handed in by the app's builder (``workflows/serve.py`` passes one backed
by ``biolens.interpret``), so this engine never imports another: without one, ``/v1/explain`` does not exist and the
page shows predictions only (from ``/v1/predict``). Explanations run one request at a time, in a worker thread, on
a copy of the model (the explainer's business), with at most ``max_items`` inputs per request (413 above) and a
short queue (503 when it is full).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from fastapi import FastAPI, Query, Request
from fastapi.responses import HTMLResponse, Response

from biolens.bundle import split_headline
from biolens.deploy.batching import APIError
from biolens.deploy.requests import content_type, parse_json_items, parse_uploads, read_body
from biolens.errors import BiolensError, ConfigError, InputError
from biolens.metrics import get_metric, metric_names
from biolens.tasks import Encoded

log = logging.getLogger(__name__)

STATIC = Path(__file__).with_name("static")
ASSETS = {"app.js": "text/javascript; charset=utf-8", "style.css": "text/css; charset=utf-8"}
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
                               "connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
DEFAULT_MAX_EXPLAIN = 16
_EXPLAIN_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": {"type": "object", "required": ["sequences"], "properties": {
        "sequences": {"type": "array", "items": {"type": "string"}, "description": "sequence runs: raw sequences"},
        "ids": {"type": "array", "items": {"type": "string"}, "description": "one id per sequence"}}}},
    "multipart/form-data": {"schema": {"type": "object", "required": ["files"], "properties": {
        "files": {"type": "array", "items": {"type": "string", "format": "binary"},
                  "description": "image runs: PNG, JPEG, BMP, TIFF or DICOM files"}}}}}}}
MAX_WAITING = 4  # explanation requests queued behind the running one; more get 503


@dataclass
class ExplainRequest:
    """What the explainer gets: validated, encoded inputs (and for uploads their names and bytes, for the overlay)."""

    ids: list[str]
    encoded: Encoded
    method: str
    target_class: str | None
    blobs: list[bytes] | None = None  # uploads only


class Explainer(Protocol):
    """Computes explanations for the page; ``workflows/serve.py`` builds one with ``biolens.interpret``."""

    methods: list[str]  # usable methods, the first-choice one is ``default``
    default: str | None

    def __call__(self, request: ExplainRequest) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """``(probabilities (N, C), one explanation dict per input)``; PNG bytes become data URLs in the answer."""
        ...


# ---- the model card ------------------------------------------------------------------------------------------------
def _read_metrics(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "metrics.json"
    try:
        data = json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        log.warning("%s is unreadable; the model card shows no metrics", path)
        return {}
    return data if isinstance(data, dict) else {}


def _split_card(entry: dict[str, Any], split: str) -> dict[str, Any] | None:
    if not isinstance(entry, dict) or not entry:
        return None
    head = split_headline(entry)
    ci = head.get("ci") or {}
    values = []
    for name in metric_names():
        v = head.get(name)
        if isinstance(v, (int, float)) or (name in head and v is None):
            lo_hi = ci.get(name)
            values.append({"name": name, "value": v, "description": get_metric(name).description,
                           "ci": lo_hi if isinstance(lo_hi, list) and None not in lo_hi else None})
    return {"evaluated": entry.get("evaluated", f"{split} split"), "n": head.get("n", entry.get("n")),
            "ci_level": head.get("ci_level"), "values": values}


def model_card(service: Any) -> dict[str, Any]:
    """What the page shows about the model: task, classes, decision rule and operating point, input contract, test
    and val metrics (with CIs where ``biolens evaluate`` computed them), data set fingerprint and provenance."""
    predictor = service.predictor
    c = predictor.contract
    manifest = dict(getattr(predictor, "manifest", None) or {})
    metrics = _read_metrics(Path(predictor.run_dir))
    test = metrics.get("test") if isinstance(metrics.get("test"), dict) else {}
    contract = c.to_dict()
    if c.task == "image":
        inputs = {k: contract.get(k) for k in ("image_size", "resize_to", "channels", "mean", "std")}
    else:
        inputs = {k: contract.get(k) for k in ("alphabet", "max_len", "aux_inputs")}
    return {
        "run": Path(predictor.run_dir).name,
        "task": c.task,
        "model": service.model_name,
        "classes": list(c.class_names),
        "positive_class": c.positive_class,
        "threshold": c.threshold if c.positive_index is not None else None,
        "temperature": c.temperature,
        "operating_point": test.get("operating_point"),
        "inputs": inputs,
        "limits": {"max_batch": service.limits.max_batch, "max_upload_bytes": service.limits.max_upload_bytes,
                   **service.codec.limits(service.limits.max_sequence_length)},
        "accepts": "files" if service.codec.accepts_files else "json",
        "metrics": {split: card for split in ("test", "val")
                    if (card := _split_card(metrics.get(split) or {}, split)) is not None},
        "best_epoch": metrics.get("best_epoch"),
        "dataset_fingerprint": manifest.get("dataset_fingerprint"),
        "created": manifest.get("created"),
        "versions": {k: manifest.get(k) for k in ("biolens", "torch", "python") if manifest.get(k)},
        "git_commit": manifest.get("git_commit"),
        "git_dirty": manifest.get("git_dirty"),
        "contract": contract,
    }


# ---- routes ----------------------------------------------------------------------------------------------------------
def _asset(name: str) -> bytes:
    return (STATIC / name).read_bytes()


def add_web_routes(app: FastAPI, service: Any) -> None:
    """``GET /``, ``GET /static/{app.js,style.css}`` and ``GET /v1/card`` on an app made by ``create_app``."""
    card = model_card(service)  # read once, like the model: the card describes the loaded weights
    app.state.card = card
    app.state.explain = None
    page = _asset("index.html")

    @app.get("/", include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(page, headers=PAGE_HEADERS)

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> Response:
        return Response(status_code=204)

    @app.get("/static/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        if name not in ASSETS:
            raise APIError(404, "path", f"no such file /static/{name}")
        return Response(_asset(name), media_type=ASSETS[name], headers=PAGE_HEADERS)

    @app.get("/v1/card", summary="Model card: task, classes, operating point, contract, test metrics with CIs, "
                                 "data set fingerprint, provenance, explanation methods")
    async def model_card_route() -> dict[str, Any]:
        explain = app.state.explain
        return {**card, "explain": None if explain is None else {
            "methods": list(explain.methods), "default": explain.default, "max_items": app.state.max_explain}}


def _data_urls(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for item in items:
        item = dict(item)
        for key, value in list(item.items()):
            if isinstance(value, bytes) and key.endswith("_png"):
                item[key] = "data:image/png;base64," + base64.b64encode(value).decode()
        out.append(item)
    return out


def add_explain_route(app: FastAPI, service: Any, explainer: Explainer,
                      max_items: int = DEFAULT_MAX_EXPLAIN) -> None:
    """``POST /v1/explain?method=M&class=C``: the body of ``/v1/predict`` (JSON sequences or multipart image files);
    the answer is ``/v1/predict``'s with an ``explanation`` per item."""
    if max_items < 1:
        raise ConfigError(f"max_explain_items={max_items}: must be at least 1")
    app.state.explain = explainer
    app.state.max_explain = max_items
    lock = asyncio.Lock()
    waiting = 0
    codec, contract = service.codec, service.contract

    async def read_inputs(request: Request, body: bytes, carries: str
                          ) -> tuple[list[str], Encoded, list[bytes] | None]:
        limit = service.limits.max_batch
        try:
            if carries == "json":
                items, ids = parse_json_items(body, codec, limit)
                _check_count(len(items), codec.json_field or "items")
                return ids, codec.from_json(items, service.limits.max_sequence_length), None
            names, blobs = await parse_uploads(request, body, limit)
            _check_count(len(blobs), "files")
            return names, await asyncio.to_thread(codec.from_uploads, names, blobs), blobs
        except InputError as e:
            raise APIError(422, e.field, str(e)) from None

    def _check_count(n: int, field: str) -> None:
        if n > max_items:
            raise APIError(413, field, f"{n} {field}, over the limit of {max_items} explanations per request; "
                                       "send fewer items, or use /v1/predict for predictions only")

    @app.post("/v1/explain", openapi_extra=_EXPLAIN_BODY,
              summary="Predict and explain: Grad-CAM overlays for images, per-position attributions and the top "
                      "window for sequences")
    async def explain(request: Request,
                      method: str | None = Query(None, description="explanation method; default: the card's"),
                      target: str | None = Query(None, alias="class", description="class to explain; default: "
                                                                                  "each input's predicted class")
                      ) -> dict[str, Any]:
        nonlocal waiting
        chosen = method or explainer.default
        if chosen not in explainer.methods:
            raise APIError(422, "method", f"method {chosen!r} cannot explain this model; choose one of "
                                          f"{', '.join(explainer.methods) or '(none)'}")
        if target is not None and target not in contract.class_names:
            raise APIError(422, "class", f"class {target!r} is not a class of this model; classes: "
                                         f"{', '.join(contract.class_names)}")
        carries = content_type(request, codec)
        body = await read_body(request, service.limits.max_upload_bytes)
        ids, encoded, blobs = await read_inputs(request, body, carries)
        if waiting >= MAX_WAITING:
            raise APIError(503, "server", f"{waiting} explanation requests are already waiting; retry in a moment")
        waiting += 1
        try:
            async with lock:
                probs, items = await asyncio.to_thread(
                    explainer, ExplainRequest(list(ids), encoded, chosen, target, blobs))
        except BiolensError as e:  # method and class were checked above; what is left is about the inputs
            raise APIError(422, "body", str(e)) from None
        finally:
            waiting -= 1
        service.requests += 1
        answer = service.format(ids, np.asarray(probs), service.warnings(encoded, carries))
        for item, explanation in zip(answer["predictions"], _data_urls(items), strict=True):
            item["explanation"] = explanation
        answer["method"] = chosen
        return answer


def asset_names() -> Sequence[str]:
    """The page's files (for packaging checks)."""
    return ["index.html", *ASSETS]

