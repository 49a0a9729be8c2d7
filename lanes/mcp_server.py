"""``lanes mcp``: lanes as tools for Claude Code (or any MCP client), over stdio.

Claude stays the orchestrator; these tools let it hand work to the lanes of this deployment:
private or bulk work to the local model, self-contained coding sub-tasks to the cheap coding
lane, a diff to the reviewers, any job to the router. Every tool is a call into
:class:`lanes.client.Lanes`, run in a worker thread so the server keeps answering while a job
runs.

The connection to Redis opens at the first tool call that needs it, not at start: the server
starts at once and lists its tools even while Redis is down; a call then returns the
infrastructure error as a tool error, and the next call tries again.

On stdio the server's stdout carries the protocol and nothing else; logging goes to stderr.

lanes calls every provider with that lane's own API key. It never uses, forwards or proxies a
Claude subscription login (Claude.ai, Pro, Max or Claude Code sign-in), and it is no stand-in
for the Anthropic API: Claude lanes are Anthropic API accounts with their own keys.
"""

from __future__ import annotations

import functools
import importlib.metadata
import inspect
import re
import threading
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import anyio.to_thread
import redis
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field

from broker.embedded import require_answer
from broker.handle import JobHandle
from broker.result import Result
from kernel.config import Config
from kernel.errors import InfrastructureError, JobError, JobTimeout, LanesError
from kernel.taxonomy import Complexity, StrategyName, TaskType
from lanes.client import Lanes
from router.decision import Decision

T = TypeVar("T")

LOCAL_TAG = "local"
CODING_STRATEGY = StrategyName.CRITICALITY.value
"""Routes the non-vital coding jobs of ``ask_coding_model`` to a cheap lane."""
FIRST_WAIT_S = 5.0
"""After this long without a result, a waiting tool checks that some worker serves the lane."""
JOB_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
"""The job id pattern of :class:`router.job.Job`."""

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

Prompt = Annotated[
    str,
    Field(description="The whole task, self-contained: the model sees nothing of this chat."),
]
System = Annotated[str | None, Field(description="Optional system prompt.")]
MaxTokens = Annotated[int, Field(ge=1, le=128000, description="Longest reply, in tokens.")]
WaitS = Annotated[
    float,
    Field(gt=0, le=3600, description="Seconds to wait for the answer before giving up."),
]
TaskTypeHint = Annotated[
    TaskType | None, Field(description="Task type hint; unset: the classifier decides.")
]
ComplexityHint = Annotated[
    Complexity | None, Field(description="Complexity hint; unset: the classifier decides.")
]
Vital = Annotated[
    bool | None,
    Field(
        description="true: vital (costly if wrong), never on a cheap lane; false: cheap lanes"
        " are acceptable; unset: the classifier decides."
    ),
]
Instance = Annotated[str | None, Field(description="Pin a lane or pool (see list_models).")]
Model = Annotated[str | None, Field(description="Pin a model (see list_models).")]
Strategy = Annotated[
    StrategyName | None, Field(description="Routing strategy; unset: the configured one.")
]
Project = Annotated[str | None, Field(description="Project the job's spend is booked to.")]


class Connection:
    """The server's one :class:`Lanes`, opened at the first call that needs it.

    A failed open is not kept: the next call tries again, so a server started before Redis
    recovers by itself. Thread-safe: tools run in worker threads.
    """

    def __init__(self, config: Config) -> None:
        self._config = config
        self._lanes: Lanes | None = None
        self._lock = threading.Lock()

    def get(self) -> Lanes:
        with self._lock:
            if self._lanes is None:
                self._lanes = self._open()
            return self._lanes

    def _open(self) -> Lanes:
        """Connect and PING, so an unreachable Redis is one clear InfrastructureError."""
        lanes = Lanes.connect(self._config)
        try:
            require_answer(lanes.redis_url)
        except InfrastructureError:
            lanes.close()
            raise
        return lanes

    def close(self) -> None:
        with self._lock:
            lanes, self._lanes = self._lanes, None
        if lanes is not None:
            lanes.close()


