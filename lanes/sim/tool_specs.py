"""Tool definitions, ``tool_choice`` and JSON output formats of both APIs, checked and
read into a :class:`~lanes.sim.answers.ReplyPlan`.

Tool definitions count toward the prompt as the compact JSON of the ``tools`` list, 4
characters a token (:func:`tool_tokens`). Anthropic's server tools (a ``type`` other
than ``custom``) are not simulated and refused.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from lanes.sim.answers import ReplyPlan, Tool
from lanes.sim.content import content_text
from lanes.sim.replies import count_tokens
from lanes.sim.validate import InvalidRequest

_ANTHROPIC_NAME = re.compile(r"[a-zA-Z0-9_-]{1,128}")
_OPENAI_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_ANTHROPIC_TOOL_KEYS = frozenset(
    {"name", "description", "input_schema", "cache_control", "type", "strict"}
    | {"input_examples", "defer_loading", "allowed_callers", "eager_input_streaming"}
)


def tool_tokens(tools: Any) -> int:
    return count_tokens(json.dumps(tools, separators=(",", ":"))) if tools else 0


def tools_key(tools: Any) -> bytes:
    """A digest of the tool definitions, for the prompt-cache prefixes."""
    if not tools:
        return b""
    return hashlib.sha256(json.dumps(tools, sort_keys=True).encode()).digest()


def _unique(names: Sequence[str]) -> None:
    if len(set(names)) != len(names):
        raise InvalidRequest("tools: Tool names must be unique.")


def _schema(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise InvalidRequest(f"{where}: Input should be a valid dictionary")
    return value


def anthropic_tools(payload: Mapping[str, Any]) -> tuple[Tool, ...]:
    tools = payload.get("tools")
    if tools is None:
        return ()
    if not isinstance(tools, list):
        raise InvalidRequest("tools: Input should be a valid list")
    found: list[Tool] = []
    for index, tool in enumerate(tools):
        where = f"tools.{index}"
        if not isinstance(tool, dict):
            raise InvalidRequest(f"{where}: Input should be an object")
        if tool.get("type", "custom") != "custom":
            raise InvalidRequest(f"{where}.type: server tools ({tool['type']}) are not simulated")
        for key in tool:
            if key not in _ANTHROPIC_TOOL_KEYS:
                raise InvalidRequest(f"{where}.{key}: Extra inputs are not permitted")
        name = tool.get("name")
        if not isinstance(name, str) or not _ANTHROPIC_NAME.fullmatch(name):
            raise InvalidRequest(
                f"{where}.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'"
            )
        schema = _schema(tool.get("input_schema"), f"{where}.input_schema")
        if schema.get("type") != "object":
            raise InvalidRequest(f"{where}.input_schema.type: Input should be 'object'")
        found.append(Tool(name, schema))
    _unique([tool.name for tool in found])
    return tuple(found)


def _anthropic_choice(payload: Mapping[str, Any], tools: Sequence[Tool]) -> dict[str, Any]:
    choice = payload.get("tool_choice")
    if choice is None:
        return {"type": "auto"}
    if not isinstance(choice, dict) or choice.get("type") not in ("auto", "any", "tool", "none"):
        raise InvalidRequest("tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'")
    parallel_off = choice.get("disable_parallel_tool_use")
    if parallel_off is not None and not isinstance(parallel_off, bool):
        raise InvalidRequest(
            "tool_choice.disable_parallel_tool_use: Input should be a valid boolean"
        )
    if choice["type"] in ("any", "tool") and not tools:
        raise InvalidRequest(f"tool_choice: type '{choice['type']}' requires tools")
    if choice["type"] == "tool":
        name = choice.get("name")
        if not isinstance(name, str):
            raise InvalidRequest("tool_choice.name: Field required")
        if name not in {tool.name for tool in tools}:
            raise InvalidRequest(f"tool_choice.name: Tool '{name}' not found in tools")
    return choice


def _anthropic_format(payload: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The JSON schema of ``output_config.format``, if any."""
    config = payload.get("output_config")
    if config is None:
        return None
    if not isinstance(config, dict):
        raise InvalidRequest("output_config: Input should be an object")
    form = config.get("format")
    if form is None:
        return None
    if not isinstance(form, dict) or form.get("type") != "json_schema":
        raise InvalidRequest("output_config.format.type: Input should be 'json_schema'")
    return _schema(form.get("schema"), "output_config.format.schema")


