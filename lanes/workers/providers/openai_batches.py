"""OpenAI's Batch API over httpx: the OpenAI side of
:class:`~lanes.workers.providers.batch_api.BatchProvider`.

A batch is one uploaded JSONL file of ``/v1/chat/completions`` requests. OpenAI takes
one model per batch: a batch whose items name two models fails as a whole (every item
comes back ``errored``). Only servers that implement ``/v1/files`` and ``/v1/batches``
(OpenAI, the simulator, some proxies) can take batches.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from lanes.kernel.errors import (
    BadRequest,
    ConnectionFailed,
    ProviderError,
    ProviderTimeout,
    ServerError,
)
from lanes.workers.providers.batch_api import BatchItem, BatchOutcome, BatchStatus, MemberKind
from lanes.workers.providers.errors import error_for_status
from lanes.workers.providers.openai_provider import completion_response, openai_body
from lanes.workers.providers.scrub import NO_SECRETS, Scrubber

CHAT = "/v1/chat/completions"
ENDED = frozenset({"completed", "failed", "expired", "cancelled"})
_UNANSWERED: dict[str, MemberKind] = {"batch_cancelled": "canceled", "batch_expired": "expired"}
_MISSING: dict[str, MemberKind] = {"cancelled": "canceled", "expired": "expired"}
"""A batch's status -> what its requests without a result line became."""
_UNREADABLE = (ValueError, KeyError, IndexError, TypeError, AttributeError)


def input_file(items: Sequence[BatchItem]) -> bytes:
    """The JSONL input file of ``items``."""
    lines = (
        json.dumps(
            {
                "custom_id": item.custom_id,
                "method": "POST",
                "url": CHAT,
                "body": openai_body(item.request),
            }
        )
        + "\n"
        for item in items
    )
    return "".join(lines).encode()


class OpenAIBatchProvider:
    """One account's batches; ``base_url`` ends in ``/v1`` as for
    :class:`~lanes.workers.providers.openai_provider.OpenAIProvider`.

    ``results`` downloads whole files into memory. A succeeded answer has no latency
    (``0.0``): batch output carries no per-request timing."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str | None,
        timeout_s: float,
        scrub: Scrubber = NO_SECRETS,
    ) -> None:
        self._scrub = scrub
        self._timeout_s = timeout_s
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(base_url=base_url, headers=headers, timeout=timeout_s)

    def submit(self, items: Sequence[BatchItem]) -> str:
        upload = {"file": ("batch.jsonl", input_file(items), "application/jsonl")}
        uploaded = self._json("POST", "/files", files=upload, data={"purpose": "batch"})
        body = {"input_file_id": uploaded["id"], "endpoint": CHAT, "completion_window": "24h"}
        return str(self._json("POST", "/batches", json=body)["id"])

    def status(self, batch_id: str) -> BatchStatus:
        return _status(self._json("GET", f"/batches/{batch_id}"))

    def results(self, batch_id: str) -> list[BatchOutcome]:
        batch = self._json("GET", f"/batches/{batch_id}")
        status = _status(batch)
        if not status.ended:
            raise BadRequest(f"batch {batch_id} has not ended: it is {status.status}")
        found: dict[str, BatchOutcome] = {}
        for key in ("output_file_id", "error_file_id"):
            if batch.get(key):
                for line in self._lines(str(batch[key])):
                    outcome = _outcome(line, self._scrub)
                    found[outcome.custom_id] = outcome
        if status.status == "failed" or len(found) < status.counts.get("total", 0):
            return self._with_missing(batch, found)
        return list(found.values())

    def cancel(self, batch_id: str) -> BatchStatus:
        try:
            return _status(self._json("POST", f"/batches/{batch_id}/cancel"))
        except BadRequest as exc:
            if exc.status != 409:  # 409: the batch has already ended
                raise
        return self.status(batch_id)

    def close(self) -> None:
        self._client.close()

    def _with_missing(
        self, batch: Mapping[str, Any], found: dict[str, BatchOutcome]
    ) -> list[BatchOutcome]:
        """Every request of the input file, in its order: those without a result line
        get the batch's fate (canceled, expired, or an error)."""
        status = str(batch.get("status"))
        fate = _MISSING.get(status, "errored")
        error = _batch_error(batch, self._scrub) if fate == "errored" else None
        outcomes: list[BatchOutcome] = []
        for line in self._lines(str(batch["input_file_id"])):
            custom_id = str(line.get("custom_id"))
            missing = BatchOutcome(custom_id, fate, error=error)
            outcomes.append(found.pop(custom_id, missing))
        return outcomes + list(found.values())

    def _lines(self, file_id: str) -> list[dict[str, Any]]:
        content = self._send("GET", f"/files/{file_id}/content").content
        try:
            lines = [json.loads(raw) for raw in content.splitlines() if raw.strip()]
        except ValueError:
            raise BadRequest(f"file {file_id} is not JSON lines") from None
        return [line for line in lines if isinstance(line, dict)]

    def _json(self, method: str, url: str, **kwargs: Any) -> Any:
        resp = self._send(method, url, **kwargs)
        try:
            return resp.json()
        except ValueError:
            raise BadRequest(self._scrub(f"unreadable answer: {resp.text[:200]}")) from None

    def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        # Errors carrying provider text are raised ``from None``: the vendor exception they
        # replace may quote the key, and a logged traceback would show it.
        try:
            resp = self._client.request(method, url, **kwargs)
        except httpx.TimeoutException as exc:
            raise ProviderTimeout(f"no answer within {self._timeout_s}s") from exc
        except httpx.TransportError as exc:
            raise ConnectionFailed(self._scrub(f"connection failed: {exc}")) from None
        if resp.status_code >= 400:
            message = _message(_body(resp)) or resp.text[:300]
            raise error_for_status(resp.status_code, message, resp.headers, self._scrub)
        return resp


