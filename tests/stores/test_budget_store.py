"""Contract tests of the budget store, run against the in-memory stub and against real Redis,
then the concurrency that budgets must hold under: 50 threads on each, 8 processes on Redis."""

from __future__ import annotations

import multiprocessing
import os
import random
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import redis
from redis.crc import key_slot

from lanes.kernel.config.models import MAX_BUDGET_USD
from lanes.router.budgets import Hold, parse_budget_id, window_hold
from lanes.stores.budget import (
    NANO_PER_USD,
    RESERVATION_TTL_S,
    BudgetStore,
    CallStart,
    CountersMissing,
    Refusal,
    Usage,
    to_nano,
)
from lanes.stores.keys import Keys
from lanes.stores.memory.budget import MemoryBudgetStore
from lanes.stores.redis.budget import RedisBudgetStore

NOW = datetime(2026, 12, 2, 12, tzinfo=UTC)


def hold(budget_id: str, limit_usd: float) -> Hold:
    return window_hold(parse_budget_id(budget_id, limit_usd), "UTC", NOW)


GLOBAL = hold("global:daily", 1.0)
ACME = hold("project:acme:monthly", 0.5)
INST_A = hold("instance:a:daily", 10.0)
INST_B = hold("instance:b:daily", 10.0)
ALL = [GLOBAL, ACME, INST_A, INST_B]


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> BudgetStore:
    if request.param == "memory":
        return MemoryBudgetStore()
    return RedisBudgetStore(
        request.getfixturevalue("redis_client"), request.getfixturevalue("keys")
    )


@pytest.fixture
def built(store: BudgetStore) -> BudgetStore:
    store.rebuild({}, ALL)
    return store


def spent(store: BudgetStore, h: Hold) -> float:
    return store.usage([h])[h.counter].spent_usd


def reserved(store: BudgetStore, h: Hold) -> float:
    return store.usage([h])[h.counter].reserved_usd


def ok(result: Refusal | dict[str, Usage]) -> dict[str, Usage]:
    assert isinstance(result, dict), result
    return result


# -- building -----------------------------------------------------------------------------------


def test_reserve_without_built_counters_raises_and_changes_nothing(store: BudgetStore) -> None:
    with pytest.raises(CountersMissing) as info:
        store.reserve("j1", 0.1, [GLOBAL, ACME])
    assert info.value.budget_ids == ("global:daily", "project:acme:monthly")
    assert not store.is_built()
    assert store.usage([GLOBAL]) == {GLOBAL.counter: Usage(0.0, 0.0, 1.0)}


def test_rebuild_sets_spent_zeroes_reserved_and_marks_built(store: BudgetStore) -> None:
    store.rebuild({GLOBAL.counter: 0.25}, [GLOBAL])
    assert store.is_built()
    assert store.usage([GLOBAL])[GLOBAL.counter] == Usage(0.25, 0.0, 1.0)
    with pytest.raises(CountersMissing) as info:  # only the budgets rebuilt count as built
        store.reserve("j1", 0.1, [GLOBAL, ACME])
    assert info.value.budget_ids == ("project:acme:monthly",)
    assert ok(store.reserve("j2", 0.1, [GLOBAL]))[GLOBAL.counter].reserved_usd == 0.1


def test_rebuild_leaves_an_already_built_budget_alone(store: BudgetStore) -> None:
    store.rebuild({GLOBAL.counter: 0.25}, [GLOBAL])
    ok(store.reserve("j1", 0.1, [GLOBAL]))
    store.rebuild({GLOBAL.counter: 0.75}, [GLOBAL])  # a second process, a little late
    assert store.usage([GLOBAL])[GLOBAL.counter] == Usage(0.25, 0.1, 1.0)


def test_forget_drops_counters_and_marks_but_keeps_overrides(built: BudgetStore) -> None:
    ok(built.reserve("j1", 0.1, [GLOBAL]))
    built.set_limit("global:daily", 2.0)
    built.forget()
    assert not built.is_built()
    assert built.usage([GLOBAL])[GLOBAL.counter] == Usage(0.0, 0.0, 2.0)
    assert built.limits() == {"global:daily": 2.0}
    with pytest.raises(CountersMissing):
        built.reserve("j2", 0.1, [GLOBAL])


