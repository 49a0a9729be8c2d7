"""What Flower shows and allows, on the Flower that ``lanes up`` starts: every lane on the
Broker page, no liveness canary among the tasks, a re-queued job shown as the hop it is, no
reply anywhere, and (unless ``flower.control`` is on) no endpoint that acts on the deployment.

One stack for the module: a worker for one lane of the example config's five, the simulator,
Flower, and canaries every second."""

from __future__ import annotations

import os
import socket
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from lanes.client import Lanes
from lanes.kernel.config import Config
from lanes.ops.flower import flower_url, pick_port, wait_answering
from lanes.ops.processes import child_env, spawn, stop_all
from lanes.ops.stack import Stack
from lanes.recipes.pipeline import parse_pipeline, run_pipeline
from lanes.sim import Fault
from lanes.stores.keys import Keys
from lanes.workers.services.liveness import liveness

from ..conftest import write_config
from .test_flower import CHROMIUM_ARGS, WAIT_MS, chromium

LANE = "koala"
USER, PASSWORD = "viewer", f"pw-{uuid.uuid4().hex}"
AUTH = (USER, PASSWORD)
WORKER = f"lanes-{LANE}@{socket.gethostname()}"


@pytest.fixture(scope="module")
def stack(
    example_config: Config, isolated_redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("flower-views")
    config, path = write_config(
        example_config, tmp, redis_url=isolated_redis_url, state_dir=str(tmp / "state"),
        redis_prefix=f"lanes-fv-{uuid.uuid4().hex[:6]}", flower={"port": 0},
        simulator={"mode": "always", "port": 0, "latency_s": 0.05, "latency_jitter_s": 0.0},
        liveness={"interval_s": 1, "timeout_s": 5},
        retry={"attempts_per_step": 3, "backoff_base_s": 0.05, "backoff_max_s": 0.2},
    )  # fmt: skip
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FLOWER_BASIC_AUTH", f"{USER}:{PASSWORD}")
        with Stack(config, path, lanes=[LANE], flower=True) as running:
            running.wait_ready()
            assert running.flower_url and running.sim is not None
            yield running


def _url(stack: Stack) -> str:
    assert stack.flower_url is not None
    return stack.flower_url


def _get(url: str, **params: Any) -> httpx.Response:
    return httpx.get(url, params=params, auth=AUTH, timeout=10)


def _until(read: Callable[[], Any], timeout_s: float = 30.0) -> Any:
    """``read()`` once it returns something truthy; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = read()
        if value:
            return value
        assert time.monotonic() < deadline, "gave up waiting"
        time.sleep(0.3)


def _task(stack: Stack, task_id: str, state: str = "SUCCESS") -> dict[str, Any]:
    """Flower's record of ``task_id`` once it reached ``state``."""

    def read() -> dict[str, Any] | None:
        reply = _get(f"{_url(stack)}/api/task/info/{task_id}")
        found: dict[str, Any] | None = reply.json() if reply.status_code == 200 else None
        return found if found and found.get("state") == state else None

    info: dict[str, Any] = _until(read)
    return info


def _job(text: str) -> dict[str, Any]:
    return {"prompt": text, "max_tokens": 30, "instance": LANE, "vital": False, "cache": False}


# --- what Flower shows ----------------------------------------------------------------------


def test_every_lane_is_on_the_broker_page_not_only_those_of_inspected_workers(
    stack: Stack,
) -> None:
    url = _url(stack)
    # Opening the worker's page makes Flower inspect it: Flower then knows that worker's queue.
    assert _get(f"{url}/worker/{WORKER}").status_code == 200
    lengths = _get(f"{url}/api/queues/length").json()["active_queues"]
    assert sorted(queue["name"] for queue in lengths) == sorted(stack.config.lanes())

    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium()), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(http_credentials={"username": USER, "password": PASSWORD})
            page = context.new_page()
            page.goto(f"{url}/broker")
            for lane in stack.config.lanes():
                expect(page.locator(f"#queue-table tr[id='{lane}']")).to_have_count(
                    1, timeout=WAIT_MS
                )
        finally:
            browser.close()


