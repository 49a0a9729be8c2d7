"""OpenAI's Batch API (``/v1/batches``) on the wire, over files from :mod:`openai_files`.

Only ``/v1/chat/completions`` batches are simulated. An input file that does not
validate (a line that is not JSON, a missing or repeated ``custom_id``, a wrong ``method``
or ``url``, two models in one file, too many requests) fails the whole batch, with its
``errors``; a ``body`` that the chat endpoint would refuse makes only that request fail,
with a 400 in the error file. A create call always answers ``validating``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from lanes.sim.batches import Batch, BatchStore, Exchange, Pending, Result
from lanes.sim.openai_api import OPENAI
from lanes.sim.uploads import new_id
from lanes.sim.validate import InvalidRequest, parse_json_object, reject_stream, require_str
from lanes.sim.wire import Reply, json_reply

PREFIX = "/v1/batches"
CHAT = "/v1/chat/completions"
MAX_REQUESTS = 50_000
"""The Batch API's own cap, on top of the profile's ``batch_max_requests``."""
MAX_INPUT_BYTES = 200 * 1024 * 1024
_MAX_ERRORS = 100
_LIST_DEFAULT, _LIST_MAX = 20, 100
_UNANSWERED = {
    "canceled": ("batch_cancelled", "This request was cancelled before it could be executed."),
    "expired": (
        "batch_expired",
        "This request could not be executed before the completion window expired.",
    ),
}
_STATUS = {"done": "completed", "canceled": "cancelled", "expired": "expired", "failed": "failed"}


class LineError(Exception):
    """One input line that does not validate."""

    def __init__(self, code: str, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.param = code, message, param


def status(batch: Batch) -> str:
    if batch.end is not None:
        return _STATUS[batch.end]
    return "cancelling" if batch.cancel_at is not None else "in_progress"


def _seconds(at: float | None) -> int | None:
    return None if at is None else int(at)


def _when(batch: Batch, end: str) -> int | None:
    return _seconds(batch.ended_at) if batch.end == end else None


def describe(batch: Batch, *, creating: bool = False) -> dict[str, Any]:
    """The Batch object; ``creating``: as the create call answers it."""
    tally = batch.tally()
    errors = batch.extra.get("errors")
    started = None if creating or batch.end == "failed" else batch.created_at
    return {
        "id": batch.id,
        "object": "batch",
        "endpoint": CHAT,
        "model": batch.extra.get("model"),
        "errors": {"object": "list", "data": errors} if errors else None,
        "input_file_id": batch.extra["input_file_id"],
        "completion_window": "24h",
        "status": "validating" if creating else status(batch),
        "output_file_id": batch.extra.get("output_file_id"),
        "error_file_id": batch.extra.get("error_file_id"),
        "created_at": int(batch.created_at),
        "in_progress_at": _seconds(started),
        "expires_at": int(batch.expires_at),
        "finalizing_at": _when(batch, "done"),
        "completed_at": _when(batch, "done"),
        "failed_at": _when(batch, "failed"),
        "expired_at": _when(batch, "expired"),
        "cancelling_at": _seconds(batch.cancel_at),
        "cancelled_at": _when(batch, "canceled"),
        "request_counts": {
            "total": len(batch.pending),
            "completed": tally["succeeded"],
            "failed": tally["errored"],
        },
        "metadata": batch.extra.get("metadata"),
    }


def _line(raw: bytes, seen: set[str]) -> tuple[Pending, str | None]:
    """One input line as a request, and the model it names; raises :class:`LineError`."""
    try:
        item = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise LineError("invalid_json_line", "This line is not parseable as valid JSON.") from None
    if not isinstance(item, dict):
        raise LineError("invalid_json_line", "This line is not a JSON object.")
    custom_id = item.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        raise LineError("missing_required_parameter", "Missing 'custom_id'.", "custom_id")
    if custom_id in seen:
        message = "The custom_id for this request is a duplicate of another request."
        raise LineError("duplicate_custom_id", message, "custom_id")
    seen.add(custom_id)
    if item.get("method") != "POST":
        raise LineError("invalid_method", "The method must be POST.", "method")
    if item.get("url") != CHAT:
        message = "The URL provided for this request does not match the batch endpoint."
        raise LineError("invalid_url", message, "url")
    body = item.get("body")
    if not isinstance(body, dict):
        raise LineError("missing_required_parameter", "Missing 'body' object.", "body")
    model = body.get("model")
    named = model if isinstance(model, str) else None
    try:
        reject_stream(body)
        return Pending(custom_id, OPENAI.parse(json.dumps(body).encode())), named
    except InvalidRequest as exc:
        return Pending(custom_id, None, str(exc)), named


def _error(number: int | None, error: LineError) -> dict[str, Any]:
    return {"code": error.code, "line": number, "message": error.message, "param": error.param}


def read_input(data: bytes, limit: int) -> tuple[list[Pending], list[dict[str, Any]], str | None]:
    """(requests, errors, model) of an input file; any error fails the whole batch."""
    found: list[Pending] = []
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()
    first_model: str | None = None
    for number, raw in enumerate(data.splitlines(), start=1):
        if not raw.strip() or len(errors) >= _MAX_ERRORS:
            continue
        try:
            pending, model = _line(raw, seen)
            if model is not None and first_model not in (None, model):
                message = "The model of this request differs from the other requests' model."
                raise LineError("mismatched_model", message, "body.model")
        except LineError as exc:
            errors.append(_error(number, exc))
            continue
        first_model = first_model or model
        found.append(pending)
    if not found and not errors:
        errors.append(_error(None, LineError("empty_file", "The batch input file is empty.")))
    if len(found) > limit:
        message = f"The batch input file holds more than {limit} requests."
        errors.append(_error(None, LineError("too_many_requests", message)))
    return found, errors, first_model


def output_line(result: Result) -> dict[str, Any]:
    """One line of the output or error file."""
    line: dict[str, Any] = {"id": new_id("batch_req_"), "custom_id": result.custom_id}
    if result.reply is None:
        code, message = _UNANSWERED[result.kind]
        return line | {"response": None, "error": {"code": code, "message": message}}
    response = {
        "status_code": result.reply.status,
        "request_id": new_id("req_"),
        "body": json.loads(result.reply.body),
    }
    return line | {"response": response, "error": None}


def _jsonl(lines: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines).encode()


def _writer(store: BatchStore) -> Callable[[Batch], None]:
    """Writes an ended batch's output file (successes) and error file (the rest); a file
    that would be empty is not written and its id stays null."""

    def keep(batch: Batch, key: str, name: str, lines: list[dict[str, Any]]) -> None:
        if lines:
            filename = f"batch_{batch.id}_{name}.jsonl"
            batch.extra[key] = store.files.add(filename, "batch_output", _jsonl(lines)).id

    def write(batch: Batch) -> None:
        results = batch.results or []
        succeeded = [output_line(r) for r in results if r.kind == "succeeded"]
        failed = [output_line(r) for r in results if r.kind != "succeeded"]
        keep(batch, "output_file_id", "output", succeeded)
        keep(batch, "error_file_id", "error", failed)

    return write


def _metadata(payload: Mapping[str, Any]) -> dict[str, str] | None:
    metadata = payload.get("metadata")
    if metadata is None:
        return None
    if not isinstance(metadata, dict) or len(metadata) > 16:
        raise InvalidRequest("metadata: Input should be an object of at most 16 pairs")
    for key, value in metadata.items():
        if len(key) > 64 or not isinstance(value, str) or len(value) > 512:
            raise InvalidRequest("metadata: keys are at most 64 characters, values 512")
    return metadata


def _check_create(payload: Mapping[str, Any]) -> str:
    """The input file id of a create body; raises :class:`InvalidRequest`."""
    input_file_id = require_str(payload, "input_file_id")
    if require_str(payload, "endpoint") != CHAT:
        raise InvalidRequest(f"endpoint: only {CHAT} batches are simulated")
    if require_str(payload, "completion_window") != "24h":
        raise InvalidRequest("completion_window: Input should be '24h'")
    return input_file_id


def _create(exchange: Exchange) -> Reply:
    store = exchange.store
    try:
        payload = parse_json_object(exchange.body)
        input_file_id = _check_create(payload)
        metadata = _metadata(payload)
    except InvalidRequest as exc:
        return OPENAI.error(400, str(exc))
    stored = store.files.get(input_file_id)
    if stored is None:
        return OPENAI.error(404, f"No such File object: {input_file_id}")
    if stored.purpose != "batch":
        return OPENAI.error(400, "input_file_id: the file's purpose must be 'batch'")
    if len(stored.data) > MAX_INPUT_BYTES:
        return OPENAI.error(400, f"input_file_id: the file exceeds {MAX_INPUT_BYTES} bytes")
    limit = min(MAX_REQUESTS, store.state.profile.batch_max_requests)
    pending, errors, model = read_input(stored.data, limit)
    extra: dict[str, Any] = {"input_file_id": input_file_id, "metadata": metadata}
    extra |= {"model": model, "errors": errors}
    batch = store.create(
        new_id("batch_"),
        OPENAI,
        [] if errors else pending,
        extra=extra,
        on_end=_writer(store),
        refused=bool(errors),
    )
    return json_reply(200, describe(batch, creating=True))


def _not_found(batch_id: str) -> Reply:
    return OPENAI.error(404, f"No batch found with id '{batch_id}'.")


def _retrieve(exchange: Exchange) -> Reply:
    batch = exchange.store.get(exchange.parts[0], OPENAI)
    return _not_found(exchange.parts[0]) if batch is None else json_reply(200, describe(batch))


def _cancel(exchange: Exchange) -> Reply:
    batch = exchange.store.cancel(exchange.parts[0], OPENAI)
    if batch is None:
        return _not_found(exchange.parts[0])
    if batch.end not in (None, "canceled"):
        message = f"Cannot cancel a batch with status '{status(batch)}'."
        return OPENAI.error(409, message, error_type="invalid_request_error")
    return json_reply(200, describe(batch))


def _list(exchange: Exchange) -> Reply:
    raw = exchange.query.get("limit", str(_LIST_DEFAULT))
    if not raw.isdigit() or not 1 <= int(raw) <= _LIST_MAX:
        return OPENAI.error(400, f"limit: Input should be between 1 and {_LIST_MAX}")
    batches = exchange.store.listing(OPENAI)
    after = exchange.query.get("after")
    if after is not None:
        ids = [batch.id for batch in batches]
        batches = batches[ids.index(after) + 1 :] if after in ids else []
    page = batches[: int(raw)]
    payload = {
        "object": "list",
        "data": [describe(batch) for batch in page],
        "first_id": page[0].id if page else None,
        "last_id": page[-1].id if page else None,
        "has_more": len(batches) > len(page),
    }
    return json_reply(200, payload)


def handle(exchange: Exchange) -> Reply:
    """Answer a request under ``/v1/batches`` (``exchange.parts`` follow it)."""
    refused = OPENAI.check_headers(exchange.headers, exchange.store.state.profile)
    if refused is not None:
        return refused
    method, parts = exchange.method, exchange.parts
    if not parts:
        handler = {"POST": _create, "GET": _list}.get(method)
    elif len(parts) == 1:
        handler = _retrieve if method == "GET" else None
    else:
        handler = _cancel if method == "POST" and parts[1:] == ("cancel",) else None
    if handler is None:
        return OPENAI.error(404, f"no route {method} {'/'.join((PREFIX, *parts))}")
    return handler(exchange)
