"""A job's request on each kind of lane: the Messages API body as it is, the chat
completions body translated (tools, images, tool turns, schema), and answers checked
against ``output_schema``."""

from __future__ import annotations

from typing import Any

import pytest

from lanes.broker.message import Envelope, Step
from lanes.kernel.config import load_config
from lanes.kernel.errors import BadAnswer
from lanes.router.content import OUTPUT_TOOL
from lanes.router.job import Job, parse_job
from lanes.workers.answers import checked
from lanes.workers.providers.anthropic_provider import anthropic_params
from lanes.workers.providers.base import ProviderRequest, ProviderResponse
from lanes.workers.providers.openai_provider import completion_response, openai_body
from lanes.workers.requests import provider_request

from ..router.test_content import WEATHER, image, png, tool_round

SCHEMA = {
    "type": "object",
    "properties": {"severity": {"enum": ["low", "high"]}, "lines": {"type": "array"}},
    "required": ["severity"],
}


def request_of(job: Job) -> ProviderRequest:
    env = Envelope(job=job, chain=[Step(instance="zai", model="glm-4.6")], instance="zai")
    return provider_request(load_config(None, env={}), env)


def response(text: str = "", content: list[dict[str, Any]] | None = None) -> ProviderResponse:
    return ProviderResponse(text=text, input_tokens=10, output_tokens=5, stop_reason="end_turn",
                            latency_s=0.1, content=content or [])  # fmt: skip


def test_the_messages_api_gets_blocks_tools_and_options_as_they_are() -> None:
    job = parse_job({
        "messages": tool_round(), "tools": [WEATHER], "tool_choice": {"type": "auto"},
        "system": [{"type": "text", "text": "Be brief."}], "top_p": 0.9, "stop_sequences": ["END"],
    })  # fmt: skip
    params = anthropic_params(request_of(job))
    assert params["messages"] == job.as_messages()
    assert params["tools"] == [WEATHER] and params["tool_choice"] == {"type": "auto"}
    assert params["system"] == [{"type": "text", "text": "Be brief."}]
    assert (params["top_p"], params["stop_sequences"]) == (0.9, ["END"])


def test_a_schema_is_a_forced_tool_on_the_messages_api() -> None:
    params = anthropic_params(request_of(Job(prompt="rate it", output_schema=SCHEMA)))
    assert params["tools"] == [
        {"name": OUTPUT_TOOL, "description": params["tools"][0]["description"],
         "input_schema": SCHEMA}
    ]  # fmt: skip
    assert params["tool_choice"] == {"type": "tool", "name": OUTPUT_TOOL}


def test_chat_completions_get_the_request_translated() -> None:
    turns = tool_round()
    turns[2]["content"].append(image(png(4, 4)))
    job = parse_job({"messages": turns, "tools": [WEATHER], "system": "Be brief.",
                     "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
                     "stop_sequences": ["END"]})  # fmt: skip
    body = openai_body(request_of(job))
    system, user, assistant, tool, images = body["messages"]
    assert system == {"role": "system", "content": "Be brief."}
    assert user == {"role": "user", "content": "What is the weather in Oslo?"}
    assert assistant["content"] == "Let me look."
    assert assistant["tool_calls"] == [{"id": "toolu_1", "type": "function", "function": {
        "name": "get_weather", "arguments": '{"city": "Oslo"}'}}]  # fmt: skip
    assert tool == {"role": "tool", "tool_call_id": "toolu_1", "content": "4 degrees, rain"}
    assert images["content"][0]["image_url"]["url"].startswith("data:image/png;base64,iVBOR")
    assert body["tools"][0]["function"]["parameters"] == WEATHER["input_schema"]
    assert (body["tool_choice"], body["parallel_tool_calls"], body["stop"]) == (
        "required", False, ["END"])  # fmt: skip
    schema_body = openai_body(request_of(Job(prompt="rate it", output_schema=SCHEMA)))
    assert schema_body["response_format"]["json_schema"]["schema"] == SCHEMA


def test_a_completions_tool_calls_come_back_as_blocks() -> None:
    data = {"id": "c1", "choices": [{"finish_reason": "tool_calls", "message": {
        "role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}]}}],
        "usage": {"prompt_tokens": 20, "completion_tokens": 7}}  # fmt: skip
    answer = completion_response(data, 0.1)
    assert answer.stop_reason == "tool_use" and answer.text == ""
    assert answer.content == [
        {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Oslo"}}
    ]
    data["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] = "{oops"  # type: ignore[index]
    with pytest.raises(BadAnswer, match="not a JSON object"):
        completion_response(data, 0.1)


def test_an_answer_to_a_schema_stands_as_its_json_or_is_a_billed_bad_answer() -> None:
    job = Job(prompt="rate it", output_schema=SCHEMA)
    forced = response(content=[{"type": "tool_use", "id": "t", "name": OUTPUT_TOOL,
                                "input": {"severity": "high"}}])  # fmt: skip
    assert checked(job, forced).text == '{"severity": "high"}'
    fenced = response('```json\n{"severity": "low", "lines": [3]}\n```')
    assert checked(job, fenced).content == [
        {"type": "text", "text": '{"severity": "low", "lines": [3]}'}
    ]
    with pytest.raises(BadAnswer, match="does not match output_schema: at severity") as caught:
        checked(job, response('{"severity": "medium"}'))
    assert caught.value.retryable and caught.value.usage["output_tokens"] == 5
    with pytest.raises(BadAnswer, match="not JSON"):
        checked(job, response("It is high."))
    plain = response("anything")
    assert checked(Job(prompt="x"), plain) is plain
