"""The job store's contract, run against the Redis store and the in-memory one alike."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis

from lanes.broker.result import Result
from lanes.stores.jobs import Claim, JobStore, Tracked
from lanes.stores.keys import Keys
from lanes.stores.memory.jobs import MemoryJobStore
from lanes.stores.redis.jobs import RedisJobStore, parse_result, result_meta


@pytest.fixture(params=["redis", "memory"])
def jobs(request: pytest.FixtureRequest) -> Iterator[JobStore]:
    if request.param == "memory":
        yield MemoryJobStore()
        return
    client: redis.Redis = request.getfixturevalue("redis_client")
    keys: Keys = request.getfixturevalue("keys")
    store = RedisJobStore(client, keys, ttl_s=3600)
    yield store
    for job_id in ("job-1", "job-2"):
        client.delete(keys.result(job_id))


def _result(job_id: str = "job-1", text: str = "first", cost_usd: float = 0.25) -> Result:
    return Result(job_id=job_id, status="ok", instance="zai", model="glm-4.6", step=0,
                  attempt=0, text=text, cost_usd=cost_usd)  # fmt: skip


def test_jobs_the_first_result_stands(jobs: JobStore) -> None:
    assert jobs.result("job-1") is None
    assert jobs.record(_result()) == _result()
    assert jobs.record(_result(text="second")) == _result()
    assert jobs.result("job-1") == _result()


def test_jobs_results_reads_many_in_order(jobs: JobStore) -> None:
    jobs.record(_result("job-2", text="two"))
    assert jobs.results(["job-1", "job-2"]) == [None, _result("job-2", text="two")]
    assert jobs.results([]) == []


def test_jobs_waiting_on_names_the_queue_of_each_pending_job(jobs: JobStore) -> None:
    jobs.track("job-1", "fp-1", "zai", {"step": 0})
    jobs.track("job-2", "fp-2", "koala", {"step": 0})
    jobs.hand_on("job-2", 0, "claude1", {"step": 1})
    jobs.record(_result("job-1"))
    assert jobs.waiting_on(["job-1", "job-2", "never"]) == {"job-2": "claude1"}


def test_jobs_backlog_counts_each_unfinished_job_on_the_lane_of_its_next_message(
    jobs: JobStore,
) -> None:
    for i in range(3):
        jobs.track(f"job-{i}", f"fp-{i}", "koala", {"step": 0})
    jobs.track("job-0", "fp-0", "koala", {"step": 0})  # the same job again: counted once
    jobs.track("other", "fp-other", "zai", {"step": 0}, idempotency_key="k1")
    assert jobs.backlog() == {"koala": 3, "zai": 1}
    jobs.hand_on("job-1", 0, "zai", {"step": 1})  # a fallback moves it
    jobs.hand_on("job-1", 0, "claude1", {"step": 2})  # a stale hand-off moves nothing
    assert jobs.backlog() == {"koala": 2, "zai": 2}
    jobs.record(_result("job-0"))
    jobs.record(_result("job-0"))  # recorded twice: forgotten once
    jobs.untrack("other", "k1")
    jobs.cancel([_cancelled("job-2")])
    assert jobs.backlog() == {"zai": 1}
    jobs.record(_result("job-1"))
    assert jobs.backlog() == {}


def _cancelled(job_id: str) -> Result:
    return Result(job_id=job_id, status="failed", instance="zai", model="glm-4.6", step=0,
                  attempt=0, error="cancelled: too late")  # fmt: skip


def test_jobs_cancel_ends_the_job_and_stops_calls_from_starting(jobs: JobStore) -> None:
    jobs.track("job-1", "fp-1", "zai", {"step": 0})
    assert jobs.next_call("job-1", 0, 0) == 1  # a call already running
    [done] = jobs.cancel([_cancelled("job-1")])
    assert done == ("job-1", True, 1)
    assert jobs.result("job-1") == _cancelled("job-1")
    assert jobs.waiting_on(["job-1"]) == {}
    assert jobs.next_call("job-1", 0, 1) == 0  # no call starts after the cancel
    assert jobs.next_call("job-1", 1, 0) == 0


def test_jobs_cancel_leaves_a_finished_job_as_it_ended(jobs: JobStore) -> None:
    jobs.record(_result("job-1"))
    done = jobs.cancel([_cancelled("job-1"), _cancelled("job-2")])
    assert done == [("job-1", False, 0), ("job-2", True, 0)]
    assert jobs.result("job-1") == _result("job-1")
    assert jobs.result("job-2") == _cancelled("job-2")


def test_jobs_recording_a_result_ends_the_pending_entry(jobs: JobStore) -> None:
    jobs.track("job-1", "fp-1", "zai", {"step": 0})
    jobs.track("job-2", "fp-2", "koala", {"step": 0})
    now_s = jobs.now_s()
    assert set(jobs.quiet_since(now_s + 1)) == {"job-1", "job-2"}
    jobs.record(_result())
    assert set(jobs.quiet_since(now_s + 1)) == {"job-2"}


def test_jobs_hand_on_replaces_the_entry_and_marks_older_hops_stale(jobs: JobStore) -> None:
    jobs.track("job-1", "fp-1", "zai", {"step": 0})
    assert not jobs.is_stale("job-1", 0)
    assert jobs.hand_on("job-1", 0, "koala", {"step": 1}) is True
    assert jobs.is_stale("job-1", 0) and not jobs.is_stale("job-1", 1)
    assert jobs.hand_on("job-1", 0, "zai", {"step": 0}) is False  # a late duplicate
    entry = jobs.quiet_since(jobs.now_s() + 1)["job-1"]
    assert entry == {"queue": "koala", "envelope": {"step": 1}}


def test_jobs_an_id_belongs_to_the_first_payload_submitted_under_it(jobs: JobStore) -> None:
    assert jobs.track("job-1", "fp-1", "zai", {"step": 0}) == (Claim.NEW, "job-1")
    assert jobs.track("job-1", "fp-1", "zai", {"step": 0}) == (Claim.SAME, "job-1")
    assert jobs.track("job-1", "fp-other", "koala", {"step": 9}) == (Claim.CONFLICT, "job-1")
    assert jobs.quiet_since(jobs.now_s() + 1)["job-1"] == {"queue": "zai", "envelope": {"step": 0}}
    jobs.untrack("job-1")  # a submit that failed gives the id back
    assert jobs.track("job-1", "fp-other", "koala", {"step": 0}).claim is Claim.NEW


def test_jobs_a_call_is_charged_once(jobs: JobStore) -> None:
    assert jobs.charge("job-1", 0, 0, 0.5) is True
    assert jobs.charge("job-1", 0, 0, 0.7) is False  # the same call, repeated after a crash
    assert jobs.charge("job-1", 1, 0, 0.1) is True
    assert jobs.charges("job-1") == {"0:0": 0.5, "1:0": 0.1}
    assert jobs.charges("job-2") == {}


def test_jobs_an_idempotency_key_belongs_to_its_first_job(jobs: JobStore) -> None:
    wire = {"step": 0}
    assert jobs.track("job-1", "fp-1", "zai", wire, "k") == Tracked(Claim.NEW, "job-1")
    assert jobs.track("job-2", "fp-1", "zai", wire, "k") == Tracked(Claim.KEY_SAME, "job-1")
    assert jobs.track("job-3", "fp-other", "zai", wire, "k") == (Claim.KEY_CONFLICT, "job-1")
    assert set(jobs.quiet_since(jobs.now_s() + 1)) == {"job-1"}  # the others claimed nothing
    assert jobs.track("job-2", "fp-2", "zai", wire).claim is Claim.NEW  # their ids are free
    jobs.untrack("job-3", "k")  # not the holder: the key stays
    assert jobs.track("job-4", "fp-1", "zai", wire, "k").claim is Claim.KEY_SAME
    jobs.untrack("job-1", "k")  # the holder's submit failed: key and id are given back
    assert jobs.track("job-1", "fp-9", "zai", wire, "k") == Tracked(Claim.NEW, "job-1")


def test_jobs_an_id_conflict_claims_no_idempotency_key(jobs: JobStore) -> None:
    jobs.track("taken", "fp-1", "zai", {"step": 0})
    assert jobs.track("taken", "fp-2", "zai", {"step": 0}, "k").claim is Claim.CONFLICT
    assert jobs.track("fresh", "fp-2", "zai", {"step": 0}, "k").claim is Claim.NEW


def test_jobs_touch_moves_quiet_jobs_forward_and_untrack_forgets(jobs: JobStore) -> None:
    jobs.track("job-1", "fp-1", "zai", {"step": 0})
    now_s = jobs.now_s()
    jobs.touch(["job-1", "never-tracked"], now_s + 100)
    assert jobs.quiet_since(now_s + 50) == {}
    assert set(jobs.quiet_since(now_s + 150)) == {"job-1"}
    jobs.untrack("job-1")
    assert jobs.quiet_since(now_s + 150) == {}


def test_jobs_redis_result_is_celery_task_meta(redis_client: redis.Redis, keys: Keys) -> None:
    """Stored once, where Celery's AsyncResult reads it, and published to its waiters."""
    store = RedisJobStore(redis_client, keys, ttl_s=60)
    pubsub = redis_client.pubsub()
    pubsub.subscribe(keys.result("job-1"))
    try:
        store.record(_result())
        store.record(_result(text="second"))
        raw = redis_client.get(keys.result("job-1"))
        assert parse_result(raw) == _result()
        assert 0 < redis_client.ttl(keys.result("job-1")) <= 60
        messages = [pubsub.get_message(timeout=1.0) for _ in range(3)]
        published = [m["data"] for m in messages if m and m["type"] == "message"]
        assert len(published) == 1 and parse_result(published[0]) == _result()
    finally:
        pubsub.close()
        redis_client.delete(keys.result("job-1"))


def test_jobs_parse_result_ignores_celery_states_that_are_not_a_lanes_result() -> None:
    assert parse_result(None) is None
    assert parse_result('{"status": "FAILURE", "result": {"exc_type": "ValueError"}}') is None
    assert parse_result(result_meta(_result())) == _result()


def test_jobs_redis_one_key_submitted_at_once_from_many_threads_makes_one_job(
    redis_client: redis.Redis, keys: Keys
) -> None:
    """Key and id are claimed in one script: of racing submits, one is new, the rest get it."""
    store = RedisJobStore(redis_client, keys, ttl_s=60)
    start = threading.Barrier(8)

    def submit(n: int) -> Tracked:
        start.wait()
        return store.track(f"job-{n}", "fp", "zai", {"step": 0}, "shared-key")

    with ThreadPoolExecutor(8) as pool:
        found = list(pool.map(submit, range(8)))
    new = [t for t in found if t.claim is Claim.NEW]
    assert len(new) == 1
    assert {t for t in found if t.claim is not Claim.NEW} == {
        Tracked(Claim.KEY_SAME, new[0].job_id)
    }
    assert set(store.quiet_since(store.now_s() + 1)) == {new[0].job_id}