# -- reserving ----------------------------------------------------------------------------------


def test_reserve_holds_the_estimate_on_every_counter(built: BudgetStore) -> None:
    usage = ok(built.reserve("j1", 0.1, [GLOBAL, ACME]))
    assert usage == {GLOBAL.counter: Usage(0.0, 0.1, 1.0), ACME.counter: Usage(0.0, 0.1, 0.5)}
    assert built.usage([GLOBAL, ACME]) == usage


def test_reserve_up_to_exactly_the_limit_fits(built: BudgetStore) -> None:
    ok(built.reserve("j1", 0.3, [ACME]))
    assert ok(built.reserve("j2", 0.2, [ACME]))[ACME.counter].reserved_usd == 0.5
    refused = built.reserve("j3", 1e-9, [ACME])
    assert isinstance(refused, Refusal)


def test_refusal_names_the_first_hold_that_does_not_fit_and_takes_nothing(
    built: BudgetStore,
) -> None:
    ok(built.reserve("j1", 0.4, [GLOBAL, ACME]))
    refused = built.reserve("j2", 0.2, [GLOBAL, ACME])
    assert refused == Refusal(ACME, Usage(0.0, 0.4, 0.5))
    assert reserved(built, GLOBAL) == 0.4  # not 0.6: all or nothing
    ok(built.reserve("j2", 0.2, [GLOBAL]))  # the job id did not keep a record


def test_reserve_twice_for_one_job_reserves_once(built: BudgetStore) -> None:
    first = ok(built.reserve("j1", 0.3, [ACME]))
    again = ok(built.reserve("j1", 0.3, [ACME]))
    assert again == first
    assert reserved(built, ACME) == 0.3


def test_an_override_in_the_store_beats_the_holds_limit(built: BudgetStore) -> None:
    built.set_limit("project:acme:monthly", 0.1)
    assert built.limits() == {"project:acme:monthly": 0.1}
    refused = built.reserve("j1", 0.2, [ACME])
    assert isinstance(refused, Refusal)
    assert refused.usage.limit_usd == 0.1
    built.set_limit("project:acme:monthly", 5.0)
    assert ok(built.reserve("j1", 2.0, [ACME]))[ACME.counter] == Usage(0.0, 2.0, 5.0)
    built.set_limit("project:acme:monthly", None)
    assert built.limits() == {}
    assert built.usage([ACME])[ACME.counter].limit_usd == 0.5


def test_set_limit_refuses_a_malformed_budget_id(store: BudgetStore) -> None:
    with pytest.raises(ValueError, match="must end with a period"):
        store.set_limit("project:acme:weekly", 1.0)
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        store.set_limit("global:daily", -1.0)
    assert store.limits() == {}


@pytest.mark.parametrize("limit_usd", [1e308, 1e10, float("inf"), float("nan")])
def test_set_limit_refuses_a_limit_no_counter_can_hold(
    store: BudgetStore, limit_usd: float
) -> None:
    """A ValueError (never an OverflowError), and nothing stored: above a billion USD the
    scripts would hand the limit back negative."""
    with pytest.raises(ValueError, match=r"largest budget|finite"):
        store.set_limit("global:daily", limit_usd)
    assert store.limits() == {}


def test_the_largest_limit_comes_back_from_the_scripts_as_itself(store: BudgetStore) -> None:
    """The reserve script adds spent, reserved and the estimate to the limit and hands all
    back as Redis integers: at the largest limit lanes accepts, none of them overflows."""
    biggest = hold("global:monthly", MAX_BUDGET_USD)
    store.rebuild({biggest.counter: MAX_BUDGET_USD / 2}, [biggest])
    store.set_limit("global:monthly", MAX_BUDGET_USD)
    usage = store.reserve("job-1", MAX_BUDGET_USD / 4, [biggest])
    assert not isinstance(usage, Refusal)
    assert usage[biggest.counter] == Usage(MAX_BUDGET_USD / 2, MAX_BUDGET_USD / 4, MAX_BUDGET_USD)
    refused = store.reserve("job-2", MAX_BUDGET_USD / 2, [biggest])
    assert isinstance(refused, Refusal) and refused.usage.limit_usd == MAX_BUDGET_USD


