"""What the prompt makes of a message's content, for either API (validated beforehand by
:mod:`lanes.sim.anthropic_content` or :mod:`lanes.sim.openai_content`).

Every block becomes text for the reply seed and the token count (:func:`block_text`), and
an image or a PDF also becomes :class:`~lanes.sim.media.Media` (:func:`block_media`):

- a text block or part: its text; a plain-text document: its data;
- an Anthropic ``tool_use``: the tool's name, a space and its input as JSON; an OpenAI
  assistant's ``tool_calls``: each call's name, a space and its arguments, one a line;
- a ``tool_result``: the text of its content (a string or blocks);
- an image or a PDF: no text (an empty line among the blocks), only its media tokens.

A body of text blocks only is joined by newlines, as before content blocks existed, so a
plain text conversation counts and replies exactly as it always has.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from lanes.sim import media
from lanes.sim.media import Media


def block_text(block: Mapping[str, Any]) -> str:
    kind = block.get("type", "text")
    if kind == "text":
        return str(block["text"])
    if kind == "refusal":
        return str(block["refusal"])
    if kind == "tool_use":
        return f"{block['name']} {json.dumps(block.get('input', {}), sort_keys=True)}"
    if kind == "tool_result":
        return content_text(block.get("content"))
    if kind == "document" and block["source"]["type"] == "text":
        return str(block["source"]["data"])
    return ""


def content_text(content: str | Sequence[Mapping[str, Any]] | None) -> str:
    """The text of a message body: a string, or its blocks' texts joined by newlines."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "\n".join(block_text(block) for block in content)


def message_text(message: Mapping[str, Any]) -> str:
    """The text of one message: its content, then any OpenAI ``tool_calls``."""
    text = content_text(message.get("content"))
    calls = [
        f"{call['function']['name']} {call['function']['arguments']}"
        for call in message.get("tool_calls") or ()
    ]
    if not calls:
        return text
    return "\n".join([text, *calls] if text else calls)


def block_media(block: Mapping[str, Any]) -> Media | None:
    """The image or PDF a block holds (not within a ``tool_result``), else None."""
    kind = block.get("type")
    if kind == "image_url":
        url = str(block["image_url"]["url"])
        return media.linked_image(url) if url.startswith("http") else media.data_url(url, "")
    if kind not in ("image", "document"):
        return None
    source = block["source"]
    if source["type"] == "url":
        url = str(source["url"])
        return media.linked_image(url) if kind == "image" else media.linked_pdf(url)
    if source["type"] != "base64":
        return None
    if kind == "image":
        return media.inline_image(str(source["media_type"]), str(source["data"]), "")
    return media.inline_pdf(str(source["data"]), "")


def content_media(content: str | Sequence[Mapping[str, Any]] | None) -> Iterator[Media]:
    """Every image and PDF in a body, those inside ``tool_result`` blocks included."""
    if content is None or isinstance(content, str):
        return
    for block in content:
        found = block_media(block)
        if found is not None:
            yield found
        if block.get("type") == "tool_result":
            yield from content_media(block.get("content"))
