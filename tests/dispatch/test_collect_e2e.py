"""A caller that gives up on jobs at its deadline: what was queued never calls a provider,
what was already calling finishes and is billed, and the caller hears both (real worker,
real Redis, the simulator)."""

from __future__ import annotations

import time
from collections.abc import Callable

from lanes.ops.stack import sim_profiles

from ..conftest import LaneStack


def _wait_until(done: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, "the calls never started"
        time.sleep(0.02)


def test_collect_cancels_queued_jobs_before_any_call(lane_stack: LaneStack) -> None:
    """koala takes 4 calls at once (its concurrency limit); with 2 s calls, 8 jobs are 4
    calling and 4 waiting for capacity when the caller gives up."""
    slow = sim_profiles(lane_stack.config)["koala"].model_copy(
        update={"latency_s": 2.0, "latency_jitter_s": 0.0}
    )
    lane_stack.sim.set_profile("koala", slow)
    calls_before = lane_stack.sim.stats().get("koala", {}).get("requests", 0)
    try:
        with lane_stack.client() as lanes:
            handles = [
                lanes.submit({"prompt": f"Summarise note {i}", "max_tokens": 20,
                              "instance": "koala", "cache": False})
                for i in range(8)
            ]  # fmt: skip
            _wait_until(lambda: lane_stack.sim.stats().get("koala", {}).get("in_flight") == 4)
            got = lanes.collect(handles, time.monotonic() + 0.1, "the caller left")
            assert got.results == [None] * 8
            assert len(got.cancelled) == 8 and got.calls_in_flight == 4
            time.sleep(4.0)  # long enough for the waiting ones to have called, were they let
            stats = lane_stack.sim.stats().get("koala", {})
            assert stats.get("requests", 0) - calls_before == 4
            for handle in handles:
                result = handle.get(timeout_s=1, raise_on_failure=False)
                assert result.status == "failed" and result.error == "cancelled: the caller left"
    finally:
        lane_stack.sim.set_profile("koala", sim_profiles(lane_stack.config)["koala"])
