"""Lost-message rescue, with real kombu messages on a Redis db no worker listens to."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import redis

from lanes.broker.app import create_app
from lanes.broker.result import Result
from lanes.dispatch.dispatcher import Dispatcher
from lanes.kernel.config import Config
from lanes.router.engine import Router
from lanes.stores import Stores
from lanes.stores.keys import Keys
from lanes.stores.redis import redis_stores
from lanes.workers.services.janitor import Janitor


@pytest.fixture
def client(isolated_redis_url: str) -> Iterator[redis.Redis]:
    conn = redis.Redis.from_url(isolated_redis_url, decode_responses=True)
    conn.flushdb()
    yield conn
    conn.flushdb()
    conn.close()


@pytest.fixture
def stores(client: redis.Redis, keys: Keys) -> Stores:
    return redis_stores(client, keys, ttl_s=3600)


@pytest.fixture
def dispatcher(
    example_config: Config, stores: Stores, isolated_redis_url: str, keys: Keys
) -> Iterator[Dispatcher]:
    config = example_config.model_copy(update={"redis_prefix": keys.prefix})
    app = create_app(config, isolated_redis_url)
    yield Dispatcher(config, app, Router(config), stores)
    app.close()


def _janitor(
    example_config: Config, client: redis.Redis, keys: Keys, stores: Stores,
    dispatcher: Dispatcher,
) -> Janitor:  # fmt: skip
    return Janitor(client, keys, stores.jobs, dispatcher.app, example_config.lanes(), quiet_s=0)


def _ids_in(client: redis.Redis, queue: str) -> list[str]:
    return [json.loads(raw)["headers"]["id"] for raw in client.lrange(queue, 0, -1)]


def test_janitor_reads_the_deployments_own_queues(
    client: redis.Redis, keys: Keys, dispatcher: Dispatcher
) -> None:
    """Queues live under the deployment's prefix, where the janitor looks for them."""
    handle = dispatcher.submit({"prompt": "where does it wait", "instance": "zai"})
    assert client.llen("zai") == 0
    assert _ids_in(client, keys.queue("zai")) == [handle.id]


def test_janitor_resends_a_message_that_no_queue_or_worker_holds(
    example_config: Config, client: redis.Redis, keys: Keys, stores: Stores,
    dispatcher: Dispatcher,
) -> None:  # fmt: skip
    handle = dispatcher.submit({"prompt": "lost on its way", "instance": "zai"})
    sent = client.lrange(keys.queue("zai"), 0, -1)
    assert _ids_in(client, keys.queue("zai")) == [handle.id]
    client.rpop(keys.queue("zai"))  # popped by a worker that died before recording it as held
    assert _janitor(example_config, client, keys, stores, dispatcher).sweep() == [handle.id]
    assert _ids_in(client, keys.queue("zai")) == [handle.id]
    again = json.loads(client.lrange(keys.queue("zai"), 0, -1)[0])
    first = json.loads(sent[0])
    assert again["headers"]["argsrepr"] == first["headers"]["argsrepr"]  # same label, no prompt
    assert again["headers"]["redelivered"] is True  # the worker checks before calling
    assert "redelivered" not in first["headers"]
    assert "lost on its way" not in again["headers"]["argsrepr"]


def test_janitor_leaves_queued_and_held_messages_alone(
    example_config: Config, client: redis.Redis, keys: Keys, stores: Stores,
    dispatcher: Dispatcher,
) -> None:  # fmt: skip
    queued = dispatcher.submit({"prompt": "waiting in line", "instance": "koala"})
    held = dispatcher.submit({"prompt": "being worked on", "instance": "zai"})
    raw = client.rpop(keys.queue("zai"))
    client.hset(keys.unacked(), "tag-1", json.dumps([json.loads(raw), "", "zai"]))
    janitor = _janitor(example_config, client, keys, stores, dispatcher)
    assert janitor.sweep() == []
    assert client.llen(keys.queue("zai")) == 0
    assert _ids_in(client, keys.queue("koala")) == [queued.id]
    since = client.zscore(keys.pending_since(), held.id)
    assert since is not None  # still tracked, marked as seen


