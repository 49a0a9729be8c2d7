"""The Message Batches API (``/v1/messages/batches``) on the wire.

Each request's ``params`` are checked as ``POST /v1/messages`` checks a body, but only
when the batch is processed: invalid params make that request ``errored``, as the real
API does; a malformed envelope refuses the whole batch with a 400. Results come back in
request order (the real API promises no order). Batches are never archived.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from lanes.sim.anthropic_api import ANTHROPIC
from lanes.sim.batches import Batch, Exchange, Pending, Result
from lanes.sim.profiles import Profile
from lanes.sim.uploads import new_id
from lanes.sim.validate import InvalidRequest, parse_json_object, reject_stream
from lanes.sim.wire import Reply, json_reply

PREFIX = "/v1/messages/batches"
MAX_BODY_BYTES = 256 * 1024 * 1024
"""The Message Batches API's request size limit."""
RESULTS_TYPE = "application/binary"
_CUSTOM_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_LIST_DEFAULT, _LIST_MAX = 20, 1000

Handler = Callable[[Exchange, str], Reply]


def _rfc3339(at: float | None) -> str | None:
    if at is None:
        return None
    return datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")


def describe(batch: Batch, base_url: str) -> dict[str, Any]:
    """The MessageBatch object."""
    tally = batch.tally()
    processing = 0 if batch.ended else len(batch.pending)
    canceling = batch.cancel_at is not None
    status = "ended" if batch.ended else "canceling" if canceling else "in_progress"
    results_url = f"{base_url}{PREFIX}/{batch.id}/results" if batch.ended else None
    return {
        "id": batch.id,
        "type": "message_batch",
        "processing_status": status,
        "request_counts": {"processing": processing, **tally},
        "created_at": _rfc3339(batch.created_at),
        "expires_at": _rfc3339(batch.expires_at),
        "ended_at": _rfc3339(batch.ended_at),
        "cancel_initiated_at": _rfc3339(batch.cancel_at),
        "archived_at": None,
        "results_url": results_url,
    }


def _reject_extra(item: dict[str, Any], allowed: frozenset[str], where: str) -> None:
    for key in item:
        if key not in allowed:
            raise InvalidRequest(f"{where}{key}: Extra inputs are not permitted")


def _custom_id(item: dict[str, Any], where: str, seen: set[str]) -> str:
    custom_id = item.get("custom_id")
    if custom_id is None:
        raise InvalidRequest(f"{where}.custom_id: Field required")
    if not isinstance(custom_id, str) or not _CUSTOM_ID.fullmatch(custom_id):
        raise InvalidRequest(
            f"{where}.custom_id: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'"
        )
    if custom_id in seen:
        raise InvalidRequest(f"{where}.custom_id: duplicate custom_id {custom_id!r} in the batch")
    seen.add(custom_id)
    return custom_id


def _pending(custom_id: str, params: dict[str, Any]) -> Pending:
    try:
        reject_stream(params)
        return Pending(custom_id, ANTHROPIC.parse(json.dumps(params).encode()))
    except InvalidRequest as exc:
        return Pending(custom_id, None, str(exc))


def parse_requests(body: bytes, profile: Profile) -> list[Pending]:
    """The requests of a create call; raises :class:`InvalidRequest` for the envelope."""
    payload = parse_json_object(body)
    _reject_extra(payload, frozenset({"requests"}), "")
    requests = payload.get("requests")
    if requests is None:
        raise InvalidRequest("requests: Field required")
    if not isinstance(requests, list) or not requests:
        raise InvalidRequest("requests: Input should be a non-empty list")
    if len(requests) > profile.batch_max_requests:
        raise InvalidRequest(f"requests: at most {profile.batch_max_requests} requests a batch")
    seen: set[str] = set()
    found: list[Pending] = []
    for index, item in enumerate(requests):
        where = f"requests.{index}"
        if not isinstance(item, dict):
            raise InvalidRequest(f"{where}: Input should be an object")
        _reject_extra(item, frozenset({"custom_id", "params"}), f"{where}.")
        custom_id = _custom_id(item, where, seen)
        params = item.get("params")
        if not isinstance(params, dict):
            raise InvalidRequest(f"{where}.params: Input should be an object")
        found.append(_pending(custom_id, params))
    return found


def result_line(result: Result) -> dict[str, Any]:
    """One line of the results file."""
    outcome: dict[str, Any] = {"type": result.kind}
    if result.reply is not None and result.kind == "succeeded":
        message = json.loads(result.reply.body)
        message["usage"]["service_tier"] = "batch"
        outcome["message"] = message
    elif result.reply is not None:
        outcome["error"] = json.loads(result.reply.body)
    return {"custom_id": result.custom_id, "result": outcome}


