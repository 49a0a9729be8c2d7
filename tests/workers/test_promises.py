"""A worker re-checks what the dispatcher promises before it calls a provider: a message
built by hand (e.g. with Flower's task API) that sends vital work to a cheap lane is refused
(real worker process, real Redis, the simulator)."""

from __future__ import annotations

import uuid

from lanes.broker.message import Envelope, publish
from lanes.router.decision import Step
from lanes.router.job import Job

from ..conftest import LaneStack


def _hand_built(prompt: str, vital: bool | None) -> Envelope:
    job = Job(id=f"forged-{uuid.uuid4().hex}", prompt=prompt, max_tokens=20, vital=vital)
    return Envelope(job=job, chain=[Step(instance="zai", model="glm-4.6")], instance="zai")


def test_vital_work_sent_to_a_cheap_lane_by_hand_is_refused(lane_stack: LaneStack) -> None:
    calls_before = lane_stack.sim.stats().get("zai", {}).get("requests", 0)
    with lane_stack.client() as lanes:
        env = _hand_built("Fix the SQL injection in the login handler", vital=None)
        handle = publish(lanes.app, env)
        result = lanes.job(handle.id).get(timeout_s=60, raise_on_failure=False)
    assert result.status == "failed"
    assert "vital work never goes to a cheap lane" in (result.error or "")
    assert lane_stack.sim.stats().get("zai", {}).get("requests", 0) == calls_before


def test_work_its_caller_declares_not_vital_still_runs_on_a_cheap_lane(
    lane_stack: LaneStack,
) -> None:
    with lane_stack.client() as lanes:
        env = _hand_built("Fix the SQL injection in the login handler", vital=False)
        handle = publish(lanes.app, env)
        result = lanes.job(handle.id).get(timeout_s=60, raise_on_failure=False)
    assert result.status == "ok" and result.instance == "zai"