class LanesTools:
    """The MCP tools. Each public coroutine is one tool: its docstring is the description
    Claude reads to decide when to delegate to it, and when not. The work is sync lanes calls,
    run in a worker thread; a :class:`LanesError` becomes a tool error naming the problem."""

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

    def __init__(self, config: Config, connection: Connection | None = None) -> None:
        self.config = config
        self.connection = connection or Connection(config)

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
        lane = self._local_lane()
        job = _job(prompt, system=system, max_tokens=max_tokens, instance=lane)
        return await self._call(self._ask_local, job, lane, timeout_s)

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
        return await self._call(self._ask, job, timeout_s)

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
        return await self._call(self._result, job_id, wait_s)

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
        return await self._call(self._review, diff, reviewers, timeout_s)

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in a worker thread; a LanesError becomes a tool error."""
        try:
            return await anyio.to_thread.run_sync(
                functools.partial(fn, *args), abandon_on_cancel=True
            )
        except LanesError as exc:
            raise ToolError(f"{type(exc).__name__}: {exc}") from exc

    def _local_lane(self) -> str:
        """The first enabled lane tagged ``local``; a tool error naming the fix if none is."""
        for name, spec in self.config.instances.items():
            if spec.enabled and LOCAL_TAG in spec.tags:
                return name
        raise ToolError(
            f"no enabled lane is tagged {LOCAL_TAG!r} in the config: add the tag to a lane"
            " that runs on this machine (an Ollama or LiteLLM endpoint), or use"
            " ask_coding_model / submit"
        )

    def _ask(self, job: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        lanes = self.connection.get()
        handle = lanes.submit(job)
        result = wait_for(lanes, handle, timeout_s)
        if not result.ok:
            raise ToolError(
                f"job {result.job_id} failed on {result.instance}/{result.model}: {result.error}"
            )
        return result_json(result)

    def _ask_local(self, job: dict[str, Any], lane: str, timeout_s: float) -> dict[str, Any]:
        """:meth:`_ask` on the local lane. Its refusal of vital work suggests pinning another
        lane; for private data that would be the wrong fix, so the error says so."""
        try:
            return self._ask(job, timeout_s)
        except JobError as exc:
            if "vital" not in str(exc):
                raise
            raise JobError(
                f"{exc}. Private data must stay on {lane}: do not send it to another lane. If the"
                f" work is not vital after all, use `submit` with instance {lane!r} and vital"
                " false, then `result`"
            ) from exc

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

    def _result(self, job_id: str, wait_s: float) -> dict[str, Any]:
        if not JOB_ID.match(job_id):
            raise JobError(f"{job_id!r} is not a job id (1-128 of A-Z a-z 0-9 _ . : -)")
        lanes = self.connection.get()
        found = lanes.stores.jobs.result(job_id)
        if found is None and not known_job(lanes, job_id):
            raise JobError(
                f"no job {job_id!r}: it was never submitted here, or its result expired"
                f" (results are kept {lanes.config.result_ttl_s} s)"
            )
        if found is None and wait_s > 0:
            try:
                found = lanes.job(job_id).get(timeout_s=wait_s, raise_on_failure=False)
            except JobTimeout:
                found = None
        if found is None:
            return {"job_id": job_id, "status": "pending"}
        return result_json(found)

    def _review(self, diff: str, names: list[str] | None, timeout_s: float) -> str:
        from lanes.review import review
        from lanes.reviewers import select_reviewers

        if not diff.strip():
            raise JobError("the diff is empty: pass the output of `git diff`")
        chosen = select_reviewers(self.config, names=names or ())
        report = review(self.connection.get(), diff, reviewers=chosen, timeout_s=timeout_s)
        return report.markdown()


def _job(prompt: str, **fields: Any) -> dict[str, Any]:
    """A job dict: ``prompt`` and the fields that are set (enums as their values)."""
    job: dict[str, Any] = {"prompt": prompt}
    for key, value in fields.items():
        if value is not None:
            job[key] = getattr(value, "value", value)
    return job


def wait_for(lanes: Lanes, handle: JobHandle, timeout_s: float) -> Result:
    """The job's result; JobTimeout early, with the fix, when no worker consumes its lane,
    and a JobTimeout naming the job id (for ``result``) when it is merely slow."""
    from lanes.status import consumers

    first_s = min(FIRST_WAIT_S, timeout_s)
    try:
        return handle.get(timeout_s=first_s, raise_on_failure=False)
    except JobTimeout:
        if first_s >= timeout_s:
            raise _still_running(handle, timeout_s) from None
    lane = handle.instance
    if lane is not None and lane not in consumers(lanes.app):
        raise JobTimeout(
            f"job {handle.id} waits on lane {lane}, which no worker consumes: start one with"
            f" `lanes worker {lane}` (or `lanes up`); the job stays queued until then"
        )
    try:
        return handle.get(timeout_s=timeout_s - first_s, raise_on_failure=False)
    except JobTimeout:
        raise _still_running(handle, timeout_s) from None


def _still_running(handle: JobHandle, timeout_s: float) -> JobTimeout:
    return JobTimeout(
        f"job {handle.id} is not finished after {timeout_s:g} s (lane {handle.instance});"
        f" it keeps running: call `result` with job_id {handle.id!r} later"
    )


def known_job(lanes: Lanes, job_id: str) -> bool:
    """Whether ``job_id`` was submitted to this deployment (its id claim is still held)."""
    try:
        return bool(lanes.redis.exists(lanes.keys.owner(job_id)))
    except (redis.RedisError, OSError) as exc:
        raise InfrastructureError(f"cannot look up job {job_id}: {exc}") from None


def result_json(result: Result) -> dict[str, Any]:
    """What a caller needs of a result: where it ran, the answer, what it cost."""
    data: dict[str, Any] = {
        "job_id": result.job_id,
        "status": result.status,
        "instance": result.instance,
        "model": result.model,
        "text": result.text,
        "cost_usd": round(result.cost_usd, 6),
        "input_tokens": result.input_tokens,
        "output_tokens": result.output_tokens,
        "latency_s": round(result.latency_s, 3),
        "fallbacks": len(result.fallbacks),
        "cached": result.cached,
        "simulated": result.simulated,
    }
    if result.error:
        data["error"] = result.error
    return data


def decision_json(decision: Decision) -> dict[str, Any]:
    """A routing decision with the classification's verdicts at the top level."""
    clf = decision.classification
    return {
        "instance": decision.instance,
        "pool": decision.pool,
        "model": decision.model,
        "strategy": decision.strategy,
        "estimated_cost_usd": decision.estimated_cost_usd,
        "estimated_latency_s": decision.estimated_latency_s,
        "confidence": decision.confidence,
        "vital": clf.vital if clf else None,
        "vital_reason": clf.vital_reason if clf else None,
        "task_type": clf.type.value if clf else None,
        "complexity": clf.complexity.value if clf else None,
        "difficulty": clf.difficulty if clf else None,
        "reasons": list(decision.reasons),
        "chain": [step.model_dump() for step in decision.chain],
    }


