"""``lanes bench serve``: the time the front door and the queue add to a call.

Real parts: a Redis of its own (db 10, flushed), the simulator in its own process (every call
``latency_s``, no limits), worker processes for every lane, the ledger (SQLite, fresh), and
``lanes serve`` in its own process with a key issued for the bench. The baseline is what an
application does without lanes: the same official SDK calling the simulator directly, the
same model, prompts and concurrency, in the same run. The arms alternate for ``rounds``
rounds; each arm's latencies over all its rounds give its p50 and p99, and its best round
its requests per second. The same is measured for streamed calls: the time from sending the
request to the first text delta.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anthropic
import httpx2

from lanes.bench.cpu import RoleMeter
from lanes.bench.harness import (
    bench_redis,
    derived_config,
    simulated_stack,
    simulated_unlimited,
    wait_http,
)
from lanes.broker.embedded import free_port
from lanes.client import Lanes
from lanes.deployment import open_deployment
from lanes.kernel.config import Config
from lanes.kernel.errors import InfrastructureError
from lanes.ops.processes import child_env, spawn, stop_all
from lanes.stores.sql import open_ledger

SERVE_DB = 10
MODEL = "claude-haiku-4-5"
ADDED_P50_BAR_MS = 5.0
ADDED_FIRST_TOKEN_BAR_MS = 10.0


@dataclass(frozen=True)
class ServeSettings:
    requests: int = 400
    concurrency: int = 50
    latency_s: float = 0.5
    max_tokens: int = 32
    rounds: int = 2
    streamed: int = 100
    """Streamed requests per arm and round (at ``concurrency`` / 5 at once)."""
    workers: int = 2
    unloaded: int = 15
    """Requests per arm made one at a time, to split the time added with no load on the
    machine into the queue's share and the front door's."""


@dataclass
class Arm:
    """One way of calling: an SDK client and the model name it asks for."""

    name: str
    client: anthropic.Anthropic
    model: str
    latencies_s: list[float]
    first_tokens_s: list[float]
    rates: list[float]
    cpu_ms: dict[str, float] = field(default_factory=dict)
    """CPU milliseconds by process role over the concurrent requests (``lanes.bench.cpu``)."""


def serve_config(
    config: Config, directory: Path, redis_url: str, settings: ServeSettings
) -> tuple[Config, Path]:
    def change(data: dict[str, Any]) -> None:
        data.update(redis_url=redis_url, redis_prefix="bench-serve",
                    state_dir=str(directory / "state"))  # fmt: skip
        simulated_unlimited(data)
        data["worker"] = {**data.get("worker", {}), "concurrency": settings.concurrency * 2}

    return derived_config(config, directory / "serve-config.yaml", change)


def run_serve(
    config: Config, settings: ServeSettings, progress: Callable[[str], None]
) -> dict[str, Any]:
    home = Path(config.state_dir) / "bench-serve"
    logs = Path(config.state_dir) / "logs"
    with bench_redis(config, db=SERVE_DB) as url:
        cfg, path = serve_config(config, home, url, settings)
        with simulated_stack(cfg, path, url, latency_s=settings.latency_s,
                             workers=settings.workers, concurrency=settings.concurrency * 2,
                             log_dir=logs, name="bench-serve") as sim_url:  # fmt: skip
            ledger = open_ledger(cfg)
            key = ledger.create_key("bench-serve", None, "lanes bench serve", time.time()).key
            ledger.close()
            env = {"REDIS_URL": url, "LANES_SIMULATOR__PORT": sim_url.rsplit(":", 1)[1]}
            meter = RoleMeter(open_deployment(cfg, url).redis)
            with _front_door(path, env, logs) as door_url:
                arms = [_arm("direct", f"{sim_url}/claude1", "bench", MODEL, settings),
                        _arm("lanes", door_url, key, MODEL, settings)]  # fmt: skip
                progress("unloaded: one request at a time")
                unloaded = _unloaded(cfg, url, arms, settings)
                for round_no in range(settings.rounds):
                    for arm in arms:
                        progress(f"round {round_no + 1}: {arm.name}")
                        _measure(arm, settings, meter)
                for arm in arms:
                    arm.client.close()
    return {**report(settings, arms[0], arms[1]), "unloaded": unloaded}


@contextlib.contextmanager
def _front_door(config_path: Path, env: dict[str, str], logs: Path) -> Iterator[str]:
    port = free_port()
    args = [sys.executable, "-m", "lanes", "--config", str(config_path), "serve",
            "--port", str(port)]  # fmt: skip
    proc = spawn(args, env=child_env(env), log_file=logs / "bench-serve-door.log")
    url = f"http://127.0.0.1:{port}"
    try:  # up once it asks for a key
        wait_http(f"{url}/v1/models", proc, 30.0, status=401, what="lanes serve")
        yield url
    finally:
        stop_all([proc])


def _arm(name: str, base_url: str, key: str, model: str, settings: ServeSettings) -> Arm:
    limits = httpx2.Limits(max_connections=settings.concurrency * 2)
    client = anthropic.Anthropic(
        base_url=base_url, api_key=key, max_retries=0, timeout=60,
        http_client=anthropic.DefaultHttpxClient(limits=limits),
    )  # fmt: skip
    return Arm(name, client, model, [], [], [])


def _measure(arm: Arm, settings: ServeSettings, meter: RoleMeter) -> None:
    tag = f"{arm.name}-{len(arm.rates)}"
    with ThreadPoolExecutor(settings.concurrency) as pool:
        before = meter.snapshot()
        started = time.perf_counter()
        arm.latencies_s += pool.map(lambda i: _call(arm, f"{tag}-{i}", settings),
                                    range(settings.requests))  # fmt: skip
        arm.rates.append(settings.requests / (time.perf_counter() - started))
        spent = meter.since(before, settings.requests * settings.rounds)
        arm.cpu_ms = {role: round(arm.cpu_ms.get(role, 0.0) + ms, 2)
                      for role, ms in spent.items()}  # fmt: skip
    with ThreadPoolExecutor(max(1, settings.concurrency // 5)) as pool:
        arm.first_tokens_s += pool.map(lambda i: _first_token(arm, f"{tag}-s{i}", settings),
                                       range(settings.streamed))  # fmt: skip


def _unloaded(cfg: Config, url: str, arms: list[Arm], settings: ServeSettings) -> dict[str, Any]:
    """p50 of one request at a time: the SDK direct, a job through the queue from the Python
    client (no front door), and the SDK through the front door."""
    direct, door = arms
    times: dict[str, list[float]] = {"direct": [], "queue": [], "door": []}
    with Lanes(cfg, url) as client:
        for i in range(settings.unloaded):
            times["direct"].append(_call(direct, f"u-direct-{i}", settings))
            started = time.perf_counter()
            client.run({**_request(direct, f"u-queue-{i}", settings), "project": "bench-serve"})
            times["queue"].append(time.perf_counter() - started)
            times["door"].append(_call(door, f"u-door-{i}", settings))
    p50 = {name: _quantile_ms(values, 0.5) for name, values in times.items()}
    return {"requests": settings.unloaded,
            **{f"{name}_p50_ms": ms for name, ms in p50.items()},
            "added_by_queue_ms": round(p50["queue"] - p50["direct"], 2),
            "added_by_door_ms": round(p50["door"] - p50["queue"], 2)}  # fmt: skip


def _request(arm: Arm, tag: str, settings: ServeSettings) -> dict[str, Any]:
    prompt = f"Summarise ticket {tag} in one line."
    return {"model": arm.model, "max_tokens": settings.max_tokens,
            "messages": [{"role": "user", "content": prompt}]}  # fmt: skip


def _call(arm: Arm, tag: str, settings: ServeSettings) -> float:
    started = time.perf_counter()
    message = arm.client.messages.create(**_request(arm, tag, settings))
    if not message.content:
        raise InfrastructureError(f"{arm.name}: an empty answer")
    return time.perf_counter() - started


def _first_token(arm: Arm, tag: str, settings: ServeSettings) -> float:
    started = time.perf_counter()
    with arm.client.messages.stream(**_request(arm, tag, settings)) as stream:
        for _ in stream.text_stream:
            first = time.perf_counter() - started
            break
        else:
            raise InfrastructureError(f"{arm.name}: a stream without text")
        for _ in stream.text_stream:
            pass
    return first


def _quantile_ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[int(q * (len(ordered) - 1))] * 1000, 2) if ordered else 0.0


def report(settings: ServeSettings, direct: Arm, lanes: Arm) -> dict[str, Any]:
    def arm(a: Arm) -> dict[str, Any]:
        return {"requests_per_s": round(max(a.rates), 2),
                "cpu_ms_per_request": a.cpu_ms,
                "p50_ms": _quantile_ms(a.latencies_s, 0.5),
                "p99_ms": _quantile_ms(a.latencies_s, 0.99),
                "first_token_p50_ms": _quantile_ms(a.first_tokens_s, 0.5),
                "first_token_p99_ms": _quantile_ms(a.first_tokens_s, 0.99)}  # fmt: skip

    d, s = arm(direct), arm(lanes)
    return {
        "requests": settings.requests,
        "concurrency": settings.concurrency,
        "latency_s": settings.latency_s,
        "rounds": settings.rounds,
        "direct": d,
        "lanes": s,
        "requests_per_s_ratio": round(s["requests_per_s"] / d["requests_per_s"], 4),
        "added_p50_ms": round(s["p50_ms"] - d["p50_ms"], 2),
        "added_p99_ms": round(s["p99_ms"] - d["p99_ms"], 2),
        "added_first_token_ms": round(s["first_token_p50_ms"] - d["first_token_p50_ms"], 2),
        "added_p50_bar_ms": ADDED_P50_BAR_MS,
        "added_first_token_bar_ms": ADDED_FIRST_TOKEN_BAR_MS,
    }
