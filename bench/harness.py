"""What benchmarks share: a Redis, a simulator process, worker processes, clean-up."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import redis
import yaml

from broker.connection import with_db
from broker.embedded import free_port, resolve_redis
from kernel.config import Config, load_config
from kernel.errors import InfrastructureError
from lanes.processes import child_env, spawn, stop_all
from lanes.stack import worker_command


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
    port = free_port()
    args = [sys.executable, "-m", "lanes", "--config", str(config_path), "sim",
            "--port", str(port), "--latency", str(latency_s)]  # fmt: skip
    if not limits:
        args.append("--no-limits")
    proc = spawn(args, env=child_env(env), log_file=log_dir / "bench-sim.log")
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_http(url + "/_sim/health", proc)
        yield url
    finally:
        stop_all([proc])


def _wait_http(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise InfrastructureError(f"simulator exited with {proc.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=0.5).status_code == 200:
                return
        time.sleep(0.1)
    raise InfrastructureError(f"simulator not answering at {url}")


@contextlib.contextmanager
def worker_processes(
    config: Config,
    queues: list[str],
    *,
    count: int,
    concurrency: int,
    env: dict[str, str],
    log_dir: Path,
) -> Iterator[list[subprocess.Popen[bytes]]]:
    procs = []
    try:
        for i in range(count):
            cmd = worker_command(config, queues, f"bench{i}", concurrency)
            procs.append(spawn(cmd, env=child_env(env), log_file=log_dir / f"bench-worker{i}.log"))
        yield procs
    finally:
        stop_all(procs)
