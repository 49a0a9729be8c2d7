"""A chat completions request as a job, and a job's result as a chat completion.

Inbound, the reverse of :mod:`lanes.workers.providers.openai_shape`: system and developer
messages become the system prompt; ``image_url`` parts image blocks (a ``data:`` URL inline,
any other URL by reference); a ``file`` part with PDF data a document; an assistant's
``tool_calls`` ``tool_use`` blocks; ``tool`` messages ``tool_result`` blocks, joined with the
user turn that follows; ``response_format`` the job's ``output_schema`` (``json_object``: any
object); ``stop`` its stop sequences.
"""

from __future__ import annotations

import json
import time
from typing import Any

from lanes.broker.result import Result
from lanes.kernel.errors import JobError

_STOP_TO_FINISH = {"max_tokens": "length", "tool_use": "tool_calls"}
_UNSUPPORTED = ("logprobs", "top_logprobs", "audio", "modalities", "prediction", "functions")
"""Fields lanes refuses unless they are absent or off (``false``, ``0``, empty)."""
DEFAULT_MAX_TOKENS = 4096
"""``max_tokens`` of a request that sets none (the API's own default is the model's limit)."""


def job_fields(body: dict[str, Any]) -> dict[str, Any]:
    """The job fields a chat completions body asks for (model and streaming aside)."""
    if body.get("n") not in (None, 1):
        raise JobError("n: not supported by lanes (one answer a request)")
    for name in _UNSUPPORTED:
        if body.get(name) not in (None, False, [], {}):
            raise JobError(f"{name}: not supported by lanes")
    system, messages = _conversation(_list(body, "messages"))
    fields: dict[str, Any] = {
        "messages": messages,
        "max_tokens": body.get("max_completion_tokens") or body.get("max_tokens")
        or DEFAULT_MAX_TOKENS,
    }  # fmt: skip
    if system:
        fields["system"] = system
    for name in ("temperature", "top_p"):
        if body.get(name) is not None:
            fields[name] = body[name]
    stop = body.get("stop")
    if stop:
        fields["stop_sequences"] = [stop] if isinstance(stop, str) else stop
    fields.update(_tools(body))
    schema = _schema(body.get("response_format"))
    if schema is not None:
        fields["output_schema"] = schema
    return fields


def completion(result: Result, model: str) -> dict[str, Any]:
    """``result`` as a chat completion object."""
    calls = [
        {
            "id": block["id"],
            "type": "function",
            "function": {"name": block["name"], "arguments": json.dumps(block["input"])},
        }
        for block in result.tool_calls
    ]
    message: dict[str, Any] = {"role": "assistant", "content": result.text or None}
    if calls:
        message["tool_calls"] = calls
    return {
        "id": f"chatcmpl-{result.job_id}",
        "object": "chat.completion",
        "created": int(result.finished_at or time.time()),
        "model": model,
        "choices": [
            {"index": 0, "message": message, "finish_reason": finish_reason(result.stop_reason),
             "logprobs": None}
        ],
        "usage": usage(result),
    }  # fmt: skip


def finish_reason(stop_reason: str | None) -> str:
    return _STOP_TO_FINISH.get(stop_reason or "", "stop")


def usage(result: Result) -> dict[str, Any]:
    cached = result.usage.get("cache_read_input_tokens", 0)
    prompt = result.input_tokens + cached + result.usage.get("cache_creation_input_tokens", 0)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": result.output_tokens,
        "total_tokens": prompt + result.output_tokens,
        "prompt_tokens_details": {"cached_tokens": cached},
    }


def _list(body: dict[str, Any], name: str) -> list[Any]:
    value = body.get(name)
    if not isinstance(value, list) or not value:
        raise JobError(f"{name}: give a non-empty list")
    return value


def _conversation(items: list[Any]) -> tuple[str, list[dict[str, Any]]]:
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise JobError(f"messages.{index}: give an object with a role")
        role = item.get("role")
        if role in ("system", "developer"):
            system.append(_text(item.get("content"), index))
        elif role == "user":
            _add(turns, "user", _user_blocks(item.get("content"), index))
        elif role == "assistant":
            _add(turns, "assistant", _assistant_blocks(item, index))
        elif role == "tool":
            result = {"type": "tool_result", "tool_use_id": item.get("tool_call_id"),
                      "content": _text(item.get("content"), index)}  # fmt: skip
            _add(turns, "user", [result])
        else:
            raise JobError(
                f"messages.{index}.role: {role!r} is not system, user, assistant or tool"
            )
    return "\n\n".join(system), turns