def test_liveness_canaries_go_through_but_stay_out_of_flowers_tasks(stack: Stack) -> None:
    client = redis.Redis.from_url(stack.redis_url)
    keys = Keys(stack.config.redis_prefix)
    try:
        seen = [_until(lambda: client.hget(keys.canary(LANE), "seen"))]
        for _ in range(2):  # two more canaries taken while Flower listens
            seen.append(_until(lambda: (s := client.hget(keys.canary(LANE), "seen")) != seen[-1]
                               and s))  # fmt: skip
        assert liveness(client, keys, [LANE], 5)[LANE].consuming is True
    finally:
        client.close()
    url = _url(stack)
    assert _get(f"{url}/api/tasks", taskname="lanes.canary").json() == {}
    assert "lanes.canary" not in _get(f"{url}/api/task/types").json()["task-types"]


def test_a_requeued_job_shows_its_hop_and_lane_first_and_is_not_its_own_parent(
    stack: Stack,
) -> None:
    assert stack.sim is not None
    stack.sim.set_fault(LANE, Fault(kind="500", count=1))
    try:
        with Lanes(stack.config, stack.redis_url) as lanes:
            result = lanes.run(_job(f"requeued {uuid.uuid4().hex}"), timeout_s=60)
    finally:
        stack.sim.clear_faults(LANE)
    assert result.ok and result.attempt == 1  # the first call failed; the job went round again
    info = _task(stack, result.job_id)
    assert info["retries"] == 1
    assert info["args"].startswith(f"lane={LANE} hop=1 step=0 attempt=1 ")
    assert info["args"].endswith(f"job={result.job_id}")
    assert info.get("parent_id") != result.job_id
    assert result.job_id not in (info.get("children") or [])


def test_a_job_waiting_out_a_countdown_shows_on_the_worker_page_by_its_label(
    stack: Stack,
) -> None:
    marker = f"waiting-prompt-{uuid.uuid4().hex}"

    def scheduled() -> list[dict[str, Any]]:
        workers = _get(f"{_url(stack)}/api/workers", workername=WORKER, refresh=1).json()
        found: list[dict[str, Any]] = workers.get(WORKER, {}).get("scheduled") or []
        return found

    with Lanes(stack.config, stack.redis_url) as lanes:
        # The worker holds the message until its countdown ends, as it holds a re-queued job.
        waiting = lanes.signature(_job(marker)).apply_async(countdown=8)
        entries = _until(scheduled)
        result = lanes.job(waiting.id).get(timeout_s=60)
    assert result.ok
    shown = str(entries)
    assert marker not in shown
    assert f"lane={LANE} hop=0 " in shown and f"job={result.job_id}" in shown


def test_no_reply_is_in_a_task_result_or_the_worker_log_even_in_a_pipeline(stack: Stack) -> None:
    spec = parse_pipeline(
        {"name": "two", "steps": [
            {"name": "a", "prompt": "Summarise {input}", "instance": LANE, "vital": False,
             "max_tokens": 40},
            {"name": "b", "prompt": "Polish {previous}", "instance": LANE, "vital": False,
             "max_tokens": 40},
        ]}, "inline",
    )  # fmt: skip
    with Lanes(stack.config, stack.redis_url) as lanes:
        run = run_pipeline(lanes, spec, f"notes {uuid.uuid4().hex}", timeout_s=60)
    assert run.ok, run.to_json()
    first, second = run.results
    assert first is not None and second is not None and first.text and second.text
    log_file = stack.log_dir / f"worker-{LANE}.log"
    _until(lambda: f"lanes.run[{second.job_id}] succeeded" in log_file.read_text())
    for step in (first, second):
        info = _task(stack, step.job_id)
        assert f"'job_id': '{step.job_id}'" in info["result"]
        for shown in (info["result"], info["args"], log_file.read_text()):
            assert step.text not in shown
    listed = _get(f"{_url(stack)}/api/tasks", taskname="lanes.run").text
    assert first.text not in listed and second.text not in listed


# --- what Flower allows ---------------------------------------------------------------------


