"""What both APIs of the front door share: who is calling, which model they mean, running
their job and the errors it may end in.

A request's ``model`` is read through ``serve.aliases`` first; then ``lanes:auto`` means the
router's choice (``serve.default_model`` says what that is), ``lanes:<instance or pool>``
pins the target, any configured model pins the model. The caller's key gives the job its
project and user, so budgets and reports apply; headers may set its priority and deadline.
Blocking work (routing, enqueueing, the wait, the key lookup) runs in a pool of threads of
its own, sized for the requests in flight, never in the event loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from lanes.broker.handle import JobHandle
from lanes.broker.result import Result
from lanes.broker.stream import StreamEvent
from lanes.client import Lanes
from lanes.dispatch.waiting import FIRST_CHECK_S
from lanes.kernel.config import Config
from lanes.kernel.config.serve import AUTO, TARGET_PREFIX
from lanes.kernel.errors import JobError, JobFailed, JobTimeout, LanesError
from lanes.serve.waiter import ResultWaiter
from lanes.stores.ledger import KeyOwner, KeyStore

PRIORITY_HEADER = "x-lanes-priority"
DEADLINE_HEADER = "x-lanes-deadline-s"
THREADS = 512
"""Most requests in flight at once (each waits for its job in a thread)."""
T = TypeVar("T")


class Unauthorized(LanesError):
    """No key, or one lanes did not issue (or revoked)."""


class UnknownModel(LanesError):
    """A ``model`` that names nothing lanes serves."""


@dataclass(frozen=True)
class Pins:
    model: str | None = None
    instance: str | None = None


class Door:
    """The front door's state: the client, the key lookups and the threads."""

    def __init__(self, config: Config, lanes: Lanes, keys: KeyStore) -> None:
        self.config = config
        self.lanes = lanes
        self._keys = keys
        self._results = ResultWaiter(lanes.redis, lanes.keys)
        self._owners: dict[str, tuple[float, KeyOwner | None]] = {}
        self._threads = ThreadPoolExecutor(THREADS, thread_name_prefix="lanes-serve")

    async def blocking(self, call: Any, *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._threads, lambda: call(*args, **kwargs))

    async def owner(self, headers: Mapping[str, str]) -> KeyOwner:
        """Whom the request's key speaks for; :class:`Unauthorized` when nobody."""
        key = headers.get("x-api-key") or _bearer(headers)
        if not key:
            raise Unauthorized(
                "no API key: send one lanes issued (`lanes keys create --project P`) as"
                " x-api-key or Authorization: Bearer"
            )
        now = time.monotonic()
        cached = self._owners.get(key)
        if cached is None or now - cached[0] > self.config.serve.key_cache_s:
            found = await self.blocking(self._keys.key_owner, key)
            if len(self._owners) > 10_000:
                self._owners.clear()
            self._owners[key] = cached = (now, found)
        if cached[1] is None:
            raise Unauthorized("invalid API key: it is unknown to this lanes, or revoked")
        return cached[1]

    def pins(self, model: Any) -> Pins:
        """What the request's ``model`` pins; :class:`UnknownModel` when it names nothing."""
        if not isinstance(model, str) or not model:
            raise JobError("model: give a model name, or lanes:auto to let lanes choose")
        serve = self.config.serve
        name = serve.aliases.get(model, model)
        if name == AUTO:
            name = serve.default_model
        if name == AUTO:
            return Pins()
        if name in self.config.models:
            return Pins(model=name)
        target = name.removeprefix(TARGET_PREFIX)
        if name.startswith(TARGET_PREFIX) and target in {
            *self.config.instances,
            *self.config.pools,
        }:
            return Pins(instance=target)
        raise UnknownModel(f"model {model!r} is not served here; GET /v1/models lists them")

    def model_names(self) -> list[str]:
        targets = [
            f"{TARGET_PREFIX}{name}" for name in [*self.config.pools, *self.config.instances]
        ]
        return [AUTO, *self.config.serve.aliases, *self.config.models, *targets]

    async def submit(
        self,
        fields: dict[str, Any],
        model: Any,
        owner: KeyOwner,
        headers: Mapping[str, str],
        *,
        stream: bool = False,
    ) -> JobHandle:
        """Route and enqueue the job the request asks for, as its key's project and user."""
        pins = self.pins(model)
        job = {**fields, **_header_fields(headers), "project": owner.project}
        if owner.user:
            job["user"] = owner.user
        if pins.model:
            job["model"] = pins.model
        if pins.instance:
            job["instance"] = pins.instance
        if stream:
            job["stream"] = True
        handle: JobHandle = await self.blocking(self.lanes.submit, job)
        return handle

    async def result(self, handle: JobHandle) -> Result:
        """The job's result; :class:`JobFailed` when it failed. A job still waiting after
        :data:`FIRST_CHECK_S` on a lane no worker consumes is cancelled: :class:`NoWorker`."""
        timeout_s = self.config.serve.timeout_s
        try:
            result = await self._results.wait(handle.id, min(FIRST_CHECK_S, timeout_s))
        except JobTimeout:
            await self.served(handle)
            result = await self._results.wait(handle.id, max(0.0, timeout_s - FIRST_CHECK_S))
        if not result.ok:
            raise JobFailed(f"job {result.job_id} failed: {result.error}", result=result)
        return result

    async def served(self, handle: JobHandle) -> None:
        """Raise :class:`NoWorker` (the job cancelled) when the job waits on a lane that no
        worker consumes."""
        problem = await self.blocking(self.lanes.unserved, [handle.id])
        if problem is not None:
            await self.blocking(self.lanes.cancel, [handle], "no worker consumes its lane")
            raise problem.noting(f"; job {handle.id} cancelled")

    async def events(self, handle: JobHandle) -> AsyncIterator[StreamEvent]:
        """The job's stream as its worker relays it (each read in one of the door's threads)."""
        events = handle.stream(self.config.serve.timeout_s)
        while True:
            event: StreamEvent | None = await self.blocking(next, events, None)
            if event is None:
                return
            yield event

    def close(self) -> None:
        self._results.close()
        self._threads.shutdown(wait=False, cancel_futures=True)


def _bearer(headers: Mapping[str, str]) -> str:
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _header_fields(headers: Mapping[str, str]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    priority = headers.get(PRIORITY_HEADER)
    if priority:
        fields["priority"] = priority
    deadline = headers.get(DEADLINE_HEADER)
    if deadline:
        try:
            fields["deadline_s"] = float(deadline)
        except ValueError:
            raise JobError(f"{DEADLINE_HEADER}: {deadline!r} is no number of seconds") from None
    return fields
