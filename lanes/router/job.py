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

_SURROGATE = re.compile("[\ud800-\udfff]")


def lone_surrogate(text: str) -> int | None:
    """Where ``text`` holds a lone surrogate (a string that cannot be encoded as UTF-8:
    JSON's ``"\\udfff"`` decodes to one), or None when it is UTF-8 text."""
    if text.isascii():
        return None
    found = _SURROGATE.search(text)
    return None if found is None else found.start()


def _utf8_only(value: Any) -> Any:
    """``value`` unchanged if every string in it (keys too) can be encoded as UTF-8; else a
    ValueError saying where (never quoting the offending character: it cannot be printed)."""
    problem = _unencodable(value)
    if problem is not None:
        raise ValueError(
            f"holds text that cannot be encoded as UTF-8 ({problem}); write UTF-8 text"
        )
    return value


def _unencodable(value: Any, depth: int = 2) -> str | None:
    """What in ``value`` is not UTF-8 text, None if nothing. Looks ``depth`` containers deep
    at most: no job field nests deeper, and the types refuse what does."""
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
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    role: Literal["user", "assistant"]
    content: str = Field(min_length=1)

    @field_validator("*", mode="before")
    @classmethod
    def _utf8(cls, value: Any) -> Any:
        return _utf8_only(value)


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
    system: str | None = None
    cache_prefix: str | None = Field(default=None, min_length=1)
    """Text the model reads first, ahead of ``system``, that other jobs share (a diff, a
    document, a long instruction): sent as a cacheable prefix, so the provider bills it at
    its cache rates (a write once, then reads) on the account that holds it."""
    cache_ttl: Literal["5m", "1h"] = "5m"
    """How long the provider keeps the prefix: a 1-hour write costs more (2x input against
    1.25x) but serves jobs spread over an hour."""
    max_tokens: int = Field(default=1024, ge=1, le=128000, strict=True)
    temperature: float | None = Field(default=None, ge=0, le=2)
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
        return value if info.field_name == "messages" else _utf8_only(value)

    @model_validator(mode="after")
    def _one_input(self) -> Job:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("give exactly one of 'prompt' or 'messages'")
        if self.messages is not None and self.messages[-1].role != "user":
            raise ValueError("the last message must have role 'user'")
        return self

    def as_messages(self) -> list[dict[str, str]]:
        """The conversation in provider form: a list of ``{"role", "content"}``."""
        if self.messages is not None:
            return [m.model_dump() for m in self.messages]
        return [{"role": "user", "content": self.prompt or ""}]

    def payload_bytes(self) -> int:
        """UTF-8 bytes of the text it carries: prefix, prompt, system, messages, metadata."""
        texts = [self.cache_prefix or "", self.prompt or "", self.system or ""]
        texts += [m.content for m in self.messages or ()]
        texts += [f"{k}{v}" for k, v in self.metadata.items()]
        return sum(len(t.encode()) for t in texts)

    def fingerprint(self) -> str:
        """A digest of everything but the id: two submits of one job share it."""
        data = json.dumps(self.model_dump(mode="json", exclude={"id"}), sort_keys=True)
        return hashlib.sha256(data.encode()).hexdigest()[:32]

    def text(self) -> str:
        """All the text the model will read (prefix, system, messages), for classifying and
        sizing."""
        parts = [self.cache_prefix or "", self.system or ""]
        parts += [m["content"] for m in self.as_messages()]
        return "\n".join(p for p in parts if p)


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