def _add(turns: list[dict[str, Any]], role: str, blocks: list[dict[str, Any]]) -> None:
    """Append a turn, joined with the one before when both have the same role."""
    if turns and turns[-1]["role"] == role:
        turns[-1]["content"].extend(blocks)
    else:
        turns.append({"role": role, "content": blocks})


def _text(content: Any, index: int) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    raise JobError(f"messages.{index}.content: give a string or a list of parts")


def _user_blocks(content: Any, index: int) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list):
        raise JobError(f"messages.{index}.content: give a string or a list of parts")
    return [_part(part, f"messages.{index}.content.{i}") for i, part in enumerate(content)]


def _part(part: Any, where: str) -> dict[str, Any]:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind == "text":
        return {"type": "text", "text": part.get("text")}
    if kind == "image_url":
        url = (part.get("image_url") or {}).get("url", "")
        return {"type": "image", "source": _source(str(url), where)}
    if kind == "file":
        data = (part.get("file") or {}).get("file_data", "")
        return {"type": "document", "source": _source(str(data), where)}
    raise JobError(f"{where}: part type {kind!r} is not supported (text, image_url, file)")


def _source(url: str, where: str) -> dict[str, Any]:
    if url.startswith("data:"):
        header, _, data = url[5:].partition(",")
        media_type, _, encoding = header.partition(";")
        if encoding != "base64":
            raise JobError(f"{where}: a data: URL must be base64")
        return {"type": "base64", "media_type": media_type, "data": data}
    return {"type": "url", "url": url}


def _assistant_blocks(item: dict[str, Any], index: int) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    content = item.get("content")
    if content:
        blocks.append({"type": "text", "text": _text(content, index)})
    for call in item.get("tool_calls") or ():
        function = call.get("function") or {}
        try:
            arguments = json.loads(function.get("arguments") or "{}")
        except ValueError:
            raise JobError(f"messages.{index}.tool_calls: arguments are not JSON") from None
        blocks.append({"type": "tool_use", "id": call.get("id"), "name": function.get("name"),
                       "input": arguments})  # fmt: skip
    return blocks


def _tools(body: dict[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    tools = body.get("tools")
    if tools:
        fields["tools"] = [_tool(tool) for tool in tools]
    choice = body.get("tool_choice")
    parallel = body.get("parallel_tool_calls")
    if choice is not None or parallel is False:
        fields["tool_choice"] = _choice(choice or "auto", parallel is False)
    return fields


def _tool(tool: Any) -> dict[str, Any]:
    function = tool.get("function") if isinstance(tool, dict) else None
    if not isinstance(function, dict) or tool.get("type") != "function":
        raise JobError('tools: each tool is {"type": "function", "function": {...}}')
    schema = function.get("parameters") or {"type": "object", "properties": {}}
    found = {"name": function.get("name"), "input_schema": schema}
    if function.get("description"):
        found["description"] = function["description"]
    return found


def _choice(choice: Any, serial: bool) -> dict[str, Any]:
    found: dict[str, Any]
    if isinstance(choice, dict):
        found = {"type": "tool", "name": (choice.get("function") or {}).get("name")}
    elif choice in ("auto", "none"):
        found = {"type": choice}
    elif choice == "required":
        found = {"type": "any"}
    else:
        raise JobError(f"tool_choice: {choice!r} is not auto, none, required or a function")
    if serial and found["type"] != "none":
        found["disable_parallel_tool_use"] = True
    return found


def _schema(response_format: Any) -> dict[str, Any] | None:
    if not response_format:
        return None
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "object"}
    if kind == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
        if not isinstance(schema, dict):
            raise JobError("response_format.json_schema.schema: give a JSON Schema object")
        return schema
    raise JobError(f"response_format.type: {kind!r} is not text, json_object or json_schema")
