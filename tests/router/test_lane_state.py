from __future__ import annotations

from lanes.router.lane_state import CachedLaneState, LaneStatus, StaticLaneState


class CountingState(StaticLaneState):
    calls: int = 0

    def statuses(self, instances: list[str]) -> dict[str, LaneStatus]:
        self.calls += 1
        return super().statuses(instances)


def test_cached_lane_state_reads_once_per_ttl() -> None:
    now = [0.0]
    inner = CountingState()
    cached = CachedLaneState(inner, ttl_s=1.0, clock=lambda: now[0])
    assert cached.status("zai").health == 1.0
    cached.statuses(["zai"])
    assert inner.calls == 1
    inner.states["zai"] = LaneStatus(cooldown_s=5)
    assert cached.status("zai").cooldown_s == 0  # still the cached state
    now[0] = 1.5
    assert cached.status("zai").cooldown_s == 5
    assert inner.calls == 2


def test_cached_lane_state_fetches_unknown_instances_at_once() -> None:
    inner = CountingState({"koala": LaneStatus(disabled_reason="bad key")})
    cached = CachedLaneState(inner, ttl_s=60.0, clock=lambda: 0.0)
    cached.status("zai")
    assert cached.status("koala").disabled_reason == "bad key"
    assert inner.calls == 2
