"""Pool expansion: a round robin over a pool's members that is global across dispatchers.

The turn comes from a :class:`lanes.router.strategies.RotationCounter` (in a deployment, one Redis
``INCR``: :class:`lanes.stores.redis.counter.RedisCounter`), so two dispatchers on two hosts
alternate claude2/claude3 between them. Members that are disabled or cooling down are skipped;
if every member is, the next one in turn is returned anyway (the worker waits).
"""

from __future__ import annotations

from lanes.kernel.config import Config
from lanes.router.lane_state import LaneStateReader
from lanes.router.strategies import RotationCounter


class PoolBalancer:
    def __init__(
        self, config: Config, counter: RotationCounter, lane_state: LaneStateReader
    ) -> None:
        self._config = config
        self._counter = counter
        self._lane_state = lane_state

    def expand(self, lane: str) -> str:
        """The instance that serves ``lane`` now: itself, or the next usable pool member."""
        members = self._config.pools.get(lane)
        if members is None:
            return lane
        if len(members) == 1:
            return members[0]
        turn = self._counter.next(lane)
        statuses = self._lane_state.statuses(members)
        size = len(members)
        for offset in range(size):
            member = members[(turn + offset) % size]
            status = statuses[member]
            usable = (
                status.disabled_reason is None
                and status.cooldown_s <= 0
                and self._config.instances[member].enabled
            )
            if usable:
                return member
        return members[turn % size]
