"""A Messages API request as a job, and a job's result as a message.

A job already carries the Messages API's shape, so the request's fields pass through as
they are; what lanes does not run (extended thinking, server tools, ``top_k``) is refused
with a 400 rather than dropped.
"""

from __future__ import annotations

from typing import Any

from lanes.broker.result import Result
from lanes.kernel.errors import JobError

PASSED = ("messages", "system", "max_tokens", "temperature", "top_p", "stop_sequences",
          "tools", "tool_choice")  # fmt: skip
_HANDLED = frozenset({"model", "stream", "metadata", "service_tier"})


def job_fields(body: dict[str, Any]) -> dict[str, Any]:
    """The job fields a Messages API body asks for (model and streaming aside)."""
    for name in body:
        if name not in PASSED and name not in _HANDLED:
            raise JobError(f"{name}: not supported by lanes")
    if "max_tokens" not in body:
        raise JobError("max_tokens: Field required")
    fields = {name: body[name] for name in PASSED if body.get(name) is not None}
    metadata = body.get("metadata")
    if isinstance(metadata, dict) and metadata.get("user_id"):
        fields["metadata"] = {"user_id": str(metadata["user_id"])}
    return fields


def message(result: Result, model: str) -> dict[str, Any]:
    """``result`` as a Messages API message object."""
    return {
        "id": f"msg_{result.job_id}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": result.content or [{"type": "text", "text": result.text}],
        "stop_reason": result.stop_reason or "end_turn",
        "stop_sequence": None,
        "usage": usage(result),
    }


def usage(result: Result) -> dict[str, Any]:
    return {
        "input_tokens": result.input_tokens,
        "output_tokens": result.output_tokens,
        "cache_read_input_tokens": result.usage.get("cache_read_input_tokens", 0),
        "cache_creation_input_tokens": result.usage.get("cache_creation_input_tokens", 0),
    }
