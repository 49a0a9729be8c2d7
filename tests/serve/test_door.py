"""The front door through the official SDKs and curl: each request a routed job on real
workers, billed to the key's project; errors in each API's own shape."""

from __future__ import annotations

import json
import subprocess
import time
from contextlib import closing

import anthropic
import httpx
import jsonschema
import openai
import pytest

from lanes.client import Lanes
from lanes.ops.ledger_view import budget_limit, save_budget
from lanes.router.job import Job
from lanes.serve.app import MAX_BODY_BYTES
from lanes.stores.sql import open_ledger

from ..router.test_content import image, png
from .conftest import FrontDoor

QUESTION = [{"role": "user", "content": "Summarise the release notes of the next version."}]
VITAL = "Review the payment service's refund handler: customers are double-charged in production"


def claude(door: FrontDoor, key: str | None = None) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=door.url, api_key=key or door.key, max_retries=0)


def gpt(door: FrontDoor, key: str | None = None) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{door.url}/v1", api_key=key or door.key, max_retries=0)


def test_a_messages_request_is_a_routed_job_billed_to_the_keys_project(
    door_client: Lanes, front_door: FrontDoor
) -> None:
    raw = claude(front_door).messages.with_raw_response.create(
        model="lanes:auto", max_tokens=64, messages=QUESTION
    )
    message = raw.parse()
    assert message.content[0].type == "text" and message.content[0].text
    assert message.stop_reason in {"end_turn", "max_tokens"}
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    job_id = raw.headers["x-lanes-job-id"]
    result = door_client.job(job_id).get(timeout_s=10)
    assert (result.project, result.user) == (front_door.project, "ada")
    assert message.model == result.model and raw.headers["x-lanes-instance"] == result.instance
    assert float(raw.headers["x-lanes-cost-usd"]) == pytest.approx(result.cost_usd, abs=1e-6)


def test_a_model_name_pins_the_model_and_a_target_name_the_lane(front_door: FrontDoor) -> None:
    client = claude(front_door)
    pinned = client.messages.create(model="claude-haiku-4-5", max_tokens=32, messages=QUESTION)
    assert pinned.model == "claude-haiku-4-5"
    raw = client.messages.with_raw_response.create(
        model="lanes:claude2", max_tokens=32, messages=QUESTION
    )
    assert raw.headers["x-lanes-instance"] == "claude2"


def test_a_chat_completion_through_the_openai_sdk(front_door: FrontDoor) -> None:
    completion = gpt(front_door).chat.completions.create(
        model="lanes:auto",
        max_tokens=64,
        messages=[
            {"role": "system", "content": "You answer in one line."},
            {"role": "user", "content": "Name three prime numbers."},
        ],
    )
    choice = completion.choices[0]
    assert choice.message.role == "assistant" and choice.message.content
    assert choice.finish_reason in {"stop", "length"}
    assert completion.usage is not None and completion.usage.completion_tokens > 0


def test_streaming_clients_get_each_apis_events(front_door: FrontDoor) -> None:
    with claude(front_door).messages.stream(
        model="lanes:auto", max_tokens=48, messages=QUESTION
    ) as stream:
        streamed = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert streamed and streamed == final.content[0].text  # type: ignore[union-attr]
    chunks = list(
        gpt(front_door).chat.completions.create(
            model="lanes:auto", max_tokens=48, messages=QUESTION, stream=True,
            stream_options={"include_usage": True},
        )
    )  # fmt: skip
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text and chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] in {"stop", "length"}


def test_models_are_listed_in_both_shapes(front_door: FrontDoor) -> None:
    ids = [m.id for m in gpt(front_door).models.list()]
    assert ids[0] == "lanes:auto" and "claude-sonnet-4-5" in ids and "lanes:vital" in ids
    assert [m.id for m in claude(front_door).models.list()] == ids


