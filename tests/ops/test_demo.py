"""The demo and `lanes up` as a user runs them: separate processes, real Redis, no leftovers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from lanes.broker.app import create_app
from lanes.kernel.config import Config, load_config

from ..conftest import EXAMPLE, default_sigint

REDIS_PREFIX = f"lanes-demo-{uuid.uuid4().hex[:6]}"
"""The deployments these tests start: queues, workers and their control channel live under it."""


def _env(isolated_redis_url: str, tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    for name in list(env):
        if name.startswith(("ANTHROPIC_API_KEY", "ZAI_API_KEY", "KOALA_API_KEY")):
            del env[name]
    env.update(
        REDIS_URL=isolated_redis_url,
        LANES_SIMULATOR__PORT="0",
        LANES_STATE_DIR=str(tmp_path / "state"),
        LANES_REDIS_PREFIX=REDIS_PREFIX,
    )
    return env


def _worker_pids(isolated_redis_url: str, prefix: str) -> dict[str, int]:
    config = load_config(EXAMPLE, env={"LANES_REDIS_PREFIX": REDIS_PREFIX})
    app = create_app(config, isolated_redis_url)
    try:
        replies = app.control.inspect(timeout=1.0).stats() or {}
    finally:
        app.close()
    return {name: int(info["pid"]) for name, info in replies.items() if name.startswith(prefix)}


def _workers_named(isolated_redis_url: str, prefix: str) -> list[str]:
    return list(_worker_pids(isolated_redis_url, prefix))


def test_demo_json_reviews_across_lanes_and_leaves_nothing_running(
    isolated_redis_url: str, tmp_path: Path
) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "lanes", "--config", str(EXAMPLE), "demo", "--json"],
        env=_env(isolated_redis_url, tmp_path), capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    jobs = json.loads(proc.stdout)["jobs"]
    assert [j["reviewer"] for j in jobs] == ["type-safety", "security", "architecture",
                                             "performance"]  # fmt: skip
    assert all(j["status"] == "ok" for j in jobs)
    assert all(j["input_tokens"] > 0 and j["output_tokens"] > 0 for j in jobs)
    assert sum(j["cost_usd"] for j in jobs) > 0
    placed = {j["reviewer"]: (j["lane"], j["model"]) for j in jobs}
    assert placed["type-safety"] == ("zai", "glm-4.5-air")
    vital = [placed[name] for name in ("security", "architecture", "performance")]
    assert {model for _, model in vital} == {"claude-sonnet-4-5"}
    assert {lane for lane, _ in vital} == {"claude2", "claude3"}  # the pool's round robin
    assert jobs[0]["rule"].startswith("non-vital work goes to the cheapest lane")
    assert all(j["rule"].startswith("vital work") for j in jobs[1:])
    assert "every lane talks to the local provider simulator" in proc.stderr
    assert _workers_named(isolated_redis_url, "lanes-") == []


def _wait_for_worker(url: str, prefix: str, proc: subprocess.Popen[str], not_pid: int = 0) -> int:
    deadline = time.monotonic() + 90
    while True:
        pids = [pid for pid in _worker_pids(url, prefix).values() if pid != not_pid]
        if pids:
            return pids[0]
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        assert time.monotonic() < deadline, f"no worker {prefix} came up"


def test_up_replaces_a_dead_worker_and_stops_all_on_ctrl_c(
    isolated_redis_url: str, tmp_path: Path
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "lanes", "--config", str(EXAMPLE), "up", "koala"],
        env=_env(isolated_redis_url, tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=default_sigint,
    )
    try:
        first = _wait_for_worker(isolated_redis_url, "lanes-koala@", proc)
        os.kill(first, signal.SIGKILL)
        second = _wait_for_worker(isolated_redis_url, "lanes-koala@", proc, not_pid=first)
        assert second != first
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) in (0, 130)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert _workers_named(isolated_redis_url, "lanes-koala@") == []


def test_demo_says_why_every_lane_is_simulated(
    example_config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lanes.kernel.config import SimMode
    from lanes.ops.demo import demo_providers_line, real_lanes

    monkeypatch.setenv("ZAI_API_KEY", "set-but-unused")
    sim = example_config.simulator.model_copy(update={"mode": SimMode.ALWAYS})
    config = example_config.model_copy(update={"simulator": sim})
    assert real_lanes(config) == []
    assert demo_providers_line(config, []).startswith("simulator.mode is always")
    assert demo_providers_line(example_config, []).startswith("no API keys set")
    assert demo_providers_line(example_config, ["zai"]) == "real providers for: zai"
