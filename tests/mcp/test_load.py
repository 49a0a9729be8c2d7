"""``lanes mcp`` under load and at its end, driven by the official MCP client over stdio
against real server processes and real workers: many parallel calls, a lane no worker
consumes, a job merely slow, and stdin closed or SIGTERM while calls wait."""

from __future__ import annotations

import os
import re
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import mcp.types as types
import pytest
import redis
from anyio.abc import Process
from anyio.streams.text import TextReceiveStream
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.shared.exceptions import MCPError
from mcp.shared.message import SessionMessage
from mcp.types import CallToolResult

from lanes.broker.app import create_app, wait_for_queues
from lanes.client import Lanes
from lanes.kernel.config import Config
from lanes.mcp.server import LanesTools
from lanes.ops.processes import child_env, spawn
from lanes.ops.stack import sim_profiles, worker_command
from lanes.sim import Simulator
from lanes.stores.keys import Keys

from ..conftest import LaneStack, write_config
from .test_server import data_of, text_of

PARALLEL = 36
"""Calls of each ask tool at once: 72 in all, far over ``--max-waits``."""
MAX_WAITS = 8
SLOW_S = 15.0
"""How long the simulator takes to answer the slow lane: calls on it are still waiting when
the server is told to stop."""
EXIT_S = 5.0
"""A stopped server must be gone within this."""


def command(config_path: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "lanes", "-c", str(config_path), "mcp", *extra]


@asynccontextmanager
async def over_stdio(cmd: list[str], cwd: Path) -> AsyncIterator[tuple[ClientSession, Process]]:
    """The official client session with a server process this test owns (to close its stdin
    or signal it): newline-delimited JSON-RPC over the process's pipes, as in stdio_client."""
    process = await anyio.open_process(cmd, cwd=cwd, env=dict(os.environ), stderr=sys.stderr)
    assert process.stdin is not None and process.stdout is not None
    stdin, stdout = process.stdin, process.stdout
    inbound_send, inbound = anyio.create_memory_object_stream[SessionMessage | Exception](64)
    outbound, outbound_receive = anyio.create_memory_object_stream[SessionMessage](64)

    async def server_to_client() -> None:
        async with inbound_send:
            buffer = ""
            async for chunk in TextReceiveStream(stdout):
                *lines, buffer = (buffer + chunk).split("\n")
                for line in lines:
                    message = types.jsonrpc_message_adapter.validate_json(line, by_name=False)
                    await inbound_send.send(SessionMessage(message))

    async def client_to_server() -> None:
        async with outbound_receive:
            async for item in outbound_receive:
                data = item.message.model_dump_json(by_alias=True, exclude_unset=True)
                try:
                    await stdin.send((data + "\n").encode())
                except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                    return

    try:
        async with anyio.create_task_group() as group:
            group.start_soon(server_to_client)
            group.start_soon(client_to_server)
            async with ClientSession(inbound, outbound) as client:
                await client.initialize()
                yield client, process
            group.cancel_scope.cancel()
    finally:
        if process.returncode is None:
            process.kill()
        with anyio.CancelScope(shield=True):
            await process.wait()


async def call_quietly(client: ClientSession, name: str, args: dict[str, Any]) -> None:
    """A call whose answer the test does not need (the server is stopped meanwhile)."""
    try:
        await client.call_tool(name, args)
    except (MCPError, anyio.ClosedResourceError, anyio.BrokenResourceError):
        return  # the connection ended under the call


# --- many parallel calls against the session's workers ----------------------------------------


@pytest.fixture
def slowish_koala(lane_stack: LaneStack) -> Iterator[None]:
    """The simulator answers koala after 1.5 s for the test: with koala's concurrency of 4,
    most of the calls on it wait for longer than a waiting tool's first check for a worker."""
    before = lane_stack.sim.profile("koala")
    lane_stack.sim.set_profile("koala", before.model_copy(update={"latency_s": 1.5}))
    try:
        yield
    finally:
        lane_stack.sim.set_profile("koala", before)