def test_a_missing_or_unknown_key_is_refused(front_door: FrontDoor) -> None:
    listed = httpx.get(f"{front_door.url}/v1/models", timeout=10)
    assert listed.status_code == 401 and "lanes keys create" in listed.json()["error"]["message"]
    with pytest.raises(anthropic.AuthenticationError, match="invalid API key"):
        claude(front_door, key="lanes-not-a-key").messages.create(
            model="lanes:auto", max_tokens=8, messages=QUESTION
        )
    with pytest.raises(openai.AuthenticationError) as caught:
        gpt(front_door, key="sk-elsewhere").chat.completions.create(
            model="lanes:auto", messages=QUESTION
        )
    assert caught.value.code == "invalid_api_key"


def test_bad_requests_say_what_to_fix_in_each_shape(front_door: FrontDoor) -> None:
    with pytest.raises(anthropic.NotFoundError, match="gpt-5"):
        claude(front_door).messages.create(model="gpt-5", max_tokens=8, messages=QUESTION)
    refused = httpx.post(
        f"{front_door.url}/v1/messages", headers={"x-api-key": front_door.key},
        json={"model": "lanes:auto", "messages": QUESTION}, timeout=10,
    )  # fmt: skip
    assert refused.status_code == 400
    assert refused.json()["error"] == {
        "type": "invalid_request_error", "message": "max_tokens: Field required"
    }  # fmt: skip
    huge = httpx.post(
        f"{front_door.url}/v1/messages", headers={"x-api-key": front_door.key},
        content=b"x" * (MAX_BODY_BYTES + 1), timeout=30,
    )  # fmt: skip
    assert huge.status_code == 413 and huge.json()["error"]["type"] == "request_too_large"
    with pytest.raises(openai.BadRequestError, match="n: not supported"):
        gpt(front_door).chat.completions.create(model="lanes:auto", messages=QUESTION, n=3)


def test_vital_work_pinned_to_a_cheap_lane_is_a_400(door_client: Lanes,
                                                    front_door: FrontDoor) -> None:  # fmt: skip
    assert door_client.route(Job(prompt=VITAL)).classification.vital
    with pytest.raises(anthropic.BadRequestError, match="cheap lane"):
        claude(front_door).messages.create(
            model="lanes:zai", max_tokens=32, messages=[{"role": "user", "content": VITAL}]
        )


def test_curl_gets_an_answer(front_door: FrontDoor) -> None:
    body = json.dumps({"model": "lanes:auto", "max_tokens": 16, "messages": QUESTION})
    out = subprocess.run(
        ["curl", "-sS", f"{front_door.url}/v1/messages", "-H", f"x-api-key: {front_door.key}",
         "-H", "anthropic-version: 2023-06-01", "-H", "content-type: application/json",
         "-d", body],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    answer = json.loads(out.stdout)
    assert answer["type"] == "message" and answer["content"][0]["text"]


WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Today's weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                     "required": ["city"]},
}  # fmt: skip


def test_a_tool_round_trip_through_the_anthropic_sdk(front_door: FrontDoor) -> None:
    client = claude(front_door)
    ask = [{"role": "user", "content": "Use get_weather for Oslo."}]
    called = client.messages.create(model="lanes:auto", max_tokens=200, messages=ask,
                                    tools=[WEATHER_TOOL])  # type: ignore[list-item]  # fmt: skip
    assert called.stop_reason == "tool_use"
    use = next(b for b in called.content if b.type == "tool_use")
    assert use.name == "get_weather" and isinstance(use.input["city"], str)  # type: ignore[index]
    answered = client.messages.create(
        model="lanes:auto", max_tokens=100, tools=[WEATHER_TOOL],  # type: ignore[list-item]
        messages=[*ask, {"role": "assistant", "content": called.content},  # type: ignore[list-item]
                  {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id,
                                                "content": "4 degrees and rain"}]}],
    )  # fmt: skip
    assert answered.stop_reason != "tool_use" and answered.content[0].text  # type: ignore[union-attr]


