"""The throughput bench's parts: CPU sampling, its report, its worker app kept out of the product.

The end-to-end run is in ``test_cli_bench.py``. No timing is asserted anywhere: speed is
reported by the bench, never checked.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import redis

from lanes.bench.harness import (
    BENCH_APP,
    BENCH_QUEUE,
    CPU_KINDS,
    NOOP_TASK,
    PRODUCT_APP,
    SDK_TASK,
    CpuMeter,
    add_bench_queue,
    process_cpu_s,
    redis_cpu_s,
    tree_cpu_s,
    with_app,
)
from lanes.bench.throughput import Arm, cpu_ms_per_job, report
from lanes.broker.app import create_app
from lanes.kernel.config import Config
from lanes.ops.stack import worker_command

from ..conftest import EXAMPLE, ROOT


def _burn_cpu(seconds: float) -> None:
    started = time.process_time()
    while time.process_time() - started < seconds:
        pass


def test_process_cpu_s_moves_when_the_process_burns_cpu() -> None:
    before = process_cpu_s(os.getpid())
    _burn_cpu(0.2)
    after = process_cpu_s(os.getpid())
    assert after - before >= 0.1  # /proc counts in clock ticks (10 ms)


def test_process_cpu_s_of_a_gone_process_is_zero() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert process_cpu_s(proc.pid) == 0.0


def test_tree_cpu_s_counts_live_children() -> None:
    script = (
        "import time\n"
        "t = time.process_time()\n"
        "while time.process_time() - t < 0.3: pass\n"
        "print('burnt', flush=True)\n"
        "time.sleep(60)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == b"burnt"
        assert tree_cpu_s(os.getpid()) - process_cpu_s(os.getpid()) >= 0.2
    finally:
        child.kill()
        child.wait()


def test_redis_cpu_s_reads_the_servers_cpu(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        assert redis_cpu_s(client) > 0
    finally:
        client.close()


def test_cpu_meter_reports_every_kind_and_the_dispatchers_cpu(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        meter = CpuMeter(worker_pids=[os.getpid()], sim_pid=os.getpid(), redis=client)
        elapsed_s, cpu_s = meter.measure(lambda: _burn_cpu(0.2))
    finally:
        client.close()
    assert tuple(cpu_s) == CPU_KINDS
    assert elapsed_s > 0 and cpu_s["dispatcher"] >= 0.15
    assert all(used_s >= 0 for used_s in cpu_s.values())


def test_cpu_ms_per_job_totals_the_kinds() -> None:
    per_job = cpu_ms_per_job(
        {"dispatcher": 1.0, "workers": 2.0, "simulator": 0.5, "redis": 0.25}, 500
    )
    assert per_job == {
        "dispatcher": 2.0,
        "workers": 4.0,
        "simulator": 1.0,
        "redis": 0.5,
        "total": 7.5,
    }


def test_report_keeps_each_arms_best_rate_and_averages_cpu_over_rounds() -> None:
    def arm(name: str, elapsed: list[float]) -> Arm:
        a = Arm(name, lambda _n: None)
        for elapsed_s in elapsed:
            a.record(100, elapsed_s, dict.fromkeys(CPU_KINDS, 0.1))
        return a

    arms = {"lanes": arm("lanes", [2.0, 1.0]), "celery_noop": arm("celery_noop", [0.5, 0.25]),
            "sdk_task": arm("sdk_task", [1.0, 0.5]),
            "lanes_no_ledger": arm("lanes_no_ledger", [1.6, 0.8])}  # fmt: skip
    result = report(100, 2, arms)
    assert result["ratio_vs_sdk_task_median"] == 0.5
    three = {name: arm(name, [1.0, 1.0, 1.0]) for name in arms}
    three["lanes"] = arm("lanes", [4.0, 0.5, 1.25])  # 25, 200 and 80 jobs/s against 100 each
    assert report(100, 3, three)["ratio_vs_sdk_task_median"] == 0.8
    assert result["lanes_no_ledger_jobs_per_s"] == 125.0 and result["ledger_ratio"] == 0.8
    assert result["lanes_jobs_per_s"] == 100.0
    assert result["celery_noop_per_s"] == 400.0 and result["sdk_task_per_s"] == 200.0
    assert result["ratio"] == 0.25 and result["ratio_vs_sdk_task"] == 0.5
    assert result["rounds"][0] == {
        "lanes_jobs_per_s": 50.0,
        "lanes_no_ledger_jobs_per_s": 62.5,
        "celery_noop_per_s": 200.0,
        "sdk_task_per_s": 100.0,
        "ratio_vs_sdk_task": 0.5,
    }
    assert result["cpu_ms_per_job"]["lanes"]["workers"] == 1.0  # 0.2 s over 2 rounds of 100 jobs
    assert result["cpu_ms_per_job"]["lanes"]["total"] == 4.0


def test_bench_workers_run_the_bench_app(example_config: Config) -> None:
    command = worker_command(example_config, ["claude1", BENCH_QUEUE], "bench0", 4)
    bench = with_app(command, BENCH_APP)
    assert command[command.index("-A") + 1] == PRODUCT_APP
    assert bench[bench.index("-A") + 1] == BENCH_APP
    assert len(bench) == len(command)
    assert [a for a in bench if a != BENCH_APP] == [a for a in command if a != PRODUCT_APP]


def test_add_bench_queue_declares_it_once(example_config: Config) -> None:
    app = create_app(example_config, "redis://127.0.0.1:1/0")
    add_bench_queue(app)
    add_bench_queue(app)
    names = [queue.name for queue in app.conf.task_queues]
    assert names == [*example_config.lanes(), BENCH_QUEUE]
    app.close()


def test_the_product_app_has_no_bench_queue_and_no_bench_task(example_config: Config) -> None:
    from lanes.workers.tasks import register_tasks

    app = create_app(example_config, "redis://127.0.0.1:1/0")

    def no_context() -> Any:
        raise AssertionError("registering tasks must not need the worker context")

    register_tasks(app, no_context)
    assert [queue.name for queue in app.conf.task_queues] == example_config.lanes()
    assert app.conf.task_default_queue not in {BENCH_QUEUE, "lanes-noop"}
    assert "lanes.run" in app.tasks
    assert not [name for name in app.tasks if name.startswith("bench.") or name == "lanes.noop"]
    app.close()


def test_the_bench_app_adds_its_queue_and_tasks_to_the_worker_app(redis_url: str) -> None:
    # In a process of its own: importing a worker app builds it from the environment.
    script = (
        "import json, lanes.bench.celery_app as m\n"
        "queues = [q.name for q in m.app.conf.task_queues]\n"
        "tasks = sorted(t for t in m.app.tasks if not t.startswith('celery.'))\n"
        "print(json.dumps({'queues': queues, 'tasks': tasks}))\n"
    )
    env = {**os.environ, "LANES_CONFIG": str(EXAMPLE), "REDIS_URL": redis_url}
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=Path(ROOT), capture_output=True, check=True
    )
    found = json.loads(out.stdout.decode().strip().splitlines()[-1])
    assert found["queues"][-1] == BENCH_QUEUE and found["queues"].count(BENCH_QUEUE) == 1
    assert {NOOP_TASK, SDK_TASK, "lanes.run"} <= set(found["tasks"])