def test_mcp_answers_every_one_of_many_parallel_calls_and_lists_models_meanwhile(
    lane_stack: LaneStack, tmp_path: Path, slowish_koala: None
) -> None:
    tag = uuid.uuid4().hex  # unique prompts: no answer from the response cache
    cmd = command(lane_stack.config_path, "--max-waits", str(MAX_WAITS))
    params = StdioServerParameters(command=cmd[0], args=cmd[1:], env=dict(os.environ),
                                   cwd=tmp_path)  # fmt: skip
    answers: dict[tuple[str, int], CallToolResult] = {}
    seen: dict[str, Any] = {}

    async def ask(client: ClientSession, tool: str, i: int) -> None:
        args = {"prompt": f"Summarise note {i} of {tag}: ship on Friday.", "max_tokens": 40}
        answers[(tool, i)] = await client.call_tool(tool, args)

    async def main() -> None:
        with anyio.fail_after(120):
            async with stdio_client(params) as (read, write), ClientSession(read, write) as client:
                await client.initialize()
                async with anyio.create_task_group() as group:
                    for i in range(PARALLEL):
                        group.start_soon(ask, client, "ask_local_model", i)
                        group.start_soon(ask, client, "ask_coding_model", i)
                    await anyio.sleep(0.5)
                    seen["models"] = await client.call_tool("list_models", {})
                    seen["answered_before_models"] = len(answers)

    anyio.run(main)
    assert len(answers) == 2 * PARALLEL
    assert data_of(seen["models"])["lanes"]
    assert seen["answered_before_models"] < 2 * PARALLEL
    on_cheap = 0
    for (tool, _), result in answers.items():
        data = data_of(result)
        assert data["status"] == "ok" and data["text"]
        if tool == "ask_local_model":
            assert data["lane"] == "koala"
        else:
            on_cheap += "cheap" in lane_stack.config.instances[data["lane"]].tags
    # Coding jobs go to the cheap lane first; the router spills some to a dearer lane when the
    # cheap lane's backlog would make them wait longer than a call there (lanes.router.strategies
    # .scored.keeps_time), which depends on how fast this machine drains it.
    assert on_cheap * 2 > PARALLEL


def test_mcp_waiting_calls_never_take_more_threads_than_the_bound(
    lane_stack: LaneStack, slowish_koala: None
) -> None:
    tools = LanesTools(lane_stack.config, max_waits=2)
    tag = uuid.uuid4().hex
    busy: list[int] = []
    answers: list[dict[str, Any]] = []

    async def ask(i: int) -> None:
        prompt = f"Summarise note {i} of {tag}: ship on Friday."
        answers.append(await tools.ask_local_model(prompt, max_tokens=40, timeout_s=120))

    async def main() -> None:
        with anyio.fail_after(120):
            async with anyio.create_task_group() as group:
                for i in range(8):
                    group.start_soon(ask, i)
                while len(answers) < 8:
                    busy.append(tools.waits.busy)
                    await anyio.sleep(0.05)

    try:
        anyio.run(main)
    finally:
        tools.connection.close()
    assert max(busy) == 2
    assert [answer["status"] for answer in answers] == ["ok"] * 8


def test_mcp_ask_on_a_job_merely_slow_keeps_it_running_and_names_its_id(
    lane_stack: LaneStack, tmp_path: Path
) -> None:
    before = lane_stack.sim.profile("koala")
    lane_stack.sim.set_profile("koala", before.model_copy(update={"latency_s": 3.0}))
    prompt = f"Summarise note {uuid.uuid4().hex}: ship on Friday."

    async def main() -> tuple[CallToolResult, CallToolResult]:
        with anyio.fail_after(60):
            async with over_stdio(command(lane_stack.config_path), tmp_path) as (client, _):
                args = {"prompt": prompt, "max_tokens": 40, "timeout_s": 0.5}
                late = await client.call_tool("ask_local_model", args)
                job_id = re.findall(r"with job_id '([^']+)'", text_of(late))[0]
                done = await client.call_tool("result", {"job_id": job_id, "wait_s": 30})
                return late, done

    try:
        late, done = anyio.run(main)
    finally:
        lane_stack.sim.set_profile("koala", before)
    assert late.is_error and "it keeps running" in text_of(late)
    answer = data_of(done)
    assert answer["status"] == "ok" and answer["lane"] == "koala"


# --- a deployment of its own: a slow lane with a worker, a lane without one ---------------------


@dataclass
class OwnStack:
    """Lanes of their own on another db of the test Redis: ``slow`` (a worker, and a
    simulator that takes :data:`SLOW_S` to answer) and ``idle`` (no worker at all)."""

    slow: str
    idle: str
    slow_config: Path
    """A config whose first local lane is ``slow``."""
    idle_config: Path
    """The same deployment, but its first local lane is ``idle``."""
    config: Config
    redis_url: str


def local_lanes_first(data: dict[str, Any], first: str, other: str) -> dict[str, Any]:
    instances = dict(data["instances"])
    koala = instances.pop("koala")
    ordered = {first: koala, other: koala, **instances}
    return {**data, "instances": ordered, "fallback_chains": {}}