def test_a_tool_round_trip_through_the_openai_sdk(front_door: FrontDoor) -> None:
    client = gpt(front_door)
    weather = {"name": "get_weather", "description": "Today's weather",
               "parameters": WEATHER_TOOL["input_schema"]}  # fmt: skip
    function = {"type": "function", "function": weather}
    ask = [{"role": "user", "content": "What is the weather in Oslo?"}]
    called = client.chat.completions.create(model="lanes:auto", messages=ask, max_tokens=200,
                                            tools=[function], tool_choice="required")  # type: ignore[list-item]  # fmt: skip
    choice = called.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "get_weather" and "city" in json.loads(call.function.arguments)  # type: ignore[union-attr]
    answered = client.chat.completions.create(
        model="lanes:auto", max_tokens=100, tools=[function],  # type: ignore[list-item]
        messages=[*ask, choice.message.model_dump(exclude_none=True),  # type: ignore[list-item]
                  {"role": "tool", "tool_call_id": call.id, "content": "4 degrees"}],
    )  # fmt: skip
    assert answered.choices[0].finish_reason in {"stop", "length"}
    assert answered.choices[0].message.content


def test_an_image_goes_only_to_a_model_that_takes_it(front_door: FrontDoor) -> None:
    picture = f"data:image/png;base64,{png(64, 48)}"
    raw = gpt(front_door).chat.completions.with_raw_response.create(
        model="lanes:auto", max_tokens=60,
        messages=[{"role": "user", "content": [
            {"type": "text", "text": "What is in this picture?"},
            {"type": "image_url", "image_url": {"url": picture}}]}],
    )  # fmt: skip
    completion = raw.parse()
    assert completion.choices[0].message.content
    config = front_door.stack.config
    assert "images" in config.models[completion.model].features
    with pytest.raises(anthropic.BadRequestError, match="cannot take images"):
        claude(front_door).messages.create(
            model="lanes:zai", max_tokens=32,
            messages=[{"role": "user", "content": [image(png(8, 8)),  # type: ignore[list-item]
                                                   {"type": "text", "text": "hi"}]}],
        )  # fmt: skip


def test_a_json_schema_answer_validates(front_door: FrontDoor) -> None:
    schema = {"type": "object", "required": ["severity", "reasons"],
              "properties": {"severity": {"enum": ["low", "medium", "high"]},
                             "reasons": {"type": "array", "items": {"type": "string"},
                                         "minItems": 1}}}  # fmt: skip
    for model in ("lanes:auto", "lanes:koala"):
        completion = gpt(front_door).chat.completions.create(
            model=model, max_tokens=300,
            messages=[{"role": "user", "content": "Rate this log line: disk 91% full"}],
            response_format={"type": "json_schema",
                             "json_schema": {"name": "rating", "schema": schema}},
        )  # fmt: skip
        jsonschema.validate(json.loads(completion.choices[0].message.content or ""), schema)


def test_a_stream_is_relayed_as_the_worker_gets_it(front_door: FrontDoor) -> None:
    with claude(front_door).messages.create(
        model="claude-haiku-4-5", max_tokens=80, stream=True,
        messages=[{"role": "user", "content": "Explain DNS caching in a paragraph."}],
    ) as stream:  # fmt: skip
        events = list(stream)
    deltas = [e for e in events if e.type == "content_block_delta"]
    assert len(deltas) > 3, "the answer came whole, not as the provider streamed it"
    assert events[0].type == "message_start" and events[-1].type == "message_stop"
    assert next(e for e in events if e.type == "message_delta").usage.output_tokens > 0


def test_a_spent_budget_is_a_429_naming_it(door_client: Lanes, front_door: FrontDoor) -> None:
    config = front_door.stack.config
    with door_client.deployment as deployment, closing(open_ledger(config)) as ledger:
        limit = budget_limit(config, "project:door-broke:daily", 0.0)
        save_budget(deployment.stores.budget, ledger, limit, time.time())
        key = ledger.create_key("door-broke", None, None, time.time()).key
    time.sleep(1.2)
    with pytest.raises(anthropic.RateLimitError, match="door-broke"):
        claude(front_door, key=key).messages.create(
            model="lanes:auto", max_tokens=16, messages=QUESTION
        )
    with pytest.raises(openai.RateLimitError) as caught:
        gpt(front_door, key=key).chat.completions.create(model="lanes:auto", messages=QUESTION)
    assert caught.value.code == "budget_exceeded"