def test_to_nano_refuses_what_a_redis_integer_cannot_hold() -> None:
    assert to_nano(9.2e9) == 9_200_000_000 * NANO_PER_USD
    for too_much in (9.3e9, 1e308):
        with pytest.raises(ValueError, match=r"from 0 to 9\.22e"):
            to_nano(too_much)


def test_amounts_beyond_lua_number_printing_stay_exact(store: BudgetStore) -> None:
    """Hundreds of thousands of USD (over 1e14 nano-USD, where Lua's default number printing
    turns to exponents, which HINCRBY refuses) stay exact to the nano-USD."""
    big = hold("global:monthly", 250_000.0)
    store.rebuild({big.counter: 1234.56789}, [big])
    ok(store.reserve("j1", 150_000.000000001, [big]))
    store.start_call("j1", "c1", 150_000.000000001, [big])
    assert store.start_call("j1", "c2", 100_000.0, [big]) is CallStart.ORPHANED  # 150k spent
    store.settle("j1", "c2", 99_999.5, [big], final=True)
    usage = store.usage([big])[big.counter]
    assert usage.reserved_usd == 0.0
    expected = sum(to_nano(usd) for usd in (1234.56789, 150_000.000000001, 99_999.5))
    assert round(usage.spent_usd * NANO_PER_USD) == expected


# -- calls and settling -------------------------------------------------------------------------


def test_final_settle_spends_actual_and_frees_the_estimate(built: BudgetStore) -> None:
    ok(built.reserve("j1", 0.2, [GLOBAL, ACME]))
    assert built.start_call("j1", "0:0:1", 0.2, [GLOBAL, ACME]) is CallStart.STARTED
    built.settle("j1", "0:0:1", 0.07, [GLOBAL, ACME], final=True)
    assert built.usage([GLOBAL, ACME]) == {
        GLOBAL.counter: Usage(0.07, 0.0, 1.0),
        ACME.counter: Usage(0.07, 0.0, 0.5),
    }
    built.release("j1")  # the record is gone: nothing left to release
    assert reserved(built, GLOBAL) == 0.0


def test_non_final_settle_keeps_the_reservation_for_the_next_call(built: BudgetStore) -> None:
    ok(built.reserve("j1", 0.2, [GLOBAL]))
    built.start_call("j1", "0:0:1", 0.2, [GLOBAL])
    built.settle("j1", "0:0:1", 0.0, [GLOBAL], final=False)  # a 529: nothing billed
    assert built.usage([GLOBAL])[GLOBAL.counter] == Usage(0.0, 0.2, 1.0)
    assert built.start_call("j1", "0:1:1", 0.2, [GLOBAL]) is CallStart.STARTED  # a retry
    built.settle("j1", "0:1:1", 0.05, [GLOBAL], final=True)
    assert built.usage([GLOBAL])[GLOBAL.counter] == Usage(0.05, 0.0, 1.0)


def test_start_call_after_an_unsettled_call_counts_it_at_its_estimate(built: BudgetStore) -> None:
    ok(built.reserve("j1", 0.2, [GLOBAL]))
    assert built.start_call("j1", "0:0:1", 0.2, [GLOBAL]) is CallStart.STARTED
    assert built.start_call("j1", "0:0:1", 0.2, [GLOBAL]) is CallStart.STARTED  # same call
    assert built.start_call("j1", "0:0:2", 0.2, [GLOBAL]) is CallStart.ORPHANED  # 1's died
    assert built.usage([GLOBAL])[GLOBAL.counter] == Usage(0.2, 0.2, 1.0)
    built.settle("j1", "0:0:2", 0.03, [GLOBAL], final=True)
    assert built.usage([GLOBAL])[GLOBAL.counter] == Usage(0.23, 0.0, 1.0)


