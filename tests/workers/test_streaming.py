"""A streaming job's calls relayed to its Redis stream by the real runner against the
simulator; an answer off its schema charged and retried; tools and images end to end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from lanes.broker.message import Envelope
from lanes.broker.stream import FIRST
from lanes.kernel.config import Config
from lanes.ops.stack import sim_profiles
from lanes.router.decision import Step
from lanes.router.job import Job
from lanes.sim import Fault, Simulator
from lanes.stores.keys import Keys
from lanes.stores.ledger import CostEvent, parse_event
from lanes.workers.context import WorkerContext
from lanes.workers.outcome import Done, Forward, Retry
from lanes.workers.runner import run_step

from ..conftest import redis_context, write_config
from ..router.test_content import WEATHER, image, png


@pytest.fixture
def ctx(
    example_config: Config,
    redis_client: redis.Redis,
    keys: Keys,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[WorkerContext, Simulator]]:
    with Simulator(port=0, profiles=sim_profiles(example_config)) as sim:
        config, _ = write_config(
            example_config, tmp_path_factory.mktemp("cfg"),
            simulator={"mode": "always", "port": sim.port, "latency_s": 0.2,
                       "latency_jitter_s": 0.0},
            retry={"attempts_per_step": 2, "backoff_base_s": 0.01, "backoff_max_s": 0.02},
        )  # fmt: skip
        for name, profile in sim_profiles(config).items():
            sim.set_profile(name, profile)
        context = redis_context(config, redis_client, keys)
        yield context, sim
        context.close()


def envelope(job: Job, *chain: tuple[str, str]) -> Envelope:
    steps = [Step(instance=i, model=m) for i, m in chain]
    return Envelope(job=job, chain=steps, instance=steps[0].instance, input_tokens=20)


@pytest.mark.parametrize(("lane", "model"), [("claude2", "claude-haiku-4-5"),
                                             ("koala", "llama3.1:8b")])  # fmt: skip
def test_a_streaming_call_is_relayed_piece_by_piece_then_ended(
    ctx: tuple[WorkerContext, Simulator], lane: str, model: str
) -> None:
    context, _ = ctx
    job = Job(prompt="Explain the three-way TCP handshake.", max_tokens=60, stream=True)
    done = run_step(context, envelope(job, (lane, model)))
    assert isinstance(done, Done) and done.result.ok
    events = [e for _, e in context.stores.streams.read(job.id, FIRST, 0.01)]
    assert events[0].kind == "start" and (events[0].instance, events[0].model) == (lane, model)
    texts = [e.text for e in events if e.kind == "text"]
    assert len(texts) > 3 and "".join(texts) == done.result.text
    assert events[-1].kind == "end" and events[-1].status == "ok"


def test_a_retry_restarts_the_stream_and_says_why(ctx: tuple[WorkerContext, Simulator]) -> None:
    context, sim = ctx
    sim.set_fault("zai", Fault(kind="500", count=1))
    job = Job(prompt="List four HTTP methods.", max_tokens=40, stream=True, vital=False)
    first = run_step(context, envelope(job, ("zai", "glm-4.6")))
    assert isinstance(first, Retry)
    assert isinstance(run_step(context, first.envelope), Done)
    kinds = [e.kind for _, e in context.stores.streams.read(job.id, FIRST, 0.01)]
    assert kinds[:2] == ["start", "restart"] and kinds[-1] == "end"
    restart = context.stores.streams.read(job.id, FIRST, 0.01)[1][1]
    assert "try 2 on zai/glm-4.6" in restart.reason


def test_an_answer_off_its_schema_is_charged_retried_and_passed_on(
    ctx: tuple[WorkerContext, Simulator],
) -> None:
    context, sim = ctx
    # The simulator ignores "pattern", so its answers never match this schema.
    schema = {"type": "object", "required": ["code"],
              "properties": {"code": {"type": "string", "pattern": "^[0-9]{6}$"}}}  # fmt: skip
    job = Job(prompt="Give the code.", max_tokens=200, output_schema=schema)
    outcome = run_step(context, envelope(job, ("claude2", "claude-haiku-4-5"),
                                         ("claude3", "claude-sonnet-4-5")))  # fmt: skip
    assert isinstance(outcome, Retry)
    outcome = run_step(context, outcome.envelope)
    assert isinstance(outcome, Forward) and "does not match output_schema" in (
        outcome.envelope.fallbacks[0].reason
    )
    assert sim.stats()["claude2"]["ok"] == 2  # both answers came back, and were billed
    events = [parse_event(raw) for raw in context.stores.ledger.oldest(100_000)]
    costs = [e for e in events if isinstance(e, CostEvent) and e.job_id == job.id]
    assert len(costs) == 2 and all(not c.ok and c.cost_usd > 0 for c in costs)
    assert all(c.output_tokens > 0 for c in costs)


def test_a_forced_tool_call_and_an_image_come_back_as_blocks(
    ctx: tuple[WorkerContext, Simulator],
) -> None:
    context, _ = ctx
    job = Job.model_validate({
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "What city is in this picture? Then get_weather for it."},
            image(png(40, 30))]}],
        "tools": [WEATHER], "tool_choice": {"type": "tool", "name": "get_weather"},
        "max_tokens": 200,
    })  # fmt: skip
    for lane, model in [("claude2", "claude-haiku-4-5"), ("koala", "llama3.1:8b")]:
        plain = Job.model_validate({**job.model_dump(), "id": f"{job.id}-{lane}"})
        if lane == "koala":  # an OpenAI-compatible lane: no image, the tool only
            first = plain.messages[0].content[0]  # type: ignore[index]
            plain = plain.model_copy(update={"messages": [plain.messages[0].model_copy(  # type: ignore[index]
                update={"content": [first]})]})  # fmt: skip
        done = run_step(context, envelope(plain, (lane, model)))
        assert isinstance(done, Done) and done.result.ok, done
        assert done.result.stop_reason == "tool_use"
        (call,) = done.result.tool_calls
        assert call["name"] == "get_weather" and isinstance(call["input"]["city"], str)