@pytest.fixture(scope="module")
def own_stack(
    isolated_redis_url: str, example_config: Config, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OwnStack]:
    tmp = tmp_path_factory.mktemp("mcp-own")
    suffix = uuid.uuid4().hex[:6]
    slow, idle = f"slow{suffix}", f"idle{suffix}"
    sim = Simulator(port=0).start()
    base, _ = write_config(
        example_config,
        tmp / "base",
        redis_url=isolated_redis_url,
        redis_prefix=f"lanes-test-{suffix}",
        state_dir=str(tmp / "state"),
        simulator={"mode": "always", "port": sim.port, "latency_s": 0.05, "latency_jitter_s": 0},
    )
    data = base.model_dump(mode="json")
    slow_cfg, slow_path = write_config(
        Config.model_validate(local_lanes_first(data, slow, idle)), tmp / "slow"
    )
    _, idle_path = write_config(
        Config.model_validate(local_lanes_first(data, idle, slow)), tmp / "idle"
    )
    for name, profile in sim_profiles(slow_cfg).items():
        sim.set_profile(name, profile)
    sim.set_profile(slow, sim.profile(slow).model_copy(update={"latency_s": SLOW_S}))
    env = child_env({"LANES_CONFIG": str(slow_path), "REDIS_URL": isolated_redis_url})
    cmd = worker_command(slow_cfg, [slow], f"test-{slow}", 64)
    worker = spawn(cmd, env=env, log_file=tmp / "worker.log")
    try:
        app = create_app(slow_cfg, isolated_redis_url)
        wait_for_queues(app, {slow}, timeout_s=60)
        app.close()
        yield OwnStack(slow, idle, slow_path, idle_path, slow_cfg, isolated_redis_url)
    finally:
        sim.stop()
        worker.kill()
        worker.wait(timeout=10)
        client = redis.Redis.from_url(isolated_redis_url)
        for key in client.scan_iter(Keys(slow_cfg.redis_prefix).scan_pattern(), count=1000):
            client.delete(key)
        client.close()


def test_mcp_ask_on_a_lane_without_a_worker_names_the_fix_and_cancels_the_job(
    own_stack: OwnStack, tmp_path: Path
) -> None:
    async def main() -> tuple[CallToolResult, CallToolResult, CallToolResult]:
        with anyio.fail_after(45):  # far less than the call's own timeout_s
            async with over_stdio(command(own_stack.idle_config), tmp_path) as (client, _):
                args = {"prompt": "Summarise these notes: ship on Friday.", "timeout_s": 120}
                asked = await client.call_tool("ask_local_model", args)
                job = {"prompt": "Summarise: ship on Monday.", "instance": own_stack.idle}
                submitted = data_of(await client.call_tool("submit", job))
                wait = {"job_id": submitted["job_id"], "wait_s": 120}
                waited = await client.call_tool("result", wait)
                pending = await client.call_tool("result", {"job_id": submitted["job_id"]})
                return asked, waited, pending

    asked, waited, pending = anyio.run(main)
    text = text_of(asked)
    assert asked.is_error and "no worker consumes" in text
    assert f"`lanes worker {own_stack.idle}`" in text and "cancelled" in text
    job_id = text.split("; job ")[-1].split(" cancelled")[0]
    with Lanes(own_stack.config, own_stack.redis_url) as lanes:
        result = lanes.stores.jobs.result(job_id)
    assert result is not None and result.status == "failed"
    assert (result.error or "").startswith("cancelled")
    assert waited.is_error and "stays queued" in text_of(waited)
    assert data_of(pending)["status"] == "pending"


@pytest.mark.parametrize("stop", ["stdin closed", "SIGTERM"])
def test_mcp_server_ends_within_seconds_with_calls_waiting(
    own_stack: OwnStack, tmp_path: Path, stop: str
) -> None:
    # Launched with SIGTERM ignored, as some launchers leave it: the server must still stop.
    launch = (
        "import os, signal, sys; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
        f" os.execv(sys.executable, {command(own_stack.slow_config)!r})"
    )
    ended: dict[str, Any] = {}

    async def main() -> None:
        with anyio.fail_after(60):
            cmd = [sys.executable, "-c", launch]
            async with (
                over_stdio(cmd, tmp_path) as (client, process),
                anyio.create_task_group() as group,
            ):
                for i in range(40):
                    args = {"prompt": f"Summarise note {i}: ship.", "timeout_s": 300}
                    group.start_soon(call_quietly, client, "ask_local_model", args)
                await anyio.sleep(2.0)  # the calls are waiting on their jobs now
                assert process.returncode is None
                if stop == "SIGTERM":
                    process.send_signal(signal.SIGTERM)
                else:
                    assert process.stdin is not None
                    await process.stdin.aclose()
                with anyio.move_on_after(EXIT_S):
                    await process.wait()
                ended["returncode"] = process.returncode
                group.cancel_scope.cancel()

    anyio.run(main)
    assert ended["returncode"] is not None, f"the server still ran {EXIT_S:g} s after {stop}"
