"""Cooldowns, disabled instances, capacity waits and their bounds, in process on real Redis."""

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
from lanes.workers.runner import MAX_COUNTDOWN_S, run_step

from ..conftest import redis_context, write_config


@pytest.fixture
def sim(example_config: Config) -> Iterator[Simulator]:
    with Simulator(port=0, profiles=sim_profiles(example_config)) as server:
        yield server


def _context(
    example_config: Config,
    sim: Simulator,
    client: redis.Redis,
    keys: Keys,
    tmp: object,
    **kw: object,
) -> WorkerContext:
    updates: dict[str, object] = {
        "simulator": {"mode": "always", "port": sim.port},
        "retry": {"attempts_per_step": 1, "max_wait_s": 3, "wait_slice_s": 0.2,
                  "exhausted_cooldown_s": 600},
        "limit_margin": 0,
    }  # fmt: skip
    updates.update(kw)
    config, _ = write_config(example_config, tmp, **updates)  # type: ignore[arg-type]
    return redis_context(config, client, keys)


def _env(instance: str = "zai", model: str = "glm-4.6", **kw: object) -> Envelope:
    chain = [Step(instance=instance, model=model), Step(instance="koala", model="llama3.1:8b")]
    return Envelope(job=Job(prompt="hi", max_tokens=16), chain=chain, instance=instance,
                    input_tokens=2, **kw)  # type: ignore[arg-type]  # fmt: skip


def test_runner_429_cools_the_instance_down_for_every_worker(
    example_config: Config, sim: Simulator, redis_client: redis.Redis, keys: Keys,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:  # fmt: skip
    first = _context(example_config, sim, redis_client, keys, tmp_path_factory.mktemp("a"))
    other = _context(example_config, sim, redis_client, keys, tmp_path_factory.mktemp("b"))
    sim.set_fault("zai", Fault(kind="429", retry_after_s=30, count=1))
    outcome = run_step(first, _env())
    assert isinstance(outcome, Forward)  # attempts_per_step 1: on to the next step
    assert first.stores.lane_state.status("zai").cooldown_s > 25
    requests = sim.stats()["zai"]["requests"]
    waiting = run_step(other, _env())  # another worker: must not call a cooling instance
    assert isinstance(waiting, Retry)
    assert 0 < waiting.countdown_s <= MAX_COUNTDOWN_S
    assert waiting.envelope.waited_s == waiting.countdown_s
    assert sim.stats()["zai"]["requests"] == requests


def test_runner_spend_cap_429_marks_the_account_exhausted(
    example_config: Config, sim: Simulator, redis_client: redis.Redis, keys: Keys,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:  # fmt: skip
    ctx = _context(example_config, sim, redis_client, keys, tmp_path_factory.mktemp("c"))
    sim.set_fault("koala", Fault(kind="429", retry_after_s=None, count=1))
    run_step(ctx, _env("koala", "llama3.1:8b"))
    cooldown_s = ctx.stores.lane_state.status("koala").cooldown_s
    assert 590 < cooldown_s <= 600


def test_runner_auth_failure_disables_the_instance_and_falls_back(
    example_config: Config, sim: Simulator, redis_client: redis.Redis, keys: Keys,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:  # fmt: skip
    ctx = _context(example_config, sim, redis_client, keys, tmp_path_factory.mktemp("d"))
    sim.set_fault("zai", Fault(kind="401", count=1))
    outcome = run_step(ctx, _env())
    assert isinstance(outcome, Forward) and outcome.envelope.instance == "koala"
    disabled = ctx.stores.lane_state.status("zai").disabled_reason
    assert disabled is not None and "ZAI_API_KEY" in disabled
    again = run_step(ctx, _env().model_copy(update={"job": Job(prompt="later", max_tokens=16)}))
    assert isinstance(again, Forward) and "disabled" in again.envelope.fallbacks[0].reason


def test_runner_waits_are_bounded_then_fall_back_or_fail(
    example_config: Config, sim: Simulator, redis_client: redis.Redis, keys: Keys,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:  # fmt: skip
    ctx = _context(example_config, sim, redis_client, keys, tmp_path_factory.mktemp("e"))
    ctx.stores.lane_state.cool_down("zai", 60, "test")
    ctx.stores.lane_state.cool_down("koala", 60, "test")
    waited = _env().model_copy(update={"waited_s": 3.0})  # retry.max_wait_s is 3
    moved = run_step(ctx, waited)
    assert isinstance(moved, Forward) and moved.envelope.instance == "koala"
    assert "waited 3s" in moved.envelope.fallbacks[0].reason
    last = moved.envelope.model_copy(update={"waited_s": 3.0})
    failed = run_step(ctx, last)
    assert isinstance(failed, Done) and failed.result.status == "failed"
    assert "cooling down" in (failed.result.error or "")


def test_runner_capacity_wait_requeues_without_calling(
    example_config: Config, sim: Simulator, redis_client: redis.Redis, keys: Keys,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:  # fmt: skip
    data = example_config.model_dump(mode="json")["instances"]
    data["zai"]["limits"] = {"requests_per_min": 1}
    ctx = _context(example_config, sim, redis_client, keys, tmp_path_factory.mktemp("f"),
                   instances=data)  # fmt: skip
    assert isinstance(run_step(ctx, _env()), Done)
    second = run_step(ctx, _env().model_copy(update={"job": Job(prompt="two", max_tokens=16)}))
    assert isinstance(second, Retry) and second.envelope.waited_s > 0
    assert sim.stats()["zai"]["requests"] == 1


def test_runner_pool_member_cooling_hands_job_to_the_other(
    example_config: Config, sim: Simulator, redis_client: redis.Redis, keys: Keys,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:  # fmt: skip
    ctx = _context(example_config, sim, redis_client, keys, tmp_path_factory.mktemp("g"))
    ctx.stores.lane_state.cool_down("claude2", 60, "test")
    chain = [Step(instance="vital", model="claude-sonnet-4-5")]
    env = Envelope(job=Job(prompt="x", max_tokens=8), chain=chain, instance="claude2")
    outcome = run_step(ctx, env)
    assert isinstance(outcome, Forward)
    assert (outcome.envelope.instance, outcome.envelope.step) == ("claude3", 0)
