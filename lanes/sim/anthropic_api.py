"""The Anthropic Messages API (``POST /v1/messages``, ``GET /v1/models``) on the wire."""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from lanes.sim import anthropic_content, anthropic_stream, tool_specs
from lanes.sim.buckets import BucketState
from lanes.sim.cache_prefixes import anthropic_plan
from lanes.sim.engine import (
    Abandoned,
    Call,
    Injected,
    Limited,
    Outcome,
    Served,
    TooLong,
    UnknownModel,
    Unsupported,
)
from lanes.sim.profiles import Fault, Profile
from lanes.sim.replies import Prompt
from lanes.sim.validate import (
    InvalidRequest,
    check_content,
    check_messages,
    optional_int,
    optional_number,
    parse_json_object,
    require_str,
    stream_flag,
)
from lanes.sim.wire import (
    DROP,
    Reply,
    bearer_token,
    json_reply,
    retry_after_headers,
    stream_reply,
)

ROLES = ("user", "assistant")
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
_KNOWN_FIELDS = frozenset(
    {"model", "max_tokens", "messages", "system", "stream", "tools", "tool_choice"}
    | {"output_config"}
)
_IGNORED_FIELDS = frozenset(
    {"metadata", "stop_sequences", "temperature", "top_p", "top_k", "service_tier", "speed"}
    | {"cache_control", "inference_geo", "diagnostics"}
    | {"user_profile_id", "workspace_id"}
)
"""Accepted and checked where cheap, but without effect on the reply. The top-level
``cache_control`` (automatic caching) is accepted and ignored; block-level ones cache.
Of ``output_config`` only ``format`` has an effect (``effort`` is ignored)."""
_UNSIMULATED_FIELDS = frozenset({"thinking", "container", "mcp_servers"})
# Ids only need to be unique; a private source keeps the seeded fault draws reproducible.
_ids = random.Random()


def _request_id() -> str:
    return f"req_{_ids.getrandbits(96):024x}"


