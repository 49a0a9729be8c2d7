"""``run_step`` in process: in-memory stores, a fake provider, a fake clock. No Redis, no HTTP."""

from __future__ import annotations

import pytest

from lanes.broker.message import Envelope
from lanes.broker.result import Result
from lanes.kernel.config import Config
from lanes.kernel.config.models import ALL_MODELS, with_margin
from lanes.kernel.errors import AuthFailed, Overloaded, RateLimited
from lanes.kernel.taxonomy import Priority
from lanes.router.decision import Step
from lanes.router.job import Job
from lanes.stores.memory import memory_stores
from lanes.workers.context import WorkerContext
from lanes.workers.outcome import Done, Drop, Forward, Retry
from lanes.workers.providers.base import ProviderRequest, ProviderResponse
from lanes.workers.providers.fake import FakeProviders, Handler, echo
from lanes.workers.runner import run_step

from ..fakes import FakeClock


def _context(config: Config, providers: FakeProviders, clock: FakeClock) -> WorkerContext:
    fast = config.model_copy(
        update={"retry": config.retry.model_copy(update={"attempts_per_step": 2})}
    )
    return WorkerContext(config=fast, stores=memory_stores(clock), providers=providers, clock=clock)


def _env(*chain: tuple[str, str], **kw: object) -> Envelope:
    steps = [Step(instance=i, model=m) for i, m in chain]
    job = Job(prompt="hello there", max_tokens=16)
    return Envelope(job=job, chain=steps, instance=steps[0].instance, input_tokens=3,
                    **kw)  # type: ignore[arg-type]  # fmt: skip


def _raises(exc: Exception) -> Handler:
    def handler(request: ProviderRequest) -> ProviderResponse:
        raise exc

    return handler


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_000_000.0)


def test_runner_unit_success_records_one_result_and_one_charge(
    example_config: Config, clock: FakeClock
) -> None:
    providers = FakeProviders()
    ctx = _context(example_config, providers, clock)
    env = _env(("zai", "glm-4.6"))
    outcome = run_step(ctx, env)
    assert isinstance(outcome, Done) and outcome.result.status == "ok"
    assert outcome.result.text == "echo: hello there"
    assert outcome.result.cost_usd > 0
    assert ctx.stores.jobs.result(env.job.id) == outcome.result
    assert ctx.stores.jobs.charges(env.job.id) == {"0:0": outcome.result.cost_usd}
    assert len(providers.built["zai"].requests) == 1
    assert (outcome.result.deliveries, outcome.result.waited_s) == (1, 0.0)


def test_runner_unit_a_cancelled_job_makes_no_call_and_gives_its_capacity_back(
    example_config: Config, clock: FakeClock
) -> None:
    providers = FakeProviders()
    ctx = _context(example_config, providers, clock)
    env = _env(("zai", "glm-4.6"))
    ctx.stores.jobs.track(env.job.id, "fp", "zai", env.to_wire())
    given_up = Result(job_id=env.job.id, status="failed", instance="zai", model="glm-4.6",
                      step=0, attempt=0, error="cancelled: the caller left")  # fmt: skip
    [done] = ctx.stores.jobs.cancel([given_up])
    assert done.ended and done.calls == 0
    limits = with_margin(example_config.instances["zai"].limits, example_config.limit_margin)
    before = ctx.stores.limiter.usage("zai", ALL_MODELS, limits)
    outcome = run_step(ctx, env, redelivered=False)
    assert isinstance(outcome, Done) and outcome.result == given_up
    assert "zai" not in providers.built or not providers.built["zai"].requests
    assert ctx.stores.limiter.usage("zai", ALL_MODELS, limits) == before
    assert ctx.stores.jobs.charges(env.job.id) == {}


def test_runner_unit_redelivery_returns_the_result_without_a_call(
    example_config: Config, clock: FakeClock
) -> None:
    providers = FakeProviders()
    ctx = _context(example_config, providers, clock)
    env = _env(("zai", "glm-4.6"))
    first, again = run_step(ctx, env), run_step(ctx, env)
    assert isinstance(first, Done) and isinstance(again, Done)
    assert again.result == first.result
    assert len(providers.built["zai"].requests) == 1


def test_runner_unit_stale_message_is_dropped(example_config: Config, clock: FakeClock) -> None:
    providers = FakeProviders()
    ctx = _context(example_config, providers, clock)
    env = _env(("zai", "glm-4.6"), ("koala", "llama3.1:8b"))
    ctx.stores.jobs.hand_on(env.job.id, env.hop, "koala", {})
    assert isinstance(run_step(ctx, env), Drop)
    assert "zai" not in providers.built or not providers.built["zai"].requests


