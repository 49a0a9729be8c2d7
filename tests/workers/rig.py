"""A rig of real processes for fault tests: worker processes started like ``lanes worker``
on a Redis (embedded, or behind Sentinel) with a short broker visibility timeout, and an
in-process simulator. The config refuses a visibility timeout under 60 s, so the workers here
lower the broker's (and sweep for expired messages every second) before they start: a message
held by a killed worker comes back within seconds.

Workers may exit by themselves when Redis goes away while they hold unacknowledged messages
(kombu 5.7 fails while closing the lost connection); like a supervisor, :meth:`Rig.tend`
starts a replacement for any worker that exited.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from lanes.broker.app import wait_for_queues
from lanes.broker.handle import JobHandle
from lanes.broker.result import Result
from lanes.client import Lanes
from lanes.deployment import open_deployment
from lanes.kernel.config import Config
from lanes.ops.processes import child_env, spawn
from lanes.ops.stack import sim_profiles
from lanes.sim import Simulator
from lanes.stores.keys import Keys
from lanes.stores.redis.jobs import RedisJobStore

VISIBILITY_S = 5
"""Broker visibility timeout of the test workers."""

_WORKER = """
import sys
from lanes.workers.celery_app import app
app.conf.broker_transport_options = {
    **app.conf.broker_transport_options,
    "visibility_timeout": int(sys.argv[1]),
    "unacked_restore_interval": 1,
    "unacked_restore_throttle": 1,
}
app.worker_main(sys.argv[2:])
"""


@dataclass
class Rig:
    config: Config
    config_path: Path
    url: str
    sim: Simulator
    log_dir: Path
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    live: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start_worker(
        self, concurrency: int = 4, lanes: list[str] | None = None
    ) -> subprocess.Popen[bytes]:
        """A worker consuming ``lanes`` (default: every lane)."""
        name = f"w{len(self.workers)}"
        queues = ",".join(lanes or self.config.lanes())
        cmd = [sys.executable, "-c", _WORKER, str(VISIBILITY_S), "worker",
               "-Q", queues, "-P", "threads", "-c", str(concurrency),
               "-n", f"{name}@%h", "--without-gossip", "--without-mingle",
               "--loglevel=INFO"]  # fmt: skip
        env = child_env({"REDIS_URL": self.url, "LANES_CONFIG": str(self.config_path),
                         "LANES_SIMULATOR__PORT": str(self.sim.port)})  # fmt: skip
        proc = spawn(cmd, env=env, log_file=self.log_dir / f"{name}.log")
        self.workers.append(proc)
        self.live.append(proc)
        return proc

    def tend(self) -> int:
        """Replace every worker that exited; how many were replaced."""
        exited = [proc for proc in self.live if proc.poll() is not None]
        for proc in exited:
            self.live.remove(proc)
            self.start_worker()
        return len(exited)

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        proc.kill()  # SIGKILL: no warm shutdown, no restore of its messages
        proc.wait(timeout=10)
        self.live.remove(proc)

    def client(self, *, wait: bool = True) -> Lanes:
        """A client; with ``wait``, once every lane has a worker."""
        lanes = Lanes(self.config, self.url)
        if wait:
            wait_for_queues(lanes.app, set(self.config.lanes()), check=self._check_alive)
        return lanes

    def _check_alive(self) -> None:
        assert all(p.poll() is None for p in self.live), f"a worker died; see {self.log_dir}"

    def redis(self) -> redis.Redis:
        """A client of the deployment's Redis (its primary, behind Sentinel)."""
        return open_deployment(self.config, self.url).redis

    def requests(self, instance: str) -> int:
        return self.sim.stats().get(instance, {}).get("requests", 0)

    def slow_down(self, instance: str, latency_s: float) -> None:
        profile = sim_profiles(self.config)[instance]
        self.sim.set_profile(instance, profile.model_copy(update={"latency_s": latency_s}))

    def backlog(
        self, prompt: str, *, latency_s: float, concurrency: int, count: int = 24
    ) -> tuple[Lanes, list[JobHandle]]:
        """Two workers draining ``count`` jobs on claude1 (calls of ``latency_s``), once four
        calls have started: the client and the jobs' handles."""
        self.slow_down("claude1", latency_s)
        self.start_worker(concurrency=concurrency)
        self.start_worker(concurrency=concurrency)
        lanes = self.client()
        handles = [lanes.submit({"prompt": prompt.format(i), "max_tokens": 40,
                                 "instance": "claude1"}) for i in range(count)]  # fmt: skip
        wait_for("calls in flight", lambda: self.requests("claude1") >= 4, 20)
        return lanes, handles


def wait_for(what: str, check: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def recorded_of(rig: Rig, job_id: str) -> tuple[Result | None, dict[str, float]]:
    """The job's one recorded result and its charges by ``step:attempt``."""
    jobs = RedisJobStore(rig.redis(), Keys(rig.config.redis_prefix), rig.config.result_ttl_s)
    return jobs.result(job_id), jobs.charges(job_id)


def results_tending(rig: Rig, handles: list[JobHandle], timeout_s: float = 45) -> list[Any]:
    """Every job's result, replacing workers that exit (as a supervisor would) meanwhile."""
    deadline = time.monotonic() + timeout_s
    while not all(h.ready() for h in handles) and time.monotonic() < deadline:
        rig.tend()
        time.sleep(0.2)
    return [h.get(timeout_s=1) for h in handles]


def queues_drained(rig: Rig) -> bool:
    """No message waiting in any lane queue and none held unacknowledged."""
    client = rig.redis()
    keys = Keys(rig.config.redis_prefix)
    waiting = sum(int(client.llen(keys.queue(lane))) for lane in rig.config.lanes())
    return waiting == 0 and int(client.hlen(keys.unacked())) == 0
