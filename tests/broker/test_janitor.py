"""Lost-message rescue, with real kombu messages on a Redis db no worker listens to."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from broker.app import create_app
from broker.dispatcher import Dispatcher
from broker.janitor import UNACKED_KEY, Janitor
from broker.keys import Keys
from broker.pending import PendingJobs, stale_hop
from kernel.config import Config
from router.engine import Router


@pytest.fixture
def client(isolated_redis_url: str) -> Iterator[redis.Redis]:
    conn = redis.Redis.from_url(isolated_redis_url, decode_responses=True)
    conn.flushdb()
    yield conn
    conn.flushdb()
    conn.close()


@pytest.fixture
def dispatcher(
    example_config: Config, client: redis.Redis, isolated_redis_url: str, keys: Keys
) -> Iterator[Dispatcher]:
    app = create_app(example_config, isolated_redis_url)
    yield Dispatcher(example_config, app, client, Router(example_config), keys=keys)
    app.close()


def _janitor(
    example_config: Config, client: redis.Redis, keys: Keys, sent: list[tuple[str, str]],
    dispatcher: Dispatcher,
) -> Janitor:  # fmt: skip
    def publish(job_id: str, queue: str, envelope: dict[str, Any]) -> None:
        sent.append((job_id, queue))
        dispatcher.app.send_task("lanes.run", args=[envelope], task_id=job_id, queue=queue)

    pending = PendingJobs(client, keys, 3600)
    return Janitor(client, keys, pending, example_config.lanes(), publish, quiet_s=0)


def _ids_in(client: redis.Redis, queue: str) -> list[str]:
    return [json.loads(raw)["headers"]["id"] for raw in client.lrange(queue, 0, -1)]


def test_janitor_resends_a_message_that_no_queue_or_worker_holds(
    example_config: Config, client: redis.Redis, keys: Keys, dispatcher: Dispatcher
) -> None:
    handle = dispatcher.submit({"prompt": "lost on its way", "instance": "zai"})
    assert _ids_in(client, "zai") == [handle.id]
    client.rpop("zai")  # popped by a worker that died before recording it as held
    sent: list[tuple[str, str]] = []
    assert _janitor(example_config, client, keys, sent, dispatcher).sweep() == [handle.id]
    assert sent == [(handle.id, "zai")]
    assert _ids_in(client, "zai") == [handle.id]


def test_janitor_leaves_queued_and_held_messages_alone(
    example_config: Config, client: redis.Redis, keys: Keys, dispatcher: Dispatcher
) -> None:
    queued = dispatcher.submit({"prompt": "waiting in line", "instance": "koala"})
    held = dispatcher.submit({"prompt": "being worked on", "instance": "zai"})
    raw = client.rpop("zai")
    client.hset(UNACKED_KEY, "tag-1", json.dumps([json.loads(raw), "", "zai"]))
    sent: list[tuple[str, str]] = []
    janitor = _janitor(example_config, client, keys, sent, dispatcher)
    assert janitor.sweep() == [] and sent == []
    assert _ids_in(client, "koala") == [queued.id]
    since = client.zscore(keys.pending_since(), held.id)
    assert since is not None  # still tracked, marked as seen


def test_janitor_ignores_finished_jobs(
    example_config: Config, client: redis.Redis, keys: Keys, dispatcher: Dispatcher
) -> None:
    from workers.results import ResultStore

    handle = dispatcher.submit({"prompt": "done already", "instance": "zai"})
    client.rpop("zai")
    pending = PendingJobs(client, keys, 3600)
    ResultStore(client, keys, 3600, pending).record(handle.id, {"status": "ok"})
    assert client.hget(keys.pending(), handle.id) is None
    sent: list[tuple[str, str]] = []
    assert _janitor(example_config, client, keys, sent, dispatcher).sweep() == []


def test_janitor_sweeps_one_process_at_a_time(
    example_config: Config, client: redis.Redis, keys: Keys, dispatcher: Dispatcher
) -> None:
    handle = dispatcher.submit({"prompt": "lost", "instance": "zai"})
    client.rpop("zai")
    client.set(keys.janitor_lock(), "1", ex=60)  # another process is sweeping
    sent: list[tuple[str, str]] = []
    assert _janitor(example_config, client, keys, sent, dispatcher).sweep() == []
    client.delete(keys.janitor_lock())
    assert _janitor(example_config, client, keys, sent, dispatcher).sweep() == [handle.id]


def test_pending_hand_on_replaces_the_entry_and_marks_older_hops_stale(
    client: redis.Redis, keys: Keys
) -> None:
    pending = PendingJobs(client, keys, 3600)
    pending.track("job-1", "zai", {"step": 0})
    assert pending.hand_on("job-1", 0, "koala", {"step": 1}) is True
    entry = json.loads(client.hget(keys.pending(), "job-1") or "{}")
    assert entry == {"queue": "koala", "envelope": {"step": 1}}
    mark = client.get(keys.handed_on("job-1"))
    assert stale_hop(mark, 0) and not stale_hop(mark, 1)
    assert pending.hand_on("job-1", 0, "zai", {"step": 0}) is False  # a late duplicate
    assert json.loads(client.hget(keys.pending(), "job-1") or "{}")["queue"] == "koala"


def test_failed_submit_releases_its_idempotency_key(
    example_config: Config, client: redis.Redis, keys: Keys, dispatcher: Dispatcher,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    from kombu.exceptions import OperationalError

    from kernel.errors import InfrastructureError

    def broken(*_: object, **__: object) -> None:
        raise OperationalError("broker down")

    job = {"id": "idem-job", "prompt": "x", "instance": "zai", "idempotency_key": "k-1"}
    with monkeypatch.context() as patch:
        patch.setattr("celery.canvas.Signature.apply_async", broken)
        with pytest.raises(InfrastructureError, match="cannot enqueue"):
            dispatcher.submit(job)
    assert client.get(keys.idempotency("k-1")) is None
    assert client.hget(keys.pending(), "idem-job") is None
    again = dispatcher.submit(job)  # really sent this time
    assert _ids_in(client, "zai") == [again.id]
