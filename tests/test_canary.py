"""Canary: API keys planted in the environment appear nowhere lanes writes or prints.

Every lane points at a provider that answers 401 quoting the key it was sent. Real worker
processes run jobs on every lane while Flower watches, a budget alert goes to a webhook;
then every Redis key and value, the worker's log, every result, the output of ``status
--json`` and ``config --json``, a batch's OUT, a pipeline's result, a review's report, the
ledger's exports (JSON and CSV) and its database file, any core or crash file, what the
webhook received, a scrape of the metrics endpoint and Flower's pages and API are searched for
the keys.
"""

from __future__ import annotations

import base64
import csv
import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from lanes.broker.app import create_app, wait_for_queues
from lanes.client import Lanes
from lanes.kernel.config import Config
from lanes.ops.exporter import prepare_multiproc_dir, start_exporter
from lanes.ops.flower import flower_command, pick_port, wait_answering
from lanes.ops.processes import child_env, spawn, stop_all
from lanes.ops.stack import worker_command

from .conftest import write_config
from .fakes import key_echoing_provider, webhook_receiver

FLOWER_AUTH = "ops:flower-canary-pass"

CANARIES = {
    "ANTHROPIC_API_KEY_1": "sk-ant-canary-1a2b3c4d5e6f",
    "ANTHROPIC_API_KEY_2": "sk-ant-canary-2b3c4d5e6f7a",
    "ANTHROPIC_API_KEY_3": "sk-ant-canary-3c4d5e6f7a8b",
    "ZAI_API_KEY": "zai-canary-4d5e6f7a8b9c",
    "KOALA_API_KEY": "koala-canary-5e6f7a8b9c0d",
}


@dataclass(frozen=True)
class Deployment:
    config: Config
    path: Path
    log_file: Path
    flower_port: int
    webhook: list[str]
    """The bodies the budget webhook received."""
    tmp: Path


@pytest.fixture
def canary_deployment(
    example_config: Config, isolated_redis_url: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Deployment]:  # fmt: skip
    for name, value in CANARIES.items():
        monkeypatch.setenv(name, value)
    with key_echoing_provider() as url, webhook_receiver() as (hook_url, received):
        instances = example_config.model_dump(mode="json")["instances"]
        for spec in instances.values():
            spec["base_url"] = url if spec["provider"] == "anthropic" else f"{url}/v1"
        budgets = {
            "limits": [{"scope": "global", "period": "daily", "limit_usd": 1000.0}],
            "alerts": [{"at": 1e-9, "action": "notify"}],
            "webhook_url": hook_url,
        }
        config, path = write_config(
            example_config, tmp_path, redis_url=isolated_redis_url, instances=instances,
            state_dir=str(tmp_path / "state"), simulator={"mode": "never"},
            retry={"attempts_per_step": 1, "backoff_base_s": 0.01, "backoff_max_s": 0.02},
            budgets=budgets,
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
            yield Deployment(config, path, log_file, port, received, tmp_path)
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


def _cli(path: Path, *args: str, cwd: Path | None = None) -> str:
    proc = subprocess.run([sys.executable, "-m", "lanes", "--config", str(path), *args],
                          capture_output=True, text=True, timeout=120, cwd=cwd)  # fmt: skip
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    return proc.stdout + proc.stderr


def _recipes(deployment: Deployment) -> dict[str, str]:
    """What a batch, a pipeline and a review write: their files and their output."""
    tmp, path = deployment.tmp, deployment.path
    jobs = tmp / "in.jsonl"
    jobs.write_text("".join(json.dumps({"id": i, "prompt": f"fact {i}", "max_tokens": 8,
                                        "instance": lane}) + "\n"
                            for i, lane in enumerate(deployment.config.lanes())))  # fmt: skip
    out = tmp / "out.jsonl"
    diff = tmp / "change.diff"
    diff.write_text("--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-a = 1\n+a = 2\n")
    report = tmp / "review.md"
    # Each recipe meets lanes enabled again: a 401 disables a lane, and a review with every
    # lane disabled has no route at all.
    shown = {
        "batch output": _cli(path, "batch", str(jobs), "-o", str(out), "--json"),
        "reset": _cli(path, "reset"),
        "pipeline": _cli(path, "pipeline", "--json", "--timeout", "60"),
        "reset again": _cli(path, "reset"),
        "review output": _cli(
            path, "review", "--diff", str(diff), "-o", str(report), "--timeout", "60", "--yes"
        ),
    }
    shown["batch OUT"] = out.read_text()
    shown["review report"] = report.read_text()
    return shown


def _books(deployment: Deployment) -> dict[str, str]:
    """The ledger as exports show it, and its database file, byte for byte."""
    path = deployment.path
    exported_csv = _cli(path, "export", "--format", "csv")
    rows = list(csv.reader(exported_csv.splitlines()))
    assert len(rows) > 1, exported_csv[-2000:]  # a header and the jobs above
    database = Path(deployment.config.state_dir) / "ledger.db"
    return {
        "export json": _cli(path, "export", "--format", "json"),
        "export csv": exported_csv,
        "ledger database": database.read_bytes().decode("latin-1"),
    }


def _crash_files(root: Path) -> str:
    """Any core dump or crash report lanes' processes left under ``root``."""
    found = [p for p in root.rglob("*") if p.is_file() and (p.name.startswith("core")
             or p.suffix in {".crash", ".dump"})]  # fmt: skip
    return "\n".join(p.read_bytes().decode("latin-1") for p in found)


def test_canary_keys_appear_nowhere(canary_deployment: Deployment, isolated_redis_url: str) -> None:
    deployment = canary_deployment
    config, path = deployment.config, deployment.path
    with Lanes(config, isolated_redis_url) as lanes:
        handles = [lanes.submit({"prompt": f"hello {lane}", "max_tokens": 8, "instance": lane})
                   for lane in config.lanes()]  # fmt: skip
        results = [h.get(timeout_s=60, raise_on_failure=False) for h in handles]
    assert [r.status for r in results] == ["failed"] * len(results)
    assert all("invalid key" in (r.error or "") for r in results)  # the echo got through
    seen = {
        "results": json.dumps([r.to_wire() for r in results]),
        **_recipes(deployment),
        **_books(deployment),
        "redis": _everything_in_redis(isolated_redis_url),
        "worker log": deployment.log_file.read_text(),
        "status": _cli(path, "status", "--json"),
        "config": _cli(path, "config", "--json"),
        "metrics": _metrics(config, isolated_redis_url, path.parent / "metrics"),
        "flower": _flower_pages(deployment.flower_port),
        "crash files": _crash_files(deployment.tmp),
    }
    assert "disabled" in seen["status"]  # 401s disabled the lanes, with a reason
    assert deployment.webhook, "no budget alert reached the webhook"
    seen["webhook"] = "\n".join(deployment.webhook)
    for where, text in seen.items():
        for name, canary in CANARIES.items():
            assert canary not in text, f"{name} leaked into {where}"
