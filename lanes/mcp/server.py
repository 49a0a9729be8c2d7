"""``lanes mcp``: lanes as tools for Claude Code (or any MCP client), over stdio.

Claude stays the orchestrator; these tools let it hand work to the lanes of this deployment:
private or bulk work to the local model, self-contained coding sub-tasks to the cheap coding
lane, a diff to the reviewers, any job to the router. Every tool is a call into
:class:`lanes.client.Lanes`.

The server keeps answering whatever runs: ``list_models`` reads the config only, quick calls
(route, submit, a result lookup) run in a small pool of threads of their own, and the tools
that wait for jobs in another, bounded one (``max_waits``; a call over the bound waits its
turn, its ``timeout_s`` running meanwhile): see :mod:`lanes.mcp.threads`. It exits when stdin
closes and at once on SIGTERM or Ctrl-C, calls in flight or not; their jobs run on.

The connection to Redis opens at the first tool call that needs it, not at start: the server
starts at once and lists its tools even while Redis is down; a call then returns the
infrastructure error as a tool error, and a later call tries again
(:class:`lanes.mcp.connection.Connection`).

On stdio the server's stdout carries the protocol and nothing else; logging goes to stderr.

lanes calls every provider with that lane's own API key. It never uses, forwards or proxies a
Claude subscription login (Claude.ai, Pro, Max or Claude Code sign-in), and it is no stand-in
for the Anthropic API: Claude lanes are Anthropic API accounts with their own keys.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, TypeVar

import redis
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field

from lanes.broker.handle import JobHandle
from lanes.broker.result import Result
from lanes.client import Lanes
from lanes.kernel.config import Config
from lanes.kernel.errors import InfrastructureError, JobError, LanesError
from lanes.kernel.taxonomy import StrategyName, TaskType
from lanes.mcp.args import (
    MAX_WAITS,
    ComplexityHint,
    Instance,
    MaxTokens,
    Model,
    Project,
    Prompt,
    Strategy,
    System,
    TaskTypeHint,
    Vital,
    WaitS,
)
from lanes.mcp.connection import Connection
from lanes.mcp.shapes import decision_json, models_json
from lanes.mcp.threads import ThreadPool, settle, wait_result
from lanes.recipes.rows import result_row
from lanes.router.filters import LOCAL_TAG

T = TypeVar("T")

CODING_STRATEGY = StrategyName.CRITICALITY.value
"""Routes the non-vital coding jobs of ``ask_coding_model`` to a cheap lane."""
QUICK_THREADS = 4
"""Threads for the quick calls: routing, submitting, looking a result up. Few on purpose:
routing is partly CPU work, and more threads would take the GIL from the event loop, which
then reads and answers everything else (``list_models`` too) late; a burst of submits goes
no faster with more."""
MAX_ERROR_CHARS = 4000
"""Longest tool error message."""
JOB_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
"""The job id pattern of :class:`lanes.router.job.Job`."""

INSTRUCTIONS = """\
lanes routes LLM jobs to the cheapest model that is good enough, on accounts with headroom,
through a job queue (Celery + Redis). Use it to delegate work that does not need you:

- ask_local_model: private data that must not leave this machine, and near-free bulk work
  (summaries, extraction, classification).
- ask_coding_model: a self-contained coding sub-task (boilerplate, tests from a pattern, a
  small function, type annotations, docstrings) on the cheap coding lane.
- review: a multi-reviewer code review of a diff, each reviewer on its own lane.
- route / submit / result: ask where a job would go, queue one, fetch its result later.
- list_models: the lanes, their models, prices and context windows.

Keep for yourself: anything you must reason about carefully, security-sensitive code,
architecture decisions, and anything costly if wrong. Check delegated output before you use it.
Each delegated prompt must be self-contained: the model sees nothing of this conversation.

