"""The batch path and prompt caching end to end: a real worker process (its batcher thread
sends and polls the batches), the simulator's batch APIs and prompt cache, real Redis, a
SQLite ledger. One stack for the module; each test uses jobs of its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis

from lanes.bench.spend import billed_usd
from lanes.broker.app import create_app, wait_for_queues
from lanes.client import Lanes
from lanes.deployment import open_deployment
from lanes.kernel.config import Config
from lanes.ops.ledger_view import books
from lanes.ops.processes import child_env, spawn, stop_all
from lanes.ops.stack import sim_profiles, worker_command
from lanes.ops.status import batch_status
from lanes.sim import BATCH_BILLED, Simulator
from lanes.stores.keys import Keys
from lanes.stores.redis.batches import RedisBatches

from ...conftest import write_config

HAIKU = "claude-haiku-4-5"
SONNET = "claude-sonnet-4-5"
PREFIX = "".join(f"line {i}: shared context for every reviewer\n" for i in range(200))
"""About 2,300 tokens: above Sonnet's 1,024-token minimum."""


@dataclass
class Stack:
    config: Config
    path: Path
    redis_url: str
    sim: Simulator
    worker: subprocess.Popen[bytes]
    log: Path

    def client(self) -> Lanes:
        return Lanes(self.config, self.redis_url)

    def start_worker(self) -> None:
        env = child_env({"LANES_CONFIG": str(self.path), "REDIS_URL": self.redis_url})
        name = f"batcher-{uuid.uuid4().hex[:6]}"
        cmd = worker_command(self.config, self.config.lanes(), name, 16)
        self.worker = spawn(cmd, env=env, log_file=self.log)
        app = create_app(self.config, self.redis_url)
        wait_for_queues(app, set(self.config.lanes()), timeout_s=60)
        app.close()

    def batches(self) -> RedisBatches:
        client = redis.Redis.from_url(self.redis_url)
        return RedisBatches(client, Keys(self.config.redis_prefix))

    def reset_profiles(self, **batch: float) -> None:
        """Every instance as configured, its batches taking 0.3 s unless ``batch`` says."""
        for name, profile in sim_profiles(self.config).items():
            update = {"batch_delay_s": 0.3, **batch}
            self.sim.set_profile(name, profile.model_copy(update=update))


