"""What a served call answers: text, tool calls or JSON, all decided by the request alone.

:class:`ReplyPlan` is what a request asks beyond a plain reply (read by
:mod:`lanes.sim.tool_specs`); :func:`compose` turns it into an :class:`Answer`:

- a forced tool (Anthropic ``tool``, OpenAI named ``tool_choice``) is called alone; ``any``
  (OpenAI ``required``) calls the tools the last user text names, else the first tool;
  ``auto`` calls the tools the last user text names, unless the last user turn answers a
  tool call (a ``tool_result`` or a ``tool`` message), and otherwise replies in text;
  ``none`` never calls. A tool is named when its name appears in the text as a whole word.
  With parallel calls disabled only the first of several is made;
- a call's input is :func:`~lanes.sim.schema_values.example` of the tool's schema, seeded by
  the prompt and the tool, so it validates; its id is seeded the same way;
- a JSON reply (OpenAI ``response_format``, Anthropic ``output_config.format``) is an
  example of the schema, or ``{"reply": <the plain reply>}`` for ``json_object``;
- anything else is the plain reply of :func:`~lanes.sim.replies.generate_reply`.

A call costs the tokens of its name plus those of its arguments' JSON. Calls that do not
fit ``max_tokens`` are left out and the answer is cut (it then costs exactly the cap);
a JSON reply longer than the cap is cut like text, mid-JSON, as a real one is.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from lanes.sim.replies import CHARS_PER_TOKEN, MAX_REPLY_TOKENS, Prompt, count_tokens
from lanes.sim.replies import generate_reply as plain_reply
from lanes.sim.schema_values import example

ChoiceMode = Literal["auto", "any", "tool", "none"]


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    schema: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ReplyPlan:
    """The request's tools and how it lets them be used, and any JSON format asked for.

    ``last_user_text``: the text of the final message when a user wrote it (tool results
    excepted); ``after_tool_result``: that message answers tool calls."""

    tools: tuple[Tool, ...] = ()
    mode: ChoiceMode = "auto"
    forced: str | None = None
    parallel: bool = True
    json_schema: Mapping[str, Any] | None = None
    json_object: bool = False
    last_user_text: str = ""
    after_tool_result: bool = False
    id_prefix: str = "toolu_"


PLAIN = ReplyPlan()


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    input: Any
    arguments: str
    """``input`` as JSON text, as OpenAI sends it and Anthropic streams it."""

    @property
    def tokens(self) -> int:
        return count_tokens(self.name) + count_tokens(self.arguments)


@dataclass(frozen=True, slots=True)
class Answer:
    text: str
    tool_calls: tuple[ToolCall, ...]
    truncated: bool
    output_tokens: int


def compose(model: str, prompt: Prompt, plan: ReplyPlan, cap: int) -> Answer:
    """The answer to a call with output cap ``cap`` (in tokens)."""
    names = called_tools(plan)
    if names:
        return _tool_answer(prompt.digest(model), plan, names, cap)
    if plan.json_schema is not None or plan.json_object:
        return _json_answer(model, prompt, plan, cap)
    text, truncated = plain_reply(model, prompt, cap)
    return Answer(text, (), truncated, count_tokens(text))


def _names(text: str, plan: ReplyPlan) -> list[str]:
    return [
        tool.name
        for tool in plan.tools
        if re.search(rf"(?<![\w-]){re.escape(tool.name)}(?![\w-])", text)
    ]


def called_tools(plan: ReplyPlan) -> list[str]:
    """The names of the tools the answer calls, in call order."""
    if not plan.tools or plan.mode == "none":
        return []
    if plan.mode == "tool":
        return [plan.forced] if plan.forced else []
    if plan.mode == "auto" and plan.after_tool_result:
        return []
    named = _names(plan.last_user_text, plan)
    if not named and plan.mode == "any":
        named = [plan.tools[0].name]
    return named if plan.parallel else named[:1]


def _tool_answer(digest: bytes, plan: ReplyPlan, names: list[str], cap: int) -> Answer:
    schemas = {tool.name: tool.schema for tool in plan.tools}
    calls: list[ToolCall] = []
    spent = 0
    for index, name in enumerate(names):
        seed = digest + b"\x1e" + name.encode() + index.to_bytes(2, "big")
        value = example(schemas[name] or {"type": "object"}, seed)
        call_id = plan.id_prefix + hashlib.sha256(b"id" + seed).hexdigest()[:24]
        call = ToolCall(call_id, name, value, json.dumps(value))
        if spent + call.tokens > cap:
            return Answer("", tuple(calls), True, cap)
        calls.append(call)
        spent += call.tokens
    return Answer("", tuple(calls), False, spent)


def _json_answer(model: str, prompt: Prompt, plan: ReplyPlan, cap: int) -> Answer:
    if plan.json_schema is not None:
        value = example(plan.json_schema, prompt.digest(model) + b"\x1ejson")
    else:
        value = {"reply": plain_reply(model, prompt, MAX_REPLY_TOKENS)[0]}
    text = json.dumps(value)
    limit_chars = cap * CHARS_PER_TOKEN
    if len(text) > limit_chars:
        return Answer(text[:limit_chars], (), True, cap)
    return Answer(text, (), False, count_tokens(text))
