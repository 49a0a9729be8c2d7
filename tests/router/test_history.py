"""LearnedHistory: the historical score from decayed ledger counts, on a fake clock."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pytest

from lanes.kernel.config.models import LearningSpec
from lanes.router.history import LearnedHistory, PerformanceLike, Tally, blended_score, decay
from lanes.stores.ledger import PerformanceRow
from tests.fakes import FakeClock

DAY_S = 86_400.0
SPEC = LearningSpec(prior_samples=5, prior_success=0.9, half_life_s=DAY_S, refresh_s=10)
NOW = 1_800_000_000.0


def row(
    instance: str = "zai",
    samples: float = 100,
    successes: float = 100,
    *,
    model: str = "glm-4.6",
    task_type: str = "code-review",
    ratings: float = 0,
    rating: float | None = None,
    updated_at: float = NOW,
) -> PerformanceRow:
    return PerformanceRow(
        instance=instance,
        model=model,
        task_type=task_type,
        samples=samples,
        successes=successes,
        latency_s=1.0,
        cost_usd=0.01,
        ratings=ratings,
        rating=rating,
        updated_at=updated_at,
    )


@dataclass
class Source:
    """A ledger stand-in: the rows it returns, how often it was asked, whether it fails."""

    rows: list[PerformanceRow]
    calls: int = 0
    fail: bool = False

    def __call__(self) -> Sequence[PerformanceLike]:
        self.calls += 1
        if self.fail:
            raise ConnectionError("ledger database is away")
        return list(self.rows)


def history(
    *rows: PerformanceRow,
    spec: LearningSpec = SPEC,
    pools: Mapping[str, Sequence[str]] | None = None,
) -> tuple[LearnedHistory, Source, FakeClock]:
    source = Source(list(rows))
    clock = FakeClock(NOW)
    return LearnedHistory(spec, source, clock=clock, pools=pools or {}), source, clock


def test_history_unknown_lane_scores_the_prior() -> None:
    learned, _, _ = history(row("zai"))
    assert learned.score("koala", "glm-4.6", "code-review") == SPEC.prior_success
    assert learned.score("zai", "glm-4.5-air", "code-review") == SPEC.prior_success
    assert learned.score("zai", "glm-4.6", "testing") == SPEC.prior_success


def test_history_no_rows_at_all_scores_the_prior() -> None:
    learned, _, _ = history()
    assert learned.score("zai", "glm-4.6", "code-review") == SPEC.prior_success


def test_history_a_row_without_samples_is_the_prior() -> None:
    learned, _, _ = history(row(samples=0, successes=0))
    assert learned.score("zai", "glm-4.6", "code-review") == pytest.approx(0.9)


def test_history_many_successes_near_one() -> None:
    learned, _, _ = history(row(samples=1000, successes=1000))
    score = learned.score("zai", "glm-4.6", "code-review")
    assert score is not None
    assert score > 0.99


def test_history_many_failures_near_zero() -> None:
    learned, _, _ = history(row(samples=1000, successes=0))
    score = learned.score("zai", "glm-4.6", "code-review")
    assert score is not None
    assert score < 0.01


def test_history_few_outcomes_move_the_score_a_little() -> None:
    learned, _, _ = history(row(samples=1, successes=0))
    assert learned.score("zai", "glm-4.6", "code-review") == pytest.approx(4.5 / 6)


def test_history_ratings_pull_the_score() -> None:
    unrated, _, _ = history(row(samples=100, successes=90))
    loved, _, _ = history(row(samples=100, successes=90, ratings=45, rating=5.0))
    hated, _, _ = history(row(samples=100, successes=90, ratings=45, rating=1.0))
    plain = unrated.score("zai", "glm-4.6", "code-review")
    up = loved.score("zai", "glm-4.6", "code-review")
    down = hated.score("zai", "glm-4.6", "code-review")
    assert plain is not None and up is not None and down is not None
    assert down < plain < up
    weight = 45 / 50 * 0.5
    success = (90 + 4.5) / 105
    assert up == pytest.approx((1 - weight) * success + weight * 1.0)
    assert down == pytest.approx((1 - weight) * success)


def test_history_ratings_weigh_at_most_half() -> None:
    learned, _, _ = history(row(samples=10_000, successes=10_000, ratings=10_000, rating=1.0))
    score = learned.score("zai", "glm-4.6", "code-review")
    assert score is not None
    assert 0.49 < score < 0.51


def test_history_decay_brings_a_failing_lane_back_to_the_prior() -> None:
    learned, _, clock = history(row(samples=200, successes=0))
    failing = learned.score("zai", "glm-4.6", "code-review")
    assert failing is not None
    assert failing < 0.05
    clock.advance(1 * DAY_S)
    one_day = learned.score("zai", "glm-4.6", "code-review")
    assert one_day == pytest.approx(4.5 / 105)  # 100 failures left of 200
    clock.advance(11 * DAY_S)
    recovered = learned.score("zai", "glm-4.6", "code-review")
    assert recovered is not None
    assert recovered > 0.85


def test_history_decay_of_each_row_from_its_own_update() -> None:
    learned, _, _ = history(
        row("claude2", samples=10, successes=0, updated_at=NOW - DAY_S, model="m"),
        row("claude3", samples=10, successes=0, updated_at=NOW, model="m"),
    )
    old = learned.score("claude2", "m", "code-review")
    new = learned.score("claude3", "m", "code-review")
    assert old == pytest.approx(4.5 / 10)
    assert new == pytest.approx(4.5 / 15)


def test_history_pool_sums_its_members() -> None:
    learned, _, _ = history(
        row("claude2", samples=10, successes=10, model="m"),
        row("claude3", samples=30, successes=0, model="m"),
        row("claude1", samples=1000, successes=0, model="m"),
        pools={"vital": ["claude2", "claude3"]},
    )
    assert learned.score("vital", "m", "code-review") == pytest.approx((10 + 4.5) / (40 + 5))
    assert learned.score("claude2", "m", "code-review") == pytest.approx((10 + 4.5) / 15)
    assert learned.score("unknown-pool", "m", "code-review") == SPEC.prior_success


def test_history_pool_with_one_known_member() -> None:
    learned, _, _ = history(
        row("claude3", samples=20, successes=20, model="m"), pools={"vital": ("claude2", "claude3")}
    )
    assert learned.score("vital", "m", "code-review") == pytest.approx(24.5 / 25)


def test_history_pool_averages_ratings_by_count() -> None:
    learned, _, _ = history(
        row("claude2", samples=10, successes=10, ratings=30, rating=5.0, model="m"),
        row("claude3", samples=10, successes=10, ratings=10, rating=1.0, model="m"),
        pools={"vital": ["claude2", "claude3"]},
    )
    weight = 40 / 45 * 0.5
    success = 24.5 / 25
    expected = (1 - weight) * success + weight * (4.0 - 1) / 4  # mean rating (150 + 10) / 40
    assert learned.score("vital", "m", "code-review") == pytest.approx(expected)


def test_history_raising_source_keeps_the_last_rows_and_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    learned, source, clock = history(row(samples=100, successes=0))
    before = learned.score("zai", "glm-4.6", "code-review")
    assert before is not None
    source.fail = True
    clock.advance(SPEC.refresh_s)
    with caplog.at_level(logging.WARNING, logger="lanes.router.history"):
        during = learned.score("zai", "glm-4.6", "code-review")
    assert source.calls == 2
    assert during == pytest.approx(before, rel=1e-3)  # the same row (decayed by 10 s)
    assert "ledger database is away" in caplog.text
    assert "keeping the last rows" in caplog.text


def test_history_source_failing_from_the_start_is_unknown(
    caplog: pytest.LogCaptureFixture,
) -> None:
    learned, source, clock = history(row())
    source.fail = True
    assert learned.score("zai", "glm-4.6", "code-review") == SPEC.prior_success
    assert "ledger database is away" in caplog.text
    source.fail = False
    clock.advance(SPEC.refresh_s)
    assert learned.score("zai", "glm-4.6", "code-review") is not None


def test_history_reads_the_source_at_most_every_refresh_s() -> None:
    learned, source, clock = history(row(samples=100, successes=100))
    for _ in range(5):
        learned.score("zai", "glm-4.6", "code-review")
    assert source.calls == 1
    source.rows = [row(samples=100, successes=0)]
    clock.advance(SPEC.refresh_s - 0.5)
    good = learned.score("zai", "glm-4.6", "code-review")
    assert source.calls == 1
    assert good is not None and good > 0.9
    clock.advance(0.5)
    bad = learned.score("zai", "glm-4.6", "code-review")
    assert source.calls == 2
    assert bad is not None and bad < 0.1


def test_history_refresh_zero_reads_on_every_call() -> None:
    spec = SPEC.model_copy(update={"refresh_s": 0.0})
    learned, source, _ = history(row(), spec=spec)
    for _ in range(3):
        learned.score("zai", "glm-4.6", "code-review")
    assert source.calls == 3


def test_history_refresh_forces_the_next_read() -> None:
    learned, source, _ = history(row())
    learned.score("zai", "glm-4.6", "code-review")
    learned.refresh()
    learned.score("zai", "glm-4.6", "code-review")
    assert source.calls == 2


def test_history_one_read_while_other_threads_route_on_the_last_rows() -> None:
    learned, source, clock = history(row())
    learned.score("zai", "glm-4.6", "code-review")
    release = threading.Event()
    reading = threading.Event()
    slow_rows = [row(samples=100, successes=0)]

    def slow_source() -> Sequence[PerformanceLike]:
        source.calls += 1
        reading.set()
        release.wait(5)
        return slow_rows

    learned._source = slow_source
    clock.advance(SPEC.refresh_s)
    reader = threading.Thread(target=learned.score, args=("zai", "glm-4.6", "code-review"))
    reader.start()
    assert reading.wait(5)
    stale = learned.score("zai", "glm-4.6", "code-review")  # does not wait for the read
    release.set()
    reader.join(5)
    assert stale is not None and stale > 0.9
    assert source.calls == 2
    fresh = learned.score("zai", "glm-4.6", "code-review")
    assert fresh is not None and fresh < 0.1


def test_decay_halves_each_half_life() -> None:
    assert decay(0, 10) == 1.0
    assert decay(10, 10) == pytest.approx(0.5)
    assert decay(30, 10) == pytest.approx(0.125)
    assert decay(-5, 10) == 1.0


def test_blended_score_stays_in_range() -> None:
    odd = Tally(samples=1, successes=50, ratings=0)  # more successes than samples: bad data
    assert blended_score(odd, SPEC) == 1.0