@pytest.fixture(scope="module")
def stack(redis_url: str, example_config: Config, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[Stack]:  # fmt: skip
    tmp = tmp_path_factory.mktemp("batcher")
    sim = Simulator(port=0).start()
    prefix = f"lanes-batch-{uuid.uuid4().hex[:8]}"
    config, path = write_config(
        example_config, tmp, redis_url=redis_url, redis_prefix=prefix,
        state_dir=str(tmp / "state"), database_url=f"sqlite:///{tmp / 'ledger.db'}",
        simulator={"mode": "always", "port": sim.port, "latency_s": 0.05,
                   "latency_jitter_s": 0.0, "enforce_limits": False},
        cache={"enabled": False},
        batch={"gather_window_s": 0.3, "poll_interval_s": 0.2, "withdraw_margin_s": 50},
        retry={"attempts_per_step": 2, "backoff_base_s": 0.05, "backoff_max_s": 0.2},
    )  # fmt: skip
    placeholder = subprocess.Popen(["true"])
    built = Stack(config, path, redis_url, sim, placeholder, tmp / "worker.log")
    built.reset_profiles()
    built.start_worker()
    try:
        yield built
    finally:
        stop_all([built.worker])
        sim.stop()
        client = redis.Redis.from_url(redis_url)
        for key in client.scan_iter(f"{prefix}:*", count=1000):
            client.delete(key)


def _batch_jobs(n: int, tag: str, **extra: object) -> list[dict[str, object]]:
    return [{"id": f"{tag}-{uuid.uuid4().hex[:8]}-{i}", "prompt": f"Note {i} on {tag}",
             "model": HAIKU, "max_tokens": 60, **extra} for i in range(n)]  # fmt: skip


def _batched(stats: dict[str, dict[str, int]]) -> int:
    return sum(s.get("batch_requests", 0) for s in stats.values())


def test_jobs_with_slack_are_answered_once_through_the_batch_api_at_its_rate(
    stack: Stack,
) -> None:
    stack.sim.reset_stats()
    since = datetime.now(UTC)
    with stack.client() as lanes:
        handles = [lanes.submit(job) for job in _batch_jobs(5, "slack", deadline_s=7200)]
        results = [h.get(timeout_s=60) for h in handles]
    stats = stack.sim.stats()
    assert all(r.ok and r.batched for r in results)
    assert _batched(stats) == 5 and sum(s.get("ok", 0) for s in stats.values()) == 0
    for r in results:
        full = stack.config.price_usd(r.instance, r.model, r.usage)
        assert r.cost_usd == pytest.approx(full / 2)
        assert r.batch_saved_usd == pytest.approx(full / 2)
    billed = sum(v for s in stats.values() for k, v in s.items() if k.startswith(BATCH_BILLED))
    assert billed == sum(r.input_tokens + r.output_tokens for r in results)
    with books(stack.config, warn=print) as ledger:
        assert ledger.discounts(since).batched_jobs == 5
        assert ledger.spend_since(since) == pytest.approx(sum(r.cost_usd for r in results))


def test_an_economy_job_is_batched_and_a_plain_one_is_a_call(stack: Stack) -> None:
    with stack.client() as lanes:
        economy = lanes.submit(_batch_jobs(1, "economy", economy=True)[0]).get(timeout_s=60)
        plain = lanes.submit(_batch_jobs(1, "plain")[0]).get(timeout_s=60)
    assert economy.batched and not plain.batched


def test_failed_members_run_as_calls(stack: Stack) -> None:
    stack.reset_profiles(batch_error_rate=1.0)
    try:
        with stack.client() as lanes:
            handles = [lanes.submit(job) for job in _batch_jobs(3, "errored", economy=True)]
            results = [h.get(timeout_s=60) for h in handles]
    finally:
        stack.reset_profiles()
    assert all(r.ok and not r.batched for r in results)
    assert all(r.attempt == 1 for r in results)  # the batched attempt, then the call


def test_a_member_near_its_deadline_leaves_its_batch_and_runs_as_a_call(stack: Stack) -> None:
    """The batch takes 30 s; the job is due in 52 s with a 50 s margin: it is taken out after
    about 2 s, run as a call, and its batch (left with no member) is cancelled."""
    stack.reset_profiles(batch_delay_s=30.0)
    stack.sim.reset_stats()
    try:
        with stack.client() as lanes:
            started = time.monotonic()
            job = _batch_jobs(1, "due", economy=True, deadline_s=52)[0]
            result = lanes.submit(job).get(timeout_s=30)
            took_s = time.monotonic() - started
        assert result.ok and not result.batched and took_s < 20
        deadline = time.monotonic() + 10
        while stack.batches().open_batches() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not stack.batches().open_batches()
        assert sum(s.get("ok", 0) for s in stack.sim.stats().values()) == 1
    finally:
        stack.reset_profiles()


def test_an_open_batch_survives_its_worker_being_killed(stack: Stack) -> None:
    stack.reset_profiles(batch_delay_s=4.0)
    stack.sim.reset_stats()
    try:
        with stack.client() as lanes:
            handles = [lanes.submit(job) for job in _batch_jobs(4, "killed", economy=True)]
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                opened = stack.batches().open_batches()
                if opened and all(b.provider_id for b in opened):
                    break
                time.sleep(0.1)
            with open_deployment(stack.config, stack.redis_url) as deployment:
                shown = batch_status(deployment)
            assert sum(batch["jobs"] for batch in shown["open"]) == 4
            stack.worker.kill()  # kill -9: the batcher thread dies mid-poll
            stack.worker.wait(timeout=10)
            stack.start_worker()
            results = [h.get(timeout_s=60) for h in handles]
    finally:
        stack.reset_profiles()
    assert all(r.ok and r.batched for r in results)
    assert _batched(stack.sim.stats()) == 4  # submitted once, answered once


def test_a_fan_out_sharing_a_prefix_writes_it_once_on_one_account(stack: Stack) -> None:
    stack.sim.reset_stats()
    jobs = [{"id": f"fan-{uuid.uuid4().hex[:8]}", "cache_prefix": PREFIX,
             "prompt": f"Review the code above for {focus}.", "instance": "vital",
             "model": SONNET, "max_tokens": 60, "vital": True}
            for focus in ("security", "performance", "architecture")]  # fmt: skip
    with stack.client() as lanes:
        handles = lanes.submit_group(jobs)
        results = [h.get(timeout_s=60) for h in handles]
    assert len({r.instance for r in results}) == 1
    writes = [r.usage.get("cache_creation_input_tokens", 0) for r in results]
    reads = [r.usage.get("cache_read_input_tokens", 0) for r in results]
    assert sorted(w > 0 for w in writes) == [False, False, True]
    assert sum(r > 0 for r in reads) == 2
    assert sum(r.prompt_cache_saved_usd for r in results) > 0


def test_batch_cli_economy_run_is_answered_through_the_batch_api(
    stack: Stack, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:6]
    lines = [{"id": i, "prompt": f"Summarise item {i} ({tag})", "model": HAIKU} for i in range(4)]
    in_file, out, prefix = tmp_path / "in.jsonl", tmp_path / "out.jsonl", tmp_path / "prefix.txt"
    in_file.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    prefix.write_text("You are a careful research assistant.\n", encoding="utf-8")
    env = {**os.environ, "LANES_CONFIG": str(stack.path), "REDIS_URL": stack.redis_url}
    proc = subprocess.run(
        [sys.executable, "-m", "lanes", "batch", str(in_file), "-o", str(out), "--economy",
         "--cache-prefix", str(prefix), "--max-tokens", "40", "--json"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 4 and all(r["status"] == "ok" and r["batched"] for r in rows)


def test_batch_cli_refuses_an_empty_cache_prefix_file(stack: Stack, tmp_path: Path) -> None:
    (tmp_path / "in.jsonl").write_text('{"id": 1, "prompt": "x"}\n', encoding="utf-8")
    (tmp_path / "empty.txt").write_text("  \n", encoding="utf-8")
    env = {**os.environ, "LANES_CONFIG": str(stack.path), "REDIS_URL": stack.redis_url}
    proc = subprocess.run(
        [sys.executable, "-m", "lanes", "batch", str(tmp_path / "in.jsonl"), "-o",
         str(tmp_path / "out.jsonl"), "--cache-prefix", str(tmp_path / "empty.txt")],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2 and "empty" in proc.stderr


def test_a_withdrawn_members_late_answer_is_dropped_but_its_charge_is_kept(
    stack: Stack,
) -> None:
    """Two jobs in one batch; one is due soon and runs as a call; the batch still answers
    both. Its answer stands (one result); the ledger keeps both charges, as the bill does."""
    stack.reset_profiles(batch_delay_s=6.0)
    stack.sim.reset_stats()
    since = datetime.now(UTC)
    try:
        with stack.client() as lanes:
            one = {"economy": True, "instance": "claude1"}  # one lane: one batch
            patient = lanes.submit(_batch_jobs(1, "patient", **one)[0])
            hurried = lanes.submit(_batch_jobs(1, "hurried", deadline_s=52, **one)[0])
            late = hurried.get(timeout_s=30)
            kept = patient.get(timeout_s=30)
            time.sleep(1.0)  # the batch's answer for the withdrawn job is settled too
    finally:
        stack.reset_profiles()
    assert kept.batched and not late.batched and late.ok
    stats = stack.sim.stats()
    assert _batched(stats) == 2 and sum(s.get("ok", 0) for s in stats.values()) == 1
    with books(stack.config, warn=print) as ledger:
        spent = ledger.spend_since(since)
    assert spent > kept.cost_usd + late.cost_usd  # the dropped answer was billed too
    assert spent == pytest.approx(billed_usd(stack.config, stats))
    assert len(stack.batches().open_batches()) == 0


def test_batch_cli_refuses_a_fifo_as_cache_prefix_at_once(stack: Stack, tmp_path: Path) -> None:
    (tmp_path / "in.jsonl").write_text('{"id": 1, "prompt": "x"}\n', encoding="utf-8")
    os.mkfifo(tmp_path / "fifo")
    env = {**os.environ, "LANES_CONFIG": str(stack.path), "REDIS_URL": stack.redis_url}
    proc = subprocess.run(
        [sys.executable, "-m", "lanes", "batch", str(tmp_path / "in.jsonl"), "-o",
         str(tmp_path / "out.jsonl"), "--cache-prefix", str(tmp_path / "fifo")],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2 and "a pipe (FIFO); give a regular file" in proc.stderr
