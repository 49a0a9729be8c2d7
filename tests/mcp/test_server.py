"""``lanes mcp`` driven by the official MCP client over stdio, as Claude Code drives it: a real
server process, a real worker and the provider simulator behind it (``lane_stack``)."""

from __future__ import annotations

import json
import os
import re
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import anyio
import pytest
import yaml
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, TextContent
from typer.testing import CliRunner

from lanes.entry import app
from lanes.kernel.config import Config
from lanes.mcp.server import INSTRUCTIONS, LanesTools
from lanes.recipes.review.run import SAMPLE_DIFF
from lanes.sim.profiles import Fault

from ..conftest import EXAMPLE, LaneStack, write_config

T = TypeVar("T")
REQUIRED = {
    "ask_local_model",
    "ask_coding_model",
    "list_models",
    "route",
    "submit",
    "result",
    "review",
}
TEST_TIMEOUT_S = 60.0


@asynccontextmanager
async def session(config_path: Path, cwd: Path) -> AsyncIterator[ClientSession]:
    """A client session with ``lanes -c CONFIG mcp``, started as Claude Code starts it."""
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "lanes", "-c", str(config_path), "mcp"],
        env=dict(os.environ),
        cwd=cwd,
    )
    async with stdio_client(params) as (read, write), ClientSession(read, write) as client:
        await client.initialize()
        yield client


def drive(config_path: Path, cwd: Path, steps: Callable[[ClientSession], Awaitable[T]]) -> T:
    """Run ``steps`` against a fresh server, within the test's time limit."""

    async def main() -> T:
        with anyio.fail_after(TEST_TIMEOUT_S):
            async with session(config_path, cwd) as client:
                return await steps(client)

    return anyio.run(main)


def text_of(result: CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, TextContent)
    return block.text


