"""Groups and chains from the dispatcher: tracked and admitted like submits, all or nothing."""

from __future__ import annotations

import uuid

import pytest

from lanes.client import Lanes
from lanes.kernel.config import BudgetLimit, BudgetSpec
from lanes.kernel.errors import BudgetExceeded, JobError

from ..conftest import LaneStack


def _tight(lane_stack: LaneStack) -> Lanes:
    """A client whose jobs may each cost at most $0.05."""
    limit = BudgetLimit(scope="global", period="per_request", limit_usd=0.05)
    config = lane_stack.config.model_copy(update={"budgets": BudgetSpec(limits=[limit])})
    return Lanes(config, lane_stack.redis_url)


def _job(job_id: str, max_tokens: int = 50) -> dict[str, object]:
    return {"id": job_id, "prompt": f"Say hi {job_id}", "max_tokens": max_tokens,
            "instance": "claude1", "model": "claude-opus-4-5"}  # fmt: skip


@pytest.mark.parametrize("kind", ["group", "chain"])
def test_one_refused_job_keeps_none_of_the_others(lane_stack: LaneStack, kind: str) -> None:
    ids = [f"canvas-{uuid.uuid4().hex[:12]}" for _ in range(3)]
    jobs = [_job(ids[0]), _job(ids[1]), _job(ids[2], max_tokens=20_000)]
    with _tight(lane_stack) as lanes:
        send = lanes.dispatcher.submit_group if kind == "group" else lanes.dispatcher.submit_chain
        with pytest.raises(BudgetExceeded):
            send(jobs)
        # Nothing was kept: the ids are free again, so another job may take them.
        other = {**_job(ids[0]), "prompt": "a different job under the same id"}
        assert lanes.submit(other).get(timeout_s=30).ok
        handles = send([_job(ids[1]), _job(ids[2])])
        assert [h.get(timeout_s=30).status for h in handles] == ["ok", "ok"]


def test_a_chain_refuses_a_first_job_that_would_not_be_sent(lane_stack: LaneStack) -> None:
    job_id = f"canvas-{uuid.uuid4().hex[:12]}"
    with lane_stack.client() as lanes:
        assert lanes.submit(_job(job_id)).get(timeout_s=30).ok
        with pytest.raises(JobError, match="first job of a chain must be new"):
            lanes.dispatcher.submit_chain([_job(job_id), _job(f"{job_id}-2")])
