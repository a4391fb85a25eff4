"""Reading and validating prediction requests, before anything reaches the model.

The body is read with a byte limit (413 on the header or while streaming); a JSON body is parsed and checked for
the codec's field (``sequences`` for sequence runs) and optional ``ids``; a multipart body's files are read from
the field ``files``. Items are then turned into model inputs by the run's codec, whose ``InputError`` names the
item at fault. Every refusal is an :class:`APIError`: status, field and one line.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from fastapi import Request
from starlette.exceptions import HTTPException as StarletteHTTPException

from biolens.deploy.batching import APIError
from biolens.tasks import Codec

FILE_FIELDS = ("files", "file")
MAX_JSON_DEPTH = 32  # a prediction request is two levels deep; nothing legitimate comes near this


def json_depth(body: bytes) -> int:
    """An upper bound of the nesting depth of a JSON text, counted without parsing it (brackets inside strings
    may count too, which only makes the bound stricter for bodies that are odd anyway); vectorized, so a 16 MB
    body takes milliseconds and a 100,000-level one never reaches the recursive decoder."""
    b = np.frombuffer(body, dtype=np.uint8)
    if not len(b):
        return 0
    step = np.zeros(len(b), dtype=np.int32)
    step[(b == ord("[")) | (b == ord("{"))] = 1
    step[(b == ord("]")) | (b == ord("}"))] = -1
    return int(np.cumsum(step).max(initial=0))


async def read_body(request: Request, limit: int) -> bytes:
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


def parse_json_items(body: bytes, codec: Codec, max_batch: int) -> tuple[list[Any], list[str]]:
    """The items and ids of a JSON body ``{FIELD: [...], "ids": [...]}`` (FIELD: the codec's ``json_field``)."""
    name = codec.json_field
    example = f'{{"{name}": ["ACGT..."]}}'
    depth = json_depth(body)
    if depth > MAX_JSON_DEPTH:
        raise APIError(400, "body", f"JSON nested {depth} levels deep, over the limit of {MAX_JSON_DEPTH}; send "
                                    f"{example}")
    try:
        data = json.loads(body.decode("utf-8"))  # RFC 8259: JSON between systems is UTF-8
    except UnicodeDecodeError as e:
        raise APIError(422, "body", f"the body is not UTF-8 text (byte {e.start}); send UTF-8 JSON {example}") from None
    except json.JSONDecodeError as e:
        raise APIError(422, "body", f"not valid JSON ({str(e)[:200]}); send {example}") from None
    except RecursionError:
        raise APIError(400, "body", f"JSON nested too deeply; send {example}") from None
    if not isinstance(data, dict):
        raise APIError(422, "body", f"expected a JSON object {{\"{name}\": [...]}}, got {type(data).__name__}")
    unknown = sorted(set(data) - {name, "ids"})
    if unknown:
        raise APIError(422, unknown[0], f"unknown field {unknown[0]!r}; the body takes \"{name}\" and \"ids\"")
    if name not in data:
        raise APIError(422, name, f"missing field \"{name}\"; send {example}")
    items = data[name]
    if not isinstance(items, list):
        raise APIError(422, name, f"expected a list of strings, got {type(items).__name__}")
    if not items:
        raise APIError(422, name, f"empty list; send at least one item in \"{name}\"")
    if len(items) > max_batch:
        raise APIError(413, name, f"{len(items)} {name}, over the limit of {max_batch} per request (--max-batch); "
                                  "split the request")
    ids = data.get("ids")
    prefix = "seq" if name == "sequences" else "item"
    if ids is None:
        ids = [f"{prefix}{i + 1}" for i in range(len(items))]
    elif not isinstance(ids, list) or not all(isinstance(x, str) for x in ids):
        raise APIError(422, "ids", f"expected a list of strings, one id per item of \"{name}\"")
    elif len(ids) != len(items):
        raise APIError(422, "ids", f"{len(ids)} ids for {len(items)} {name}; give one id per item")
    return items, ids


async def parse_uploads(request: Request, body: bytes, max_batch: int) -> tuple[list[str], list[bytes]]:
    """Upload names and bytes of a multipart body's ``files`` field (the body was already read with a limit)."""
    async def replay() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    replayed = Request(request.scope, receive=replay)
    try:
        form = await replayed.form(max_files=max_batch + 1, max_fields=100)
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
    if len(blobs) > max_batch:
        raise APIError(413, "files", f"{len(blobs)} files, over the limit of {max_batch} per request "
                                     "(--max-batch); split the request")
    return names, blobs


def content_type(request: Request, codec: Codec) -> str:
    """``json`` or ``files``: what the request carries, checked against what the run's codec takes (415/422)."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype not in ("application/json", "multipart/form-data"):
        raise APIError(415, "content-type", f"content type {ctype or '(none)'!r} is not accepted; send "
                                            "application/json {\"sequences\": [...]} or multipart/form-data "
                                            "image files")
    if ctype == "application/json" and codec.json_field is None:
        raise APIError(422, "sequences", f"this is an {codec.kind} model; send image files as multipart/form-data "
                                         "in the field \"files\"")
    if ctype == "multipart/form-data" and not codec.accepts_files:
        raise APIError(422, "files", f"this is a {codec.kind} model; send JSON {{\"{codec.json_field}\": [...]}}")
    return "json" if ctype == "application/json" else "files"
