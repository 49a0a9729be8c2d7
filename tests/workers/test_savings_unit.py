"""The worker's part in the providers' discounts, in process: parking a batched job, and the
prefix gate that lets one job write a shared prefix while the others wait for it."""

from __future__ import annotations

from lanes.broker.message import Envelope
from lanes.kernel.config import Config
from lanes.router.decision import Step
from lanes.router.job import Job
from lanes.router.prefix import prefix_digest
from lanes.stores.memory import memory_stores
from lanes.stores.prefixes import Gate
from lanes.workers.context import WorkerContext
from lanes.workers.outcome import Done, Parked, Retry
from lanes.workers.providers.base import ProviderRequest, ProviderResponse
from lanes.workers.providers.fake import FakeProviders
from lanes.workers.runner import run_step

from ..fakes import FakeClock

PREFIX = "shared document line\n" * 400  # 8,400 characters: 2,100 tokens


def _context(config: Config, providers: FakeProviders) -> WorkerContext:
    clock = FakeClock(1_000_000.0)
    return WorkerContext(config=config, stores=memory_stores(clock), providers=providers,
                         clock=clock)  # fmt: skip


def _env(job: Job, instance: str, model: str, **kw: object) -> Envelope:
    return Envelope(job=job, chain=[Step(instance=instance, model=model)], instance=instance,
                    input_tokens=10, **kw)  # type: ignore[arg-type]  # fmt: skip


def _caching(request: ProviderRequest) -> ProviderResponse:
    """Writes the prefix when it is sent."""
    written = len(request.cache_prefix or "") // 4
    return ProviderResponse(text="ok", input_tokens=5, output_tokens=3, stop_reason="end_turn",
                            latency_s=0.0, cache_creation_input_tokens=written)  # fmt: skip


def test_a_batched_step_is_parked_once_and_charged_under_one_call(example_config: Config) -> None:
    providers = FakeProviders()
    ctx = _context(example_config, providers)
    env = _env(Job(prompt="summarise", max_tokens=50), "claude1", "claude-haiku-4-5", batch=True)
    assert isinstance(run_step(ctx, env, redelivered=False), Parked)
    assert isinstance(run_step(ctx, env), Parked)  # the message again: nothing changes
    parked = ctx.stores.batches.member(env.job.id)
    assert parked is not None and parked.call == 1
    assert ctx.stores.batches.waiting([("claude1", "claude-haiku-4-5")]) == [1]
    assert providers.built.get("claude1") is None or not providers.built["claude1"].requests


def test_a_batched_step_is_a_call_once_batches_are_turned_off(example_config: Config) -> None:
    off = example_config.model_copy(
        update={"batch": example_config.batch.model_copy(update={"enabled": False})}
    )
    ctx = _context(off, FakeProviders())
    env = _env(Job(prompt="summarise", max_tokens=50), "claude1", "claude-haiku-4-5", batch=True)
    done = run_step(ctx, env, redelivered=False)
    assert isinstance(done, Done) and done.result.ok and not done.result.batched


def test_jobs_sharing_a_prefix_wait_for_its_writer_then_read(example_config: Config) -> None:
    ctx = _context(example_config, FakeProviders(default=_caching))
    jobs = [Job(prompt=f"review part {i}", cache_prefix=PREFIX, max_tokens=20) for i in range(3)]
    first, second = (_env(job, "claude2", "claude-sonnet-4-5") for job in jobs[:2])
    # The first job takes the gate (its provider call is about to write the prefix)...
    digest = prefix_digest(PREFIX)
    taken = ctx.stores.prefixes.gate(digest, "claude-sonnet-4-5", "claude2", first.job.id, 60)
    assert taken is Gate.WRITE
    waiting = run_step(ctx, second, redelivered=False)
    assert isinstance(waiting, Retry) and waiting.envelope.waited_s > 0
    # ...and once it answered, the others call and read.
    assert isinstance(run_step(ctx, first, redelivered=False), Done)
    assert isinstance(run_step(ctx, waiting.envelope, redelivered=False), Done)


def test_a_job_stops_waiting_for_a_writer_after_the_affinity_wait(example_config: Config) -> None:
    ctx = _context(example_config, FakeProviders(default=_caching))
    job = Job(prompt="review", cache_prefix=PREFIX, max_tokens=20)
    ctx.stores.prefixes.gate(prefix_digest(PREFIX), "claude-sonnet-4-5", "claude2", "other", 60)
    env = _env(job, "claude2", "claude-sonnet-4-5",
               waited_s=example_config.caching.affinity_max_wait_s)  # fmt: skip
    assert isinstance(run_step(ctx, env, redelivered=False), Done)


def test_a_short_prefix_is_not_gated(example_config: Config) -> None:
    ctx = _context(example_config, FakeProviders(default=_caching))
    job = Job(prompt="review", cache_prefix="short", max_tokens=20)
    ctx.stores.prefixes.gate(prefix_digest("short"), "claude-sonnet-4-5", "claude2", "other", 60)
    assert isinstance(run_step(ctx, _env(job, "claude2", "claude-sonnet-4-5"), redelivered=False),
                      Done)  # fmt: skip
