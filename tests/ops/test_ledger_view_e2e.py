"""Money and memory end to end: real worker process, simulator, Redis and ledger (SQLite).

The ledger records every job once with what it cost; identical requests are answered from the
cache without a call (never a cheap lane's answer to vital work); a budget refuses at submit
and is settled by the worker; outcomes and ratings recorded in the ledger move the router's
traffic, and give it back as they age.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lanes.client import Lanes
from lanes.kernel.config import Config
from lanes.kernel.errors import BudgetExceeded
from lanes.router.budgets import holds
from lanes.router.engine import Router
from lanes.router.history import LearnedHistory
from lanes.router.job import Job
from lanes.stores.ledger import OutcomeEvent
from lanes.stores.sql import SqlLedger, open_ledger
from lanes.workers.services.ledger_drain import drain_all
from tests.router.fixed_classifier import fixed

from ..conftest import LaneStack

EPOCH = datetime.fromtimestamp(0, UTC)
HAIKU = {"instance": "claude1", "model": "claude-haiku-4-5"}


@pytest.fixture
def lanes(lane_stack: LaneStack) -> Iterator[Lanes]:
    with lane_stack.client() as client:
        yield client


@pytest.fixture
def ledger(lane_stack: LaneStack) -> Iterator[SqlLedger]:
    opened = open_ledger(lane_stack.config)
    yield opened
    opened.close()


def unique(text: str) -> str:
    return f"{text} ({uuid.uuid4().hex[:8]})"


def test_every_job_is_in_the_ledger_once_with_its_cost(
    lanes: Lanes, ledger: SqlLedger, lane_stack: LaneStack
) -> None:
    handles = [lanes.submit({"prompt": unique("Summarise the release notes"), "max_tokens": 40,
                             "project": "books-e2e"}) for _ in range(3)]  # fmt: skip
    results = [h.get(timeout_s=60) for h in handles]
    drain_all(lanes.stores.ledger, ledger)
    rows = {row["job_id"]: row for row in ledger.export(EPOCH)}
    for result in results:
        row = rows[result.job_id]
        assert (row["status"], row["instance"], row["model"]) == ("ok", result.instance,
                                                                   result.model)  # fmt: skip
        assert row["cost_usd"] == pytest.approx(result.cost_usd)
        assert row["decided_instance"] is not None  # its decision is there too
    assert ledger.spend_since(EPOCH, project="books-e2e") == pytest.approx(
        sum(r.cost_usd for r in results)
    )


def test_an_identical_request_is_answered_from_the_cache_without_a_call(
    lanes: Lanes, lane_stack: LaneStack, ledger: SqlLedger
) -> None:
    job = {"prompt": unique("List three uses of a bloom filter"), "max_tokens": 40, **HAIKU}
    first = lanes.submit(job).get(timeout_s=60)
    calls = lane_stack.sim.stats()["claude1"]["requests"]
    again = lanes.submit(job).get(timeout_s=10)
    assert again.cached and again.text == first.text
    assert again.cost_usd == 0 and again.cost_saved_usd == pytest.approx(first.cost_usd)
    assert lane_stack.sim.stats()["claude1"]["requests"] == calls  # no provider call
    opted_out = lanes.submit({**job, "cache": False}).get(timeout_s=60)
    assert not opted_out.cached
    assert lane_stack.sim.stats()["claude1"]["requests"] == calls + 1
    drain_all(lanes.stores.ledger, ledger)
    row = {r["job_id"]: r for r in ledger.export(EPOCH)}[again.job_id]
    assert row["cached"] and row["cost_saved_usd"] == pytest.approx(first.cost_usd)


def test_a_cheap_lanes_cached_answer_never_serves_vital_work(lanes: Lanes) -> None:
    prompt = unique("Check this login handler for a security hole")
    cheap = lanes.submit({"prompt": prompt, "max_tokens": 40, "instance": "zai", "vital": False})
    assert cheap.get(timeout_s=60).instance == "zai"
    vital = lanes.submit({"prompt": prompt, "max_tokens": 40}).get(timeout_s=60)
    assert not vital.cached
    assert vital.instance not in ("zai", "koala")


def test_a_budget_refuses_at_submit_and_the_worker_settles_it(lanes: Lanes) -> None:
    project = f"p{uuid.uuid4().hex[:8]}"
    job = {"prompt": unique("Write a haiku about queues"), "max_tokens": 40, "project": project,
           "cache": False, **HAIKU}  # fmt: skip
    envelope, _ = lanes.dispatcher.prepare(job)
    reservation = envelope.reserved_usd
    budget_id = f"project:{project}:daily"
    lanes.stores.budget.set_limit(budget_id, reservation * 1.5)
    time.sleep(1.1)  # dispatcher and worker read overrides at most once a second
    first = lanes.submit(job)
    with pytest.raises(BudgetExceeded) as refused:
        lanes.submit({**job, "prompt": unique("Write another haiku")})
    assert refused.value.exit_code == 4
    assert budget_id in str(refused.value) and "resets at" in str(refused.value)
    result = first.get(timeout_s=60)
    [hold] = [h for h in holds(lanes.config.budgets, instance=None, project=project, user=None,
                               now=datetime.now(UTC), overrides={budget_id: reservation * 1.5})
              if h.budget_id == budget_id]  # fmt: skip
    deadline = time.monotonic() + 10
    usage = lanes.stores.budget.usage([hold])[hold.counter]
    while usage.reserved_usd > 0 and time.monotonic() < deadline:
        time.sleep(0.1)
        usage = lanes.stores.budget.usage([hold])[hold.counter]
    assert usage.reserved_usd == 0
    assert usage.spent_usd == pytest.approx(result.cost_usd, rel=1e-6)


# -- learning from the ledger ---------------------------------------------------------------
KOALA = ("koala", "qwen2.5-coder:14b")
REVIEW = Job(id="learn", prompt="Review this diff for off-by-one errors: ...")


def outcomes(instance: str, model: str, ok: bool, n: int, at: float) -> list[OutcomeEvent]:
    return [
        OutcomeEvent(
            job_id=f"{instance}-{ok}-{uuid.uuid4().hex[:8]}",
            at=at,
            status="ok" if ok else "failed",
            instance=instance,
            model=model,
            step=0,
            attempt=0,
            task_type="code-review",
            latency_s=1.0,
        )
        for _ in range(n)
    ]


class Learner:
    """A router whose history reads a real ledger (re-read on every decision)."""

    def __init__(self, config: Config, tmp_path: Path) -> None:
        url = f"sqlite:///{tmp_path / 'learning.db'}"
        learning = config.learning.model_copy(update={"refresh_s": 0.0})
        self.config = config.model_copy(update={"database_url": url, "learning": learning})
        self.ledger = open_ledger(self.config)
        self.now = time.time()
        history = LearnedHistory(learning, self.ledger.performance, clock=lambda: self.now,
                                 pools=config.pools)  # fmt: skip
        self.router = Router(self.config, history=history,
                             classifier=fixed(type="code-review", complexity="simple"))  # fmt: skip

    def lane(self) -> tuple[str, str]:
        decision = self.router.decide(REVIEW)
        return decision.instance, decision.model


@pytest.fixture
def learner(example_config: Config, tmp_path: Path) -> Iterator[Learner]:
    made = Learner(example_config, tmp_path)
    yield made
    made.ledger.close()


def test_a_lane_that_keeps_failing_loses_the_task_type_and_wins_it_back(learner: Learner) -> None:
    assert learner.lane() == KOALA
    learner.ledger.write(outcomes(*KOALA, ok=False, n=30, at=learner.now))
    assert learner.lane() != KOALA
    learner.now += 6 * learner.config.learning.half_life_s  # the failures age out
    assert learner.lane() == KOALA


def test_a_lane_rated_low_loses_the_task_type_and_wins_it_back_when_rated_well(
    learner: Learner,
) -> None:
    done = outcomes(*KOALA, ok=True, n=30, at=learner.now)
    learner.ledger.write(done)
    assert learner.lane() == KOALA
    for event in done:
        learner.ledger.rate(event.job_id, 1, learner.now)
    assert learner.lane() != KOALA
    for event in done:
        learner.ledger.rate(event.job_id, 5, learner.now)
    assert learner.lane() == KOALA