def test_a_late_settle_of_an_orphaned_call_corrects_only_the_difference(
    built: BudgetStore,
) -> None:
    ok(built.reserve("j1", 0.2, [GLOBAL]))
    built.start_call("j1", "0:0:1", 0.2, [GLOBAL])
    built.start_call("j1", "0:0:2", 0.2, [GLOBAL])
    built.settle("j1", "0:0:1", 0.05, [GLOBAL], final=True)  # it did finish, late
    assert built.usage([GLOBAL])[GLOBAL.counter] == Usage(0.05, 0.2, 1.0)  # still in flight
    built.settle("j1", "0:0:2", 0.04, [GLOBAL], final=True)
    assert built.usage([GLOBAL])[GLOBAL.counter] == Usage(0.09, 0.0, 1.0)


def test_an_orphan_settling_after_the_job_ended_is_still_corrected(built: BudgetStore) -> None:
    ok(built.reserve("j1", 0.2, [GLOBAL]))
    built.start_call("j1", "0:0:1", 0.2, [GLOBAL])
    built.start_call("j1", "0:0:2", 0.2, [GLOBAL])
    built.settle("j1", "0:0:2", 0.04, [GLOBAL], final=True)
    assert built.usage([GLOBAL])[GLOBAL.counter] == Usage(0.24, 0.0, 1.0)
    built.settle("j1", "0:0:1", 0.06, [GLOBAL], final=True)
    assert built.usage([GLOBAL])[GLOBAL.counter] == Usage(0.1, 0.0, 1.0)
    built.settle("j1", "0:0:1", 0.06, [GLOBAL], final=True)  # record gone: plain spend
    assert spent(built, GLOBAL) == pytest.approx(0.16)


def test_start_call_without_a_record_reserves_while_the_budget_has_room(
    built: BudgetStore,
) -> None:
    ok(built.reserve("other", 0.3, [ACME]))  # 0.2 of ACME's 0.5 left
    assert built.start_call("j1", "0:0:1", 0.3, [ACME]) is CallStart.STARTED
    assert reserved(built, ACME) == 0.6  # room was left: the estimate is not checked further
    built.settle("j1", "0:0:1", 0.1, [ACME], final=True)
    assert built.usage([ACME])[ACME.counter] == Usage(0.1, 0.3, 0.5)


def test_start_call_without_a_record_is_refused_by_a_spent_budget(built: BudgetStore) -> None:
    """A job no dispatcher admitted (no record) does not get to spend a spent budget."""
    ok(built.reserve("other", 0.5, [ACME]))  # ACME is full
    assert built.start_call("j1", "0:0:1", 0.3, [ACME]) is CallStart.REFUSED
    assert reserved(built, ACME) == 0.5  # nothing changed
    ok(built.reserve("j2", 0.0, [GLOBAL]))
    assert built.start_call("j2", "0:0:1", 0.1, [GLOBAL, ACME]) is CallStart.STARTED


def test_settle_after_a_fallback_spends_on_the_instance_that_did_the_work(
    built: BudgetStore,
) -> None:
    ok(built.reserve("j1", 0.2, [GLOBAL, INST_A]))
    built.start_call("j1", "0:0:1", 0.2, [GLOBAL, INST_A])
    built.settle("j1", "0:0:1", 0.0, [GLOBAL, INST_A], final=False)
    built.start_call("j1", "1:0:1", 0.2, [GLOBAL, INST_B])
    built.settle("j1", "1:0:1", 0.15, [GLOBAL, INST_B], final=True)
    assert built.usage([GLOBAL, INST_A, INST_B]) == {
        GLOBAL.counter: Usage(0.15, 0.0, 1.0),
        INST_A.counter: Usage(0.0, 0.0, 10.0),
        INST_B.counter: Usage(0.15, 0.0, 10.0),
    }


