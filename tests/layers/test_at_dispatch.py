"""The layers on the dispatcher's path: the cache answers instead of a send, the ledger hears
of every decision (and never stops a submit), budgets give back what cancelled jobs held."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

import pytest
from celery import Celery

from lanes.broker.app import create_app
from lanes.dispatch.dispatcher import Dispatcher
from lanes.kernel.config import Config
from lanes.kernel.errors import InfrastructureError
from lanes.layers.budgets.gate import BudgetGate
from lanes.layers.budgets.layer import BudgetsAtDispatch
from lanes.layers.ledger import LedgerAtDispatch
from lanes.router.budgets import holds
from lanes.router.engine import Router
from lanes.stores.cache import CachedAnswer
from lanes.stores.jobs import Cancelled
from lanes.stores.ledger import LedgerEvent
from lanes.stores.memory import memory_stores

from ..router.fixed_classifier import fixed

JOB = {"prompt": "Summarise RFC 9110 in 3 bullets", "max_tokens": 200}


@pytest.fixture
def app(example_config: Config) -> Iterator[Celery]:
    made = create_app(example_config, "redis://127.0.0.1:1/0")  # never contacted here
    yield made
    made.close()


def answer(instance: str = "zai", model: str = "glm-4.6") -> CachedAnswer:
    return CachedAnswer(text="cached text", stop_reason="end_turn", usage={}, input_tokens=5,
                        output_tokens=7, cost_usd=0.002, instance=instance, model=model,
                        created_at=1.0)  # fmt: skip


def test_a_cached_answer_replaces_the_send_and_the_ledger_hears_both(
    example_config: Config, app: Celery
) -> None:
    stores = memory_stores()
    dispatcher = Dispatcher(example_config, app, Router(example_config, classifier=fixed()),
                            stores)  # fmt: skip
    envelope, _ = dispatcher.prepare(JOB)
    assert envelope.cache_key is not None
    stores.cache.put(envelope.cache_key, answer(), 60)
    handle = dispatcher.submit({**JOB, "id": "hit-1"})
    result = stores.jobs.result(handle.id)
    assert result is not None and result.cached and result.cost_saved_usd == 0.002
    queue = stores.ledger
    events = [json.loads(raw) for raw in queue.oldest(queue.backlog())]
    assert [(e["kind"], e.get("cached")) for e in events] == [("decision", None),
                                                              ("outcome", True)]  # fmt: skip


def test_with_the_cache_off_a_message_carries_no_key(example_config: Config, app: Celery) -> None:
    off = example_config.model_copy(
        update={"cache": example_config.cache.model_copy(update={"enabled": False})}
    )
    dispatcher = Dispatcher(off, app, Router(off, classifier=fixed()), memory_stores())
    envelope, _ = dispatcher.prepare(JOB)
    assert envelope.cache_key is None


class DeadSink:
    def emit(self, events: Sequence[LedgerEvent]) -> None:
        raise InfrastructureError("Redis away")


def test_the_ledger_never_stops_a_submit_that_is_on_its_way(
    example_config: Config, app: Celery, caplog: pytest.LogCaptureFixture
) -> None:
    dispatcher = Dispatcher(example_config, app, Router(example_config, classifier=fixed()),
                            memory_stores())  # fmt: skip
    envelope, decision = dispatcher.prepare(JOB)
    with caplog.at_level(logging.WARNING, logger="lanes.dispatcher"):
        LedgerAtDispatch(example_config, DeadSink()).after_send(envelope, decision)
    assert "decision not handed to the ledger" in caplog.text


def test_budgets_give_back_what_cancelled_jobs_held_before_any_call(
    example_config: Config,
) -> None:
    budgets = example_config.budgets.model_validate(
        {"limits": [{"scope": "global", "period": "daily", "limit_usd": 1.0}]}
    )
    config = example_config.model_copy(update={"budgets": budgets})
    stores = memory_stores()
    gate = BudgetGate(config, stores.budget, lambda _hold: 0.0)
    layer = BudgetsAtDispatch(config, gate)
    dispatcher = Dispatcher(config, create_app(config, "redis://127.0.0.1:1/0"),
                            Router(config, classifier=fixed()), stores)  # fmt: skip
    for job_id in ("idle", "running", "done"):
        envelope, _ = dispatcher.prepare({**JOB, "id": job_id})
        layer.at_admit(envelope)
    [hold] = holds(config.budgets, instance=None, project=None, user=None, now=datetime.now(UTC))
    held = stores.budget.usage([hold])[hold.counter].reserved_usd
    layer.after_cancel([Cancelled("idle", True, 0), Cancelled("running", True, 1),
                        Cancelled("done", False, 0)])  # fmt: skip
    left = stores.budget.usage([hold])[hold.counter].reserved_usd
    assert left == pytest.approx(held * 2 / 3)  # only the idle job's reservation went back
    dispatcher.app.close()