def _request_id() -> str:
    return new_id("req_")


def _reply(status: int, payload: Any) -> Reply:
    return json_reply(status, payload, {"request-id": _request_id()})


def _not_found(batch_id: str) -> Reply:
    return ANTHROPIC.error(404, f"message batch {batch_id!r} not found")


def _create(exchange: Exchange, _: str) -> Reply:
    store = exchange.store
    try:
        pending = parse_requests(exchange.body, store.state.profile)
    except InvalidRequest as exc:
        return ANTHROPIC.error(400, str(exc))
    batch = store.create(new_id("msgbatch_"), ANTHROPIC, pending)
    return _reply(200, describe(batch, exchange.base_url))


def _retrieve(exchange: Exchange, batch_id: str) -> Reply:
    batch = exchange.store.get(batch_id, ANTHROPIC)
    if batch is None:
        return _not_found(batch_id)
    return _reply(200, describe(batch, exchange.base_url))


def _cancel(exchange: Exchange, batch_id: str) -> Reply:
    batch = exchange.store.cancel(batch_id, ANTHROPIC)
    if batch is None:
        return _not_found(batch_id)
    return _reply(200, describe(batch, exchange.base_url))


def _delete(exchange: Exchange, batch_id: str) -> Reply:
    batch = exchange.store.delete(batch_id, ANTHROPIC)
    if batch is None:
        return _not_found(batch_id)
    if not batch.ended:
        message = f"message batch {batch_id!r} is still processing: cancel it before deleting"
        return ANTHROPIC.error(400, message)
    return _reply(200, {"id": batch.id, "type": "message_batch_deleted"})


def _results(exchange: Exchange, batch_id: str) -> Reply:
    batch = exchange.store.get(batch_id, ANTHROPIC)
    if batch is None:
        return _not_found(batch_id)
    if batch.results is None:
        return ANTHROPIC.error(400, f"message batch {batch_id!r} has not ended yet")
    lines = (json.dumps(result_line(r), separators=(",", ":")) + "\n" for r in batch.results)
    body = "".join(lines).encode()
    return Reply(200, body, {"request-id": _request_id()}, content_type=RESULTS_TYPE)


def _list(exchange: Exchange, _: str) -> Reply:
    try:
        page, has_more = _page(exchange.store.listing(ANTHROPIC), exchange.query)
    except InvalidRequest as exc:
        return ANTHROPIC.error(400, str(exc))
    data = [describe(batch, exchange.base_url) for batch in page]
    return _reply(
        200,
        {
            "data": data,
            "has_more": has_more,
            "first_id": page[0].id if page else None,
            "last_id": page[-1].id if page else None,
        },
    )


def _limit(raw: str | None) -> int:
    if raw is None:
        return _LIST_DEFAULT
    if not raw.isdigit() or not 1 <= int(raw) <= _LIST_MAX:
        raise InvalidRequest(f"limit: Input should be between 1 and {_LIST_MAX}")
    return int(raw)


def _page(batches: list[Batch], query: Mapping[str, str]) -> tuple[list[Batch], bool]:
    """One page of ``batches`` (newest first) after ``after_id`` or before ``before_id``."""
    limit = _limit(query.get("limit"))
    ids = [batch.id for batch in batches]
    after, before = query.get("after_id"), query.get("before_id")
    if after is not None:
        rest = batches[ids.index(after) + 1 :] if after in ids else []
        return rest[:limit], len(rest) > limit
    if before is not None:
        rest = batches[: ids.index(before)] if before in ids else []
        return rest[-limit:], len(rest) > limit
    return batches[:limit], len(batches) > limit


_ROUTES: dict[tuple[str, str], Handler] = {
    ("POST", ""): _create,
    ("GET", ""): _list,
    ("GET", "*"): _retrieve,
    ("DELETE", "*"): _delete,
    ("POST", "*/cancel"): _cancel,
    ("GET", "*/results"): _results,
}


def handle(exchange: Exchange) -> Reply:
    """Answer a request under ``/v1/messages/batches`` (``exchange.parts`` follow it)."""
    refused = ANTHROPIC.check_headers(exchange.headers, exchange.store.state.profile)
    if refused is not None:
        return refused
    parts = exchange.parts
    batch_id = parts[0] if parts else ""
    shape = "/".join(("*", *parts[1:])) if parts else ""
    handler = _ROUTES.get((exchange.method, shape)) if len(parts) <= 2 else None
    if handler is None:
        path = "/".join((PREFIX, *parts))
        return ANTHROPIC.error(404, f"no route {exchange.method} {path}")
    return handler(exchange, batch_id)
