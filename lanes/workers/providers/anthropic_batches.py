"""The Message Batches API through the official SDK: the Anthropic side of
:class:`~lanes.workers.providers.batch_api.BatchProvider`."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import cast

import anthropic
from anthropic.types.messages import (
    MessageBatch,
    MessageBatchErroredResult,
    MessageBatchIndividualResponse,
)
from anthropic.types.messages.batch_create_params import Request

from lanes.kernel.errors import (
    BadRequest,
    ConnectionFailed,
    ProviderError,
    ProviderTimeout,
    ServerError,
)
from lanes.workers.providers.anthropic_provider import (
    anthropic_params,
    message_response,
    status_error,
)
from lanes.workers.providers.batch_api import BatchItem, BatchOutcome, BatchStatus
from lanes.workers.providers.errors import error_for_status
from lanes.workers.providers.scrub import NO_SECRETS, Scrubber

ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}
"""An errored request's error type -> the HTTP status the Messages API gives it."""


class AnthropicBatchProvider:
    """One account's Message Batches. The SDK's retries are off, as for
    :class:`~lanes.workers.providers.anthropic_provider.AnthropicProvider`.

    ``results`` reads the whole results file into memory, and a succeeded answer has no
    latency (``0.0``) and the message id as its ``request_id``: batch results carry no
    per-request timing or request id."""

    def __init__(
        self, *, base_url: str, api_key: str, timeout_s: float, scrub: Scrubber = NO_SECRETS
    ) -> None:
        self._client = anthropic.Anthropic(
            api_key=api_key, base_url=base_url, max_retries=0, timeout=timeout_s
        )
        self._scrub = scrub
        self._timeout_s = timeout_s

    def submit(self, items: Sequence[BatchItem]) -> str:
        # The params are the Messages API body, which the SDK's typed dicts spell out.
        requests = [
            cast(Request, {"custom_id": item.custom_id, "params": anthropic_params(item.request)})
            for item in items
        ]
        with self._translated():
            batch = self._client.messages.batches.create(requests=requests)
        return batch.id

    def status(self, batch_id: str) -> BatchStatus:
        with self._translated():
            return _status(self._client.messages.batches.retrieve(batch_id))

    def results(self, batch_id: str) -> list[BatchOutcome]:
        with self._translated():
            try:
                lines = list(self._client.messages.batches.results(batch_id))
            except ValueError:
                raise BadRequest(f"the results of batch {batch_id} are not JSON lines") from None
        return [_outcome(line, self._scrub) for line in lines]

    def cancel(self, batch_id: str) -> BatchStatus:
        with self._translated():
            return _status(self._client.messages.batches.cancel(batch_id))

    def close(self) -> None:
        self._client.close()

    @contextmanager
    def _translated(self) -> Iterator[None]:
        """Raise SDK errors as lanes errors. Those carrying provider text are raised
        ``from None``: the exception they replace may quote the key."""
        try:
            yield
        except anthropic.APIStatusError as exc:
            raise status_error(exc, self._scrub) from None
        except anthropic.APITimeoutError as exc:
            raise ProviderTimeout(f"no answer within {self._timeout_s}s") from exc
        except anthropic.APIConnectionError as exc:
            raise ConnectionFailed(self._scrub(f"connection failed: {exc}")) from None
        except anthropic.AnthropicError as exc:
            # The SDK's own refusal, e.g. results asked for before the batch ended.
            raise BadRequest(self._scrub(str(exc))) from None


def _status(batch: MessageBatch) -> BatchStatus:
    return BatchStatus(
        batch_id=batch.id,
        ended=batch.processing_status == "ended",
        status=batch.processing_status,
        counts=batch.request_counts.model_dump(),
    )


def _error(result: MessageBatchErroredResult, scrub: Scrubber) -> ProviderError:
    """An errored request's error. The SDK does not validate result lines, so an error
    of an unknown shape or type is read defensively and counts as a server error."""
    detail = getattr(result.error, "error", None)
    kind = str(getattr(detail, "type", "api_error"))
    message = str(getattr(detail, "message", "") or kind)
    return error_for_status(ERROR_STATUS.get(kind, 500), message, {}, scrub)


def _outcome(line: MessageBatchIndividualResponse, scrub: Scrubber) -> BatchOutcome:
    result = line.result
    if result.type == "succeeded":
        return BatchOutcome(
            line.custom_id,
            "succeeded",
            response=message_response(result.message, 0.0, result.message.id),
        )
    if result.type == "errored":
        return BatchOutcome(line.custom_id, "errored", error=_error(result, scrub))
    if result.type in ("canceled", "expired"):
        return BatchOutcome(line.custom_id, result.type)
    error = ServerError(scrub(f"unknown batch result type {result.type!r}"))
    return BatchOutcome(line.custom_id, "errored", error=error)
