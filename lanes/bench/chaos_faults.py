"""What ``lanes bench chaos`` breaks: workers (``kill -9``), Redis (restart), one lane (outage)
and, with the queues on RabbitMQ, the node that leads a lane's queue (``kill -9``, restarted
after ``broker_down_s``).

:class:`WorkerFleet` keeps a fixed number of worker processes alive and kills one on demand;
:func:`fault_plan` spreads the faults over the submit window; :class:`FaultRunner` plays the
plan and counts what it injected.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from lanes.bench.rabbits import RabbitCluster, RabbitNode
from lanes.broker.embedded import EmbeddedRedis
from lanes.kernel.config import Config
from lanes.kernel.errors import InfrastructureError
from lanes.ops.processes import child_env, spawn, stop_all
from lanes.ops.stack import worker_command
from lanes.sim import Fault, FaultKind, SimControl

_COUNTS = ("worker_kills", "kills_mid_call", "redis_restarts", "lane_outage_s",
           "unexpected_worker_exits", "broker_leader_kills")  # fmt: skip
_TEND_EVERY_S = 1.0
_RESTART_OFFSET_S = 2.5
"""Redis restarts come this long after their even spacing, so they never coincide with a kill."""
_MID_CALL_WAIT_S = 3.0
"""Longest a kill waits for a provider call to be in flight, so that it lands mid-call."""


class WorkerFleet:
    """``size`` worker processes consuming every lane; killed ones are replaced at once."""

    def __init__(
        self, config: Config, *, size: int, concurrency: int, env: dict[str, str], log_dir: Path
    ) -> None:
        self._config = config
        self._size = size
        self._concurrency = concurrency
        self._env = child_env(env)
        self._log_dir = log_dir
        self._started = 0
        self.procs: list[subprocess.Popen[bytes]] = []
        """Every process ever started, dead or alive (all are stopped on :meth:`stop`)."""
        self.live: list[subprocess.Popen[bytes]] = []

    def _spawn(self) -> subprocess.Popen[bytes]:
        name = f"chaos{self._started}"
        self._started += 1
        cmd = worker_command(self._config, self._config.lanes(), name, self._concurrency)
        proc = spawn(cmd, env=self._env, log_file=self._log_dir / f"{name}.log")
        self.procs.append(proc)
        self.live.append(proc)
        return proc

    def start(self) -> None:
        while len(self.live) < self._size:
            self._spawn()

    def kill_one(self, rng: random.Random) -> int:
        """``kill -9`` a random live worker, start its replacement; the killed pid."""
        victim = rng.choice([proc for proc in self.live if proc.poll() is None] or self.live)
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(timeout=10)
        self.live.remove(victim)
        self._spawn()
        return victim.pid

    def replace_exited(self) -> int:
        """Replace workers that exited without being killed; how many there were."""
        exited = [proc for proc in self.live if proc.poll() is not None]
        for proc in exited:
            self.live.remove(proc)
        self.start()
        return len(exited)

    def stop(self) -> None:
        stop_all(self.procs)


@dataclass(frozen=True, order=True)
class PlannedFault:
    at_s: float
    """Seconds after the start of the submit window."""
    kind: str
    """``kill``, ``redis_restart``, ``outage_start``, ``outage_end``, ``broker_kill`` or
    ``broker_restart``."""


@dataclass(frozen=True)
class FaultSpec:
    worker_kills: int = 4
    redis_restarts: int = 2
    redis_down_s: float = 2.0
    """How long Redis stays down on each restart (graceful stop, then start)."""
    outage_lane: str = "zai"
    lane_outage_s: float = 15.0
    outage_kind: FaultKind = "500"
    broker_kills: int = 0
    """Kills of the RabbitMQ node leading ``broker_queue`` (with the queues on RabbitMQ)."""
    broker_down_s: float = 10.0
    broker_queue: str = "claude1"


def fault_plan(spec: FaultSpec, window_s: float) -> list[PlannedFault]:
    """Kills spread over 10-90 % of ``window_s``, restarts between them, one lane outage
    starting at 20 %, broker node kills in the middle of equal parts of the window; sorted by
    time."""
    plan = [
        PlannedFault(window_s * (0.1 + 0.8 * i / max(spec.worker_kills - 1, 1)), "kill")
        for i in range(spec.worker_kills)
    ]
    plan += [
        PlannedFault(
            window_s * (i + 1) / (spec.redis_restarts + 1) + _RESTART_OFFSET_S, "redis_restart"
        )
        for i in range(spec.redis_restarts)
    ]
    for i in range(spec.broker_kills):
        at_s = window_s * (i + 0.5) / spec.broker_kills
        plan += [PlannedFault(at_s, "broker_kill"),
                 PlannedFault(at_s + spec.broker_down_s, "broker_restart")]  # fmt: skip
    if spec.lane_outage_s > 0:
        start_s = window_s * 0.2
        plan += [
            PlannedFault(start_s, "outage_start"),
            PlannedFault(start_s + spec.lane_outage_s, "outage_end"),
        ]
    return sorted(plan)


@dataclass
class FaultRunner:
    """Plays a :func:`fault_plan` against a fleet, a Redis and a simulator."""

    spec: FaultSpec
    fleet: WorkerFleet
    redis: EmbeddedRedis
    sim: SimControl
    rng: random.Random
    progress: Callable[[str], None]
    counts: dict[str, float] = field(default_factory=lambda: dict.fromkeys(_COUNTS, 0))
    """What was injected: ``worker_kills`` (``kills_mid_call`` of them while a provider call
    was in flight), ``redis_restarts``, ``lane_outage_s``, and ``unexpected_worker_exits``
    (workers that died on their own and were replaced)."""
    last_fault_at: float = 0.0
    """``time.monotonic()`` of the last fault injected (or cleared)."""
    broker: RabbitCluster | None = None
    """The RabbitMQ cluster holding the queues, if they are on RabbitMQ."""
    _down: RabbitNode | None = None

    def run(self, plan: list[PlannedFault], started_at: float, stop: threading.Event) -> None:
        """Inject each planned fault at its time, replacing crashed workers meanwhile; return
        early when ``stop`` is set. Call it from the main thread: a worker's parent-death
        signal follows the thread that started it."""
        outage_from = 0.0
        for fault in plan:
            if not self.tend_until(started_at + fault.at_s, stop):
                break
            if fault.kind == "kill":
                self._kill()
            elif fault.kind == "redis_restart":
                self._restart_redis()
            elif fault.kind in ("broker_kill", "broker_restart"):
                self._broker_fault(fault.kind)
            elif fault.kind == "outage_start":
                self.sim.set_fault(self.spec.outage_lane, Fault(kind=self.spec.outage_kind))
                outage_from = time.monotonic()
                self.progress(
                    f"chaos: lane {self.spec.outage_lane} answers {self.spec.outage_kind}"
                )
            else:
                self._end_outage(outage_from)
                outage_from = 0.0
            self.last_fault_at = time.monotonic()
        if outage_from:
            self._end_outage(outage_from)

    def tend_until(self, at: float, stop: threading.Event) -> bool:
        """Until ``time.monotonic()`` reaches ``at``, replace workers that exited on their
        own, once a second; False if ``stop`` was set first."""
        while not stop.is_set():
            exited = self.fleet.replace_exited()
            if exited:
                self.counts["unexpected_worker_exits"] += exited
                self.progress(f"chaos: {exited} worker(s) exited on their own; replaced")
            left_s = at - time.monotonic()
            if left_s <= 0:
                return True
            stop.wait(min(left_s, _TEND_EVERY_S))
        return False

    def _kill(self) -> None:
        mid_call = _wait_for_calls(self.sim, _MID_CALL_WAIT_S)
        pid = self.fleet.kill_one(self.rng)
        self.counts["worker_kills"] += 1
        self.counts["kills_mid_call"] += int(mid_call)
        self.progress(f"chaos: kill -9 worker {pid} ({'mid-call' if mid_call else 'idle'})")

    def _restart_redis(self) -> None:
        self.progress(f"chaos: Redis down for {self.spec.redis_down_s:.1f}s")
        self.redis.restart(self.spec.redis_down_s)
        self.counts["redis_restarts"] += 1
        self.progress("chaos: Redis back")

    def _broker_fault(self, kind: str) -> None:
        if self.broker is None:
            return
        if kind == "broker_kill" and self._down is None:
            self._down = self.broker.leader(self.spec.broker_queue)
            self._down.kill()
            self.counts["broker_leader_kills"] += 1
            self.progress(f"chaos: kill -9 RabbitMQ node {self._down.name}, leader of queue "
                          f"{self.spec.broker_queue}")  # fmt: skip
        elif kind == "broker_restart" and self._down is not None:
            self._down.restart()
            self.progress(f"chaos: RabbitMQ node {self._down.name} back")
            self._down = None

    def _end_outage(self, since: float) -> None:
        self.sim.clear_faults(self.spec.outage_lane)
        self.counts["lane_outage_s"] += round(time.monotonic() - since, 1)
        self.progress(f"chaos: lane {self.spec.outage_lane} healthy again")


def _wait_for_calls(sim: SimControl, timeout_s: float) -> bool:
    """Wait until the simulator has a call in flight; whether one was seen in time."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            stats = sim.stats()
        except httpx.HTTPError as exc:
            raise InfrastructureError(f"simulator control API failed: {exc}") from exc
        if sum(s.get("in_flight", 0) for s in stats.values()) > 0:
            return True
        time.sleep(0.05)
    return False