lanes calls every provider with that lane's own API key. It never uses or proxies a Claude
subscription login and never stands in for the Anthropic API: Claude lanes are Anthropic API
accounts with their own keys.
"""


class LanesTools:
    """The MCP tools. Each public coroutine is one tool: its docstring is the description
    Claude reads to decide when to delegate to it, and when not. The work is sync lanes calls,
    run in a thread of a bounded pool (``max_waits`` threads for the calls that wait for jobs);
    a :class:`LanesError` becomes a tool error naming the problem."""

    NAMES = (
        "ask_local_model",
        "ask_coding_model",
        "list_models",
        "route",
        "submit",
        "result",
        "review",
    )
    READ_ONLY = frozenset({"list_models", "route", "result"})

    def __init__(
        self, config: Config, connection: Connection | None = None, max_waits: int = MAX_WAITS
    ) -> None:
        self.config = config
        self.connection = connection or Connection(config)
        self.quick = ThreadPool(QUICK_THREADS, "lanes-mcp-call")
        self.waits = ThreadPool(max_waits, "lanes-mcp-wait")

    def register(self, server: MCPServer[Any]) -> None:
        for name in self.NAMES:
            tool = getattr(self, name)
            server.add_tool(
                tool,
                description=inspect.cleandoc(tool.__doc__ or ""),
                annotations=ToolAnnotations(read_only_hint=name in self.READ_ONLY),
            )

    async def ask_local_model(
        self,
        prompt: Prompt,
        system: System = None,
        max_tokens: MaxTokens = 1024,
        timeout_s: WaitS = 300.0,
    ) -> dict[str, Any]:
        """Run a prompt on the local model (a lane tagged `local`, e.g. Ollama): the data
        never leaves this machine and the call costs next to nothing. Use it for private data
        that must not go to a cloud provider (customer records, internal documents, logs) and
        for near-free bulk work: summaries, extraction, classification, reformatting. Do NOT use
        it for work that needs top reasoning quality, for code you would ship unchecked, or for
        anything vital (security, money, migrations, production incidents): the local model is
        small, and vital work is refused on cheap lanes. Blocks until the answer (or
        `timeout_s`); returns the text, lane, model and cost."""
        instance = self._local_instance()
        job = _job(prompt, system=system, max_tokens=max_tokens, instance=instance)
        return await self._ask(job, timeout_s, local_instance=instance)

    async def ask_coding_model(
        self,
        prompt: Prompt,
        system: System = None,
        max_tokens: MaxTokens = 2048,
        timeout_s: WaitS = 300.0,
    ) -> dict[str, Any]:
        """Delegate a self-contained coding sub-task to the cheap coding lane. Use it for
        boilerplate, unit tests that follow a pattern you show, a small well-specified function,
        type annotations, docstrings, a mechanical refactor; put everything the model needs in
        the prompt (signatures, the pattern, conventions) and review what comes back. Do NOT use
        it for security-sensitive code (auth, crypto, input validation, secrets), architecture
        or design decisions, tricky debugging, or anything costly if wrong: do that yourself.
        The job is marked non-vital and routed by the `criticality` strategy, which puts it on
        a cheap lane. Blocks until the answer (or `timeout_s`); returns the text, lane, model
        and cost."""
        job = _job(
            prompt,
            system=system,
            max_tokens=max_tokens,
            task_type=TaskType.CODE_GENERATION.value,
            vital=False,
            strategy=CODING_STRATEGY,
        )
        return await self._ask(job, timeout_s)

    async def list_models(self) -> dict[str, Any]:
        """List the lanes of this deployment: for each, its provider, tags (`local`, `cheap`,
        `premium`...), whether it is enabled, its pools, and its models with price per million
        tokens (USD), context window and quality (0-100). Use it before pinning a lane or model
        in `route` or `submit`, or to explain where work can go and what it costs. Do NOT call
        it before `ask_local_model`, `ask_coding_model` or `review`: they pick their lanes
        themselves. Reads the config only; works even while the deployment is down."""
        return models_json(self.config)

    async def route(
        self,
        prompt: Prompt,
        system: System = None,
        max_tokens: MaxTokens = 1024,
        task_type: TaskTypeHint = None,
        complexity: ComplexityHint = None,
        vital: Vital = None,
        instance: Instance = None,
        model: Model = None,
        strategy: Strategy = None,
    ) -> dict[str, Any]:
        """Show where lanes would send a job, and why, without sending it: the lane
        (`instance`), model, estimated cost in USD, whether the job is vital, the reasons, the
        task type, complexity, difficulty and the fallback chain. Use it to check a placement
        or a cost before `submit`, or to explain a routing choice. Nothing is queued and nothing
        is spent. Do NOT use it to get an answer: it runs no model."""
        job = _job(
            prompt,
            system=system,
            max_tokens=max_tokens,
            task_type=task_type,
            complexity=complexity,
            vital=vital,
            instance=instance,
            model=model,
            strategy=strategy,
        )
        return await self._call(self._route, job)

    async def submit(
        self,
        prompt: Prompt,
        system: System = None,
        max_tokens: MaxTokens = 1024,
        task_type: TaskTypeHint = None,
        complexity: ComplexityHint = None,
        vital: Vital = None,
        instance: Instance = None,
        model: Model = None,
        strategy: Strategy = None,
        project: Project = None,
    ) -> dict[str, Any]:
        """Queue a job and return at once with its `job_id` (and the lane and model it was
        sent to); fetch the answer later with `result`. Use it to start several independent
        jobs in parallel, or a long one, and keep working meanwhile. The router picks the lane
        unless you pin `instance` or `model`; set `vital: true` for work that is costly if
        wrong (never on a cheap lane). Do NOT use it for a quick question you need answered
        now (`ask_local_model` or `ask_coding_model` wait for you), nor for work you should do
        yourself: security-sensitive code, architecture decisions."""
        job = _job(
            prompt,
            system=system,
            max_tokens=max_tokens,
            task_type=task_type,
            complexity=complexity,
            vital=vital,
            instance=instance,
            model=model,
            strategy=strategy,
            project=project,
        )
        return await self._call(self._submit, job)

    async def result(
        self,
        job_id: Annotated[str, Field(description="The job_id that `submit` returned.")],
        wait_s: Annotated[
            float,
            Field(ge=0, le=3600, description="Seconds to wait if unfinished (0: do not wait)."),
        ] = 0.0,
    ) -> dict[str, Any]:
        """The result of a job queued with `submit`: status (`ok` or `failed`), the lane and
        model that answered, the text, the cost in USD and the error of a failed job; or
        `{"status": "pending"}` while it runs. Use it after `submit`, with `wait_s` to block
        for a while instead of polling in a tight loop. Do NOT use it for jobs of
        `ask_local_model`, `ask_coding_model` or `review`: they return their answers
        themselves. An unknown (or expired) job id is an error."""
        if not JOB_ID.match(job_id):
            raise ToolError(f"{job_id!r:.200} is not a job id (1-128 of A-Z a-z 0-9 _ . : -)")
        if wait_s > 0:
            return await self._waiting(self._result, job_id, wait_s)
        return await self._call(self._result, job_id, 0.0, threading.Event())

    async def review(
        self,
        diff: Annotated[str, Field(description="A unified diff (`git diff` output).")],
        reviewers: Annotated[
            list[str] | None,
            Field(description="Reviewer names to run (default: all configured reviewers)."),
        ] = None,
        timeout_s: WaitS = 600.0,
    ) -> str:
        """Review a diff with several reviewers in parallel (by default type safety, security,
        architecture, performance), each on its own lane: the vital reviews (security,
        architecture, performance) on premium lanes, the others on cheap ones. Returns one
        Markdown report: a table of reviewers with lane, model, status and cost, then each
        reviewer's findings. Use it for a second opinion on a change before it is committed or
        merged. Do NOT use it on a diff that contains secrets (it goes to cloud providers), on
        an empty or unrelated diff, or instead of reading the code yourself: the findings are
        suggestions to check. Blocks until every reviewer answers (or `timeout_s`)."""
        if not diff.strip():
            raise ToolError("the diff is empty: pass the output of `git diff`")
        return await self._waiting(self._review, diff, reviewers, timeout_s)

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in a quick thread; a LanesError becomes a tool error."""
        with tool_errors():
            return await self.quick.run(lambda stop: fn(*args))

    async def _waiting(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args, stop)`` in a waiting thread, once one is free; a LanesError becomes a
        tool error. ``stop`` is set when the call is cancelled (the client gave up)."""
        with tool_errors():
            return await self.waits.run(lambda stop: fn(*args, stop))

    async def _ask(
        self, job: dict[str, Any], timeout_s: float, local_instance: str | None = None
    ) -> dict[str, Any]:
        """Submit ``job`` and wait for its answer (see :func:`lanes.mcp.threads.settle` for a
        job that does not finish)."""
        deadline = time.monotonic() + timeout_s
        handle = await self._call(self._submit_job, job, local_instance)
        result = await self._waiting(self._result_of, handle, deadline, timeout_s)
        if not result.ok:
            raise ToolError(
                f"job {result.job_id} failed on {result.instance}/{result.model}: {result.error}"
            )
        return result_row(result)

    def _local_instance(self) -> str:
        """The first enabled instance tagged ``local``; a tool error naming the fix if none is."""
        for name, spec in self.config.instances.items():
            if spec.enabled and LOCAL_TAG in spec.tags:
                return name
        raise ToolError(
            f"no enabled lane is tagged {LOCAL_TAG!r} in the config: add the tag to a lane"
            " that runs on this machine (an Ollama or LiteLLM endpoint), or use"
            " ask_coding_model / submit"
        )

    def _submit_job(self, job: dict[str, Any], local_instance: str | None) -> JobHandle:
        """Submit ``job``. A local instance's refusal of vital work suggests pinning another
        one; for private data that would be the wrong fix, so the error says so."""
        try:
            return self.connection.get().submit(job)
        except JobError as exc:
            if local_instance is None or "vital" not in str(exc):
                raise
            raise JobError(
                f"{exc}. Private data must stay on {local_instance}: do not send it to another"
                " lane. If the work is not vital after all, use `submit` with instance"
                f" {local_instance!r} and vital false, then `result`"
            ) from exc

    def _result_of(
        self, handle: JobHandle, deadline: float, timeout_s: float, stop: threading.Event
    ) -> Result:
        lanes = self.connection.get()
        return settle(lanes, handle, wait_result(lanes, handle, deadline, stop), timeout_s)

    def _route(self, job: dict[str, Any]) -> dict[str, Any]:
        return decision_json(self.connection.get().route(job))

    def _submit(self, job: dict[str, Any]) -> dict[str, Any]:
        handle = self.connection.get().submit(job)
        decision = handle.decision
        return {
            "job_id": handle.id,
            "instance": handle.instance or (decision.instance if decision else None),
            "model": decision.model if decision else None,
            "estimated_cost_usd": decision.estimated_cost_usd if decision else None,
        }

    def _result(self, job_id: str, wait_s: float, stop: threading.Event) -> dict[str, Any]:
        lanes = self.connection.get()
        found = lanes.stores.jobs.result(job_id)
        if found is None and not known_job(lanes, job_id):
            raise JobError(
                f"no job {job_id!r}: it was never submitted here, or its result expired"
                f" (results are kept {lanes.config.result_ttl_s} s)"
            )
        if found is None and wait_s > 0:
            waited = wait_result(lanes, lanes.job(job_id), time.monotonic() + wait_s, stop)
            if waited.no_worker is not None:
                raise waited.no_worker.noting("; the job stays queued until then")
            found = waited.results[0]
        if found is None:
            return {"job_id": job_id, "status": "pending"}
        return result_row(found)

    def _review(
        self, diff: str, names: list[str] | None, timeout_s: float, stop: threading.Event
    ) -> str:
        from lanes.recipes.review.reviewers import select_reviewers
        from lanes.recipes.review.run import review

        chosen = select_reviewers(self.config, names=names or ())
        report = review(self.connection.get(), diff, reviewers=chosen, timeout_s=timeout_s)
        return report.markdown()


@contextmanager
def tool_errors() -> Iterator[None]:
    """A :class:`LanesError` raised inside becomes a tool error naming it, cut to
    :data:`MAX_ERROR_CHARS` (an error may quote a huge argument back)."""
    try:
        yield
    except LanesError as exc:
        message = f"{type(exc).__name__}: {exc}"
        if len(message) > MAX_ERROR_CHARS:
            cut = len(message) - MAX_ERROR_CHARS
            message = f"{message[:MAX_ERROR_CHARS]}... ({cut} more characters)"
        raise ToolError(message) from exc


def _job(prompt: str, **fields: Any) -> dict[str, Any]:
    """A job dict: ``prompt`` and the fields that are set (enums as their values)."""
    job: dict[str, Any] = {"prompt": prompt}
    for key, value in fields.items():
        if value is not None:
            job[key] = getattr(value, "value", value)
    return job


def known_job(lanes: Lanes, job_id: str) -> bool:
    """Whether ``job_id`` was submitted to this deployment (its id claim is still held)."""
    try:
        return bool(lanes.redis.exists(lanes.keys.owner(job_id)))
    except (redis.RedisError, OSError) as exc:
        raise InfrastructureError(f"cannot look up job {job_id}: {exc}") from None


def _version() -> str:
    try:
        return importlib.metadata.version("lanes")
    except importlib.metadata.PackageNotFoundError:
        return ""


def build_server(
    config: Config, connection: Connection | None = None, max_waits: int = MAX_WAITS
) -> MCPServer[Any]:
    """The lanes MCP server over ``config``; nothing connects until a tool needs Redis."""
    server: MCPServer[Any] = MCPServer(
        "lanes", instructions=INSTRUCTIONS, version=_version(), log_level="WARNING"
    )
    LanesTools(config, connection, max_waits).register(server)
    return server


def serve_stdio(config: Config, max_waits: int = MAX_WAITS) -> None:
    """Serve the tools on stdin/stdout until stdin closes (the client went away; calls in
    flight are dropped), or until SIGTERM or Ctrl-C, which end the process at once.

    Nothing is lost by ending at once: the jobs live in Redis and run on in the workers. The
    signals get their default action even when the launcher had them ignored, so a server
    whose client died can always be stopped. Call from the main thread.
    """
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    connection = Connection(config)
    try:
        build_server(config, connection, max_waits).run("stdio")
    finally:
        connection.close()
