"""Waiting for many jobs' results at once: one subscription for the whole front door.

A worker stores a job's one result and publishes it on a channel named after its key
(``lanes/stores/lua/record.lua``). The waiter holds one Redis connection subscribed to the
pattern of every result key of the deployment and one thread reading it, and completes the
future of each job a request waits for. A result published before its request started
waiting is read with a ``GET`` after the future is registered, so none is missed; after a
lost connection the waiter subscribes again and reads every pending result the same way.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import redis

from lanes.broker.result import Result
from lanes.kernel.errors import JobFailed, JobTimeout
from lanes.stores.keys import Keys

log = logging.getLogger("lanes.serve")
RECONNECT_S = 0.5
READ_THREADS = 16
"""Threads for the one ``GET`` each wait starts with (kept off the event loop)."""


class ResultWaiter:
    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self._client = client
        self._keys = keys
        self._prefix = keys.result("")
        self._pending: dict[str, list[Future[dict[str, Any]]]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._reads = ThreadPoolExecutor(READ_THREADS, thread_name_prefix="lanes-results-get")
        self._pubsub = self._subscribed()
        self._thread = threading.Thread(target=self._run, name="lanes-results", daemon=True)
        self._thread.start()

    async def wait(self, job_id: str, timeout_s: float) -> Result:
        """The job's result; :class:`JobTimeout` after ``timeout_s``, :class:`JobFailed` for
        a result that is none (an error the worker's task stored)."""
        future: Future[dict[str, Any]] = Future()
        with self._lock:
            self._pending.setdefault(job_id, []).append(future)
        try:
            loop = asyncio.get_running_loop()
            key = self._keys.result(job_id)
            stored = await loop.run_in_executor(self._reads, self._client.get, key)
            if stored is not None:
                self._resolve(job_id, stored)
            meta = await asyncio.wait_for(asyncio.wrap_future(future), timeout_s)
        except TimeoutError:
            raise JobTimeout(f"job {job_id} not finished after {timeout_s:g}s") from None
        finally:
            self._forget(job_id, future)
        if meta.get("status") != "SUCCESS" or not isinstance(meta.get("result"), dict):
            raise JobFailed(f"job {job_id} ended without a result: {meta.get('result')!r:.200}")
        return Result.model_validate(meta["result"])

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=3)
        self._pubsub.close()
        self._reads.shutdown(wait=False, cancel_futures=True)

    def _subscribed(self) -> Any:
        pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        pubsub.psubscribe(self._keys.result("*"))
        return pubsub

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                message = self._pubsub.get_message(timeout=1.0)
            except (redis.RedisError, OSError) as exc:
                log.warning("results subscription lost (%s); subscribing again", exc)
                self._stop.wait(RECONNECT_S)
                self._resubscribe()
                continue
            if message and message.get("type") == "pmessage":
                channel = _text(message["channel"])
                self._resolve(channel.removeprefix(self._prefix), message["data"])

    def _resubscribe(self) -> None:
        try:
            self._pubsub.close()
            self._pubsub = self._subscribed()
            with self._lock:
                waiting = list(self._pending)
            for job_id in waiting:
                stored = self._client.get(self._keys.result(job_id))
                if stored is not None:
                    self._resolve(job_id, stored)
        except redis.RedisError as exc:
            log.warning("results subscription not back yet: %s", exc)

    def _resolve(self, job_id: str, raw: Any) -> None:
        with self._lock:
            futures = self._pending.pop(job_id, [])
        if not futures:
            return
        try:
            meta = json.loads(_text(raw))
        except ValueError:
            meta = {"status": "UNREADABLE", "result": _text(raw)[:200]}
        for future in futures:
            if not future.done():
                future.set_result(meta)

    def _forget(self, job_id: str, future: Future[dict[str, Any]]) -> None:
        with self._lock:
            futures = self._pending.get(job_id)
            if futures and future in futures:
                futures.remove(future)
                if not futures:
                    del self._pending[job_id]


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
