"""A Messages API request in chat completions form, and a completion's answer back as blocks.

What each part becomes: the system prompt (a cache prefix first) is the system message; a
text block a ``text`` part; an image an ``image_url`` part (inline data as a ``data:`` URL);
a PDF a ``file`` part; a plain-text document a text part; an assistant's ``tool_use`` blocks
its ``tool_calls``; each ``tool_result`` a ``tool`` message of its own, placed before the rest
of its turn (the API wants them right after the call), an image in a result following in a
user message (a tool message holds text only); ``tools`` functions, ``tool_choice`` ``any``
is ``required``; ``output_schema`` a ``json_schema`` response format; ``stop_sequences``
``stop``. Back: ``tool_calls`` are ``tool_use`` blocks, ``finish_reason`` a stop reason.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from lanes.kernel.errors import BadAnswer
from lanes.router.content import OUTPUT_TOOL
from lanes.workers.providers.base import ProviderRequest, TextSink

_FINISH_TO_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}


def chat_messages(request: ProviderRequest) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    system = "\n\n".join(p for p in (request.cache_prefix, _system_text(request)) if p)
    if system:
        messages.append({"role": "system", "content": system})
    for message in request.messages:
        messages.extend(_turn(message["role"], message["content"]))
    return messages


def request_options(request: ProviderRequest) -> dict[str, Any]:
    """The body's fields besides model, messages and max_tokens."""
    options: dict[str, Any] = {}
    if request.temperature is not None:
        options["temperature"] = request.temperature
    if request.top_p is not None:
        options["top_p"] = request.top_p
    if request.stop_sequences:
        options["stop"] = list(request.stop_sequences)
    if request.tools:
        options["tools"] = [_function(tool) for tool in request.tools]
    if request.tool_choice is not None:
        options.update(_choice(request.tool_choice))
    if request.output_schema is not None:
        options["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": OUTPUT_TOOL, "schema": request.output_schema},
        }
    return options


def answer_blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    """A completion's message as Messages API blocks. Raises :class:`BadAnswer` for a tool
    call whose arguments are not a JSON object (the model's fault: another try may do)."""
    blocks: list[dict[str, Any]] = []
    if message.get("content"):
        blocks.append({"type": "text", "text": str(message["content"])})
    for call in message.get("tool_calls") or ():
        function = call["function"]
        try:
            arguments = json.loads(function.get("arguments") or "{}")
        except ValueError:
            arguments = None
        if not isinstance(arguments, dict):
            raise BadAnswer(f"tool call {function['name']!r}: arguments are not a JSON object")
        blocks.append(
            {"type": "tool_use", "id": call["id"], "name": function["name"], "input": arguments}
        )
    return blocks


def stop_reason(finish_reason: Any) -> str:
    return _FINISH_TO_STOP.get(str(finish_reason), "end_turn")


def _system_text(request: ProviderRequest) -> str | None:
    if isinstance(request.system, list):
        return "\n".join(str(block.get("text", "")) for block in request.system)
    return request.system


def _turn(role: str, content: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"role": role, "content": content}]
    if role == "assistant":
        return [_assistant(content)]
    found: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for block in content:
        if block["type"] == "tool_result":
            message, images = _tool_message(block)
            found.append(message)
            parts.extend(images)
        else:
            parts.append(_part(block))
    if parts:
        found.append({"role": "user", "content": parts})
    return found


def _assistant(content: list[dict[str, Any]]) -> dict[str, Any]:
    text = "".join(str(b.get("text", "")) for b in content if b["type"] == "text")
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    calls = [
        {
            "id": b["id"],
            "type": "function",
            "function": {"name": b["name"], "arguments": json.dumps(b["input"])},
        }
        for b in content
        if b["type"] == "tool_use"
    ]
    if calls:
        message["tool_calls"] = calls
    return message


def _tool_message(block: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    content = block.get("content") or ""
    parts = [{"type": "text", "text": content}] if isinstance(content, str) else content
    text = "\n".join(str(p["text"]) for p in parts if p["type"] == "text")
    if block.get("is_error"):
        text = f"error: {text}"
    images = [_part(p) for p in parts if p["type"] == "image"]
    return {"role": "tool", "tool_call_id": block["tool_use_id"], "content": text}, images


def _part(block: dict[str, Any]) -> dict[str, Any]:
    kind = block["type"]
    source = block.get("source") or {}
    if kind == "image":
        return {"type": "image_url", "image_url": {"url": _url(source)}}
    if kind == "document" and source.get("type") == "base64":
        name = block.get("title") or "document.pdf"
        return {"type": "file", "file": {"filename": name, "file_data": _url(source)}}
    if kind == "document":
        text = source.get("data") if source.get("type") == "text" else source.get("url")
        title = block.get("title")
        return {"type": "text", "text": f"{title}\n{text}" if title else str(text)}
    return {"type": "text", "text": str(block.get("text", ""))}


def _url(source: dict[str, Any]) -> str:
    if source.get("type") == "base64":
        return f"data:{source['media_type']};base64,{source['data']}"
    return str(source.get("url", ""))


def _function(tool: dict[str, Any]) -> dict[str, Any]:
    function = {"name": tool["name"], "parameters": tool["input_schema"]}
    if tool.get("description"):
        function["description"] = tool["description"]
    return {"type": "function", "function": function}


def _choice(choice: dict[str, Any]) -> dict[str, Any]:
    kind = choice["type"]
    options: dict[str, Any] = {}
    if kind == "tool":
        options["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
    else:
        options["tool_choice"] = {"auto": "auto", "any": "required", "none": "none"}[kind]
    if choice.get("disable_parallel_tool_use"):
        options["parallel_tool_calls"] = False
    return options


def streamed_completion(lines: Iterable[str], on_text: TextSink) -> dict[str, Any]:
    """A streamed completion's ``data:`` lines put together as one completion body, its
    text told to ``on_text`` as it comes."""
    text: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    found: dict[str, Any] = {"choices": [{"message": {}, "finish_reason": None}]}
    for line in lines:
        if not line.startswith("data:") or line[5:].strip() == "[DONE]":
            continue
        chunk = json.loads(line[5:])
        found["id"] = chunk.get("id", found.get("id"))
        if chunk.get("usage"):
            found["usage"] = chunk["usage"]
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            if delta.get("content"):
                text.append(delta["content"])
                on_text(delta["content"])
            for call in delta.get("tool_calls") or ():
                _merge_call(calls.setdefault(int(call.get("index", 0)), {}), call)
            if choice.get("finish_reason"):
                found["choices"][0]["finish_reason"] = choice["finish_reason"]
    message = found["choices"][0]["message"]
    message["content"] = "".join(text)
    if calls:
        message["tool_calls"] = [calls[index] for index in sorted(calls)]
    return found


def _merge_call(into: dict[str, Any], delta: dict[str, Any]) -> None:
    function = into.setdefault("function", {"name": "", "arguments": ""})
    if delta.get("id"):
        into["id"] = delta["id"]
    into["type"] = "function"
    piece = delta.get("function") or {}
    function["name"] += piece.get("name") or ""
    function["arguments"] += piece.get("arguments") or ""
