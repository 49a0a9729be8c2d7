"""Tool use and structured output through the official SDKs: calls whose input validates
against the tool's schema, full round trips, and JSON replies."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import jsonschema
import openai
import pytest

from lanes.sim import Simulator

from .conftest import LLAMA, SONNET

WEATHER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "minLength": 2},
        "unit": {"enum": ["celsius", "fahrenheit"]},
        "days": {"type": "integer", "minimum": 1, "maximum": 7},
    },
    "required": ["city"],
}
WEATHER = {"name": "get_weather", "description": "Weather.", "input_schema": WEATHER_SCHEMA}
TIME = {
    "name": "get_time",
    "description": "Time.",
    "input_schema": {"type": "object", "properties": {"zone": {"type": "string"}}},
}
ASK: list[Any] = [{"role": "user", "content": "Please use get_weather for Paris."}]


@pytest.fixture
def gpt(sim: Simulator) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        api_key="k", base_url=sim.base_url("local") + "/v1", max_retries=0
    ) as client:
        yield client


def _function(tool: dict[str, Any]) -> Any:
    return {
        "type": "function",
        "function": {"name": tool["name"], "parameters": tool["input_schema"]},
    }


def test_anthropic_tool_round_trip(claude: anthropic.Anthropic) -> None:
    first = claude.messages.create(
        model=SONNET, max_tokens=300, tools=[WEATHER, TIME], messages=ASK
    )
    assert first.stop_reason == "tool_use"
    [call] = first.content
    assert call.type == "tool_use"
    assert call.name == "get_weather"
    assert call.id.startswith("toolu_")
    jsonschema.validate(call.input, WEATHER_SCHEMA)
    result = {"type": "tool_result", "tool_use_id": call.id, "content": "Sunny, 21C"}
    turns: list[Any] = [
        *ASK,
        {
            "role": "assistant",
            "content": [block.model_dump(exclude_none=True) for block in first.content],
        },
        {"role": "user", "content": [result]},
    ]
    second = claude.messages.create(model=SONNET, max_tokens=300, tools=[WEATHER], messages=turns)
    assert second.stop_reason == "end_turn"
    assert second.content[0].type == "text"
    assert second.content[0].text.startswith("Simulated reply")


def test_anthropic_auto_answers_in_text_without_a_tool_name(claude: anthropic.Anthropic) -> None:
    messages: Any = [{"role": "user", "content": "Hello there."}]
    reply = claude.messages.create(model=SONNET, max_tokens=300, tools=[WEATHER], messages=messages)
    assert reply.stop_reason == "end_turn"
    assert reply.content[0].type == "text"


def test_anthropic_forced_tool_input_validates(claude: anthropic.Anthropic) -> None:
    messages: Any = [{"role": "user", "content": "Hello there."}]
    reply = claude.messages.create(
        model=SONNET,
        max_tokens=300,
        tools=[WEATHER, TIME],
        tool_choice={"type": "tool", "name": "get_weather"},
        messages=messages,
    )
    [call] = reply.content
    assert call.type == "tool_use"
    assert call.name == "get_weather"
    jsonschema.validate(call.input, WEATHER_SCHEMA)
    again = claude.messages.create(
        model=SONNET,
        max_tokens=300,
        tools=[WEATHER, TIME],
        tool_choice={"type": "tool", "name": "get_weather"},
        messages=messages,
    )
    assert again.content[0] == call  # deterministic from the request


def test_anthropic_parallel_calls_and_disabling_them(claude: anthropic.Anthropic) -> None:
    messages: Any = [{"role": "user", "content": "Run get_time and get_weather."}]
    both = claude.messages.create(
        model=SONNET, max_tokens=300, tools=[WEATHER, TIME], messages=messages
    )
    assert [block.name for block in both.content if block.type == "tool_use"] == [
        "get_weather",
        "get_time",
    ]
    one = claude.messages.create(
        model=SONNET,
        max_tokens=300,
        tools=[WEATHER, TIME],
        tool_choice={"type": "any", "disable_parallel_tool_use": True},
        messages=messages,
    )
    assert len(one.content) == 1


def test_anthropic_streamed_tool_call(claude: anthropic.Anthropic) -> None:
    with claude.messages.stream(
        model=SONNET, max_tokens=300, tools=[WEATHER], messages=ASK
    ) as stream:
        final = stream.get_final_message()
    plain = claude.messages.create(model=SONNET, max_tokens=300, tools=[WEATHER], messages=ASK)
    assert final.stop_reason == "tool_use"
    assert final.content[0].type == plain.content[0].type == "tool_use"
    assert final.content[0].input == plain.content[0].input
    assert final.usage.output_tokens == plain.usage.output_tokens


@pytest.mark.parametrize(
    ("messages", "fragment"),
    [
        (
            [
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": "toolu_x", "content": "x"}],
                }
            ],
            "unexpected `tool_use_id`",
        ),
        (
            [
                {"role": "user", "content": "go"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "tool_use", "id": "toolu_a", "name": "get_weather", "input": {}}
                    ],
                },
                {"role": "user", "content": "never mind"},
            ],
            "without `tool_result`",
        ),
    ],
)
def test_anthropic_unpaired_tool_blocks_are_400(
    claude: anthropic.Anthropic, messages: Any, fragment: str
) -> None:
    with pytest.raises(anthropic.BadRequestError, match=fragment):
        claude.messages.create(model=SONNET, max_tokens=50, tools=[WEATHER], messages=messages)


def test_anthropic_tool_choice_naming_an_unknown_tool_is_400(claude: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError, match="tool_choice"):
        claude.messages.create(
            model=SONNET,
            max_tokens=50,
            tools=[WEATHER],
            tool_choice={"type": "tool", "name": "nope"},
            messages=ASK,
        )


def test_anthropic_output_config_format_is_json(claude: anthropic.Anthropic) -> None:
    reply = claude.messages.create(
        model=SONNET,
        max_tokens=300,
        messages=ASK,
        output_config={"format": {"type": "json_schema", "schema": WEATHER_SCHEMA}},
    )
    assert reply.content[0].type == "text"
    jsonschema.validate(json.loads(reply.content[0].text), WEATHER_SCHEMA)


def test_tools_count_toward_input_tokens(claude: anthropic.Anthropic) -> None:
    without = claude.messages.create(model=SONNET, max_tokens=10, messages=ASK)
    with_tools = claude.messages.create(
        model=SONNET, max_tokens=10, tools=[WEATHER], tool_choice={"type": "none"}, messages=ASK
    )
    assert with_tools.usage.input_tokens > without.usage.input_tokens
    assert with_tools.content[0].type == "text"


def test_openai_tool_round_trip(gpt: openai.OpenAI) -> None:
    first = gpt.chat.completions.create(model=LLAMA, messages=ASK, tools=[_function(WEATHER)])
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    [call] = choice.message.tool_calls or []
    assert call.type == "function"
    assert call.id.startswith("call_")
    assert call.function.name == "get_weather"
    jsonschema.validate(json.loads(call.function.arguments), WEATHER_SCHEMA)
    turns: list[Any] = [
        *ASK,
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "Sunny, 21C"},
    ]
    second = gpt.chat.completions.create(model=LLAMA, messages=turns, tools=[_function(WEATHER)])
    assert second.choices[0].finish_reason == "stop"
    assert (second.choices[0].message.content or "").startswith("Simulated reply")


def test_openai_required_and_named_choice(gpt: openai.OpenAI) -> None:
    messages: Any = [{"role": "user", "content": "Hi."}]
    tools = [_function(WEATHER), _function(TIME)]
    required = gpt.chat.completions.create(
        model=LLAMA, messages=messages, tools=tools, tool_choice="required"
    )
    assert [c.function.name for c in required.choices[0].message.tool_calls or []] == [
        "get_weather"
    ]
    named = gpt.chat.completions.create(
        model=LLAMA,
        messages=messages,
        tools=tools,
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    )
    assert [c.function.name for c in named.choices[0].message.tool_calls or []] == ["get_time"]
    none = gpt.chat.completions.create(model=LLAMA, messages=ASK, tools=tools, tool_choice="none")
    assert none.choices[0].message.tool_calls is None


def test_openai_tool_message_without_call_is_400(gpt: openai.OpenAI) -> None:
    messages: Any = [*ASK, {"role": "tool", "tool_call_id": "call_x", "content": "x"}]
    with pytest.raises(openai.BadRequestError, match="role 'tool'"):
        gpt.chat.completions.create(model=LLAMA, messages=messages)


def test_openai_streamed_tool_calls(gpt: openai.OpenAI) -> None:
    messages: Any = [{"role": "user", "content": "get_time and get_weather"}]
    tools = [_function(WEATHER), _function(TIME)]
    with gpt.chat.completions.stream(model=LLAMA, messages=messages, tools=tools) as stream:
        for _ in stream:
            pass
        final = stream.get_final_completion()
    plain = gpt.chat.completions.create(model=LLAMA, messages=messages, tools=tools)
    streamed = final.choices[0].message.tool_calls or []
    expected = plain.choices[0].message.tool_calls or []
    assert [(c.id, c.function.name, c.function.arguments) for c in streamed] == [
        (c.id, c.function.name, c.function.arguments) for c in expected
    ]
    assert final.choices[0].finish_reason == "tool_calls"


def test_openai_json_schema_response_validates(gpt: openai.OpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {
            "title": {"type": "string", "maxLength": 12},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2},
            "score": {"type": "number", "minimum": 0, "maximum": 1},
            "author": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "age": {"type": ["integer", "null"]}},
                "required": ["name", "age"],
                "additionalProperties": False,
            },
        },
        "required": ["title", "tags", "score", "author"],
        "additionalProperties": False,
    }
    reply = gpt.chat.completions.create(
        model=LLAMA,
        messages=ASK,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "doc", "schema": schema, "strict": True},
        },
    )
    jsonschema.validate(json.loads(reply.choices[0].message.content or ""), schema)


def test_openai_json_object_response(gpt: openai.OpenAI) -> None:
    reply = gpt.chat.completions.create(
        model=LLAMA, messages=ASK, response_format={"type": "json_object"}
    )
    assert isinstance(json.loads(reply.choices[0].message.content or ""), dict)