def _last_user(messages: Sequence[Mapping[str, Any]], role: str) -> tuple[str, bool]:
    """The last message's text when ``role`` wrote it (tool results left out), and whether
    it answers tool calls."""
    last = messages[-1]
    if last["role"] == "tool":
        return "", True
    if last["role"] != role:
        return "", False
    content = last.get("content")
    if isinstance(content, list):
        answers = any(block.get("type") == "tool_result" for block in content)
        texts = [block for block in content if block.get("type") != "tool_result"]
        return content_text(texts), answers
    return content_text(content), False


def anthropic_plan(payload: Mapping[str, Any], messages: Sequence[Mapping[str, Any]]) -> ReplyPlan:
    tools = anthropic_tools(payload)
    choice = _anthropic_choice(payload, tools)
    text, answered = _last_user(messages, "user")
    return ReplyPlan(
        tools=tools,
        mode=choice["type"],
        forced=choice.get("name"),
        parallel=not choice.get("disable_parallel_tool_use", False),
        json_schema=_anthropic_format(payload),
        last_user_text=text,
        after_tool_result=answered,
        id_prefix="toolu_",
    )


def openai_tools(payload: Mapping[str, Any]) -> tuple[Tool, ...]:
    tools = payload.get("tools")
    if tools is None:
        return ()
    if not isinstance(tools, list):
        raise InvalidRequest("Invalid type for 'tools': expected an array")
    found: list[Tool] = []
    for index, tool in enumerate(tools):
        where = f"tools[{index}]"
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or tool.get("type") != "function":
            raise InvalidRequest(
                f"Invalid value for '{where}': expected {{type: 'function', function}}"
            )
        name = function.get("name")
        if not isinstance(name, str) or not _OPENAI_NAME.fullmatch(name):
            raise InvalidRequest(
                f"Invalid '{where}.function.name': string does not match pattern "
                "'^[a-zA-Z0-9_-]{1,64}$'"
            )
        parameters = function.get("parameters")
        schema = {} if parameters is None else _schema(parameters, f"{where}.function.parameters")
        found.append(Tool(name, schema))
    _unique([tool.name for tool in found])
    return tuple(found)


def _openai_choice(payload: Mapping[str, Any], tools: Sequence[Tool]) -> tuple[str, str | None]:
    choice = payload.get("tool_choice")
    if choice is None:
        return "auto", None
    if choice in ("auto", "none"):
        return str(choice), None
    if not tools:
        raise InvalidRequest(
            "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' "
            "are specified."
        )
    if choice == "required":
        return "any", None
    function = choice.get("function") if isinstance(choice, dict) else None
    name = function.get("name") if isinstance(function, dict) else None
    if not isinstance(name, str) or choice.get("type") != "function":
        raise InvalidRequest(
            "Invalid value for 'tool_choice': expected 'none', 'auto', 'required' or "
            "{type: 'function', function: {name}}"
        )
    if name not in {tool.name for tool in tools}:
        raise InvalidRequest(
            f"Invalid value for 'tool_choice': no function named '{name}' was specified in "
            "the 'tools' parameter."
        )
    return "tool", name


def _openai_format(payload: Mapping[str, Any]) -> tuple[Mapping[str, Any] | None, bool]:
    """The JSON schema asked for, and whether a JSON object (any) is."""
    form = payload.get("response_format")
    if form is None:
        return None, False
    kind = form.get("type") if isinstance(form, dict) else None
    if kind == "text":
        return None, False
    if kind == "json_object":
        return None, True
    if kind != "json_schema":
        raise InvalidRequest(
            "Invalid value for 'response_format.type': expected 'text', 'json_object' or "
            "'json_schema'"
        )
    spec = form.get("json_schema")
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise InvalidRequest("Missing required parameter: 'response_format.json_schema.name'.")
    schema = spec.get("schema")
    return (
        {"type": "object"}
        if schema is None
        else _schema(schema, "response_format.json_schema.schema")
    ), False


def openai_plan(payload: Mapping[str, Any], messages: Sequence[Mapping[str, Any]]) -> ReplyPlan:
    tools = openai_tools(payload)
    mode, forced = _openai_choice(payload, tools)
    parallel = payload.get("parallel_tool_calls", True)
    if not isinstance(parallel, bool):
        raise InvalidRequest("Invalid type for 'parallel_tool_calls': expected a boolean")
    schema, json_object = _openai_format(payload)
    text, answered = _last_user(messages, "user")
    return ReplyPlan(
        tools=tools,
        mode=mode,  # type: ignore[arg-type]
        forced=forced,
        parallel=parallel,
        json_schema=schema,
        json_object=json_object,
        last_user_text=text,
        after_tool_result=answered,
        id_prefix="call_",
    )
