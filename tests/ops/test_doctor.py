"""``lanes doctor`` against real parts: the session Redis (no AOF), a second redis-server with
AOF, a Redis that is not there, a real simulator, a real HTTP endpoint, SQLite and PostgreSQL,
and clock records written where the workers write them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
import redis

from lanes.broker.embedded import EmbeddedRedis, free_port
from lanes.deployment import open_deployment
from lanes.kernel.config import Config
from lanes.ops.check import Check
from lanes.ops.doctor import (
    clock_checks,
    database_check,
    endpoint_checks,
    failures,
    key_check,
    password_check,
    report_json,
    run_checks,
)
from lanes.ops.stack import sim_profiles
from lanes.sim import Simulator
from lanes.stores.keys import Keys
from lanes.stores.sql import open_ledger

from ..conftest import ROOT, write_config
from ..pg import fresh_pg_database

SECRET = "sk-test-SECRET-123"
MakeConfig = Callable[..., tuple[Config, Path]]


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {check.name: check for check in checks}


@pytest.fixture(autouse=True)
def no_keys(monkeypatch: pytest.MonkeyPatch, example_config: Config) -> None:
    """No lane key from the machine's environment leaks into a test."""
    for spec in example_config.instances.values():
        if spec.api_key_env:
            monkeypatch.delenv(spec.api_key_env, raising=False)


@pytest.fixture
def make_config(example_config: Config, tmp_path: Path, keys: Keys) -> MakeConfig:
    """Config files under tmp_path with a unique prefix, a fresh state_dir and a simulator
    port nothing listens on (another run's simulator on 8765 must not answer for this one)."""
    closed = free_port()

    def make(**updates: object) -> tuple[Config, Path]:
        base: dict[str, object] = {
            "redis_prefix": keys.prefix,
            "state_dir": str(tmp_path / "state"),
            "simulator": {"port": closed},
        }
        return write_config(example_config, tmp_path, **{**base, **updates})

    return make


@pytest.fixture
def aof_redis(tmp_path: Path) -> Iterator[str]:
    """A second real redis-server, as lanes starts one: AOF on, noeviction, no RDB."""
    server = EmbeddedRedis(tmp_path / "aof-redis").start()
    try:
        yield server.url
    finally:
        server.stop()


