"""The OpenAI chat API as a LiteLLM proxy or Ollama's ``/v1`` serves it
(``POST /v1/chat/completions``, ``GET /v1/models``)."""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from typing import Any

from lanes.sim import openai_content, openai_stream, tool_specs
from lanes.sim.buckets import BucketState
from lanes.sim.cache_prefixes import automatic_plan
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

ROLES = ("system", "developer", "user", "assistant", "tool")
OVERLOADED_STATUS = 503
"""What the ``"529"`` fault answers here: OpenAI-style servers say overloaded with 503."""
_ERRORS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "permission_denied"),
    404: ("invalid_request_error", "not_found"),
    413: ("invalid_request_error", "request_too_large"),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
    503: ("server_error", None),
}
# Ids only need to be unique; a private source keeps the seeded fault draws reproducible.
_ids = random.Random()


def _duration(seconds: float) -> str:
    """OpenAI's reset format: ``"250ms"``, ``"12s"``, ``"1m30s"``."""
    if seconds < 1:
        return f"{int(seconds * 1000)}ms"
    minutes, rest_s = divmod(seconds, 60)
    return f"{int(minutes)}m{rest_s:.0f}s" if minutes else f"{rest_s:.3g}s"


def ratelimit_headers(limits: list[BucketState]) -> dict[str, str]:
    """``x-ratelimit-*`` for requests and tokens (the tighter of input and output).

    ``limits`` are the buckets of the request's model (its own when it has limits of its
    own), as OpenAI reports the limits of the model the request used."""
    headers: dict[str, str] = {}
    requests = [s for s in limits if s.name == "requests"]
    tokens = [s for s in limits if s.name != "requests"]
    for label, states in (("requests", requests), ("tokens", tokens)):
        if states:
            state = min(states, key=lambda s: s.remaining)
            headers[f"x-ratelimit-limit-{label}"] = str(state.limit)
            headers[f"x-ratelimit-remaining-{label}"] = str(state.remaining)
            headers[f"x-ratelimit-reset-{label}"] = _duration(state.full_in_s)
    return headers


def _max_tokens(payload: Mapping[str, Any]) -> int | None:
    newer = optional_int(payload, "max_completion_tokens")
    older = optional_int(payload, "max_tokens")
    return newer if newer is not None else older


def _include_usage(payload: Mapping[str, Any], stream: bool) -> bool:
    options = payload.get("stream_options")
    if options is None:
        return False
    if not stream:
        raise InvalidRequest(
            "Invalid value for 'stream_options': 'stream_options' is only allowed "
            "when 'stream' is set to true."
        )
    if not isinstance(options, dict):
        raise InvalidRequest("Invalid type for 'stream_options': expected an object")
    return options.get("include_usage") is True


def _completion_id() -> str:
    return f"chatcmpl-{_ids.getrandbits(96):024x}"


def _message(served: Served) -> dict[str, Any]:
    """The assistant message: its text, or null content and the tool calls."""
    if not served.tool_calls:
        return {"role": "assistant", "content": served.text}
    calls = [
        {
            "id": tc.id,
            "type": "function",
            "function": {"name": tc.name, "arguments": tc.arguments},
        }
        for tc in served.tool_calls
    ]
    return {"role": "assistant", "content": served.text or None, "tool_calls": calls}


def _finish_reason(served: Served) -> str:
    if served.truncated:
        return "length"
    return "tool_calls" if served.tool_calls else "stop"