def test_runner_unit_overloaded_retries_then_falls_back(
    example_config: Config, clock: FakeClock
) -> None:
    providers = FakeProviders({"zai": _raises(Overloaded("529 overloaded"))})
    ctx = _context(example_config, providers, clock)
    first = run_step(ctx, _env(("zai", "glm-4.6"), ("koala", "llama3.1:8b")))
    assert isinstance(first, Retry) and first.envelope.attempt == 1
    second = run_step(ctx, first.envelope)
    assert isinstance(second, Forward) and second.envelope.instance == "koala"
    assert "Overloaded" in second.envelope.fallbacks[0].reason
    third = run_step(ctx, second.envelope)
    assert isinstance(third, Done) and third.result.instance == "koala"
    assert [e.from_instance for e in third.result.fallbacks] == ["zai"]
    assert third.result.deliveries == 3  # the first message, the retry and the fallback


def test_runner_unit_429_cools_the_instance_down_on_the_clock(
    example_config: Config, clock: FakeClock
) -> None:
    providers = FakeProviders({"zai": _raises(RateLimited("429", retry_after_s=30.0))})
    ctx = _context(example_config, providers, clock)
    run_step(ctx, _env(("zai", "glm-4.6"), ("koala", "llama3.1:8b")))
    assert ctx.stores.lane_state.status("zai").cooldown_s == pytest.approx(30.0)
    waiting = run_step(ctx, _env(("zai", "glm-4.6")))
    assert isinstance(waiting, Retry) and waiting.envelope.waited_s > 0
    assert len(providers.built["zai"].requests) == 1  # nobody calls a cooling instance
    clock.advance(31.0)
    assert ctx.stores.lane_state.status("zai").cooldown_s == 0


def test_runner_unit_auth_failure_disables_the_instance(
    example_config: Config, clock: FakeClock
) -> None:
    providers = FakeProviders({"zai": _raises(AuthFailed("401 invalid x-api-key"))})
    ctx = _context(example_config, providers, clock)
    outcome = run_step(ctx, _env(("zai", "glm-4.6"), ("koala", "llama3.1:8b")))
    assert isinstance(outcome, Forward) and outcome.envelope.instance == "koala"
    assert "ZAI_API_KEY" in (ctx.stores.lane_state.status("zai").disabled_reason or "")


def test_runner_unit_exhausted_chain_is_one_failed_result(
    example_config: Config, clock: FakeClock
) -> None:
    providers = FakeProviders({"zai": _raises(Overloaded("529"))})
    ctx = _context(example_config, providers, clock)
    env = _env(("zai", "glm-4.6"), attempt=1)
    outcome = run_step(ctx, env)
    assert isinstance(outcome, Done) and outcome.result.status == "failed"
    assert "chain exhausted" in (outcome.result.error or "")
    assert ctx.stores.jobs.result(env.job.id) == outcome.result
    assert ctx.stores.jobs.charges(env.job.id) == {}


def test_runner_unit_fake_provider_echo_counts_words() -> None:
    request = ProviderRequest(model="m", messages=[{"role": "user", "content": "a b c"}],
                              max_tokens=2)  # fmt: skip
    response = echo(request)
    assert (response.input_tokens, response.output_tokens) == (3, 2)


def test_runner_unit_a_first_delivery_reads_nothing_before_the_call(
    example_config: Config, clock: FakeClock
) -> None:
    providers = FakeProviders()
    ctx = _context(example_config, providers, clock)
    env = _env(("zai", "glm-4.6"))
    first = run_step(ctx, env, redelivered=False)
    assert isinstance(first, Done)
    again = run_step(ctx, env, redelivered=True)  # the broker's redelivery: checked, no call
    assert isinstance(again, Done) and again.result == first.result
    assert len(providers.built["zai"].requests) == 1


def test_runner_unit_own_feedback_reaches_the_lane_view_at_once(
    example_config: Config, clock: FakeClock
) -> None:
    providers = FakeProviders({"zai": _raises(RateLimited("429", retry_after_s=30.0))})
    ctx = _context(example_config, providers, clock)
    assert ctx.lane_status("zai").cooldown_s == 0  # cached from now on
    run_step(ctx, _env(("zai", "glm-4.6"), ("koala", "llama3.1:8b")), redelivered=False)
    waiting = run_step(ctx, _env(("zai", "glm-4.6")), redelivered=False)
    assert isinstance(waiting, Retry)
    assert len(providers.built["zai"].requests) == 1


