"""Two deployments on one Redis database, told apart by ``redis_prefix`` alone: neither sees
the other's queues, workers, held messages or results."""

from __future__ import annotations

import time
import uuid

from lanes.client import Lanes
from lanes.ops.status import consumers
from lanes.stores.keys import Keys

from ..conftest import LaneStack


def test_prefix_isolates_a_second_deployment_on_the_same_database(lane_stack: LaneStack) -> None:
    prefix = f"lanes-other-{uuid.uuid4().hex[:8]}"
    other = lane_stack.config.model_copy(update={"redis_prefix": prefix})
    keys = Keys(prefix)
    client = lane_stack.redis()
    try:
        with Lanes(other, lane_stack.redis_url) as lanes:
            # The session's worker serves every lane under its own prefix: it must neither
            # answer this job nor show up as a consumer of this deployment's lanes.
            assert consumers(lanes.app) == {}
            handle = lanes.submit({"prompt": "Who answers me?", "instance": "zai"})
            time.sleep(3.0)
            assert not handle.ready()
            assert client.llen(keys.queue("zai")) == 1
        written = [key for key in client.scan_iter(f"*{handle.id}*", count=1000)]
        assert written and all(key.startswith(f"{prefix}:") for key in written), written
        assert not client.exists(f"celery-task-meta-{handle.id}")
        own = Keys(lane_stack.config.redis_prefix)
        assert client.llen(own.queue("zai")) == 0
    finally:
        for key in client.scan_iter(f"{prefix}:*", count=1000):
            client.delete(key)
        client.close()