class OpenAIAPI:
    """Validation and rendering for chat completions. Stateless; share one instance.

    Unknown request fields are ignored, as LiteLLM and Ollama do. Prompts are cached
    automatically, as OpenAI does: ``prompt_tokens`` is the whole prompt and
    ``prompt_tokens_details.cached_tokens`` the part read from the cache. Content parts
    follow :mod:`lanes.sim.openai_content`, tools and ``response_format``
    :mod:`lanes.sim.tool_specs` and :mod:`lanes.sim.answers`, streams
    :mod:`lanes.sim.openai_stream`. A streamed call that the ``drop`` fault hits sends its
    first chunk and then hangs up.
    """

    def check_headers(self, headers: Mapping[str, str], profile: Profile) -> Reply | None:
        if profile.require_api_key and not bearer_token(headers):
            return self.error(401, "Missing API key: send an 'Authorization: Bearer' header.")
        return None

    def parse(self, body: bytes) -> Call:
        payload = parse_json_object(body)
        stream = stream_flag(payload)
        include_usage = _include_usage(payload, stream)
        model = require_str(payload, "model")
        messages = check_messages(payload.get("messages"), ROLES, openai_content.check_message)
        openai_content.check_tool_pairs(messages)
        optional_number(payload, "temperature", 0.0, 2.0)
        optional_number(payload, "top_p", 0.0, 1.0)
        if payload.get("n") not in (None, 1):
            raise InvalidRequest("n: only n=1 is simulated")
        plan = tool_specs.openai_plan(payload, messages)
        prompt = Prompt.of(messages, tool_tokens=tool_specs.tool_tokens(payload.get("tools")))
        cache = automatic_plan(messages, prompt.input_tokens)
        return Call(model, prompt, _max_tokens(payload), cache, plan, stream, include_usage)

    def render(self, outcome: Outcome, call: Call) -> Reply:
        if isinstance(outcome, Served):
            return self._completion(outcome, call)
        if isinstance(outcome, Unsupported):
            return self.error(400, outcome.message, code="invalid_value")
        if isinstance(outcome, UnknownModel):
            message = f"The model `{outcome.model}` does not exist or you do not have access to it."
            return self.error(404, message, code="model_not_found")
        if isinstance(outcome, TooLong):
            return self._too_long(outcome)
        if isinstance(outcome, Limited):
            denial = outcome.denial
            scope = f" for {denial.model_class}" if denial.model_class else ""
            message = (
                f"Rate limit reached{scope}: {denial.limit} {denial.name.replace('_', ' ')} "
                f"per minute. Please try again in {denial.retry_after_s}s."
            )
            headers = ratelimit_headers(outcome.limits) | retry_after_headers(denial.retry_after_s)
            kind = "requests" if denial.name == "requests" else "tokens"
            return self.error(429, message, error_type=kind, headers=headers)
        if isinstance(outcome, Injected):
            if call.stream and outcome.fault.kind == "drop":
                events = openai_stream.cut_stream(_completion_id(), int(time.time()), call.model)
                return stream_reply(events, {})
            return self._fault(outcome.fault, outcome.limits)
        assert isinstance(outcome, Abandoned)
        return DROP

    def error(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        error_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        default_type, default_code = _ERRORS.get(status, ("server_error", None))
        error = {
            "message": message,
            "type": error_type or default_type,
            "param": None,
            "code": code or default_code,
        }
        return json_reply(status, {"error": error}, headers)

    def models(self, profile: Profile) -> Reply:
        data = [
            {"id": m, "object": "model", "created": 0, "owned_by": "lanes-sim"}
            for m in profile.models
        ]
        return json_reply(200, {"object": "list", "data": data})

    def _completion(self, served: Served, call: Call) -> Reply:
        payload = {
            "id": _completion_id(),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": call.model,
            "choices": [
                {
                    "index": 0,
                    "message": _message(served),
                    "finish_reason": _finish_reason(served),
                }
            ],
            "usage": {
                "prompt_tokens": served.prompt_tokens,
                "completion_tokens": served.output_tokens,
                "total_tokens": served.prompt_tokens + served.output_tokens,
                "prompt_tokens_details": {
                    "cached_tokens": served.cache.read_tokens,
                    "audio_tokens": 0,
                },
            },
        }
        headers = ratelimit_headers(served.limits)
        if not call.stream:
            return json_reply(200, payload, headers)
        first_s, last_s = served.first_token_s, served.latency_s
        events = openai_stream.completion_stream(payload, call.stream_usage, first_s, last_s)
        return stream_reply(events, headers)

    def _too_long(self, outcome: TooLong) -> Reply:
        completion = outcome.requested_tokens - outcome.input_tokens
        message = (
            f"This model's maximum context length is {outcome.window} tokens. However, you "
            f"requested {outcome.requested_tokens} tokens ({outcome.input_tokens} in the "
            f"messages, {completion} in the completion). Please reduce the length of the "
            "messages or completion."
        )
        return self.error(400, message, code="context_length_exceeded")

    def _fault(self, fault: Fault, limits: list[BucketState]) -> Reply:
        if fault.kind == "429":
            if fault.retry_after_s is None:
                message = "You exceeded your current quota, please check your plan and billing."
                kind = "insufficient_quota"
                return self.error(429, message, code=kind, error_type=kind)
            headers = ratelimit_headers(limits) | retry_after_headers(fault.retry_after_s)
            return self.error(429, "Rate limit reached for requests.", headers=headers)
        if fault.kind == "529":
            message = "The server is overloaded or not ready yet."
            return self.error(OVERLOADED_STATUS, message)
        if fault.kind == "500":
            return self.error(500, "The server had an error while processing your request.")
        if fault.kind == "401":
            return self.error(401, "Incorrect API key provided.")
        return DROP


OPENAI = OpenAIAPI()
