"""Budget counters in Redis (:class:`lanes.stores.budget.BudgetStore`), shared by every
dispatcher and worker of a deployment.

Reserve, start, settle and release are one ``EVALSHA`` each (``broker/lua/budget_*.lua``),
so concurrent jobs never reserve past a limit. Money is integer nano-USD in hashes
(``HINCRBY``). Every budget key carries the ``{budget}`` hash tag: the scripts that follow a
reservation record to the counters it holds stay within one Redis Cluster slot.

Counters expire :data:`lanes.router.budgets.WINDOW_MARGIN_S` after their window ends, reservation
records :data:`~lanes.stores.budget.RESERVATION_TTL_S` after their last use. Run Redis with
``maxmemory-policy noeviction`` (or an ``allkeys-*`` policy never reached): a counter evicted
mid-window would forget its spend until the next rebuild.

Redis errors surface as :class:`lanes.kernel.errors.InfrastructureError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import redis

from lanes.kernel.errors import InfrastructureError
from lanes.router.budgets import Hold, parse_budget_id
from lanes.stores.budget import (
    RESERVATION_TTL_S,
    CallStart,
    CountersMissing,
    Refusal,
    Usage,
    check_call,
    check_holds,
    to_nano,
    to_usd,
)
from lanes.stores.keys import Keys
from lanes.stores.scripts import BudgetScripts, redis_errors, text

REBUILD_LOCK_TTL_S = 30.0
"""A rebuild holding the lock longer than this (a dead process) loses it."""
REBUILD_WAIT_S = 30.0
"""How long a rebuild waits for another one to finish."""


class RedisBudgetStore:
    """:class:`BudgetStore` in Redis. Safe to share between threads."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self._client = client
        self._keys = keys
        self._scripts = BudgetScripts.register(client)

    def reserve(
        self, job_id: str, est_usd: float, holds: Sequence[Hold]
    ) -> Refusal | dict[str, Usage]:
        """See :meth:`BudgetStore.reserve`. One round trip."""
        check_holds(holds)
        keys = [
            self._keys.budget_built(),
            self._keys.budget_limits(),
            self._keys.budget_reservation(job_id),
            *(self._keys.budget_counter(hold.counter) for hold in holds),
        ]
        args: list[str | int] = [to_nano(est_usd, "est_usd"), RESERVATION_TTL_S]
        for hold in holds:
            args += [hold.budget_id, to_nano(hold.limit_usd, "limit_usd"), hold.ttl_s]
        with redis_errors(f"reserving budget for job {job_id}"):
            reply = self._scripts.reserve(keys=keys, args=args)
        status, index, rest = text(reply[0]), int(reply[1]), reply[2:]
        if status == "not_built":
            raise CountersMissing([text(budget_id) for budget_id in rest])
        usages = _usages(holds, rest)
        if status == "refused":
            hold = holds[index - 1]
            return Refusal(hold, usages[hold.counter])
        if status == "ok":
            return usages
        raise InfrastructureError(f"unexpected reply from budget_reserve.lua: {reply!r}")

    def start_call(
        self, job_id: str, call_key: str, est_usd: float, holds: Sequence[Hold]
    ) -> CallStart:
        """See :meth:`BudgetStore.start_call`. One round trip."""
        check_holds(holds)
        check_call(call_key)
        keys = [
            self._keys.budget_reservation(job_id),
            *(self._keys.budget_counter(hold.counter) for hold in holds),
        ]
        args: list[str | int] = [call_key, to_nano(est_usd, "est_usd"), RESERVATION_TTL_S]
        args += [hold.ttl_s for hold in holds]
        args += [to_nano(hold.limit_usd, "limit_usd") for hold in holds]
        with redis_errors(f"starting a budgeted call of job {job_id}"):
            return CallStart(int(self._scripts.start(keys=keys, args=args)))

    def settle(
        self,
        job_id: str,
        call_key: str,
        actual_usd: float,
        spend_holds: Sequence[Hold],
        final: bool,
    ) -> None:
        """See :meth:`BudgetStore.settle`. One round trip."""
        check_holds(spend_holds)
        check_call(call_key)
        keys = [
            self._keys.budget_reservation(job_id),
            *(self._keys.budget_counter(hold.counter) for hold in spend_holds),
        ]
        args: list[str | int] = [
            call_key,
            to_nano(actual_usd, "actual_usd"),
            int(final),
            RESERVATION_TTL_S,
        ]
        args += [hold.ttl_s for hold in spend_holds]
        with redis_errors(f"settling the budget of job {job_id}"):
            self._scripts.settle(keys=keys, args=args)

    def release(self, job_id: str) -> None:
        """See :meth:`BudgetStore.release`. One round trip."""
        keys = [self._keys.budget_reservation(job_id)]
        with redis_errors(f"releasing the budget of job {job_id}"):
            self._scripts.release(keys=keys, args=[RESERVATION_TTL_S])

    def usage(self, holds: Sequence[Hold]) -> dict[str, Usage]:
        """See :meth:`BudgetStore.usage`. One pipelined round trip, no writes."""
        if not holds:
            return {}
        with redis_errors("reading budget usage"):
            pipe = self._client.pipeline(transaction=False)
            pipe.hmget(self._keys.budget_limits(), [hold.budget_id for hold in holds])
            for hold in holds:
                pipe.hmget(self._keys.budget_counter(hold.counter), ["spent", "reserved"])
            overrides, *counters = pipe.execute()
        return {
            hold.counter: Usage(
                spent_usd=to_usd(_int(spent)),
                reserved_usd=to_usd(_int(reserved)),
                limit_usd=hold.limit_usd if override is None else to_usd(_int(override)),
            )
            for hold, override, (spent, reserved) in zip(holds, overrides, counters, strict=True)
        }

    def limits(self) -> dict[str, float]:
        """See :meth:`BudgetStore.limits`. One round trip."""
        with redis_errors("reading budget overrides"):
            raw = self._client.hgetall(self._keys.budget_limits())
        return {text(budget_id): to_usd(_int(nano)) for budget_id, nano in raw.items()}

    def set_limit(self, budget_id: str, limit_usd: float | None) -> None:
        """See :meth:`BudgetStore.set_limit`. One round trip."""
        parse_budget_id(budget_id, 0.0 if limit_usd is None else limit_usd)
        key = self._keys.budget_limits()
        with redis_errors(f"setting the limit of budget {budget_id}"):
            if limit_usd is None:
                self._client.hdel(key, budget_id)
            else:
                self._client.hset(key, budget_id, to_nano(limit_usd, "limit_usd"))

    def rebuild(self, spent_by_counter: Mapping[str, float], holds: Sequence[Hold]) -> None:
        """See :meth:`BudgetStore.rebuild`. Under the rebuild lock, in one transaction."""
        check_holds(holds)
        lock = self._client.lock(
            self._keys.budget_rebuild_lock(),
            timeout=REBUILD_LOCK_TTL_S,
            blocking_timeout=REBUILD_WAIT_S,
        )
        with redis_errors("rebuilding budget counters"):
            if not lock.acquire():
                raise InfrastructureError(
                    f"another process held the budget rebuild lock for {REBUILD_WAIT_S:g} s"
                )
            try:
                self._rebuild(spent_by_counter, holds)
            finally:
                lock.release()

    def _rebuild(self, spent_by_counter: Mapping[str, float], holds: Sequence[Hold]) -> None:
        built = {text(b) for b in self._client.smembers(self._keys.budget_built())}
        todo = [hold for hold in holds if hold.budget_id not in built]
        if not todo:
            return
        pipe = self._client.pipeline(transaction=True)
        for hold in todo:
            key = self._keys.budget_counter(hold.counter)
            spent = to_nano(spent_by_counter.get(hold.counter, 0.0), "spent")
            pipe.hset(key, mapping={"spent": spent, "reserved": 0})
            pipe.expire(key, hold.ttl_s)
        pipe.sadd(self._keys.budget_built(), *(hold.budget_id for hold in todo))
        pipe.execute()

    def is_built(self) -> bool:
        """See :meth:`BudgetStore.is_built`. One round trip."""
        with redis_errors("reading the budget marker"):
            return bool(self._client.exists(self._keys.budget_built()))

    def alert_once(self, counter: str, at: float, ttl_s: int) -> bool:
        """See :meth:`BudgetStore.alert_once`. One ``SET NX``."""
        with redis_errors("marking a budget alert"):
            first = self._client.set(self._keys.budget_alerted(counter, at), 1, nx=True, ex=ttl_s)
        return bool(first)

    def forget(self) -> None:
        """See :meth:`BudgetStore.forget`. Scans every ``{budget}`` key of this prefix."""
        root = self._keys.budget_built().rsplit(":", 1)[0]
        keep = self._keys.budget_limits()
        with redis_errors("forgetting budget counters"):
            for key in self._client.scan_iter(f"{root}:*", count=1000):
                if text(key) != keep:
                    self._client.delete(key)


def _usages(holds: Sequence[Hold], flat: Sequence[object]) -> dict[str, Usage]:
    """Usage by counter from the scripts' flat ``spent, reserved, limit`` triples."""
    return {
        hold.counter: Usage(
            spent_usd=to_usd(_int(flat[3 * i])),
            reserved_usd=to_usd(_int(flat[3 * i + 1])),
            limit_usd=to_usd(_int(flat[3 * i + 2])),
        )
        for i, hold in enumerate(holds)
    }


def _int(value: object) -> int:
    """A reply element (int, or bytes/str of digits; None: 0) as an int."""
    return 0 if value is None else int(text(value))