def _rfc3339(in_s: float) -> str:
    return datetime.fromtimestamp(time.time() + in_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ratelimit_headers(limits: list[BucketState]) -> dict[str, str]:
    """``anthropic-ratelimit-*`` for each limited bucket; ``tokens-*`` is the tighter of
    the input and output buckets. Unlimited buckets send nothing.

    ``limits`` are the buckets of the request's model class (the model's own when it has
    limits of its own), as the real API reports the limits of the model class used."""
    headers: dict[str, str] = {}
    for state in limits:
        _put_bucket(headers, state.name.replace("_", "-"), state)
    token_states = [s for s in limits if s.name != "requests"]
    if token_states:
        _put_bucket(headers, "tokens", min(token_states, key=lambda s: s.remaining))
    return headers


def _put_bucket(headers: dict[str, str], label: str, state: BucketState) -> None:
    prefix = f"anthropic-ratelimit-{label}"
    headers[f"{prefix}-limit"] = str(state.limit)
    headers[f"{prefix}-remaining"] = str(state.remaining)
    headers[f"{prefix}-reset"] = _rfc3339(state.full_in_s)


def _check_options(payload: Mapping[str, Any]) -> None:
    for key in payload:
        if key in _UNSIMULATED_FIELDS:
            raise InvalidRequest(f"{key}: not simulated")
        if key not in _KNOWN_FIELDS and key not in _IGNORED_FIELDS:
            raise InvalidRequest(f"{key}: Extra inputs are not permitted")
    optional_number(payload, "temperature", 0.0, 1.0)
    optional_number(payload, "top_p", 0.0, 1.0)
    optional_int(payload, "top_k", minimum=0)
    metadata = payload.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise InvalidRequest("metadata: Input should be an object")
    stops = payload.get("stop_sequences")
    if stops is not None and not (
        isinstance(stops, list) and all(isinstance(s, str) for s in stops)
    ):
        raise InvalidRequest("stop_sequences: Input should be a list of strings")


class AnthropicAPI:
    """Validation and rendering for the Messages API. Stateless; share one instance.

    ``stop_sequences`` are accepted but never match: replies are pseudo-words. Content
    blocks follow :mod:`lanes.sim.anthropic_content`, tools and ``output_config.format``
    :mod:`lanes.sim.tool_specs` and :mod:`lanes.sim.answers`, streams
    :mod:`lanes.sim.anthropic_stream`. A streamed call that the ``drop`` fault hits starts
    its stream (``message_start``, ``ping``) and then hangs up.
    """

    def check_headers(self, headers: Mapping[str, str], profile: Profile) -> Reply | None:
        has_key = bool(headers.get("x-api-key") or bearer_token(headers))
        if profile.require_api_key and not has_key:
            message = "missing credentials: send an x-api-key or an Authorization: Bearer header"
            return self.error(401, message)
        if not headers.get("anthropic-version"):
            return self.error(400, "anthropic-version: header is required")
        return None

    def parse(self, body: bytes) -> Call:
        payload = parse_json_object(body)
        _check_options(payload)
        model = require_str(payload, "model")
        max_tokens = optional_int(payload, "max_tokens")
        if max_tokens is None:
            raise InvalidRequest("max_tokens: Field required")
        stream = stream_flag(payload)
        messages = check_messages(payload.get("messages"), ROLES, anthropic_content.check_message)
        anthropic_content.check_tool_pairs(messages)
        system = payload.get("system")
        if system is not None and system != "":
            check_content(system, "system")
        plan = tool_specs.anthropic_plan(payload, messages)
        tools = payload.get("tools")
        tool_tokens = tool_specs.tool_tokens(tools)
        cache = anthropic_plan(system, messages, tool_tokens, tool_specs.tools_key(tools))
        prompt = Prompt.of(messages, system, tool_tokens)
        return Call(model, prompt, max_tokens, cache, plan, stream=stream)

    def render(self, outcome: Outcome, call: Call) -> Reply:
        if isinstance(outcome, Served):
            return self._message(outcome, call)
        if isinstance(outcome, UnknownModel):
            return self.error(404, f"model: {outcome.model}")
        if isinstance(outcome, Unsupported):
            return self.error(400, outcome.message)
        if isinstance(outcome, TooLong):
            tokens, window = outcome.requested_tokens, outcome.window
            return self.error(400, f"prompt is too long: {tokens} tokens > {window} maximum")
        if isinstance(outcome, Limited):
            denial = outcome.denial
            scope = f" for {denial.model_class}" if denial.model_class else ""
            message = (
                f"This request would exceed the rate limit of {denial.limit} "
                f"{denial.name.replace('_', ' ')} per minute{scope}; "
                f"retry after {denial.retry_after_s}s."
            )
            headers = ratelimit_headers(outcome.limits) | retry_after_headers(denial.retry_after_s)
            return self.error(429, message, headers)
        if isinstance(outcome, Injected):
            if call.stream and outcome.fault.kind == "drop":
                return self._cut(call)
            return self._fault(outcome.fault, outcome.limits)
        assert isinstance(outcome, Abandoned)
        return DROP

    def error(self, status: int, message: str, headers: dict[str, str] | None = None) -> Reply:
        error_type = ERROR_TYPES.get(status, "api_error")
        payload = {"type": "error", "error": {"type": error_type, "message": message}}
        return json_reply(status, payload, {"request-id": _request_id(), **(headers or {})})

    def models(self, profile: Profile) -> Reply:
        data = [
            {"type": "model", "id": m, "display_name": m, "created_at": "2025-01-01T00:00:00Z"}
            for m in profile.models
        ]
        first = data[0]["id"] if data else None
        last = data[-1]["id"] if data else None
        payload = {"data": data, "has_more": False, "first_id": first, "last_id": last}
        return json_reply(200, payload, {"request-id": _request_id()})

    def _message(self, served: Served, call: Call) -> Reply:
        payload = {
            "id": _message_id(),
            "type": "message",
            "role": "assistant",
            "model": call.model,
            "content": _content(served),
            "stop_reason": _stop_reason(served),
            "stop_sequence": None,
            "usage": _usage(served),
        }
        headers = {"request-id": _request_id(), **ratelimit_headers(served.limits)}
        if not call.stream:
            return json_reply(200, payload, headers)
        arguments = [tool_call.arguments for tool_call in served.tool_calls]
        first_s, last_s = served.first_token_s, served.latency_s
        events = anthropic_stream.message_stream(payload, arguments, first_s, last_s)
        return stream_reply(events, headers)

    def _cut(self, call: Call) -> Reply:
        events = anthropic_stream.cut_stream(call.model, _message_id(), call.prompt.input_tokens)
        return stream_reply(events, {"request-id": _request_id()})

    def _fault(self, fault: Fault, limits: list[BucketState]) -> Reply:
        if fault.kind == "429":
            if fault.retry_after_s is None:
                message = "You have reached your specified API usage limits."
                return self.error(429, message, ratelimit_headers(limits))
            headers = ratelimit_headers(limits) | retry_after_headers(fault.retry_after_s)
            return self.error(429, "Number of requests has exceeded your rate limit.", headers)
        if fault.kind == "529":
            return self.error(529, "Overloaded")
        if fault.kind == "500":
            return self.error(500, "Internal server error")
        if fault.kind == "401":
            return self.error(401, "invalid x-api-key")
        return DROP


def _message_id() -> str:
    return f"msg_{_ids.getrandbits(96):024x}"


def _content(served: Served) -> list[dict[str, Any]]:
    """A text block (unless the answer only calls tools), then a block for each call."""
    text = [{"type": "text", "text": served.text}] if served.text or not served.tool_calls else []
    calls = [
        {"type": "tool_use", "id": tc.id, "name": tc.name, "input": tc.input}
        for tc in served.tool_calls
    ]
    return text + calls


def _stop_reason(served: Served) -> str:
    if served.truncated:
        return "max_tokens"
    return "tool_use" if served.tool_calls else "end_turn"


def _usage(served: Served) -> dict[str, Any]:
    """The usage object: ``input_tokens`` counts only what the cache neither read nor wrote."""
    cache = served.cache
    return {
        "input_tokens": served.input_tokens,
        "output_tokens": served.output_tokens,
        "cache_creation_input_tokens": cache.write_tokens,
        "cache_read_input_tokens": cache.read_tokens,
        "cache_creation": {
            "ephemeral_5m_input_tokens": cache.write_5m_tokens,
            "ephemeral_1h_input_tokens": cache.write_1h_tokens,
        },
    }


ANTHROPIC = AnthropicAPI()
