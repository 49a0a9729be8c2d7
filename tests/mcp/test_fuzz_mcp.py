"""Property-based fuzzing of the ``lanes mcp`` tools' arguments, through the in-process server
(the SDK's argument validation, then the tool) against the session's workers and simulator:
random strings, numbers, nulls, huge values, odd unicode, wrong types, unknown keys. Each call
answers or raises a plain ``ToolError`` naming the problem: never a crash (the SDK's
``UnexpectedToolError``, which hides the cause and logs a traceback), never a hang (each case
has a deadline).

Text holds no lone surrogates: the stdio transport decodes UTF-8 with replacement, so none
can reach a tool.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError

from lanes.kernel.taxonomy import Complexity, StrategyName, TaskType
from lanes.mcp.connection import Connection
from lanes.mcp.server import LanesTools, build_server
from lanes.recipes.review.run import SAMPLE_DIFF

from ..conftest import LaneStack
from ..test_fuzz import FUZZ as SHARED_FUZZ

FUZZ = settings(
    SHARED_FUZZ,
    deadline=timedelta(seconds=20),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
ASKS = settings(FUZZ, max_examples=25)
"""Fewer cases for the tools that run jobs: each one is a provider call."""
CALL_LIMIT_S = 60.0

ODD = st.sampled_from(
    [" ", "\x00", "\u202e\u2066rtl", "🦜" * 50, "Ω\r\n\t", "{}", "null", "x" * 600_000]
)
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=60) | ODD
PROMPT = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=80) | ODD
NUMBERS = (
    st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([0, -1, 10**18, 1e308, -0.0])
)
ANY = st.recursive(
    st.none() | st.booleans() | NUMBERS | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6,
)
VALID: dict[str, st.SearchStrategy[Any]] = {
    "prompt": PROMPT,
    "system": st.none() | TEXT,
    "max_tokens": st.integers(min_value=1, max_value=128_000),
    "task_type": st.sampled_from([t.value for t in TaskType]),
    "complexity": st.sampled_from([c.value for c in Complexity]),
    "vital": st.none() | st.booleans(),
    "instance": st.sampled_from(["koala", "zai", "vital", "claude2", "nowhere"]) | TEXT,
    "model": st.sampled_from(["glm-4.6", "llama3.1:8b", "claude-opus-4-5", "gpt-9"]) | TEXT,
    "strategy": st.sampled_from([s.value for s in StrategyName]),
    "project": st.none() | TEXT,
    "timeout_s": st.floats(min_value=0.01, max_value=5.0) | st.just(3600.0),
    "wait_s": st.floats(min_value=0.0, max_value=2.0),
    "job_id": st.from_regex(r"\A[A-Za-z0-9_.:-]{1,128}\Z") | TEXT,
    "diff": st.sampled_from([SAMPLE_DIFF.read_text(encoding="utf-8"), "not a diff"]) | TEXT,
    "reviewers": st.none()
    | st.lists(st.sampled_from(["security", "type-safety", "nobody"]) | TEXT, max_size=3),
}
REQUIRED = {"prompt", "job_id", "diff"}
PARAMS = {
    "ask_local_model": ["prompt", "system", "max_tokens", "timeout_s"],
    "ask_coding_model": ["prompt", "system", "max_tokens", "timeout_s"],
    "list_models": [],
    "route": [
        *("prompt", "system", "max_tokens", "task_type", "complexity", "vital"),
        *("instance", "model", "strategy"),
    ],
    "submit": [
        *("prompt", "system", "max_tokens", "task_type", "complexity", "vital"),
        *("instance", "model", "strategy", "project"),
    ],
    "result": ["job_id", "wait_s"],
    "review": ["diff", "reviewers", "timeout_s"],
}


def arguments(
    tool: str, job_ids: list[str] | None = None, *, wild: bool = False
) -> st.SearchStrategy[dict[str, Any]]:
    """The tool's required arguments, any of its optional ones, each of its type with any
    content. ``wild``: each may be anything at all instead, a required one may be missing, and
    a key the tool does not know may come along. ``job_ids``: ids of real jobs, for
    ``result``."""
    valid = dict(VALID)
    if job_ids:
        valid["job_id"] = st.sampled_from(job_ids) | valid["job_id"]
    if wild:
        valid = {name: st.one_of(strategy, ANY) for name, strategy in valid.items()}
    names = PARAMS[tool]
    required = {name: valid[name] for name in names if name in REQUIRED}
    optional = {name: valid[name] for name in names if name not in REQUIRED}
    own = st.fixed_dictionaries(required, optional=optional)
    if not wild:
        return own
    dropped = st.sets(st.sampled_from(sorted(required) or ["-"]), max_size=1)
    extra = st.dictionaries(st.sampled_from(["extra", "Prompt", "__class__"]), ANY, max_size=1)
    return st.builds(
        lambda a, drop, b: {**b, **{k: v for k, v in a.items() if k not in drop}},
        own,
        dropped,
        extra,
    )


@pytest.fixture(scope="module")
def connection(lane_stack: LaneStack) -> Iterator[Connection]:
    shared = Connection(lane_stack.config)
    yield shared
    shared.close()


def call(lane_stack: LaneStack, connection: Connection, tool: str, args: dict[str, Any]) -> None:
    """One call through a fresh in-process server: it answers, or raises a plain ToolError."""
    assert set(PARAMS) == set(LanesTools.NAMES)
    server = build_server(lane_stack.config, connection, max_waits=4)

    async def main() -> None:
        with anyio.fail_after(CALL_LIMIT_S):
            await server.call_tool(tool, args)

    try:
        anyio.run(main)
    except UnexpectedToolError as exc:
        pytest.fail(f"{tool}({args!r:.300}) crashed: {exc.__cause__!r}")
    except ToolError as exc:
        message = str(exc)
        assert message.strip() and "Traceback" not in message
        assert len(message) <= 20_000, f"{tool} answered {len(message)} characters of error"
        event(f"{tool}: refused")
    else:
        event(f"{tool}: answered")


@pytest.fixture(scope="module")
def job_ids(connection: Connection) -> list[str]:
    """The id of a job that finished."""
    lanes = connection.get()
    done = lanes.submit({"prompt": "Name a prime number.", "max_tokens": 20, "instance": "zai"})
    done.get(timeout_s=30)
    return [done.id]


@pytest.mark.parametrize("wild", [False, True], ids=["typed", "wild"])
@pytest.mark.parametrize("tool", ["list_models", "route", "submit", "result"])
def test_fuzz_mcp_quick_tools_answer_or_refuse(
    lane_stack: LaneStack, connection: Connection, job_ids: list[str], tool: str, wild: bool
) -> None:
    @FUZZ
    @given(args=arguments(tool, job_ids, wild=wild))
    def case(args: dict[str, Any]) -> None:
        call(lane_stack, connection, tool, args)

    case()


@pytest.mark.parametrize("wild", [False, True], ids=["typed", "wild"])
@pytest.mark.parametrize("tool", ["ask_local_model", "ask_coding_model", "review"])
def test_fuzz_mcp_waiting_tools_answer_or_refuse(
    lane_stack: LaneStack, connection: Connection, tool: str, wild: bool
) -> None:
    @ASKS
    @given(args=arguments(tool, wild=wild))
    def case(args: dict[str, Any]) -> None:
        call(lane_stack, connection, tool, args)

    case()