def run_doctor(
    config_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m lanes -c FILE doctor ARGS`` with no lane key, override or proxy inherited."""
    inherited = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("LANES_")
        and not name.lower().endswith("_proxy")
        and not name.endswith(("_API_KEY", "_API_KEY_1", "_API_KEY_2", "_API_KEY_3"))
    }
    return subprocess.run(
        [sys.executable, "-m", "lanes", "-c", str(config_path), "doctor", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**inherited, **(env or {})},
    )


# -- Redis ---------------------------------------------------------------------------------


def test_doctor_fails_a_redis_without_aof_with_the_fix(
    make_config: MakeConfig, redis_url: str
) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    appendonly = client.config_get("appendonly")["appendonly"]
    client.close()
    if appendonly != "no":
        pytest.skip(f"the session Redis runs with appendonly {appendonly}")
    config, path = make_config(redis_url=redis_url)
    checks = by_name(run_checks(config, path))
    assert checks["redis"].status == "ok"
    persistence = checks["redis persistence"]
    assert persistence.status == "fail"
    assert "jobs and limits are lost on a Redis restart" in persistence.detail
    assert "set appendonly yes" in persistence.fix


def test_doctor_passes_an_aof_noeviction_redis_and_fails_an_evicting_one(
    make_config: MakeConfig, aof_redis: str
) -> None:
    config, path = make_config(redis_url=aof_redis)
    checks = run_checks(config, path)
    rows = by_name(checks)
    assert rows["redis persistence"].status == "ok"
    assert rows["redis eviction"].status == "ok"
    assert failures(checks) == [], failures(checks)
    assert report_json(checks)["ok"] is True

    client = redis.Redis.from_url(aof_redis)
    client.config_set("maxmemory-policy", "allkeys-lru")
    client.close()
    eviction = by_name(run_checks(config, path))["redis eviction"]
    assert eviction.status == "fail"
    assert "may drop queued jobs" in eviction.detail
    assert "noeviction" in eviction.fix


def test_doctor_in_production_wants_a_redis_password_and_never_shows_it(
    make_config: MakeConfig, aof_redis: str
) -> None:
    config, path = make_config(redis_url=aof_redis, production=True)
    assert by_name(run_checks(config, path))["redis password"].status == "fail"

    client = redis.Redis.from_url(aof_redis)
    client.config_set("requirepass", "pw-hidden")
    client.close()
    with_password = aof_redis.replace("redis://", "redis://:pw-hidden@")
    config, path = make_config(redis_url=with_password, production=True)
    checks = run_checks(config, path)
    rows = by_name(checks)
    assert rows["redis password"].status == "ok"
    assert rows["redis"].status == "ok" and "redis://***@127.0.0.1" in rows["redis"].detail
    assert "pw-hidden" not in json.dumps(report_json(checks))
    assert password_check("redis://user@h:6379/0").status == "fail"
    assert password_check("redis://h:6379/0?password=x").status == "ok"


def test_doctor_cli_with_no_redis_reports_it_and_exits_1(make_config: MakeConfig) -> None:
    _, path = make_config(redis_url="redis://:pw-hidden@127.0.0.1:1/0")
    proc = run_doctor(path, "--json")
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "pw-hidden" not in proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert report["ok"] is False
    rows = {row["name"]: row for row in report["checks"]}
    assert rows["redis"]["status"] == "fail"
    assert "cannot reach Redis at redis://***@127.0.0.1:1/0" in rows["redis"]["detail"]
    assert "redis persistence" not in rows and rows["config"]["status"] == "ok"


# -- keys and endpoints --------------------------------------------------------------------


@pytest.fixture
def endpoint() -> Iterator[tuple[str, list[dict[str, str]]]]:
    """A real HTTP server answering 404 to everything; the requests it got (path, headers)."""
    seen: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append({"path": self.path, **{k.lower(): v for k, v in self.headers.items()}})
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/api/anthropic", seen
    finally:
        server.shutdown()
        server.server_close()


def _with_zai_at(example_config: Config, base_url: str) -> dict[str, Any]:
    zai = example_config.instances["zai"].model_dump(mode="json")
    return {"instances": {"zai": {**zai, "base_url": base_url}}}


def test_doctor_never_prints_nor_sends_a_key(
    make_config: MakeConfig,
    example_config: Config,
    aof_redis: str,
    endpoint: tuple[str, list[dict[str, str]]],
) -> None:
    url, seen = endpoint
    _, path = make_config(redis_url=aof_redis, **_with_zai_at(example_config, url))
    as_json = run_doctor(path, "--json", env={"ZAI_API_KEY": SECRET})
    table = run_doctor(path, env={"ZAI_API_KEY": SECRET})
    for proc in (as_json, table):
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert SECRET not in proc.stdout + proc.stderr
        assert "sk-test" not in proc.stdout + proc.stderr
    rows = {row["name"]: row for row in json.loads(as_json.stdout)["checks"]}
    assert rows["key zai"] == {
        "name": "key zai", "status": "ok", "detail": "ZAI_API_KEY is set", "fix": ""
    }  # fmt: skip
    assert rows["endpoint zai"]["status"] == "ok" and "HTTP 404" in rows["endpoint zai"]["detail"]
    assert rows["simulator"]["status"] == "warn"  # the other lanes: warned, exit 0 all the same
    assert seen and all(SECRET not in json.dumps(request) for request in seen)
    assert "lanes doctor" in table.stdout and "all good" in table.stdout


def test_doctor_fails_a_lane_whose_endpoint_does_not_answer(
    make_config: MakeConfig, example_config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZAI_API_KEY", SECRET)
    config, _ = make_config(**_with_zai_at(example_config, f"http://127.0.0.1:{free_port()}/api"))
    rows = by_name(endpoint_checks(config, timeout_s=2.0))
    assert rows["endpoint zai"].status == "fail"
    assert "instances.zai.base_url" in rows["endpoint zai"].fix
    assert SECRET not in json.dumps(report_json(list(rows.values())))


def test_doctor_finds_the_simulator_running_and_warns_when_it_is_not(
    make_config: MakeConfig,
) -> None:
    config, _ = make_config()
    down = by_name(endpoint_checks(config, timeout_s=2.0))["simulator"]
    assert down.status == "warn" and down.fix == "start it: lanes sim, or lanes up"
    with Simulator(port=0, profiles=sim_profiles(config)) as sim:
        port = sim.port
        config, _ = make_config(simulator={"port": port})
        up = by_name(endpoint_checks(config, timeout_s=2.0))["simulator"]
    assert up.status == "ok", up
    assert f"127.0.0.1:{port}" in up.detail and "zai" in up.detail


def test_doctor_key_rules_follow_the_simulator_mode(
    make_config: MakeConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, _ = make_config(simulator={"mode": "never"})
    never = key_check(config, "zai")
    assert never.status == "fail" and "export ZAI_API_KEY" in never.fix
    monkeypatch.setenv("ZAI_API_KEY", "   ")
    assert key_check(config, "zai").status == "fail"
    monkeypatch.setenv("ZAI_API_KEY", SECRET)
    config, _ = make_config(simulator={"mode": "always"})
    always = key_check(config, "zai")
    assert always.status == "ok" and "the simulator answers" in always.detail
    assert SECRET not in always.detail


# -- database ------------------------------------------------------------------------------


def test_doctor_sqlite_ledger_not_created_then_at_head_then_behind(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    config, _ = make_config()
    ledger_file = tmp_path / "state" / "ledger.db"
    missing = database_check(config, 3.0)
    assert missing.status == "ok" and "not created yet" in missing.detail
    assert not ledger_file.exists()

    open_ledger(config).close()
    at_head = database_check(config, 3.0)
    assert at_head.status == "ok" and "the newest" in at_head.detail

    empty = tmp_path / "empty.db"
    empty.touch()
    config, _ = make_config(database_url=f"sqlite:///{empty}")
    behind = database_check(config, 3.0)
    assert behind.status == "warn" and behind.fix.startswith("a worker upgrades it on start")


def test_doctor_fails_a_postgresql_that_does_not_answer(make_config: MakeConfig) -> None:
    config, _ = make_config(database_url="postgresql://nobody@127.0.0.1:1/x")
    started = time.monotonic()
    check = database_check(config, 2.0)
    assert time.monotonic() - started < 10
    assert check.status == "fail"
    assert "127.0.0.1" in check.detail and "is PostgreSQL running" in check.fix


def test_doctor_postgresql_ledger_behind_then_at_head(make_config: MakeConfig) -> None:
    with fresh_pg_database() as url:
        config, _ = make_config(database_url=url)
        assert database_check(config, 3.0).status == "warn"
        open_ledger(config).close()
        assert database_check(config, 3.0).status == "ok"


# -- clocks --------------------------------------------------------------------------------


def test_doctor_names_the_skewed_host_and_warns_the_stale_one(
    make_config: MakeConfig, redis_url: str, redis_client: redis.Redis, keys: Keys
) -> None:
    config, path = make_config(redis_url=redis_url)
    seconds, micros = redis_client.time()
    now = seconds + micros / 1e6
    stale_at = now - 10 * config.liveness.interval_s - 60
    records = {
        "skewed-host": {"local": now + 2.5, "redis": now},
        "drifting-host": {"local": now - 1, "redis": now - 1.5},
        "synced-host": {"local": now + 0.01, "redis": now},
        "stale-host": {"local": stale_at + 9, "redis": stale_at},
    }
    redis_client.hset(keys.clocks(), mapping={h: json.dumps(r) for h, r in records.items()})
    redis_client.hset(keys.clocks(), "garbled-host", "not json")

    with open_deployment(config, redis_url) as deployment:
        rows = by_name(clock_checks(deployment))
    assert rows["clock skewed-host"].status == "fail"
    assert "+2.500 s" in rows["clock skewed-host"].detail
    assert "run NTP/chrony on skewed-host" in rows["clock skewed-host"].fix
    assert rows["clock drifting-host"].status == "warn"
    assert rows["clock stale-host"].status == "warn" and "stale" in rows["clock stale-host"].detail
    assert rows["clock garbled-host"].status == "warn"
    assert rows["clock workers"].status == "ok" and "synced-host" in rows["clock workers"].detail
    assert "synced-host" not in {name.removeprefix("clock ") for name in rows}
    assert any(name.endswith("(this host)") and c.status == "ok" for name, c in rows.items())

    failed = [check.name for check in failures(run_checks(config, path))]
    assert "clock skewed-host" in failed and "clock stale-host" not in failed


# -- config and robustness ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("redis_url: [unclosed\n", "not valid YAML"),
        ("bogus_key: 1\n", "bogus_key"),
    ],
)
def test_doctor_reports_a_bad_config_and_exits_1(
    tmp_path: Path, example_config: Config, text: str, expected: str
) -> None:
    _, good = write_config(example_config, tmp_path)
    path = tmp_path / "bad.yaml"
    path.write_text(good.read_text() + text if "bogus" in text else text, encoding="utf-8")
    table = run_doctor(path)
    assert table.returncode == 1, table.stdout + table.stderr
    assert "Traceback" not in table.stderr and "config" in table.stdout
    assert "1 problem: fix it and run lanes doctor again" in table.stdout
    as_json = run_doctor(path, "--json")
    assert as_json.returncode == 1
    report = json.loads(as_json.stdout)
    assert report["ok"] is False and [row["name"] for row in report["checks"]] == ["config"]
    (row,) = report["checks"]
    assert row["status"] == "fail" and row["fix"]
    assert str(path) in row["detail"] and expected in row["detail"]


def test_doctor_a_check_that_breaks_is_a_finding_not_a_crash(
    make_config: MakeConfig, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lanes.ops.doctor

    def broken(config: Config, timeout_s: float) -> Check:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(lanes.ops.doctor, "database_check", broken)
    config, path = make_config(redis_url=redis_url)
    database = by_name(run_checks(config, path))["database"]
    assert database.status == "fail" and "disk on fire" in database.detail