def models_json(config: Config) -> dict[str, Any]:
    """Every lane with its tags, pools and models (price per MTok after the lane's price
    multiplier, context window, quality)."""
    lanes = []
    for name, spec in config.instances.items():
        models = []
        for model_id in spec.models:
            model = config.models[model_id]
            models.append(
                {
                    "model": model_id,
                    "input_per_mtok": round(model.price.input_per_mtok * spec.price_multiplier, 6),
                    "output_per_mtok": round(
                        model.price.output_per_mtok * spec.price_multiplier, 6
                    ),
                    "context_window": model.context_window,
                    "quality": model.quality,
                }
            )
        lanes.append(
            {
                "lane": name,
                "provider": spec.provider.value,
                "enabled": spec.enabled,
                "tags": list(spec.tags),
                "pools": [pool for pool, members in config.pools.items() if name in members],
                "models": models,
            }
        )
    return {"lanes": lanes, "pools": {pool: list(m) for pool, m in config.pools.items()}}


def _version() -> str:
    try:
        return importlib.metadata.version("lanes")
    except importlib.metadata.PackageNotFoundError:
        return ""


def build_server(config: Config, connection: Connection | None = None) -> MCPServer[Any]:
    """The lanes MCP server over ``config``; nothing connects until a tool needs Redis."""
    server: MCPServer[Any] = MCPServer(
        "lanes", instructions=INSTRUCTIONS, version=_version(), log_level="WARNING"
    )
    LanesTools(config, connection).register(server)
    return server


def serve_stdio(config: Config) -> None:
    """Serve the tools on stdin/stdout until the client closes the connection."""
    connection = Connection(config)
    try:
        build_server(config, connection).run("stdio")
    finally:
        connection.close()
