"""Canary: API keys planted in the environment appear nowhere lanes writes or prints.

Every lane points at a provider that answers 401 quoting the key it was sent. Real worker
processes run jobs on every lane while Flower watches; then every Redis key and value, the
worker's log, every result, the output of ``status --json`` and ``config --json``, a scrape of
the metrics endpoint and Flower's pages and API are searched for the keys.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from broker.app import create_app, wait_for_queues
from kernel.config import Config
from lanes.client import Lanes
from lanes.flower import flower_command, pick_port, wait_answering
from lanes.metrics import prepare_multiproc_dir, start_exporter
from lanes.processes import child_env, spawn, stop_all
from lanes.stack import worker_command

from .conftest import write_config
from .fakes import key_echoing_provider

FLOWER_AUTH = "ops:flower-canary-pass"

CANARIES = {
    "ANTHROPIC_API_KEY_1": "sk-ant-canary-1a2b3c4d5e6f",
    "ANTHROPIC_API_KEY_2": "sk-ant-canary-2b3c4d5e6f7a",
    "ANTHROPIC_API_KEY_3": "sk-ant-canary-3c4d5e6f7a8b",
    "ZAI_API_KEY": "zai-canary-4d5e6f7a8b9c",
    "KOALA_API_KEY": "koala-canary-5e6f7a8b9c0d",
}


@pytest.fixture
def canary_deployment(
    example_config: Config, isolated_redis_url: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[Config, Path, Path, int]]:  # fmt: skip
    for name, value in CANARIES.items():
        monkeypatch.setenv(name, value)
    with key_echoing_provider() as url:
        instances = example_config.model_dump(mode="json")["instances"]
        for spec in instances.values():
            spec["base_url"] = url if spec["provider"] == "anthropic" else f"{url}/v1"
        config, path = write_config(
            example_config, tmp_path, redis_url=isolated_redis_url, instances=instances,
            state_dir=str(tmp_path / "state"), simulator={"mode": "never"},
            retry={"attempts_per_step": 1, "backoff_base_s": 0.01, "backoff_max_s": 0.02},
        )  # fmt: skip
        log_file = tmp_path / "worker.log"
        multiproc = prepare_multiproc_dir(tmp_path / "metrics")
        env = child_env({"LANES_CONFIG": str(path), "REDIS_URL": isolated_redis_url,
                         "PROMETHEUS_MULTIPROC_DIR": str(multiproc)})  # fmt: skip
        worker = spawn(worker_command(config, config.lanes(), "canary", 8), env=env,
                       log_file=log_file)  # fmt: skip
        port = pick_port("127.0.0.1", 0)
        flower_env_ = {**env, "FLOWER_BASIC_AUTH": FLOWER_AUTH}
        flower = spawn(flower_command(config, host="127.0.0.1", port=port), env=flower_env_,
                       log_file=tmp_path / "flower.log")  # fmt: skip
        try:
            wait_answering(f"http://127.0.0.1:{port}", flower, tmp_path / "flower.log")
            app = create_app(config, isolated_redis_url)
            wait_for_queues(app, set(config.lanes()), timeout_s=60)
            app.close()
            yield config, path, log_file, port
        finally:
            stop_all([worker, flower])


def _flower_pages(port: int) -> str:
    """Flower's pages and API as its operator sees them."""
    auth = base64.b64encode(FLOWER_AUTH.encode()).decode()
    pages = []
    for page in ("/workers", "/tasks", "/broker", "/api/tasks", "/api/workers"):
        request = urllib.request.Request(f"http://127.0.0.1:{port}{page}",
                                         headers={"Authorization": f"Basic {auth}"})  # fmt: skip
        with urllib.request.urlopen(request, timeout=30) as reply:
            pages.append(reply.read().decode())
    assert "lanes.run" in pages[3], "Flower saw no lanes.run task"
    return "\n".join(pages)


def _metrics(config: Config, redis_url: str, multiproc: Path) -> str:
    """One scrape of the exporter over the worker's metric files and Redis."""
    exporter = start_exporter(config, redis_url, multiproc=multiproc, port=0)
    try:
        with urllib.request.urlopen(exporter.url, timeout=30) as reply:
            text: str = reply.read().decode()
    finally:
        exporter.close()
    assert "lanes_jobs_total" in text and "lanes_queue_depth" in text
    return text


def _everything_in_redis(url: str) -> str:
    client = redis.Redis.from_url(url)
    parts = []
    for key in client.scan_iter(count=1000):
        kind = client.type(key).decode()
        value = {
            "string": lambda k: client.get(k),
            "hash": lambda k: client.hgetall(k),
            "list": lambda k: client.lrange(k, 0, -1),
            "set": lambda k: client.smembers(k),
            "zset": lambda k: client.zrange(k, 0, -1),
        }.get(kind, lambda k: b"")(key)
        parts.append(f"{key!r} {value!r}")
    client.close()
    return "\n".join(parts)


def _cli(path: Path, *args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "lanes", "--config", str(path), *args],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    return proc.stdout + proc.stderr


def test_canary_keys_appear_nowhere(
    canary_deployment: tuple[Config, Path, Path, int], isolated_redis_url: str
) -> None:
    config, path, log_file, flower_port = canary_deployment
    with Lanes(config, isolated_redis_url) as lanes:
        handles = [lanes.submit({"prompt": f"hello {lane}", "max_tokens": 8, "instance": lane})
                   for lane in config.lanes()]  # fmt: skip
        results = [h.get(timeout_s=60, raise_on_failure=False) for h in handles]
    assert [r.status for r in results] == ["failed"] * len(results)
    assert all("invalid key" in (r.error or "") for r in results)  # the echo got through
    seen = {
        "results": json.dumps([r.to_wire() for r in results]),
        "redis": _everything_in_redis(isolated_redis_url),
        "worker log": log_file.read_text(),
        "status": _cli(path, "status", "--json"),
        "config": _cli(path, "config", "--json"),
        "metrics": _metrics(config, isolated_redis_url, path.parent / "metrics"),
        "flower": _flower_pages(flower_port),
    }
    assert "disabled" in seen["status"]  # 401s disabled the lanes, with a reason
    for where, text in seen.items():
        for name, canary in CANARIES.items():
            assert canary not in text, f"{name} leaked into {where}"