def test_runner_unit_another_process_cooldown_reaches_the_lane_view_within_its_ttl(
    example_config: Config, clock: FakeClock
) -> None:
    from lanes.workers.context import LANE_STATE_TTL_S

    providers = FakeProviders()
    ctx = _context(example_config, providers, clock)
    assert ctx.lane_status("zai").cooldown_s == 0
    ctx.stores.lane_state.cool_down("zai", 60, "429 seen by another worker")
    clock.advance(LANE_STATE_TTL_S + 0.01)
    outcome = run_step(ctx, _env(("zai", "glm-4.6")), redelivered=False)
    assert isinstance(outcome, Retry)
    assert "zai" not in providers.built or not providers.built["zai"].requests


def test_runner_unit_a_waiting_job_comes_back_at_its_turn_not_all_at_once() -> None:
    from lanes.workers.runner import MAX_COUNTDOWN_S, wait_countdown

    assert wait_countdown(0.2, 0.0, 100.0) == 0.2  # nothing ahead: when the limiter admits it
    assert wait_countdown(0.2, 10.0, 100.0, draw=0.5) == 5.0  # half-way through the jobs ahead
    assert wait_countdown(0.2, 10.0, 100.0, draw=1.0) == 10.0
    assert wait_countdown(0.2, 600.0, 100.0, draw=1.0) == MAX_COUNTDOWN_S
    assert wait_countdown(0.2, 600.0, 3.0, draw=1.0) == 3.0  # what is left of retry.max_wait_s
    assert wait_countdown(0.0, 0.0, 100.0) == 0.05
    draws = {wait_countdown(0.2, 10.0, 100.0) for _ in range(50)}
    assert len(draws) > 10 and all(0.2 <= d <= 10.0 for d in draws)  # spread, not a herd
    assert min(draws) < 5.0 < max(draws)  # over the whole drain: the lane never idles


def test_runner_unit_a_job_whose_wait_would_pass_its_deadline_moves_on(
    example_config: Config, clock: FakeClock
) -> None:
    ctx = _context(example_config, FakeProviders(), clock)
    ctx.stores.lane_state.cool_down("zai", 60, "429")
    chain = (("zai", "glm-4.6"), ("claude1", "claude-haiku-4-5"))
    job = Job(prompt="hello there", max_tokens=16, deadline_s=10)
    env = _env(*chain).model_copy(update={"job": job})
    outcome = run_step(ctx, env)
    assert isinstance(outcome, Forward) and outcome.envelope.instance == "claude1"
    assert "deadline_s 10" in outcome.envelope.fallbacks[-1].reason
    # without a deadline it waits; with nowhere else to go it waits too
    assert isinstance(run_step(ctx, _env(*chain)), Retry)
    last = _env(("zai", "glm-4.6")).model_copy(update={"job": job})
    assert isinstance(run_step(ctx, last), Retry)


def test_runner_unit_a_concurrency_wait_is_a_call_not_a_lease_timeout(
    example_config: Config, clock: FakeClock
) -> None:
    ctx = _context(example_config, FakeProviders(), clock)
    spec = example_config.instances["koala"]  # 4 at once, leases of its 900 s timeout
    for _ in range(4):
        ctx.capacity.acquire("koala", spec, "llama3.1:8b", 3, 16)
    outcome = run_step(ctx, _env(("koala", "llama3.1:8b")))
    assert isinstance(outcome, Retry)
    assert outcome.countdown_s <= example_config.models["llama3.1:8b"].latency_s


def test_runner_unit_a_batch_job_leaves_the_interactive_reserve(
    example_config: Config, clock: FakeClock
) -> None:
    ctx = _context(example_config, FakeProviders(), clock)
    spec = example_config.instances["claude1"]  # 64 at once: 5% (4 slots) kept back
    for _ in range(60):
        ctx.capacity.acquire("claude1", spec, "claude-haiku-4-5", 3, 16)
    batch = _env(("claude1", "claude-haiku-4-5"))
    batch_job = batch.job.model_copy(update={"priority": Priority.BATCH})
    batch = batch.model_copy(update={"job": batch_job})
    assert isinstance(run_step(ctx, batch), Retry)
    interactive = run_step(ctx, _env(("claude1", "claude-haiku-4-5")))
    assert isinstance(interactive, Done) and interactive.result.status == "ok"
