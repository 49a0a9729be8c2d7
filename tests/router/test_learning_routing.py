"""Learning end to end: the example config's router, fed outcomes through LearnedHistory.

With the example's weights (``historical`` 0.10 of the total), a lane's historical score can
move its total by at most 9 points against an untried lane (which scores the prior, 0.9).
For a simple code review the router picks koala/qwen2.5-coder:14b at about 70.3 against
claude1/claude-haiku-4-5 at about 67.3: koala leaves once its history drops about 0.3 under
the prior (a run of failures, not one), and comes back as they decay.
"""

from __future__ import annotations

import pytest

from lanes.kernel.config import Config
from lanes.router.engine import Router
from lanes.router.history import LearnedHistory
from lanes.router.job import Job
from lanes.stores.ledger import PerformanceRow
from tests.fakes import FakeClock
from tests.router.fixed_classifier import fixed

TASK = "code-review"
JOB = Job(id="learning", prompt="Review this diff for off-by-one errors: ...")


class Ledger:
    """The ledger's ``performance()``: rows the test edits, one per (instance, model, task)."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.rows: dict[tuple[str, str], PerformanceRow] = {}

    def record(self, instance: str, model: str, samples: float, successes: float) -> None:
        self.rows[instance, model] = PerformanceRow(
            instance=instance,
            model=model,
            task_type=TASK,
            samples=samples,
            successes=successes,
            latency_s=2.0,
            cost_usd=0.0,
            ratings=0,
            rating=None,
            updated_at=self.clock(),
        )

    def performance(self) -> list[PerformanceRow]:
        return list(self.rows.values())


class Setup:
    def __init__(self, config: Config, complexity: str) -> None:
        self.config = config
        self.clock = FakeClock(1_800_000_000.0)
        self.ledger = Ledger(self.clock)
        self.history = LearnedHistory(
            config.learning, self.ledger.performance, clock=self.clock, pools=config.pools
        )
        classifier = fixed(type=TASK, complexity=complexity)
        self.router = Router(config, history=self.history, classifier=classifier)

    def lane(self, job: Job = JOB) -> tuple[str, str]:
        """Where the job goes once the history has been re-read."""
        self.clock.advance(self.config.learning.refresh_s)
        decision = self.router.decide(job)
        return decision.instance, decision.model

    def age(self, half_lives: float) -> None:
        self.clock.advance(half_lives * self.config.learning.half_life_s)


KOALA = ("koala", "qwen2.5-coder:14b")
CLAUDE1_HAIKU = ("claude1", "claude-haiku-4-5")
VITAL_HAIKU = ("vital", "claude-haiku-4-5")


def test_learning_example_weights_are_the_defaults(example_config: Config) -> None:
    weights = example_config.routing.weights
    assert weights.historical == pytest.approx(0.10)
    total = (
        weights.capability + weights.cost + weights.quality + weights.latency + weights.historical
    )
    assert total == pytest.approx(1.0)


def test_learning_failures_move_traffic_and_decay_brings_it_back(example_config: Config) -> None:
    setup = Setup(example_config, "simple")
    assert setup.lane() == KOALA
    setup.ledger.record(*KOALA, samples=100, successes=0)
    assert setup.lane() == CLAUDE1_HAIKU
    setup.age(2)  # 25 failures left: still under the bar
    assert setup.lane() == CLAUDE1_HAIKU
    setup.age(8)  # 0.1 left: back near the prior (0.88)
    assert setup.lane() == KOALA


def test_learning_one_failure_does_not_move_traffic_a_run_of_them_does(
    example_config: Config,
) -> None:
    setup = Setup(example_config, "simple")
    setup.ledger.record(*KOALA, samples=1, successes=0)
    assert setup.lane() == KOALA
    setup.ledger.record(*KOALA, samples=10, successes=0)
    assert setup.lane() == CLAUDE1_HAIKU


def test_learning_successes_win_the_traffic_back(example_config: Config) -> None:
    setup = Setup(example_config, "simple")
    setup.ledger.record(*KOALA, samples=100, successes=0)
    assert setup.lane() == CLAUDE1_HAIKU
    setup.ledger.record(*KOALA, samples=300, successes=200)
    assert setup.lane() == KOALA


def test_learning_is_per_task_type(example_config: Config) -> None:
    setup = Setup(example_config, "simple")
    setup.ledger.record(*KOALA, samples=1000, successes=0)
    assert setup.lane() == CLAUDE1_HAIKU
    testing = fixed(type="testing", complexity="simple")
    router = Router(example_config, history=setup.history, classifier=testing)
    decision = router.decide(JOB)
    assert (decision.instance, decision.model) == KOALA


def test_learning_a_pool_carries_its_members_outcomes(example_config: Config) -> None:
    setup = Setup(example_config, "medium")
    assert setup.lane() == CLAUDE1_HAIKU
    setup.ledger.record(*CLAUDE1_HAIKU, samples=100, successes=0)
    assert setup.lane() == VITAL_HAIKU
    setup.ledger.record("claude2", "claude-haiku-4-5", samples=50, successes=0)
    setup.ledger.record("claude3", "claude-haiku-4-5", samples=50, successes=0)
    assert setup.lane() == ("zai", "glm-4.5-air")
