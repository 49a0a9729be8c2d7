"""Images and documents through the official SDKs: validation, token counts and the
text-only models that refuse them."""

from __future__ import annotations

import base64
import struct
import zlib
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from lanes.sim import Profile, Simulator, count_input_tokens

from .conftest import LLAMA, SONNET

QUESTION = "What is in this picture?"


def _png(width: int, height: int) -> bytes:
    """A real, tiny, all-black greyscale PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = b"".join(b"\x00" + b"\x00" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def _image_block(data: bytes, media_type: str = "image/png") -> dict[str, Any]:
    encoded = base64.b64encode(data).decode()
    return {
        "type": "image",
        "source": {"type": "base64", "media_type": media_type, "data": encoded},
    }


def _ask(*blocks: dict[str, Any]) -> list[Any]:
    return [{"role": "user", "content": [*blocks, {"type": "text", "text": QUESTION}]}]


@pytest.fixture
def gpt(sim: Simulator) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        api_key="k", base_url=sim.base_url("local") + "/v1", max_retries=0
    ) as client:
        yield client


def test_png_counts_width_times_height_over_750(claude: anthropic.Anthropic) -> None:
    messages = _ask(_image_block(_png(150, 100)))
    reply = claude.messages.create(model=SONNET, max_tokens=50, messages=messages)
    text_only = count_input_tokens([{"role": "user", "content": "\n" + QUESTION}])
    assert reply.usage.input_tokens == text_only + 20  # 150 * 100 / 750
    assert count_input_tokens(messages) == reply.usage.input_tokens


def test_different_images_get_different_replies(claude: anthropic.Anthropic) -> None:
    small = claude.messages.create(
        model=SONNET, max_tokens=200, messages=_ask(_image_block(_png(8, 8)))
    )
    large = claude.messages.create(
        model=SONNET, max_tokens=200, messages=_ask(_image_block(_png(9, 8)))
    )
    assert small.content[0].type == large.content[0].type == "text"
    assert small.content[0].text != large.content[0].text


def test_image_of_the_wrong_media_type_is_400(claude: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError, match="image/jpeg"):
        claude.messages.create(
            model=SONNET, max_tokens=50, messages=_ask(_image_block(_png(4, 4), "image/jpeg"))
        )


def test_text_only_model_refuses_an_image(sim: Simulator) -> None:
    sim.set_profile("textual", Profile(text_only_models=("claude-text",)))
    with anthropic.Anthropic(
        api_key="k", base_url=sim.base_url("textual"), max_retries=0
    ) as client:
        with pytest.raises(anthropic.BadRequestError, match="claude-text"):
            client.messages.create(
                model="claude-text", max_tokens=50, messages=_ask(_image_block(_png(4, 4)))
            )
        fine = client.messages.create(model="claude-text", max_tokens=50, messages=_ask())
        assert fine.content[0].type == "text"


def test_documents_count_pages_and_text(claude: anthropic.Anthropic) -> None:
    pdf = b"%PDF-1.4\n1 0 obj << /Type /Page >> endobj\n2 0 obj << /Type /Page >> endobj\n"
    pdf_block = {
        "type": "document",
        "source": {
            "type": "base64",
            "media_type": "application/pdf",
            "data": base64.b64encode(pdf).decode(),
        },
    }
    with_pdf = claude.messages.create(model=SONNET, max_tokens=50, messages=_ask(pdf_block))
    without = count_input_tokens([{"role": "user", "content": "\n" + QUESTION}])
    assert with_pdf.usage.input_tokens == without + 2 * 1500
    note = "A short plain-text note."
    text_block = {
        "type": "document",
        "source": {"type": "text", "media_type": "text/plain", "data": note},
    }
    with_text = claude.messages.create(model=SONNET, max_tokens=50, messages=_ask(text_block))
    assert with_text.usage.input_tokens == count_input_tokens(
        [{"role": "user", "content": note + "\n" + QUESTION}]
    )


def test_image_by_url_counts_a_flat_amount(claude: anthropic.Anthropic) -> None:
    block = {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}}
    reply = claude.messages.create(model=SONNET, max_tokens=50, messages=_ask(block))
    text_only = count_input_tokens([{"role": "user", "content": "\n" + QUESTION}])
    assert reply.usage.input_tokens == text_only + 1600


def test_image_in_an_assistant_turn_is_400(claude: anthropic.Anthropic) -> None:
    messages: Any = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": [_image_block(_png(2, 2))]},
        {"role": "user", "content": "Hi"},
    ]
    with pytest.raises(anthropic.BadRequestError, match="Input tag 'image'"):
        claude.messages.create(model=SONNET, max_tokens=50, messages=messages)


def test_openai_image_parts(gpt: openai.OpenAI) -> None:
    url = "data:image/png;base64," + base64.b64encode(_png(75, 100)).decode()
    messages: Any = [
        {"role": "developer", "content": "Be brief."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": QUESTION},
                {"type": "image_url", "image_url": {"url": url}},
            ],
        },
    ]
    reply = gpt.chat.completions.create(model=LLAMA, messages=messages)
    assert reply.usage is not None
    assert reply.usage.prompt_tokens == count_input_tokens(messages)
    plain = [messages[0], {"role": "user", "content": QUESTION + "\n"}]
    assert reply.usage.prompt_tokens == count_input_tokens(plain) + 10  # 75 * 100 / 750


def test_openai_bad_image_url_is_400(gpt: openai.OpenAI) -> None:
    messages: Any = [
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x"}}]}
    ]
    with pytest.raises(openai.BadRequestError, match="image"):
        gpt.chat.completions.create(model=LLAMA, messages=messages)
