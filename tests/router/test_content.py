"""Content blocks, tools and structured output on a job: validated at submit, sized, and
routed only to models that take them."""

from __future__ import annotations

import base64
import struct
import zlib
from typing import Any

import pytest

from lanes.kernel.config import Config
from lanes.kernel.errors import JobError, NoRoute
from lanes.kernel.media import UNKNOWN_IMAGE_TOKENS, image_size
from lanes.router.content import TOOL_OVERHEAD_TOKENS
from lanes.router.engine import Router
from lanes.router.job import Job, parse_job
from tests.router.fixed_classifier import fixed

WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


def png(width: int, height: int) -> str:
    """A real PNG of ``width`` x ``height`` grey pixels, base64."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
    return base64.b64encode(data + chunk(b"IEND", b"")).decode()


def image(data: str) -> dict[str, Any]:
    return {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}}


def tool_round() -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": "What is the weather in Oslo?"},
        {"role": "assistant", "content": [
            {"type": "text", "text": "Let me look."},
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Oslo"}},
        ]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "4 degrees, rain"},
        ]},
    ]  # fmt: skip


def test_a_tool_round_trip_is_a_valid_job_whose_text_shows_every_turn() -> None:
    job = parse_job({"messages": tool_round(), "tools": [WEATHER]})
    assert job.features() == {"tools"}
    assert 'get_weather({"city": "Oslo"})' in job.text() and "4 degrees, rain" in job.text()
    assert job.as_messages()[1]["content"][1]["input"] == {"city": "Oslo"}
    assert job.extra_tokens() >= TOOL_OVERHEAD_TOKENS


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"messages": [{"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_9", "content": "x"}]}]},
         "answers no tool_use"),
        ({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": [
            image(png(2, 2))]}, {"role": "user", "content": "and?"}]},
         "image block cannot be in a assistant message"),
        ({"tools": [{**WEATHER, "input_schema": {"type": "string"}}]}, '"type": "object"'),
        ({"tools": [{**WEATHER, "input_schema": {"type": "object", "required": 3}}]},
         "not a valid JSON Schema"),
        ({"tools": [WEATHER], "tool_choice": {"type": "tool", "name": "nope"}},
         "no tool is named 'nope'"),
        ({"tools": [WEATHER], "output_schema": {"type": "object"}}, "not both"),
        ({"messages": [{"role": "user", "content": [{"type": "image", "source": {
            "type": "base64", "media_type": "image/png", "data": "***"}}]}]}, "base64"),
        ({"messages": [{"role": "user", "content": [{"type": "image", "source": {
            "type": "base64", "media_type": "image/tiff", "data": png(1, 1)}}]}]},
         "media_type must be one of"),
        ({"stop_sequences": ["a", "b", "c", "d", "e"]}, "stop_sequences"),
    ],
)  # fmt: skip
def test_malformed_content_is_refused_naming_the_field(
    change: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(JobError, match="invalid job") as caught:
        parse_job({"prompt": "hello", **change} if "messages" not in change else change)
    assert complaint in str(caught.value)


def test_an_images_tokens_come_from_its_size_and_its_bytes_count_against_the_limit() -> None:
    data = png(300, 200)
    assert image_size(base64.b64decode(data)) == (300, 200)
    job = Job(messages=[{"role": "user", "content": [{"type": "text", "text": "what is it?"},
                                                     image(data)]}])  # type: ignore[list-item]  # fmt: skip
    assert job.extra_tokens() == 300 * 200 // 750
    assert job.payload_bytes() > len(data)
    url = {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}}
    by_reference = Job(messages=[{"role": "user", "content": [url]}])  # type: ignore[list-item]
    assert by_reference.extra_tokens() == UNKNOWN_IMAGE_TOKENS
    assert by_reference.features() == {"images"}


def test_images_only_go_to_models_that_take_them(example_config: Config) -> None:
    router = Router(example_config, classifier=fixed(vital=False))
    job = Job(messages=[{"role": "user", "content": [image(png(8, 8))]}])  # type: ignore[list-item]
    for strategy in ("best_for_task", "cost_optimized", "round_robin"):
        decision = router.decide(job, strategy=strategy)
        models = {decision.model, *(step.model for step in decision.chain)}
        assert all("images" in example_config.models[m].features for m in models)
    assert "cannot take images" in decision.rejections["zai/glm-4.6"]
    with pytest.raises(NoRoute, match=r"cannot take images.*models.glm-4.6.features"):
        router.decide(job.model_copy(update={"instance": "zai"}), strategy="manual")


def test_tool_options_enter_the_response_cache_key_only_when_set(example_config: Config) -> None:
    from lanes.router.cache_key import request_payload

    spec = example_config.cache
    plain = request_payload(Job(prompt="hi"), spec=spec)
    assert "tools" not in plain and "top_p" not in plain
    tooled = request_payload(Job(prompt="hi", tools=[WEATHER], top_p=0.5), spec=spec)  # type: ignore[list-item]
    assert tooled["tools"][0]["name"] == "get_weather" and tooled["top_p"] == 0.5
