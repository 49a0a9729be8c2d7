"""Alerts posted to a webhook without ever blocking the job that raised them."""

from __future__ import annotations

import json
import logging
import queue
import threading
from typing import Any

import httpx

log = logging.getLogger("lanes.budget")

WEBHOOK_QUEUE = 100
"""Alerts waiting for the webhook beyond this many are dropped (and logged)."""


class Webhook:
    """POSTs alert payloads as JSON to ``url`` from one daemon thread.

    Calling it never blocks and never raises: payloads wait in a queue of ``queue_size``;
    beyond that they are dropped with a log line, as are failed posts (timeout ``timeout_s``
    per phase of a request: connect, write, read).
    """

    def __init__(self, url: str, timeout_s: float, *, queue_size: int = WEBHOOK_QUEUE) -> None:
        self.url = url
        self._timeout_s = timeout_s
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=queue_size)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def __call__(self, payload: dict[str, Any]) -> None:
        self._start()
        try:
            self._queue.put_nowait(payload)
        except queue.Full:
            log.warning(
                "webhook %s is behind (%d alerts waiting); dropped: %s",
                self.url,
                self._queue.qsize(),
                payload.get("budget", payload),
            )

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="lanes-budget-webhook", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        with httpx.Client(timeout=self._timeout_s) as client:
            while True:
                self._post(client, self._queue.get())

    def _post(self, client: httpx.Client, payload: dict[str, Any]) -> None:
        body = json.dumps(payload, default=str)
        try:
            response = client.post(
                self.url, content=body, headers={"content-type": "application/json"}
            )
        except httpx.HTTPError as exc:
            log.warning("webhook %s failed, alert dropped: %s", self.url, exc)
            return
        if response.is_error:
            log.warning("webhook %s answered %d, alert dropped", self.url, response.status_code)
