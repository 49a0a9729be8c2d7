"""What benchmarks share: a Redis, a simulator process, worker processes, clean-up, and the
CPU time each kind of process spends."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import httpx
import redis
import yaml
from kombu.entity import Queue

from lanes.broker.app import wait_for_queues
from lanes.broker.connection import with_db
from lanes.broker.embedded import free_port, resolve_redis
from lanes.deployment import open_deployment
from lanes.kernel.config import Config, load_config
from lanes.kernel.errors import InfrastructureError
from lanes.ops.processes import child_env, spawn, stop_all
from lanes.ops.stack import worker_command

PRODUCT_APP = "lanes.workers.celery_app"
"""The Celery app of lanes' own workers."""
BENCH_APP = "lanes.bench.celery_app"
"""The product's worker app plus the benchmark's queue and tasks (``bench/celery_app.py``)."""
BENCH_QUEUE = "lanes-bench"
"""Queue of the benchmark's own tasks; the product declares no such queue."""
NOOP_TASK = "bench.noop"
SDK_TASK = "bench.sdk_call"


def add_bench_queue(app: Any) -> None:
    """Declare :data:`BENCH_QUEUE` on a Celery app built by ``lanes.broker.app.create_app``, the
    way it declares a lane's queue."""
    queues = list(app.conf.task_queues or [])
    if all(queue.name != BENCH_QUEUE for queue in queues):
        # kombu ships no type hints: its Queue is called as what it is, untyped.
        bench_queue = cast(Any, Queue)(BENCH_QUEUE, routing_key=BENCH_QUEUE)
        app.conf.task_queues = [*queues, bench_queue]


