"""The lane task's plain function, in process, against the simulator and a real Redis."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from lanes.broker.message import Envelope
from lanes.kernel.config import Config
from lanes.ops.stack import sim_profiles
from lanes.router.decision import Step
from lanes.router.job import Job
from lanes.sim import Fault, Simulator
from lanes.stores.keys import Keys
from lanes.workers.context import WorkerContext
from lanes.workers.outcome import Done, Forward, Retry
from lanes.workers.runner import run_step

from ..conftest import redis_context, write_config


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
            simulator={"mode": "always", "port": sim.port},
            retry={"attempts_per_step": 2, "backoff_base_s": 0.01, "backoff_max_s": 0.02},
        )  # fmt: skip
        context = redis_context(config, redis_client, keys)
        yield context, sim
        context.close()


def _env(chain: list[tuple[str, str]], **kw: object) -> Envelope:
    steps = [Step(instance=i, model=m) for i, m in chain]
    return Envelope(job=Job(prompt="hello", max_tokens=16), chain=steps, instance=steps[0].instance,
                    input_tokens=3, **kw)  # type: ignore[arg-type]  # fmt: skip


def test_runner_redelivered_job_returns_the_recorded_result(
    ctx: tuple[WorkerContext, Simulator],
) -> None:
    context, sim = ctx
    env = _env([("zai", "glm-4.6")])
    first = run_step(context, env)
    second = run_step(context, env)
    assert isinstance(first, Done) and isinstance(second, Done)
    assert first.result == second.result
    assert sim.stats()["zai"]["requests"] == 1


def test_runner_retries_then_forwards(ctx: tuple[WorkerContext, Simulator]) -> None:
    context, sim = ctx
    sim.set_fault("zai", Fault(kind="500"))
    env = _env([("zai", "glm-4.6"), ("koala", "llama3.1:8b")])
    first = run_step(context, env)
    assert isinstance(first, Retry) and first.envelope.attempt == 1
    assert 0 <= first.countdown_s <= 0.02
    second = run_step(context, first.envelope)
    assert isinstance(second, Forward)
    assert (second.envelope.step, second.envelope.instance) == (1, "koala")
    assert second.envelope.fallbacks[0].from_instance == "zai"


def test_runner_skips_a_step_whose_window_cannot_fit(ctx: tuple[WorkerContext, Simulator]) -> None:
    context, sim = ctx
    env = _env([("koala", "qwen2.5-coder:14b"), ("zai", "glm-4.6")]).model_copy(
        update={"input_tokens": 40_000}
    )
    outcome = run_step(context, env)
    assert isinstance(outcome, Forward)
    assert "context window" in outcome.envelope.fallbacks[0].reason
    assert sim.stats().get("koala", {}).get("requests", 0) == 0


def test_runner_exhausted_chain_is_one_failed_result(ctx: tuple[WorkerContext, Simulator]) -> None:
    context, sim = ctx
    sim.set_fault("zai", Fault(kind="529"))
    env = _env([("zai", "glm-4.6")]).model_copy(update={"attempt": 1})
    outcome = run_step(context, env)
    assert isinstance(outcome, Done)
    assert outcome.result.status == "failed"
    assert "chain exhausted" in (outcome.result.error or "")
