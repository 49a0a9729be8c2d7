"""What the dispatcher does with budgets and the cache before anything is sent: alert actions
bend routing, reservations are sized to the dearest step, a refusal keeps nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from celery import Celery

from lanes.broker.app import create_app
from lanes.dispatch.dispatcher import Dispatcher
from lanes.kernel.config import Config
from lanes.kernel.errors import BudgetExceeded
from lanes.layers.budgets.gate import BudgetGate
from lanes.layers.build import dispatch_layers
from lanes.layers.reservation import RESERVE_INPUT_FACTOR, RESERVE_INPUT_OVERHEAD
from lanes.router.budgets import holds
from lanes.router.engine import Router
from lanes.stores import Stores
from lanes.stores.jobs import Claim
from lanes.stores.memory import memory_stores

from ..router.fixed_classifier import fixed

JOB = {"prompt": "Write the design doc for the billing service", "max_tokens": 500}


@pytest.fixture
def app(example_config: Config) -> Iterator[Celery]:
    made = create_app(example_config, "redis://127.0.0.1:1/0")  # prepare never contacts it
    yield made
    made.close()


def budgeted(config: Config, *alerts: tuple[float, str]) -> Config:
    budgets = config.budgets.model_validate({
        "limits": [{"scope": "global", "period": "daily", "limit_usd": 1.0}],
        "alerts": [{"at": at, "action": action} for at, action in alerts],
    })  # fmt: skip
    return config.model_copy(update={"budgets": budgets})


def dispatcher(config: Config, app: Celery, spent_usd: float) -> tuple[Dispatcher, Stores]:
    """A dispatcher whose global daily budget ($1) has ``spent_usd`` spent already."""
    stores = memory_stores()
    [hold] = holds(config.budgets, instance=None, project=None, user=None,
                   now=datetime.now(UTC))  # fmt: skip
    stores.budget.rebuild({hold.counter: spent_usd}, [hold])
    gate = BudgetGate(config, stores.budget, lambda _hold: spent_usd)
    router = Router(config, classifier=fixed(type="architecture", complexity="complex"))
    layers = dispatch_layers(config, stores, budget=gate)
    return Dispatcher(config, app, router, stores, layers=layers), stores


def test_switch_to_cheaper_routes_cost_optimized_past_its_threshold(
    example_config: Config, app: Celery
) -> None:
    config = budgeted(example_config, (0.5, "switch_to_cheaper"))
    calm, _ = dispatcher(config, app, spent_usd=0.1)
    _, decided = calm.prepare(JOB)
    assert decided.strategy == config.routing.strategy
    pressed, _ = dispatcher(config, app, spent_usd=0.6)
    _, cheaper = pressed.prepare(JOB)
    assert cheaper.strategy == "cost_optimized"
    assert cheaper.estimated_cost_usd < decided.estimated_cost_usd
    # The job's own choice of strategy wins.
    _, own = pressed.prepare({**JOB, "strategy": "performance_optimized"})
    assert own.strategy == "performance_optimized"


def test_block_expensive_models_keeps_them_out_of_the_whole_chain(
    example_config: Config, app: Celery
) -> None:
    config = budgeted(example_config, (0.7, "block_expensive_models"))
    bar = config.budgets.expensive_output_per_mtok
    dear = {name for name, m in config.models.items() if m.price.output_per_mtok >= bar}
    assert dear, "the example config has models at or above the bar"
    calm, _ = dispatcher(config, app, spent_usd=0.1)
    _, free = calm.prepare(JOB)
    assert {step.model for step in free.chain} & dear
    pressed, _ = dispatcher(config, app, spent_usd=0.8)
    _, blocked = pressed.prepare(JOB)
    assert not {step.model for step in blocked.chain} & dear
    assert not {alt.model for alt in blocked.alternatives} & dear


def test_the_reservation_covers_max_tokens_on_the_first_step(
    example_config: Config, app: Celery
) -> None:
    calm, _ = dispatcher(budgeted(example_config), app, spent_usd=0.0)
    envelope, decision = calm.prepare(JOB)
    margin = int(envelope.input_tokens * RESERVE_INPUT_FACTOR) + RESERVE_INPUT_OVERHEAD
    usage = {"input_tokens": margin, "output_tokens": JOB["max_tokens"]}
    expected = example_config.price_usd(envelope.instance, envelope.model, usage)
    assert envelope.reserved_usd == pytest.approx(expected)
    assert envelope.reserved_usd >= decision.estimated_cost_usd


def test_a_refused_submit_keeps_nothing(example_config: Config, app: Celery) -> None:
    full, stores = dispatcher(budgeted(example_config), app, spent_usd=0.999)
    job = {**JOB, "id": "refused-1", "idempotency_key": "key-1"}
    with pytest.raises(BudgetExceeded, match=r"global:daily"):
        full.submit(job)
    assert stores.jobs.quiet_since(float("inf")) == {}  # nothing tracked
    assert stores.jobs.track("other", "fp", "zai", {}, "key-1").claim is Claim.NEW  # key free