def _body(resp: httpx.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        return None


def _message(body: Any) -> str:
    """The ``error.message`` of an error body, or ``""``."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("message") or error.get("code") or "")
    return str(error or "")


def _status(batch: Mapping[str, Any]) -> BatchStatus:
    counts = batch.get("request_counts") or {}
    return BatchStatus(
        batch_id=str(batch["id"]),
        ended=batch.get("status") in ENDED,
        status=str(batch.get("status")),
        counts={str(k): int(v) for k, v in counts.items()},
    )


def _batch_error(batch: Mapping[str, Any], scrub: Scrubber) -> ProviderError:
    """Why a request of ``batch`` has no answer: the batch's own errors when it failed."""
    errors = (batch.get("errors") or {}).get("data") or []
    if batch.get("status") != "failed":
        return ServerError("the batch ended without a result for this request")
    text = "; ".join(f"line {e.get('line')}: {e.get('message')}" for e in errors[:5])
    return BadRequest(scrub(f"the batch failed validation: {text or 'no reason given'}"))


def _outcome(line: Mapping[str, Any], scrub: Scrubber) -> BatchOutcome:
    """One line of an output or error file."""
    custom_id = str(line.get("custom_id"))
    response = line.get("response")
    if isinstance(response, dict):
        status = int(response.get("status_code") or 500)
        body = response.get("body")
        if status >= 400:
            error = error_for_status(status, _message(body) or f"HTTP {status}", {}, scrub)
            return BatchOutcome(custom_id, "errored", error=error)
        try:
            answer = completion_response(body, 0.0, response.get("request_id"))
        except _UNREADABLE:
            error = BadRequest(scrub(f"unreadable chat completion: {str(body)[:200]}"))
            return BatchOutcome(custom_id, "errored", error=error)
        return BatchOutcome(custom_id, "succeeded", response=answer)
    info = line.get("error")
    code = str(info.get("code") or "") if isinstance(info, dict) else ""
    if code in _UNANSWERED:
        return BatchOutcome(custom_id, _UNANSWERED[code])
    message = _message({"error": info}) or "no answer"
    error = ServerError(scrub(f"{code or 'error'}: {message}"))
    return BatchOutcome(custom_id, "errored", error=error)