def test_settle_without_a_record_only_spends(built: BudgetStore) -> None:
    built.settle("nobody", "0:0:1", 0.12, [GLOBAL], final=True)
    assert built.usage([GLOBAL])[GLOBAL.counter] == Usage(0.12, 0.0, 1.0)


def test_release_drops_the_reservation_once(built: BudgetStore) -> None:
    ok(built.reserve("j1", 0.2, [GLOBAL, ACME]))
    ok(built.reserve("j2", 0.1, [GLOBAL]))
    built.release("j1")
    built.release("j1")
    assert built.usage([GLOBAL, ACME]) == {
        GLOBAL.counter: Usage(0.0, 0.1, 1.0),
        ACME.counter: Usage(0.0, 0.0, 0.5),
    }


def test_release_with_a_call_running_counts_it_as_spent(built: BudgetStore) -> None:
    ok(built.reserve("j1", 0.2, [GLOBAL]))
    built.start_call("j1", "0:0:1", 0.2, [GLOBAL])
    built.release("j1")  # e.g. the janitor gave up on the job
    assert built.usage([GLOBAL])[GLOBAL.counter] == Usage(0.2, 0.0, 1.0)
    built.settle("j1", "0:0:1", 0.05, [GLOBAL], final=True)  # the call ended after all
    assert built.usage([GLOBAL])[GLOBAL.counter] == Usage(0.05, 0.0, 1.0)


def test_negative_or_empty_arguments_are_refused(built: BudgetStore) -> None:
    with pytest.raises(ValueError, match="est_usd"):
        built.reserve("j1", -0.1, [GLOBAL])
    with pytest.raises(ValueError, match="actual_usd"):
        built.settle("j1", "c", float("nan"), [GLOBAL], final=True)
    with pytest.raises(ValueError, match="call_key"):
        built.start_call("j1", "", 0.1, [GLOBAL])
    with pytest.raises(ValueError, match="more than once"):
        built.reserve("j1", 0.1, [GLOBAL, GLOBAL])
    assert built.usage([GLOBAL])[GLOBAL.counter] == Usage(0.0, 0.0, 1.0)


def test_alert_once_is_true_once_per_counter_and_threshold(store: BudgetStore) -> None:
    assert store.alert_once(GLOBAL.counter, 0.8, GLOBAL.ttl_s) is True
    assert store.alert_once(GLOBAL.counter, 0.8, GLOBAL.ttl_s) is False
    assert store.alert_once(GLOBAL.counter, 0.9, GLOBAL.ttl_s) is True
    assert store.alert_once(ACME.counter, 0.8, ACME.ttl_s) is True


# -- Redis specifics ----------------------------------------------------------------------------


def test_redis_keys_expire_and_share_one_cluster_slot(
    redis_client: redis.Redis, keys: Keys
) -> None:
    store = RedisBudgetStore(redis_client, keys)
    store.rebuild({}, [GLOBAL, ACME])
    ok(store.reserve("j1", 0.1, [GLOBAL, ACME]))
    store.alert_once(GLOBAL.counter, 0.8, GLOBAL.ttl_s)
    counter_ttl = redis_client.ttl(keys.budget_counter(GLOBAL.counter))
    assert GLOBAL.ttl_s - 5 <= counter_ttl <= GLOBAL.ttl_s
    record_ttl = redis_client.ttl(keys.budget_reservation("j1"))
    assert RESERVATION_TTL_S - 5 <= record_ttl <= RESERVATION_TTL_S
    found = list(redis_client.scan_iter(f"{keys.prefix}:*"))
    assert len(found) == 5  # the built set, 2 counters, the record, the alert
    assert len({key_slot(key.encode()) for key in found}) == 1


# -- concurrency --------------------------------------------------------------------------------

LIMIT = hold("global:daily", 1.0)
PROJECT = hold("project:acme:daily", 0.6)


