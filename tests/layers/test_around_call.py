"""The layers around a worker's call, through ``run_step`` on the in-memory stores: what each
hands to the two round trips of the step frame, what it does on its own, and that a layer
switched off leaves no trace."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from lanes.broker.message import Envelope
from lanes.broker.result import Result
from lanes.kernel.config import BudgetSpec, Config
from lanes.kernel.errors import Overloaded
from lanes.layers.budgets.gate import BudgetGate
from lanes.layers.budgets.worker import WorkerBudget
from lanes.layers.build import call_layers
from lanes.router.budgets import holds
from lanes.router.cache_key import store_key
from lanes.router.decision import Step
from lanes.router.job import Job
from lanes.stores import Stores
from lanes.stores.frame import Before, StepFrame
from lanes.stores.ledger import CallEvent, LedgerEvent
from lanes.stores.limiter import Reservation
from lanes.stores.memory import memory_stores
from lanes.workers.context import WorkerContext
from lanes.workers.outcome import Done, Retry
from lanes.workers.providers.base import ProviderRequest, ProviderResponse
from lanes.workers.providers.fake import FakeProviders
from lanes.workers.runner import run_step

from ..fakes import FakeClock


class CountingFrame:
    """A step frame that notes what each of its round trips carried."""

    def __init__(self, inner: StepFrame) -> None:
        self.inner = inner
        self.started: list[CallEvent | None] = []
        self.succeeded: list[list[str]] = []

    def before(self, job_id: str, hop: int, instance: str) -> Before:
        return self.inner.before(job_id, hop, instance)

    def start_call(self, job_id: str, step: int, attempt: int, event: CallEvent | None) -> int:
        self.started.append(event)
        return self.inner.start_call(job_id, step, attempt, event)

    def after_success(
        self, result: Result, reservation: Reservation | None, events: Sequence[LedgerEvent] = ()
    ) -> Result:
        self.succeeded.append([event.kind for event in events])
        return self.inner.after_success(result, reservation, events)


def configured(config: Config, *, ledger: bool = True, cache: bool = True) -> Config:
    budgets = BudgetSpec.model_validate(
        {"limits": [{"scope": "global", "period": "daily", "limit_usd": 1.0}]}
    )
    return config.model_copy(update={
        "budgets": budgets,
        "ledger": config.ledger.model_copy(update={"enabled": ledger}),
        "cache": config.cache.model_copy(update={"enabled": cache}),
        "retry": config.retry.model_copy(update={"attempts_per_step": 2}),
    })  # fmt: skip


def context(config: Config, providers: FakeProviders) -> tuple[WorkerContext, CountingFrame]:
    stores = memory_stores(FakeClock(1_000_000.0))
    frame = CountingFrame(stores.frame)
    counted: Stores = dataclasses.replace(stores, frame=frame)
    layers = call_layers(config, counted, budget=WorkerBudget(config, counted.budget))
    return WorkerContext(config, counted, providers, layers=layers), frame


def envelope(config: Config, job_id: str, reserved_usd: float = 0.01) -> Envelope:
    job = Job(id=job_id, prompt="hello there", max_tokens=16)
    return Envelope(
        job=job, chain=[Step(instance="zai", model="glm-4.6")], instance="zai", input_tokens=3,
        reserved_usd=reserved_usd, cache_key=store_key(job, spec=config.cache),
    )  # fmt: skip


def admitted(config: Config, ctx: WorkerContext, env: Envelope) -> None:
    BudgetGate(config, ctx.stores.budget, lambda _hold: 0.0).admit(
        env.job, env.instance, env.reserved_usd
    )


def handed_off(ctx: WorkerContext) -> list[dict[str, Any]]:
    queue = ctx.stores.ledger
    return [json.loads(raw) for raw in queue.oldest(queue.backlog())]


def global_usage(config: Config, ctx: WorkerContext) -> tuple[float, float]:
    [hold] = holds(config.budgets, instance=None, project=None, user=None, now=datetime.now(UTC))
    found = ctx.stores.budget.usage([hold])[hold.counter]
    return found.spent_usd, found.reserved_usd


def test_a_success_hands_its_events_to_the_two_round_trips(example_config: Config) -> None:
    config = configured(example_config)
    ctx, frame = context(config, FakeProviders())
    env = envelope(config, "ok-1")
    admitted(config, ctx, env)
    outcome = run_step(ctx, env)
    assert isinstance(outcome, Done) and outcome.result.ok
    [started] = frame.started
    assert started is not None and started.reserved_usd > 0  # the call, at its reservation
    assert frame.succeeded == [["cost", "outcome"]]  # with the result, in one round trip
    assert [(e["kind"], e.get("call")) for e in handed_off(ctx)] == [
        ("call", 1), ("cost", 1), ("outcome", None)
    ]  # fmt: skip
    assert env.cache_key is not None
    cached = ctx.stores.cache.get(env.cache_key)
    assert cached is not None and cached.text == outcome.result.text
    assert global_usage(config, ctx) == pytest.approx((outcome.result.cost_usd, 0.0))


def test_layers_switched_off_leave_no_trace(example_config: Config) -> None:
    config = configured(example_config, ledger=False, cache=False)
    ctx, frame = context(config, FakeProviders())
    env = envelope(config, "quiet-1")
    assert env.cache_key is None
    outcome = run_step(ctx, env)
    assert isinstance(outcome, Done) and outcome.result.ok
    assert frame.started == [None] and frame.succeeded == [[]]
    assert ctx.stores.ledger.backlog() == 0


def test_a_failed_call_costs_nothing_and_gives_its_budget_back(example_config: Config) -> None:
    def overloaded(request: ProviderRequest) -> ProviderResponse:
        raise Overloaded("529 overloaded")

    config = configured(example_config)
    ctx, _ = context(config, FakeProviders({"zai": overloaded}))
    env = envelope(config, "busy-1")
    admitted(config, ctx, env)
    first = run_step(ctx, env)
    assert isinstance(first, Retry)
    last = run_step(ctx, first.envelope)
    assert isinstance(last, Done) and not last.result.ok
    kinds = [(e["kind"], e.get("cost_usd")) for e in handed_off(ctx)]
    assert kinds == [("call", None), ("cost", 0.0), ("call", None), ("cost", 0.0),
                     ("outcome", 0.0)]  # fmt: skip
    assert global_usage(config, ctx) == (0.0, 0.0)  # nothing spent, nothing held


def test_a_call_a_layer_refuses_is_skipped_and_counted_at_nothing(
    example_config: Config,
) -> None:
    """A message no dispatcher admitted, while its budget is spent: numbered, then refused."""
    config = configured(example_config)
    providers = FakeProviders()
    ctx, _ = context(config, providers)
    spender = envelope(config, "spender", reserved_usd=1.0)
    admitted(config, ctx, spender)  # the budget is full
    outcome = run_step(ctx, envelope(config, "forged", reserved_usd=0.0))
    assert isinstance(outcome, Done) and not outcome.result.ok
    assert outcome.result.error is not None and outcome.result.error.startswith("refused: ")
    assert [(e["kind"], e.get("ok")) for e in handed_off(ctx)] == [
        ("call", None), ("cost", False), ("outcome", None)
    ]  # fmt: skip
    assert not providers.built["zai"].requests


def test_a_fed_chain_link_is_keyed_again_for_the_cache(example_config: Config) -> None:
    config = configured(example_config)
    on, _ = context(config, FakeProviders())
    fed = envelope(config, "link-2").model_copy(update={"cache_key": None})
    keyed = on.layers.after_feed(fed)
    assert keyed.cache_key == store_key(fed.job, spec=config.cache)
    off, _ = context(configured(example_config, cache=False), FakeProviders())
    assert off.layers.after_feed(fed).cache_key is None
