"""``lanes bench chaos --hosts N``: lanes' guarantees with workers on N hosts
(:mod:`lanes.bench.hosts`), each with its clock offset (``+2, -2, 0`` s, repeated).

Two phases, each on its own embedded Redis (reached by the hosts over the state network, with a
password) and simulator:

1. **Rate limits across hosts.** As ``lanes bench ratelimit``: the pool's accounts limited on
   both sides, one worker per host draining a backlog; ``ratelimit.utilization`` of the pool's
   RPM and ``ratelimit.provider_429s``.
2. **Faults across hosts.** Jobs submitted over ``submit_window_s`` to one worker per host,
   while host 1 is cut off from Redis and the broker (its provider calls go on) and host 2's
   worker is paused (``SIGSTOP``), each for ``fault_s``, longer than the broker's lease (the
   visibility timeout). Then the usual audit: ``lost``, ``duplicated_results``,
   ``double_charged``, ``completed``.
"""

from __future__ import annotations

import contextlib
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lanes.bench.chaos import ChaosSettings, audit_run, chaos_config, outcome_counts, stop_threads
from lanes.bench.chaos_jobs import Submitter, Watcher, chaos_jobs
from lanes.bench.harness import sim_process
from lanes.bench.hosts import PROVIDER_NET, ROOT_IP, STATE_NET, Host, simulated_hosts
from lanes.bench.ratelimit import POOL, drive, ratelimit_config, utilization
from lanes.broker.app import wait_for_queues
from lanes.broker.embedded import EmbeddedRedis
from lanes.client import Lanes
from lanes.kernel.config import Config
from lanes.kernel.errors import InfrastructureError
from lanes.ops.doctor import clock_checks
from lanes.ops.processes import child_env, spawn, stop_all
from lanes.ops.stack import worker_command
from lanes.sim import SimControl

Progress = Callable[[str], None]
SKEWS_S = (2.0, -2.0, 0.0)


@dataclass(frozen=True)
class HostsSettings:
    hosts: int = 3
    jobs: int = 300
    concurrency: int = 8
    latency_s: float = 1.0
    submit_window_s: float = 45.0
    visibility_timeout_s: int = 20
    call_timeout_s: float = 8.0
    fault_at_s: float = 8.0
    fault_s: float = 30.0
    """How long host 1 stays cut off and host 2's worker paused: past the lease."""
    drain_s: float = 90.0
    late_s: float = 15.0
    """After the faults, the audit waits at least this long for late answers to land."""
    ratelimit_s: float = 60.0
    warmup_s: float = 45.0
    ratelimit_latency_s: float = 2.0
    seed: int = 7


@dataclass
class HostStack:
    """Redis, the simulator and the relays for ``hosts``; workers started on demand."""

    hosts: list[Host]
    home: Path
    redis_url: str
    sim_url: str
    env: dict[str, str]
    procs: list[subprocess.Popen[bytes]]
    workers: dict[int, subprocess.Popen[bytes]]

    def start_worker(self, host: Host, cfg: Config, lanes: list[str], concurrency: int) -> None:
        name = f"{host.hostname}-{len(self.procs)}"
        cmd = host.command(worker_command(cfg, lanes, name, concurrency))
        proc = spawn(cmd, env=child_env({**self.env, **host.env()}),
                     log_file=self.home / "logs" / f"{name}.log")  # fmt: skip
        self.procs.append(proc)
        self.workers[host.index] = proc

    def replace_exited(self, cfg: Config, lanes: list[str], concurrency: int) -> int:
        exited = [h for h in self.hosts if self.workers[h.index].poll() is not None]
        for host in exited:
            self.start_worker(host, cfg, lanes, concurrency)
        return len(exited)


@contextlib.contextmanager
def host_stack(
    hosts: list[Host], home: Path, cfg_for: Callable[[str], tuple[Config, Path]], *,
    latency_s: float, limits: bool,
) -> Iterator[tuple[HostStack, Config]]:  # fmt: skip
    """A fresh Redis reached at the state address (with a password), the config ``cfg_for``
    derives on it, the simulator at the provider address and a relay into every host."""
    shutil.rmtree(home, ignore_errors=True)
    password = secrets.token_hex(16)
    state_ip = f"{STATE_NET}.{ROOT_IP}"
    server = EmbeddedRedis(home / "redis", appendfsync="always", password=password,
                           extra_args=["--bind", "127.0.0.1", state_ip]).start()  # fmt: skip
    procs: list[subprocess.Popen[bytes]] = []
    try:
        url = f"redis://:{password}@{state_ip}:{server.port}/0"
        cfg, path = cfg_for(url)
        env = {"REDIS_URL": url, "LANES_CONFIG": str(path.resolve())}
        with sim_process(path, latency_s=latency_s, limits=limits, log_dir=home / "logs",
                         env=env) as sim_url:  # fmt: skip
            port = sim_url.rsplit(":", 1)[1]
            env["LANES_SIMULATOR__PORT"] = port
            provider_ip = f"{PROVIDER_NET}.{ROOT_IP}"
            relay = [sys.executable, "-m", "lanes.bench.relay"]
            procs.append(spawn([*relay, provider_ip, port, "127.0.0.1"], env=child_env({}),
                               log_file=home / "logs" / "relay.log"))  # fmt: skip
            for host in hosts:
                log = home / "logs" / f"relay-{host.hostname}.log"
                inside = host.command([*relay, "127.0.0.1", port, provider_ip])
                procs.append(spawn(inside, env=child_env({}), log_file=log))
            stack = HostStack(hosts, home, url, sim_url, env, procs, {})
            yield stack, cfg
    finally:
        stop_all(procs)
        server.stop()