def data_of(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, text_of(result)
    data = json.loads(text_of(result))
    assert isinstance(data, dict)
    return data


def local_lanes(stack: LaneStack) -> set[str]:
    return {n for n, spec in stack.config.instances.items() if "local" in spec.tags}


def cheap_lanes(stack: LaneStack) -> set[str]:
    return {n for n, spec in stack.config.instances.items() if "cheap" in spec.tags}


def test_mcp_lists_every_tool_saying_when_to_delegate_and_when_not(
    lane_stack: LaneStack, tmp_path: Path
) -> None:
    async def steps(client: ClientSession) -> Any:
        return (await client.list_tools()).tools

    tools = drive(lane_stack.config_path, tmp_path, steps)
    assert {tool.name for tool in tools} >= REQUIRED
    assert set(LanesTools.NAMES) == {tool.name for tool in tools}
    for tool in tools:
        description = tool.description or ""
        assert len(description) > 300, tool.name
        assert "Use it" in description, tool.name
        assert "Do NOT" in description or "Not needed" in description, tool.name


def test_mcp_instructions_say_lanes_uses_api_keys_never_a_subscription_login() -> None:
    text = " ".join(INSTRUCTIONS.split())
    assert "own API key" in text
    assert "never uses or proxies a Claude subscription login" in text
    assert "never stands in for the Anthropic API" in text


def test_mcp_ask_local_model_round_trips_through_the_worker_and_the_simulator(
    lane_stack: LaneStack, tmp_path: Path
) -> None:
    async def steps(client: ClientSession) -> CallToolResult:
        args = {"prompt": "Summarise these meeting notes in one line: ship on Friday."}
        return await client.call_tool("ask_local_model", {**args, "max_tokens": 100})

    data = data_of(drive(lane_stack.config_path, tmp_path, steps))
    assert data["status"] == "ok"
    assert local_lanes(lane_stack) == {"koala"}
    assert data["lane"] == "koala"
    assert data["model"] in lane_stack.config.instances["koala"].models
    assert data["text"].strip()
    assert data["simulated"] is True
    assert data["cost_usd"] == 0.0


def test_mcp_ask_local_model_without_a_local_lane_names_the_fix(example_config: Config) -> None:
    instances = {
        name: spec.model_copy(update={"tags": [t for t in spec.tags if t != "local"]})
        for name, spec in example_config.instances.items()
    }
    tools = LanesTools(example_config.model_copy(update={"instances": instances}))
    with pytest.raises(ToolError, match="no enabled lane is tagged 'local'"):
        anyio.run(tools.ask_local_model, "Summarise these notes")


def test_mcp_ask_coding_model_runs_on_a_cheap_lane(lane_stack: LaneStack, tmp_path: Path) -> None:
    async def steps(client: ClientSession) -> CallToolResult:
        prompt = "Write a Python function slugify(text: str) -> str with a docstring."
        return await client.call_tool("ask_coding_model", {"prompt": prompt, "max_tokens": 200})

    data = data_of(drive(lane_stack.config_path, tmp_path, steps))
    assert data["status"] == "ok" and data["text"].strip()
    assert data["lane"] in cheap_lanes(lane_stack)


def test_mcp_route_returns_the_decision_and_enqueues_nothing(
    lane_stack: LaneStack, tmp_path: Path
) -> None:
    async def steps(client: ClientSession) -> tuple[CallToolResult, CallToolResult]:
        plain = await client.call_tool("route", {"prompt": "Summarise RFC 9110 in 3 bullets"})
        vital = await client.call_tool(
            "route", {"prompt": "Review the refund code for SQL injection", "vital": True}
        )
        return plain, vital

    plain, vital = drive(lane_stack.config_path, tmp_path, steps)
    data = data_of(plain)
    expected = {"instance", "model", "estimated_cost_usd", "vital", "reasons", "task_type"}
    assert expected <= set(data)
    assert {"complexity", "difficulty", "chain"} <= set(data)
    assert data["chain"][0] == {"instance": data["instance"], "model": data["model"]}
    assert data["reasons"] and data["estimated_cost_usd"] >= 0
    held = data_of(vital)
    assert held["vital"] is True
    assert not {step["instance"] for step in held["chain"]} & cheap_lanes(lane_stack)


def test_mcp_submit_returns_a_job_id_and_result_fetches_it(
    lane_stack: LaneStack, tmp_path: Path
) -> None:
    async def steps(client: ClientSession) -> tuple[dict[str, Any], dict[str, Any]]:
        job = {"prompt": "Name three prime numbers.", "max_tokens": 50, "instance": "zai"}
        submitted = data_of(await client.call_tool("submit", job))
        args = {"job_id": submitted["job_id"], "wait_s": 30}
        return submitted, data_of(await client.call_tool("result", args))

    submitted, result = drive(lane_stack.config_path, tmp_path, steps)
    assert submitted["job_id"] and submitted["instance"] == "zai"
    assert result["job_id"] == submitted["job_id"]
    assert result["status"] == "ok" and result["lane"] == "zai" and result["text"]
    assert result["cost_usd"] > 0


@pytest.fixture
def slow_koala(lane_stack: LaneStack) -> Iterator[float]:
    """The simulator answers lane koala after 3 s for the test (then as before)."""
    before = lane_stack.sim.profile("koala")
    slow_s = 3.0
    lane_stack.sim.set_profile("koala", before.model_copy(update={"latency_s": slow_s}))
    try:
        yield slow_s
    finally:
        lane_stack.sim.set_profile("koala", before)


def test_mcp_answers_other_calls_while_a_job_runs_and_reports_pending(
    lane_stack: LaneStack, tmp_path: Path, slow_koala: float
) -> None:
    tag = uuid.uuid4().hex  # unique prompts: no answer from the response cache

    async def steps(client: ClientSession) -> dict[str, Any]:
        job = {"prompt": f"Summarise note {tag}: ship Friday.", "instance": "koala"}
        submitted = data_of(await client.call_tool("submit", {**job, "max_tokens": 50}))
        seen: dict[str, Any] = {
            "pending": data_of(await client.call_tool("result", {"job_id": submitted["job_id"]}))
        }

        async def ask() -> None:
            args = {"prompt": f"Summarise note {tag}: ship Monday.", "max_tokens": 50}
            seen["asked"] = await client.call_tool("ask_local_model", args)

        async with anyio.create_task_group() as group:
            group.start_soon(ask)
            await anyio.sleep(0.5)
            started = time.monotonic()
            seen["models"] = await client.call_tool("list_models", {})
            seen["models_s"] = time.monotonic() - started
            seen["asked_before_models"] = "asked" in seen
        args = {"job_id": submitted["job_id"], "wait_s": 20}
        seen["done"] = data_of(await client.call_tool("result", args))
        return seen

    seen = drive(lane_stack.config_path, tmp_path, steps)
    assert seen["pending"] == {"job_id": seen["done"]["job_id"], "status": "pending"}
    assert data_of(seen["models"])["lanes"] and seen["models_s"] < slow_koala / 3
    assert seen["asked_before_models"] is False
    assert data_of(seen["asked"])["lane"] == "koala"
    assert seen["done"]["status"] == "ok" and seen["done"]["lane"] == "koala"


@pytest.fixture
def failing_koala(lane_stack: LaneStack) -> Iterator[None]:
    """Every call to koala fails with a 500 for the test; its lane state is forgotten after."""
    lane_stack.sim.set_fault("koala", Fault(kind="500"))
    try:
        yield
    finally:
        lane_stack.sim.clear_faults("koala")
        with lane_stack.client() as lanes:
            lanes.stores.lane_state.clear("koala")


def test_mcp_ask_local_model_fails_on_the_local_lane_and_is_never_answered_elsewhere(
    lane_stack: LaneStack, tmp_path: Path, failing_koala: None
) -> None:
    # The shipped chain `local` is koala, then zai: the default chain of every job here.
    assert [s.instance for s in lane_stack.config.fallback_chains["local"]] == ["koala", "zai"]
    _, config_path = write_config(lane_stack.config, tmp_path / "cfg",
                                  routing={"default_chain": "local"})  # fmt: skip
    prompt = f"Summarise these private notes {uuid.uuid4().hex}: ship on Friday."

    async def steps(client: ClientSession) -> tuple[CallToolResult, CallToolResult]:
        routed = await client.call_tool("route", {"prompt": prompt, "instance": "koala"})
        return routed, await client.call_tool("ask_local_model", {"prompt": prompt})

    routed, asked = drive(config_path, tmp_path, steps)
    decision = data_of(routed)
    assert {step["instance"] for step in decision["chain"]} == {"koala"}
    assert any(reason.startswith("Local only") for reason in decision["reasons"])
    assert asked.is_error, text_of(asked)
    found = re.search(r"job (\S+) failed on koala/", text_of(asked))
    assert found is not None, text_of(asked)
    with lane_stack.client() as lanes:
        result = lanes.stores.jobs.result(found.group(1))
    assert result is not None and result.status == "failed" and result.instance == "koala"
    assert {event.from_instance for event in result.fallbacks} <= {"koala"}


def test_mcp_bad_input_is_a_tool_error_and_the_server_keeps_serving(
    lane_stack: LaneStack, tmp_path: Path
) -> None:
    calls: list[tuple[str, dict[str, Any]]] = [
        ("result", {"job_id": "no-such-job-4f1c"}),
        ("result", {"job_id": "not a job id!"}),
        ("ask_local_model", {"prompt": ""}),
        ("submit", {"prompt": "hello", "instance": "nowhere"}),
        ("route", {"prompt": "hello", "max_tokens": 0}),
        ("review", {"diff": "  "}),
    ]

    async def steps(client: ClientSession) -> tuple[list[CallToolResult], CallToolResult]:
        errors = [await client.call_tool(name, args) for name, args in calls]
        return errors, await client.call_tool("list_models", {})

    errors, after = drive(lane_stack.config_path, tmp_path, steps)
    assert all(result.is_error for result in errors), [text_of(r) for r in errors]
    texts = [text_of(result) for result in errors]
    assert "no job 'no-such-job-4f1c'" in texts[0]
    assert "is not a job id" in texts[1]
    assert "prompt" in texts[2]
    assert "nowhere" in texts[3]
    assert "max_tokens" in texts[4]
    assert "diff is empty" in texts[5]
    assert all("Traceback" not in text for text in texts)
    assert data_of(after)["lanes"]


def test_mcp_list_models_shows_lanes_tags_prices_and_windows(
    lane_stack: LaneStack, tmp_path: Path
) -> None:
    async def steps(client: ClientSession) -> CallToolResult:
        return await client.call_tool("list_models", {})

    data = data_of(drive(lane_stack.config_path, tmp_path, steps))
    lanes = {lane["lane"]: lane for lane in data["lanes"]}
    assert set(lanes) == set(lane_stack.config.instances)
    assert "local" in lanes["koala"]["tags"] and lanes["koala"]["enabled"] is True
    assert lanes["claude2"]["pools"] == ["vital"]
    opus = next(m for m in lanes["claude1"]["models"] if m["model"] == "claude-opus-4-5")
    assert opus["input_per_mtok"] == 5.0 and opus["output_per_mtok"] == 25.0
    assert opus["context_window"] == 200000 and opus["quality"] == 97


def test_mcp_review_returns_a_markdown_report_naming_the_reviewers(
    lane_stack: LaneStack, tmp_path: Path
) -> None:
    diff = SAMPLE_DIFF.read_text(encoding="utf-8")

    async def steps(client: ClientSession) -> CallToolResult:
        return await client.call_tool("review", {"diff": diff, "timeout_s": 45})

    result = drive(lane_stack.config_path, tmp_path, steps)
    assert not result.is_error, text_of(result)
    markdown = text_of(result)
    assert markdown.startswith("# Code review")
    assert "| reviewer | lane | model |" in markdown
    for name in ("type-safety", "security", "architecture", "performance"):
        assert f"## {name} (" in markdown


def test_mcp_starts_without_redis_and_a_call_names_the_problem(tmp_path: Path) -> None:
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    data["redis_url"] = "redis://127.0.0.1:1/0"
    data["state_dir"] = str(tmp_path / "state")
    config_path = tmp_path / "lanes.yaml"
    config_path.write_text(yaml.safe_dump(data), encoding="utf-8")

    async def steps(client: ClientSession) -> tuple[set[str], CallToolResult, CallToolResult]:
        names = {tool.name for tool in (await client.list_tools()).tools}
        failed = await client.call_tool("route", {"prompt": "hello"})
        return names, failed, await client.call_tool("list_models", {})

    names, failed, models = drive(config_path, tmp_path, steps)
    assert names >= REQUIRED
    assert failed.is_error
    assert "cannot reach Redis at redis://127.0.0.1:1/0" in text_of(failed)
    assert data_of(models)["lanes"]


def test_mcp_command_has_help() -> None:
    result = CliRunner().invoke(app, ["mcp", "--help"])
    assert result.exit_code == 0, result.output
    assert "stdio" in result.output and "--max-waits" in result.output


def test_mcp_command_refuses_a_bound_below_one() -> None:
    result = CliRunner().invoke(app, ["mcp", "--max-waits", "0"])
    assert result.exit_code == 2
    assert "--max-waits" in result.output
