"""The Job: what a caller asks lanes to run. Validated at submit, JSON on the wire."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from lanes.kernel.errors import JobError
from lanes.kernel.taxonomy import Complexity, Priority, TaskType
from lanes.router.content import (
    ASSISTANT_ONLY,
    TOOL_OVERHEAD_TOKENS,
    USER_ONLY,
    Block,
    TextBlock,
    Tool,
    ToolChoice,
    ToolResultBlock,
    ToolUseBlock,
    block_features,
    block_text,
    media_tokens,
    object_schema,
)

_SURROGATE = re.compile("[\ud800-\udfff]")
DEEP = 64


def lone_surrogate(text: str) -> int | None:
    """Where ``text`` holds a lone surrogate (a string that cannot be encoded as UTF-8:
    JSON's ``"\\udfff"`` decodes to one), or None when it is UTF-8 text."""
    if text.isascii():
        return None
    found = _SURROGATE.search(text)
    return None if found is None else found.start()


def _utf8_only(value: Any, depth: int = 2) -> Any:
    """``value`` unchanged if every string in it (keys too) can be encoded as UTF-8; else a
    ValueError saying where (never quoting the offending character: it cannot be printed)."""
    problem = _unencodable(value, depth)
    if problem is not None:
        raise ValueError(
            f"holds text that cannot be encoded as UTF-8 ({problem}); write UTF-8 text"
        )
    return value


def _unencodable(value: Any, depth: int = 2) -> str | None:
    """What in ``value`` is not UTF-8 text, None if nothing. Looks ``depth`` containers deep
    at most: plain fields nest 2 deep; content blocks, tool inputs and schemas are looked
    through :data:`DEEP` levels (JSON parsers refuse far deeper nesting anyway)."""
    if isinstance(value, str):
        at = lone_surrogate(value)
        return None if at is None else f"a lone surrogate U+{ord(value[at]):04X} at character {at}"
    if depth <= 0:
        return None
    items: list[Any] = []
    if isinstance(value, dict):
        items = [part for pair in value.items() for part in pair]
    elif isinstance(value, list | tuple):
        items = list(value)
    for item in items:
        problem = _unencodable(item, depth - 1)
        if problem is not None:
            return problem
    return None


class Message(BaseModel):
    """A turn of the conversation: text, or content blocks (text, images, documents, tool
    calls and their results; see :mod:`lanes.router.content`)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    role: Literal["user", "assistant"]
    content: str | list[Block] = Field(min_length=1)

    @field_validator("*", mode="before")
    @classmethod
    def _utf8(cls, value: Any) -> Any:
        return _utf8_only(value, depth=DEEP)

    @model_validator(mode="after")
    def _blocks_fit_role(self) -> Message:
        wrong = USER_ONLY if self.role == "assistant" else ASSISTANT_ONLY
        for block in self.blocks():
            if block.type in wrong:
                raise ValueError(f"a {block.type} block cannot be in a {self.role} message")
        return self

    def blocks(self) -> list[Block]:
        if isinstance(self.content, str):
            return [TextBlock(type="text", text=self.content)]
        return list(self.content)

    def text(self) -> str:
        """The text the turn shows the model (an image shows none)."""
        if isinstance(self.content, str):
            return self.content
        return "\n".join(t for t in map(block_text, self.content) if t)


class Constraints(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    max_cost_usd: float | None = Field(default=None, gt=0)
    min_quality: int | None = Field(default=None, ge=0, le=100)
    max_latency_s: float | None = Field(default=None, gt=0)


class Job(BaseModel):
    """One LLM job. Give ``prompt`` or ``messages`` (not both).

    Example::

        Job(prompt="Review this diff for security issues: ...", task_type="code-review",
            project="payments", max_tokens=2048)
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    id: str = Field(default_factory=lambda: uuid.uuid4().hex, pattern=r"^[A-Za-z0-9_.:-]{1,128}$")
    prompt: str | None = Field(default=None, min_length=1)
    messages: list[Message] | None = Field(default=None, min_length=1)
    system: str | list[TextBlock] | None = None
    cache_prefix: str | None = Field(default=None, min_length=1)
    """Text the model reads first, ahead of ``system``, that other jobs share (a diff, a
    document, a long instruction): sent as a cacheable prefix, so the provider bills it at
    its cache rates (a write once, then reads) on the account that holds it."""
    cache_ttl: Literal["5m", "1h"] = "5m"
    """How long the provider keeps the prefix: a 1-hour write costs more (2x input against
    1.25x) but serves jobs spread over an hour."""
    max_tokens: int = Field(default=1024, ge=1, le=128000, strict=True)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    stop_sequences: list[str] | None = Field(default=None, max_length=4)
    """Text that ends the answer where it appears (at most 4: what OpenAI-compatible lanes
    take)."""
    tools: list[Tool] | None = Field(default=None, min_length=1, max_length=128)
    """Functions the model may call; an answer that calls one ends with ``stop_reason``
    ``tool_use`` and the call in ``Result.content``. Only models with the ``tools`` feature
    are candidates."""
    tool_choice: ToolChoice | None = None
    output_schema: dict[str, Any] | None = None
    """A JSON Schema (an object) the answer must match: ``Result.text`` is then that JSON.
    The worker checks it; an answer that does not match is a failed call, retried and then
    passed down the fallback chain."""
    task_type: TaskType | None = None
    complexity: Complexity | None = None
    vital: bool | None = None
    """None: the classifier decides. True: treat as vital. False: the caller accepts cheap
    lanes for this job even if its text looks vital (the only way to pin vital-looking work
    to a cheap lane)."""
    constraints: Constraints = Constraints()
    model: str | None = None
    """Pin a model."""
    instance: str | None = None
    """Pin a target: an instance or a pool."""
    strategy: str | None = None
    chain: str | None = None
    """Name of a configured fallback chain to use instead of the decision's."""
    project: str | None = Field(default=None, max_length=128)
    user: str | None = Field(default=None, max_length=128)
    idempotency_key: str | None = Field(default=None, max_length=256)
    cache: bool = True
    """False: never answer this job from the response cache (it is still stored there)."""
    priority: Priority = Priority.INTERACTIVE
    """``batch``: a worker takes it only when no interactive job waits on its lane."""
    deadline_s: float | None = Field(default=None, gt=0, le=7 * 86400)
    """Seconds from submit within which the caller wants the result: options expected to
    finish in time rank first, and a job whose wait for capacity would pass it moves on to
    the next step of its chain instead of waiting."""
    stream: bool = False
    """The caller reads the answer as it is generated (``handle.stream()``): the worker
    relays each call's deltas through Redis. Never batched."""
    economy: bool = False
    """The caller can wait for the provider's batch API (half price, answers within its
    window, usually within the hour): the job goes there when its lane has one."""
    metadata: dict[str, str] = Field(default_factory=dict)

    @field_validator("*", mode="before")
    @classmethod
    def _utf8(cls, value: Any, info: ValidationInfo) -> Any:
        # Checked before the types: such text would fail later, far from here, as a
        # UnicodeEncodeError (sizing, hashing, the wire) that names no field. Each message
        # checks its own, so the error names the message.
        if info.field_name == "messages":
            return value
        return _utf8_only(value, depth=DEEP if info.field_name in _NESTED else 2)

    @field_validator("output_schema")
    @classmethod
    def _output_schema(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if value is None else object_schema(value)

    @model_validator(mode="after")
    def _one_input(self) -> Job:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("give exactly one of 'prompt' or 'messages'")
        if self.messages is not None and self.messages[-1].role != "user":
            raise ValueError("the last message must have role 'user'")
        problem = _tool_problem(self)
        if problem is not None:
            raise ValueError(problem)
        return self

    def as_messages(self) -> list[dict[str, Any]]:
        """The conversation in the Messages API's form: ``{"role", "content"}``, the content
        a string or a list of block dicts."""
        if self.messages is not None:
            return [m.model_dump(mode="json", exclude_none=True) for m in self.messages]
        return [{"role": "user", "content": self.prompt or ""}]

    def system_text(self) -> str | None:
        """The system prompt as one text (its blocks joined)."""
        if isinstance(self.system, list):
            return "\n".join(b.text for b in self.system)
        return self.system

    def payload_bytes(self) -> int:
        """UTF-8 bytes of what it carries: prefix, prompt, system, messages (media as sent,
        in base64), tools, schema, metadata."""
        texts = [self.cache_prefix or "", self.prompt or "", self.system_text() or ""]
        texts += [f"{k}{v}" for k, v in self.metadata.items()]
        size = sum(len(t.encode()) for t in texts)
        for message in self.messages or ():
            content = message.content
            size += len(content.encode()) if isinstance(content, str) else _json_bytes(content)
        return size + _json_bytes(self.tools) + _json_bytes(self.output_schema)

    def fingerprint(self) -> str:
        """A digest of everything but the id: two submits of one job share it."""
        data = json.dumps(self.model_dump(mode="json", exclude={"id"}), sort_keys=True)
        return hashlib.sha256(data.encode()).hexdigest()[:32]

    def text(self) -> str:
        """All the text the model will read (prefix, system, messages), for classifying and
        sizing."""
        parts = [self.cache_prefix or "", self.system_text() or ""]
        parts += [m.text() for m in self.messages or ()] or [self.prompt or ""]
        return "\n".join(p for p in parts if p)

    def extra_tokens(self) -> int:
        """Input tokens beyond the text: images, PDFs, tool definitions, the schema."""
        blocks = [b for m in self.messages or () for b in m.blocks()]
        tokens = sum(media_tokens(b) for b in blocks)
        if self.tools or self.output_schema:
            schema_bytes = _json_bytes(self.tools) + _json_bytes(self.output_schema)
            tokens += TOOL_OVERHEAD_TOKENS + schema_bytes // 4
        return tokens

    def features(self) -> frozenset[str]:
        """What the answering model must take (``models.<name>.features``)."""
        found: set[str] = set()
        for message in self.messages or ():
            for block in message.blocks():
                found |= block_features(block)
        if self.tools or self.output_schema:
            found.add("tools")
        return frozenset(found)


_NESTED = frozenset({"tools", "output_schema", "system", "metadata"})


def _json_bytes(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, list) and value and isinstance(value[0], BaseModel):
        value = [v.model_dump(mode="json", exclude_none=True) for v in value]
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())


def _tool_problem(job: Job) -> str | None:
    """What is wrong with the job's tools, tool choice and tool turns, or None."""
    names = [t.name for t in job.tools or ()]
    if len(set(names)) != len(names):
        return "tools: two tools share a name"
    if job.tool_choice is not None and not names and job.tool_choice.type != "none":
        return "tool_choice: give 'tools' to choose from"
    if job.tool_choice is not None and job.tool_choice.name not in (None, *names):
        return f"tool_choice: no tool is named {job.tool_choice.name!r}"
    if job.output_schema is not None and (names or job.tool_choice is not None):
        return "output_schema: give it or 'tools'/'tool_choice', not both"
    return _unanswered_results(job.messages or [])


def _unanswered_results(messages: list[Message]) -> str | None:
    """A tool_result must answer a tool_use of the assistant turn just before it."""
    called: set[str] = set()
    for index, message in enumerate(messages):
        blocks = message.blocks()
        if message.role == "assistant":
            called = {b.id for b in blocks if isinstance(b, ToolUseBlock)}
            continue
        for block in blocks:
            if isinstance(block, ToolResultBlock) and block.tool_use_id not in called:
                return (
                    f"messages.{index}: tool_result {block.tool_use_id!r} answers no tool_use"
                    " of the assistant message before it"
                )
        called = set()
    return None


def parse_job(job: Job | dict[str, Any]) -> Job:
    """A Job from a Job or a plain dict; a readable :class:`JobError` if it is invalid."""
    if isinstance(job, Job):
        return job
    try:
        return Job.model_validate(job)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'job'}: "
            f"{str(err['msg']).removeprefix('Value error, ')}"
            for err in exc.errors(include_url=False)
        )
        raise JobError(f"invalid job: {problems}") from None