def run_chaos_hosts(config: Config, settings: HostsSettings, progress: Progress) -> dict[str, Any]:
    home = Path(config.state_dir) / "bench-chaos-hosts"
    skews = [SKEWS_S[i % len(SKEWS_S)] for i in range(settings.hosts)]
    with simulated_hosts(skews) as hosts:
        progress(f"{len(hosts)} hosts, clocks {', '.join(f'{s:+g} s' for s in skews)}")
        rates = _ratelimit(config, hosts, home / "ratelimit", settings, progress)
        found = _faults(config, hosts, home / "faults", settings, progress)
    return {"hosts": settings.hosts, "clock_offsets_s": skews, **found, "ratelimit": rates}


def _ratelimit(
    config: Config, hosts: list[Host], home: Path, settings: HostsSettings, progress: Progress
) -> dict[str, Any]:
    cfg_for = lambda url: ratelimit_config(config, home, url)  # noqa: E731
    latency_s = settings.ratelimit_latency_s
    with host_stack(hosts, home, cfg_for, latency_s=latency_s, limits=True) as (stack, cfg):
        members = cfg.members(POOL)
        for host in hosts:
            stack.start_worker(host, cfg, members, cfg.worker.concurrency)
        with Lanes(cfg, stack.redis_url) as lanes:
            wait_for_queues(lanes.app, set(members), check=lambda: _alive(stack))
        measured = drive(cfg, stack.redis_url, stack.sim_url, settings.ratelimit_s,
                         settings.warmup_s, progress)  # fmt: skip
    return utilization(measured, len(members))


def _faults(
    config: Config, hosts: list[Host], home: Path, settings: HostsSettings, progress: Progress
) -> dict[str, Any]:
    chaos = ChaosSettings(latency_s=settings.latency_s, call_timeout_s=settings.call_timeout_s,
                          visibility_timeout_s=settings.visibility_timeout_s,
                          concurrency=settings.concurrency)  # fmt: skip
    cfg_for = lambda url: chaos_config(config, home, url, chaos)  # noqa: E731
    latency_s = settings.latency_s
    with host_stack(hosts, home, cfg_for, latency_s=latency_s, limits=False) as (stack, cfg):
        lanes_ = cfg.lanes()
        for host in hosts:
            stack.start_worker(host, cfg, lanes_, settings.concurrency)
        with Lanes(cfg, stack.redis_url) as client:
            wait_for_queues(client.app, set(lanes_), check=lambda: _alive(stack))
            return _run_faults(stack, cfg, client, settings, progress)


def _run_faults(
    stack: HostStack, cfg: Config, client: Lanes, settings: HostsSettings, progress: Progress
) -> dict[str, Any]:
    rng = random.Random(settings.seed)
    jobs = chaos_jobs(settings.jobs, f"hosts-{uuid.uuid4().hex[:8]}", ChaosSettings().mix, rng)
    stop = threading.Event()
    submitter = Submitter(client, jobs, window_s=settings.submit_window_s, stop=stop,
                          progress=progress)  # fmt: skip
    watcher = Watcher(submitter, client.app)
    cut, paused = stack.hosts[0], stack.hosts[1 % len(stack.hosts)]
    started = time.monotonic()
    submitter.start()
    watcher.start()
    tend = lambda: stack.replace_exited(cfg, cfg.lanes(), settings.concurrency)  # noqa: E731
    try:
        _sleep_tending(settings.fault_at_s, tend)
        victim = stack.workers[paused.index]
        progress(f"cutting {cut.hostname} off from Redis; pausing {paused.hostname}'s worker "
                 f"for {settings.fault_s:.0f} s")  # fmt: skip
        cut.cut()
        os.kill(victim.pid, signal.SIGSTOP)
        try:
            time.sleep(settings.fault_s)  # no replacing meanwhile: the cut-off host's comes back
        finally:
            cut.mend()
            os.kill(victim.pid, signal.SIGCONT)
        progress("both hosts back; waiting for every result and the late answers")
        back = time.monotonic()
        deadline = back + settings.drain_s
        while time.monotonic() < deadline:
            settled = not submitter.is_alive() and watcher.settled(len(submitter.accepted))
            if settled and time.monotonic() > back + settings.late_s:
                break
            _sleep_tending(1.0, tend)
    finally:
        stop_threads(stop, submitter, watcher)
    found = audit_run(submitter, watcher, client)
    with SimControl(stack.sim_url) as sim:
        stats = sim.stats()
    report: dict[str, Any] = {
        **outcome_counts(found, len(submitter.accepted), stats),
        "cut_off_host": cut.hostname, "paused_host": paused.hostname,
        "fault_s": settings.fault_s, "lease_s": settings.visibility_timeout_s,
        "clocks_seen": _clocks(client),
        "duration_s": round(time.monotonic() - started, 1),
    }  # fmt: skip
    if found.examples:
        report["examples"] = found.examples
    return report


def _sleep_tending(seconds: float, tend: Callable[[], int]) -> None:
    """Sleep ``seconds``, replacing exited workers each second."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        tend()
        time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))


def _clocks(client: Lanes) -> dict[str, str]:
    """What ``lanes doctor`` makes of each host's clock (each worker reports its own)."""
    rows = clock_checks(client.deployment)
    return {row.name: f"{row.status}: {row.detail}" for row in rows if row.name != "clock"}


def _alive(stack: HostStack) -> None:
    for host, proc in stack.workers.items():
        if proc.poll() is not None:
            raise InfrastructureError(f"the worker on host{host} exited with {proc.returncode}")