def test_janitor_ignores_finished_jobs(
    example_config: Config, client: redis.Redis, keys: Keys, stores: Stores,
    dispatcher: Dispatcher,
) -> None:  # fmt: skip
    handle = dispatcher.submit({"prompt": "done already", "instance": "zai"})
    client.rpop(keys.queue("zai"))
    done = Result(job_id=handle.id, status="ok", instance="zai", model="glm-4.6", step=0,
                  attempt=0, text="fine")  # fmt: skip
    stores.jobs.record(done)
    assert client.hget(keys.pending(), handle.id) is None
    assert _janitor(example_config, client, keys, stores, dispatcher).sweep() == []
    assert client.llen(keys.queue("zai")) == 0


def test_janitor_sweeps_one_process_at_a_time(
    example_config: Config, client: redis.Redis, keys: Keys, stores: Stores,
    dispatcher: Dispatcher,
) -> None:  # fmt: skip
    handle = dispatcher.submit({"prompt": "lost", "instance": "zai"})
    client.rpop(keys.queue("zai"))
    client.set(keys.janitor_lock(), "1", ex=60)  # another process is sweeping
    assert _janitor(example_config, client, keys, stores, dispatcher).sweep() == []
    client.delete(keys.janitor_lock())
    assert _janitor(example_config, client, keys, stores, dispatcher).sweep() == [handle.id]


def test_failed_submit_releases_its_idempotency_key(
    example_config: Config, client: redis.Redis, keys: Keys, dispatcher: Dispatcher,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    from kombu.exceptions import OperationalError

    from lanes.kernel.errors import InfrastructureError

    def broken(*_: object, **__: object) -> None:
        raise OperationalError("broker down")

    job = {"id": "idem-job", "prompt": "x", "instance": "zai", "idempotency_key": "k-1"}
    with monkeypatch.context() as patch:
        patch.setattr("celery.Celery.send_task", broken)
        with pytest.raises(InfrastructureError, match="cannot enqueue"):
            dispatcher.submit(job)
    assert client.get(keys.idempotency("k-1")) is None
    assert client.hget(keys.pending(), "idem-job") is None
    again = dispatcher.submit(job)  # really sent this time
    assert _ids_in(client, keys.queue("zai")) == [again.id]


def test_a_submit_that_failed_and_could_not_be_undone_is_sent_when_submitted_again(
    client: redis.Redis, keys: Keys, dispatcher: Dispatcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis went away between the claim and the send, so the claim stayed: submitting the
    job again sends it (with its queues on RabbitMQ, no janitor would)."""
    from kombu.exceptions import OperationalError

    from lanes.kernel.errors import InfrastructureError

    def broken(*_: object, **__: object) -> None:
        raise OperationalError("Redis away while subscribing to the result")

    def away(*_: object, **__: object) -> None:
        raise InfrastructureError("Redis failed while untracking")

    job = {"id": "stuck-job", "prompt": "x", "instance": "zai"}
    with monkeypatch.context() as patch:
        patch.setattr("celery.Celery.send_task", broken)
        patch.setattr(dispatcher._jobs, "untrack", away)
        with pytest.raises(InfrastructureError, match="cannot enqueue"):
            dispatcher.submit(job)
    assert client.hget(keys.pending(), "stuck-job") is not None  # the claim stayed
    assert _ids_in(client, keys.queue("zai")) == []
    again = dispatcher.submit(job)
    assert again.id == "stuck-job"
    assert _ids_in(client, keys.queue("zai")) == ["stuck-job"]  # sent once, now
    dispatcher.submit(job)  # and a third submit is the same job again: nothing more sent
    assert _ids_in(client, keys.queue("zai")) == ["stuck-job"]