def derived_config(
    config: Config, path: Path, change: Callable[[dict[str, Any]], None]
) -> tuple[Config, Path]:
    """``config`` as plain data, changed in place by ``change``, written to ``path`` (for the
    benchmark's worker processes) and loaded back, validated."""
    data = config.model_dump(mode="json")
    change(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return load_config(path, env={}), path


def peak_rss_mb(pid: int) -> float:
    """Peak resident set size (VmHWM) of a live process, in MiB; 0 if unreadable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return 0.0
    return 0.0


@contextlib.contextmanager
def bench_redis(config: Config, db: int = 13) -> Iterator[str]:
    """A Redis for a benchmark: its own db, flushed before and after."""
    with resolve_redis(config.redis_url, state_dir=Path(config.state_dir)) as base:
        url = with_db(base, db)
        # The benchmark's own Redis database, emptied whole before any deployment opens on
        # it: no deployment's keys, so not the opener's connection (lanes.deployment).
        client = redis.Redis.from_url(url)
        client.flushdb()
        try:
            yield url
        finally:
            client.flushdb()
            client.close()


@contextlib.contextmanager
def sim_process(
    config_path: Path, *, latency_s: float, limits: bool, log_dir: Path, env: dict[str, str]
) -> Iterator[str]:
    """A simulator in its own process (so it does not share a GIL with the measured code)."""
    with sim_subprocess(config_path, latency_s=latency_s, limits=limits, log_dir=log_dir,
                        env=env) as (url, _proc):  # fmt: skip
        yield url


@contextlib.contextmanager
def sim_subprocess(
    config_path: Path, *, latency_s: float, limits: bool, log_dir: Path, env: dict[str, str]
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """:func:`sim_process`, with the process (for its pid): (URL, process)."""
    port = free_port()
    args = [sys.executable, "-m", "lanes", "--config", str(config_path), "sim",
            "--port", str(port), "--latency", str(latency_s)]  # fmt: skip
    if not limits:
        args.append("--no-limits")
    proc = spawn(args, env=child_env(env), log_file=log_dir / "bench-sim.log")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/_sim/health", proc)
        yield url, proc
    finally:
        stop_all([proc])


def wait_http(
    url: str,
    proc: subprocess.Popen[bytes],
    timeout_s: float = 20.0,
    *,
    status: int = 200,
    what: str = "simulator",
) -> None:
    """Until ``url`` answers ``status``; :class:`InfrastructureError` when ``proc`` exits or
    ``timeout_s`` passes first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise InfrastructureError(f"{what} exited with {proc.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=0.5).status_code == status:
                return
        time.sleep(0.1)
    raise InfrastructureError(f"{what} not answering at {url}")


@contextlib.contextmanager
def worker_processes(
    config: Config,
    queues: list[str],
    *,
    count: int,
    concurrency: int,
    env: dict[str, str],
    log_dir: Path,
    app: str = PRODUCT_APP,
    name: str = "bench",
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """``count`` worker processes consuming ``queues``, started with the Celery app ``app``
    (a module path: the product's worker app unless told otherwise), named ``<name><i>``."""
    procs = []
    try:
        for i in range(count):
            cmd = with_app(worker_command(config, queues, f"{name}{i}", concurrency), app)
            log_file = log_dir / f"{name}-worker{i}.log"
            procs.append(spawn(cmd, env=child_env(env), log_file=log_file))
        yield procs
    finally:
        stop_all(procs)


def with_app(command: list[str], app: str) -> list[str]:
    """A ``celery -A APP worker ...`` command line with ``app`` in place of its APP."""
    at = command.index("-A") + 1
    return [*command[:at], app, *command[at + 1 :]]


CPU_KINDS = ("dispatcher", "workers", "simulator", "redis")
"""Kinds of process whose CPU time a benchmark reports, in report order."""


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) ``pid`` has used, its reaped children's included; 0 if gone.

    Reads ``/proc/<pid>/stat``: utime, stime, cutime, cstime are fields 14 to 17.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    after_name = stat.rsplit(")", 1)[1].split()  # the name may hold spaces; field 3 onwards
    ticks = sum(int(field) for field in after_name[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def tree_cpu_s(pid: int) -> float:
    """:func:`process_cpu_s` of ``pid`` and of every live descendant (a forking pool's)."""
    parents = parent_pids()
    total_s, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total_s += process_cpu_s(current)
        todo.extend(child for child, parent in parents.items() if parent == current)
    return total_s


def parent_pids() -> dict[int, int]:
    """Every live process's parent: {pid: ppid}."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited while we looked
        parents[int(stat.parent.name)] = int(fields[1])
    return parents


def redis_cpu_s(client: redis.Redis) -> float:
    """CPU seconds (user + system) the Redis server has used (``INFO cpu``), all its threads."""
    info = client.info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


@dataclass
class CpuMeter:
    """CPU seconds spent by each kind of process (:data:`CPU_KINDS`) while a function runs.

    ``dispatcher`` is this process (it submits and waits), ``workers`` the worker processes
    and their children, ``simulator`` the simulator process, ``redis`` the whole Redis server.
    """

    worker_pids: list[int]
    sim_pid: int
    redis: redis.Redis

    def others_s(self) -> dict[str, float]:
        """CPU seconds so far of every kind but the dispatcher."""
        return {
            "workers": sum(tree_cpu_s(pid) for pid in self.worker_pids),
            "simulator": process_cpu_s(self.sim_pid),
            "redis": redis_cpu_s(self.redis),
        }

    def measure(self, run: Callable[[], None]) -> tuple[float, dict[str, float]]:
        """Run ``run``: (wall seconds, CPU seconds by kind). Sampling the other processes
        happens outside the dispatcher's and the wall clock's measured span."""
        before = self.others_s()
        cpu_started_s, started_s = time.process_time(), time.perf_counter()
        run()
        elapsed_s = time.perf_counter() - started_s
        dispatcher_s = time.process_time() - cpu_started_s
        after = self.others_s()
        used = {kind: after[kind] - before[kind] for kind in after}
        return elapsed_s, {"dispatcher": dispatcher_s, **used}


def simulated_unlimited(data: dict[str, Any]) -> None:
    """Change a config (as plain data) so that every lane talks to the simulator without
    limits and nothing is answered from the response cache: every job is a provider call."""
    data["simulator"].update(mode="always", enforce_limits=False)
    data["cache"] = {**data.get("cache", {}), "enabled": False}
    for inst in data["instances"].values():
        inst.update(limits={}, model_limits={})


@contextlib.contextmanager
def simulated_stack(
    cfg: Config, path: Path, url: str, *, latency_s: float, workers: int, concurrency: int,
    log_dir: Path, name: str,
) -> Iterator[str]:  # fmt: skip
    """The simulator (without limits) and ``workers`` worker processes serving every lane
    of ``cfg`` (written at ``path``) on Redis ``url``, ready (queues consumed, the ledger's
    schema made); the simulator's URL."""
    env = {"REDIS_URL": url, "LANES_CONFIG": str(path.resolve())}
    with sim_subprocess(path, latency_s=latency_s, limits=False, log_dir=log_dir,
                        env=env) as (sim_url, _sim):  # fmt: skip
        env["LANES_SIMULATOR__PORT"] = sim_url.rsplit(":", 1)[1]
        with worker_processes(cfg, cfg.lanes(), count=workers, concurrency=concurrency,
                              env=env, log_dir=log_dir, name=name):  # fmt: skip
            with open_deployment(cfg, url) as deployment:
                wait_for_queues(deployment.app, set(cfg.lanes()))
                deployment.ledger.get()  # the schema, once, before the clients read it
            yield sim_url
