"""Pool expansion: a global round robin over a pool's members, shared by every process.

The counter is one Redis ``INCR`` (not a per-process itertools cycle), so two dispatchers on
two hosts alternate claude2/claude3 between them. Members that are disabled or cooling down
are skipped; if every member is, the next one in turn is returned anyway (the worker waits).
"""

from __future__ import annotations

import redis

from broker.keys import Keys
from kernel.config import Config
from kernel.errors import InfrastructureError
from router.lane_state import LaneStateReader


class RedisCounter:
    """A rotation counter shared by every process: one ``INCR`` per turn.

    Satisfies ``router.strategies.RotationCounter``, so ``round_robin`` rotates globally too.
    """

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self._client = client
        self._keys = keys

    def next(self, key: str) -> int:
        try:
            return int(self._client.incr(self._keys.pool_counter(key)))
        except redis.RedisError as exc:
            raise InfrastructureError(f"cannot reach Redis for rotation {key!r}: {exc}") from exc


class PoolBalancer:
    def __init__(
        self, config: Config, client: redis.Redis, keys: Keys, lane_state: LaneStateReader
    ) -> None:
        self._config = config
        self._counter = RedisCounter(client, keys)
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
