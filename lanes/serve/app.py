"""The ASGI app of ``lanes serve``: ``POST /v1/messages``, ``POST /v1/chat/completions`` and
``GET /v1/models``, each request a routed job (see :mod:`lanes.serve.door`).

``GET /v1/models`` (a key needed, as for the rest) answers in Anthropic's shape when the
request carries an ``anthropic-version`` header, else in OpenAI's. A body over
:data:`MAX_BODY_BYTES` is refused with a 413 before it is read whole. Each answer carries
``x-lanes-job-id``, ``x-lanes-instance`` and ``x-lanes-cost-usd`` headers.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from lanes.broker.handle import JobHandle
from lanes.broker.result import Result
from lanes.kernel.errors import LanesError
from lanes.serve import anthropic_in, openai_in, sse
from lanes.serve.door import Door
from lanes.serve.errors import Dialect, error_reply, error_response

MAX_BODY_BYTES = 32 * 1024 * 1024
_EPOCH = "2025-01-01T00:00:00Z"
"""``created_at`` of every model: lanes' names do not change with a release."""


def build_app(door: Door) -> Starlette:
    async def messages(request: Request) -> Response:
        return await _answer(door, request, "anthropic")

    async def completions(request: Request) -> Response:
        return await _answer(door, request, "openai")

    async def models(request: Request) -> Response:
        dialect: Dialect = "anthropic" if "anthropic-version" in request.headers else "openai"
        try:
            await door.owner(request.headers)
        except LanesError as exc:
            return error_response(dialect, exc)
        return JSONResponse(_models(door, anthropic=dialect == "anthropic"))

    routes = [
        Route("/v1/messages", messages, methods=["POST"]),
        Route("/v1/chat/completions", completions, methods=["POST"]),
        Route("/v1/models", models, methods=["GET"]),
    ]
    return Starlette(routes=routes)


async def _answer(door: Door, request: Request, dialect: Dialect) -> Response:
    try:
        owner = await door.owner(request.headers)
        body = await _body(request, dialect)
        if isinstance(body, Response):
            return body
        reader: Callable[[dict[str, Any]], dict[str, Any]] = (
            anthropic_in.job_fields if dialect == "anthropic" else openai_in.job_fields
        )
        fields = reader(body)
        # A schema's answer stands only once checked: it goes out whole, at the end.
        streaming = bool(body.get("stream"))
        relayed = streaming and "output_schema" not in fields
        handle = await door.submit(fields, body.get("model"), owner, request.headers,
                                   stream=relayed)  # fmt: skip
        if streaming:  # the stream's status goes out first: no worker is a 503 now
            await door.served(handle)
            return _streamed(door, handle, dialect, body)
        result = await door.result(handle)
    except LanesError as exc:
        return error_response(dialect, exc)
    return _render(dialect, result)


def _streamed(door: Door, handle: JobHandle, dialect: Dialect, body: dict[str, Any]) -> Response:
    events: AsyncIterator[str]
    if dialect == "anthropic":
        events = sse.anthropic_stream(door, handle)
    else:
        usage = bool((body.get("stream_options") or {}).get("include_usage"))
        events = sse.openai_stream(door, handle, usage)
    headers = {"x-lanes-job-id": handle.id, "cache-control": "no-cache"}
    return StreamingResponse(events, media_type="text/event-stream", headers=headers)


async def _body(request: Request, dialect: Dialect) -> dict[str, Any] | Response:
    too_large = error_reply(dialect, 413, f"the body is over {MAX_BODY_BYTES} bytes")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return too_large
        chunks.append(chunk)
    raw = b"".join(chunks)
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        return error_reply(dialect, 400, "the body is not JSON (or nests too deep)")
    if not isinstance(body, dict):
        return error_reply(dialect, 400, "the body must be a JSON object")
    return body


def _render(dialect: Dialect, result: Result) -> Response:
    headers = {
        "x-lanes-job-id": result.job_id,
        "x-lanes-instance": result.instance,
        "x-lanes-cost-usd": f"{result.cost_usd:.6f}",
    }
    if dialect == "anthropic":
        return JSONResponse(anthropic_in.message(result, result.model), headers=headers)
    return JSONResponse(openai_in.completion(result, result.model), headers=headers)


def _models(door: Door, *, anthropic: bool) -> dict[str, Any]:
    names = door.model_names()
    if anthropic:
        data: list[dict[str, Any]] = [
            {"type": "model", "id": name, "display_name": name, "created_at": _EPOCH}
            for name in names
        ]
        return {"data": data, "has_more": False, "first_id": names[0], "last_id": names[-1]}
    created = int(time.time())
    data = [
        {"id": name, "object": "model", "created": created, "owned_by": "lanes"} for name in names
    ]
    return {"object": "list", "data": data}