def _run_jobs(store: BudgetStore, name: str, jobs: int, seed: int) -> tuple[float, int]:
    """Reserve, check the usage, start, settle at most the estimate. Returns (spent, refusals)."""
    rng = random.Random(seed)
    total, refusals = 0.0, 0
    for i in range(jobs):
        job_holds = [LIMIT, PROJECT] if i % 2 else [LIMIT]
        est = round(rng.uniform(0.005, 0.08), 9)
        result = store.reserve(f"{name}-{i}", est, job_holds)
        if isinstance(result, Refusal):
            refusals += 1
            continue
        for h in job_holds:
            usage = result[h.counter]
            assert usage.spent_usd + usage.reserved_usd <= usage.limit_usd + 1e-12, usage
        store.start_call(f"{name}-{i}", "0:0:1", est, job_holds)
        actual = round(est * rng.uniform(0.2, 1.0), 9)
        store.settle(f"{name}-{i}", "0:0:1", actual, job_holds, final=True)
        total += actual
    return total, refusals


def _assert_settled_within_limits(store: BudgetStore, total_spent: float) -> None:
    final = store.usage([LIMIT, PROJECT])
    assert final[LIMIT.counter].reserved_usd == 0.0
    assert final[PROJECT.counter].reserved_usd == 0.0
    assert final[LIMIT.counter].spent_usd == pytest.approx(total_spent, abs=1e-6)
    assert total_spent <= 1.0
    assert final[PROJECT.counter].spent_usd <= 0.6


class _Watcher:
    """Reads the counters in a loop while the jobs run; records any reading over a limit."""

    def __init__(self, store: BudgetStore) -> None:
        self.store = store
        self.readings = 0
        self.over: list[Usage] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for usage in self.store.usage([LIMIT, PROJECT]).values():
                if usage.spent_usd + usage.reserved_usd > usage.limit_usd + 1e-12:
                    self.over.append(usage)
            self.readings += 1

    def __enter__(self) -> _Watcher:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def test_fifty_threads_never_reserve_past_the_limit(store: BudgetStore) -> None:
    store.rebuild({}, [LIMIT, PROJECT])
    results: list[tuple[float, int]] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        outcome = _run_jobs(store, f"t{n}", 20, seed=n)
        with lock:
            results.append(outcome)

    with _Watcher(store) as watcher:
        threads = [threading.Thread(target=worker, args=(n,)) for n in range(50)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    assert len(results) == 50
    assert sum(refusals for _, refusals in results) > 0, "the budget was never full: too weak"
    assert watcher.readings > 0
    assert watcher.over == []
    _assert_settled_within_limits(store, sum(total for total, _ in results))


def _process_jobs(redis_url: str, prefix: str, start_at_s: float, n: int) -> tuple[float, int]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    store = RedisBudgetStore(client, Keys(prefix=prefix))
    time.sleep(max(0.0, start_at_s - time.time()))
    try:
        return _run_jobs(store, f"p{n}-{os.getpid()}", 40, seed=n)
    finally:
        client.close()


@pytest.fixture
def redis_store(redis_client: redis.Redis, keys: Keys) -> Iterator[RedisBudgetStore]:
    yield RedisBudgetStore(redis_client, keys)


def test_eight_processes_never_reserve_past_the_limit(
    redis_url: str, keys: Keys, redis_store: RedisBudgetStore
) -> None:
    redis_store.rebuild({}, [LIMIT, PROJECT])
    ctx = multiprocessing.get_context("spawn")
    start_at_s = time.time() + 2.0  # room for the spawned interpreters to import
    with _Watcher(redis_store) as watcher, ctx.Pool(8) as pool:
        args = [(redis_url, keys.prefix, start_at_s, n) for n in range(8)]
        results = pool.starmap(_process_jobs, args)
    assert sum(refusals for _, refusals in results) > 0, "the budget was never full: too weak"
    assert watcher.readings > 0
    assert watcher.over == []
    _assert_settled_within_limits(redis_store, sum(total for total, _ in results))
