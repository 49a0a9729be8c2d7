"""The dispatcher's checks before anything is sent (no broker needed for ``prepare``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lanes.broker.app import create_app
from lanes.dispatch.dispatcher import Dispatcher
from lanes.kernel.config import Config
from lanes.kernel.errors import JobError
from lanes.router.engine import Router
from lanes.stores.jobs import Claim
from lanes.stores.memory import memory_stores

from ..router.fixed_classifier import fixed


@pytest.fixture
def dispatcher(example_config: Config) -> Iterator[Dispatcher]:
    app = create_app(example_config, "redis://127.0.0.1:1/0")  # never contacted by prepare
    router = Router(example_config, classifier=fixed(vital=True))
    yield Dispatcher(example_config, app, router, memory_stores())
    app.close()


def test_dispatcher_refuses_vital_work_pinned_to_a_cheap_lane(dispatcher: Dispatcher) -> None:
    with pytest.raises(JobError, match=r"pins cheap lane zai, but the job is vital"):
        dispatcher.prepare({"prompt": "audit auth", "instance": "zai"})
    envelope, _ = dispatcher.prepare({"prompt": "audit auth"})  # routed: never a cheap lane
    assert envelope.instance in {"claude1", "claude2", "claude3"}


def test_dispatcher_refuses_a_job_over_max_job_bytes(example_config: Config) -> None:
    config = example_config.model_copy(update={"max_job_bytes": 2048})
    app = create_app(config, "redis://127.0.0.1:1/0")
    dispatcher = Dispatcher(config, app, Router(config), memory_stores())
    with pytest.raises(JobError, match=r"3000 bytes .* the limit is 2048"):
        dispatcher.prepare({"prompt": "x" * 3000})
    assert dispatcher.prepare({"prompt": "x" * 2000})[0].job.prompt
    app.close()


def test_dispatcher_a_refused_id_conflict_gives_its_idempotency_key_back(
    example_config: Config,
) -> None:
    stores = memory_stores()
    app = create_app(example_config, "redis://127.0.0.1:1/0")
    dispatcher = Dispatcher(example_config, app, Router(example_config), stores)
    wire = {"step": 0}
    stores.jobs.track("taken", "someone-else", "zai", wire)  # the id belongs to another job
    job = {"id": "taken", "prompt": "mine", "idempotency_key": "k-1"}
    with pytest.raises(JobError, match="already belongs to another job"):
        dispatcher.submit(job)
    assert stores.jobs.track("fresh", "fp", "zai", wire, "k-1").claim is Claim.NEW  # key free
    app.close()