def test_every_page_and_metrics_need_auth(stack: Stack) -> None:
    url = _url(stack)
    for path in ("/metrics", "/workers", "/broker", "/tasks", "/api/workers", "/api/tasks"):
        assert httpx.get(f"{url}{path}", timeout=10).status_code == 401, path
        assert httpx.get(f"{url}{path}", auth=(USER, "wrong"), timeout=10).status_code == 401
    assert _get(f"{url}/metrics").status_code == 200
    assert httpx.get(f"{url}/healthcheck", timeout=10).text == "OK"


def test_control_endpoints_are_off_by_default_and_read_only_views_work(stack: Stack) -> None:
    url = _url(stack)
    with Lanes(stack.config, stack.redis_url) as lanes:
        done = lanes.run(_job(f"read only {uuid.uuid4().hex}"), timeout_s=60)
    assert _task(stack, done.job_id)["state"] == "SUCCESS"
    attempts = [
        ("post", "/api/task/async-apply/lanes.run", {"args": [{"job": "not sent"}]}),
        ("post", "/api/task/apply/lanes.run", {"args": []}),
        ("post", "/api/task/send-task/lanes.run", {"args": []}),
        ("post", f"/api/task/revoke/{done.job_id}", None),
        ("post", f"/api/task/abort/{done.job_id}", None),
        ("post", f"/api/task/rate-limit/{WORKER}", None),
        ("post", f"/api/task/timeout/{WORKER}", None),
        ("post", f"/api/worker/shutdown/{WORKER}", None),
        ("post", f"/api/worker/pool/restart/{WORKER}", None),
        ("post", f"/api/worker/pool/grow/{WORKER}", None),
        ("post", f"/api/worker/pool/shrink/{WORKER}", None),
        ("post", f"/api/worker/pool/autoscale/{WORKER}", None),
        ("post", f"/api/worker/queue/add-consumer/{WORKER}", None),
        ("post", f"/api/worker/queue/cancel-consumer/{WORKER}", None),
        ("get", f"/api/task/result/{done.job_id}", None),  # the whole result: the reply
    ]
    for method, path, body in attempts:
        reply = httpx.request(method, f"{url}{path}", json=body, auth=AUTH, timeout=10)
        assert reply.status_code == 403, (path, reply.status_code, reply.text)
        assert "flower.control" in reply.text
        assert done.text not in reply.text
    assert stack.workers[0].poll() is None  # still running: the shutdown was refused
    shown = ["/api/workers", "/api/tasks", "/api/task/types", "/api/queues/length",
             f"/api/task/info/{done.job_id}", f"/worker/{WORKER}", "/tasks", "/broker"]  # fmt: skip
    for path in shown:
        assert _get(f"{url}{path}").status_code == 200, path
    page = _get(f"{url}/worker/{WORKER}").text
    assert 'id="worker-shutdown"' not in page  # no buttons that could only fail


def test_flower_control_true_turns_the_control_api_on(stack: Stack, tmp_path: Path) -> None:
    _, path = write_config(stack.config, tmp_path, flower={"control": True, "port": 0})
    port = pick_port("127.0.0.1", 0)
    env = {k: v for k, v in child_env({}).items() if not k.startswith("FLOWER_")}
    env.update(FLOWER_BASIC_AUTH=f"{USER}:{PASSWORD}", REDIS_URL=stack.redis_url)
    cmd = [sys.executable, "-m", "lanes", "--config", str(path), "flower",
           "--address", "127.0.0.1", "--port", str(port)]  # fmt: skip
    log_file = tmp_path / "flower.log"
    proc = spawn(cmd, env=env, log_file=log_file)
    try:
        url = flower_url("127.0.0.1", port)
        wait_answering(url, proc, log_file)
        never_sent = f"never-sent-{uuid.uuid4().hex}"
        reply = httpx.post(f"{url}/api/task/revoke/{never_sent}", auth=AUTH, timeout=10)
        assert reply.status_code == 200, reply.text
        assert httpx.post(f"{url}/api/task/revoke/{never_sent}", timeout=10).status_code == 401
        assert httpx.get(f"{url}/metrics", timeout=10).status_code == 401
    finally:
        stop_all([proc])
    assert os.path.exists(log_file)
