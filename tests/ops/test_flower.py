"""Flower as lanes runs it: basic auth from the environment or generated, secrets never on the
command line, no Flower without auth in production, and a real browser that logs in and finds
every lane's worker, queue and finished ``lanes.run`` task, without a prompt in sight."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from lanes.kernel.config import Config
from lanes.kernel.errors import ConfigError
from lanes.ops.flower import (
    access_lines,
    cookie_secret,
    flower_command,
    flower_env,
    flower_url,
    pick_port,
    resolve_auth,
    wait_answering,
)
from lanes.ops.processes import child_env, spawn, stop_all
from lanes.ops.stack import Stack

from ..conftest import (
    EXAMPLE,
    ROOT,
    LaneStack,
    apt_retry,
    default_sigint,
    missing_tool,
    write_config,
)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
CHEAP = {"zai", "koala"}
WAIT_MS = 30_000


def production(config: Config) -> Config:
    return config.model_copy(update={"production": True})


# --- auth -----------------------------------------------------------------------------------


def test_auth_comes_from_the_environment(example_config: Config) -> None:
    auth = resolve_auth(example_config, {"FLOWER_BASIC_AUTH": "ops:pw1,audit:pw:2"})
    assert auth.basic_auth == "ops:pw1,audit:pw:2"
    assert not auth.generated
    assert auth.users == ["ops", "audit"]
    line = " ".join(access_lines("http://127.0.0.1:5555", auth))
    assert "ops, audit" in line and "pw1" not in line and "pw:2" not in line


def test_without_auth_a_password_is_generated_and_shown_once(example_config: Config) -> None:
    first, second = resolve_auth(example_config, {}), resolve_auth(example_config, {})
    assert first.generated and first.users == ["lanes"]
    assert len(first.password) >= 24 and first.password != second.password
    lines = access_lines("http://127.0.0.1:5555", first)
    assert first.password in lines[0] and "user lanes" in lines[0]
    assert "generated" in lines[1] and "FLOWER_BASIC_AUTH=user:password" in lines[1]


@pytest.mark.parametrize("value", ["ops", "ops:", ":pw", "ops:pw,", "ops:pw,audit"])
def test_malformed_auth_is_refused_without_repeating_it(example_config: Config, value: str) -> None:
    with pytest.raises(ConfigError) as err:
        resolve_auth(example_config, {"FLOWER_BASIC_AUTH": value})
    assert "FLOWER_BASIC_AUTH" in str(err.value)
    assert "pw" not in str(err.value).replace("user:password", "")


def test_production_refuses_flower_without_auth(example_config: Config) -> None:
    with pytest.raises(ConfigError) as err:
        resolve_auth(production(example_config), {})
    message = str(err.value)
    assert "production" in message and "FLOWER_BASIC_AUTH" in message
    auth = resolve_auth(production(example_config), {"FLOWER_BASIC_AUTH": "ops:s3cret"})
    assert not auth.generated


def test_production_stack_refuses_before_starting_anything(
    example_config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FLOWER_BASIC_AUTH", raising=False)
    config, path = write_config(example_config, tmp_path, production=True)
    stack = Stack(config, path, flower=True)
    with pytest.raises(ConfigError, match="FLOWER_BASIC_AUTH"):
        stack.__enter__()
    assert stack.redis_url == "" and stack.workers == [] and stack.sim is None


def test_lanes_flower_refuses_in_production_and_says_why(
    example_config: Config, tmp_path: Path
) -> None:
    _, path = write_config(example_config, tmp_path, production=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWER_")}
    proc = subprocess.run(
        [sys.executable, "-m", "lanes", "--config", str(path), "flower"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "production needs FLOWER_BASIC_AUTH" in " ".join(proc.stderr.split())


# --- process ------------------------------------------------------------------------------


def test_secrets_travel_in_the_environment_not_the_command_line(example_config: Config) -> None:
    auth = resolve_auth(example_config, {"FLOWER_BASIC_AUTH": "ops:s3cret-pw"})
    secret = cookie_secret({"FLOWER_COOKIE_SECRET": "cookie-s3cret"})
    base = {"PATH": "/bin", "PROMETHEUS_MULTIPROC_DIR": "/tmp/m", "REDIS_URL": "redis://x"}
    env = flower_env(base, auth, secret)
    cmd = flower_command(example_config, host="127.0.0.1", port=5599)
    assert env["FLOWER_BASIC_AUTH"] == "ops:s3cret-pw"
    assert env["FLOWER_COOKIE_SECRET"] == "cookie-s3cret"
    assert "PROMETHEUS_MULTIPROC_DIR" not in env and env["REDIS_URL"] == "redis://x"
    assert not any("s3cret" in arg for arg in cmd)
    assert cmd[:3] == [sys.executable, "-m", "lanes.ops.flower_server"]
    assert "--address=127.0.0.1" in cmd and "--port=5599" in cmd
    default = flower_command(example_config)
    assert f"--port={example_config.flower.port}" in default
    assert len(cookie_secret({})) >= 64


def test_flower_reads_the_variables_lanes_sets(example_config: Config) -> None:
    """Flower's own option parser, run on the environment lanes builds."""
    code = (
        "import json; from flower.command import apply_env_options;"
        "from tornado.options import options; apply_env_options();"
        "print(json.dumps([list(options.basic_auth), options.cookie_secret]))"
    )
    auth = resolve_auth(example_config, {"FLOWER_BASIC_AUTH": "a:1,b:2"})
    env = flower_env(dict(os.environ), auth, "cookie")
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [["a:1", "b:2"], "cookie"]


def test_port_zero_means_any_free_port_and_urls_are_local() -> None:
    port = pick_port("127.0.0.1", 0)
    assert 0 < port < 65536 and pick_port("127.0.0.1", 5555) == 5555
    assert flower_url("0.0.0.0", 5555) == "http://127.0.0.1:5555"
    assert flower_url("127.0.0.1", port) == f"http://127.0.0.1:{port}"


def test_stack_runs_flower_behind_auth_and_stops_it(
    example_config: Config,
    isolated_redis_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("FLOWER_BASIC_AUTH", raising=False)
    config, path = write_config(
        example_config, tmp_path, redis_url=isolated_redis_url, state_dir=str(tmp_path / "state"),
        flower={"port": 0}, simulator={"mode": "always", "port": 0},
    )  # fmt: skip
    lines: list[str] = []
    with Stack(config, path, lanes=["koala"], flower=True, log=lines.append) as stack:
        url, auth = stack.flower_url, stack.flower_auth
        assert url and auth and auth.generated
        assert httpx.get(f"{url}/workers", timeout=5).status_code == 401
        user, password = auth.users[0], auth.password
        assert httpx.get(f"{url}/broker", auth=(user, password), timeout=10).status_code == 200
        assert (stack.log_dir / "flower.log").exists()
    assert "starting flower" in lines
    assert url not in " ".join(lines) and password not in " ".join(lines)  # the caller says them
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{url}/healthcheck", timeout=2)


def test_demo_with_flower_keeps_it_up_until_ctrl_c(isolated_redis_url: str, tmp_path: Path) -> None:
    unset = ("FLOWER_", "ANTHROPIC_API_KEY", "ZAI_API_KEY", "KOALA_API_KEY")
    env = {k: v for k, v in os.environ.items() if not k.startswith(unset)}
    env.update(
        REDIS_URL=isolated_redis_url,
        LANES_STATE_DIR=str(tmp_path / "state"),
        LANES_SIMULATOR__PORT="0",
        LANES_FLOWER__PORT="0",
        LANES_REDIS_PREFIX=f"lanes-flower-{uuid.uuid4().hex[:6]}",
    )
    cmd = [sys.executable, "-m", "lanes", "--config", str(EXAMPLE), "demo",
           "--flower"]  # fmt: skip
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=default_sigint,
    )  # fmt: skip
    try:
        lines = _lines_until(proc, "Ctrl-C stops everything")
        found = re.search(r"^flower: (\S+)  user (\S+)  password (\S+)$", "\n".join(lines), re.M)
        assert found, lines
        url, user, password = found.groups()
        assert httpx.get(f"{url}/workers", timeout=5).status_code == 401
        assert httpx.get(f"{url}/workers", auth=(user, password), timeout=10).status_code == 200
        assert sum(password in line for line in lines) == 1
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=90) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{url}/healthcheck", timeout=2)


def _lines_until(proc: subprocess.Popen[str], last: str, timeout_s: float = 240) -> list[str]:
    """``proc``'s output lines up to and including ``last``."""
    assert proc.stdout is not None
    deadline, lines = time.monotonic() + timeout_s, []
    for line in proc.stdout:
        lines.append(line.rstrip("\n"))
        if line.startswith(last):
            return lines
        assert time.monotonic() < deadline, lines
    raise AssertionError(f"exited with {proc.wait()} before {last!r}: {lines}")


def test_missing_chromium_skips_here_and_fails_under_ci(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = sys.modules[__name__]
    monkeypatch.setattr(module, "CHROMIUM", tmp_path / "chromium")
    monkeypatch.setattr(module, "_install_chromium", lambda: "no apt-get on this machine")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no apt-get"):
        chromium()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI is set"):
        chromium()


# --- end to end: Flower and a real browser ------------------------------------------------


def _install_chromium() -> str:
    """Try ``apt-get install chromium``; why it failed, or "" when it worked."""
    if os.geteuid() != 0:
        return "not root, so `apt-get install -y chromium` cannot run"
    return apt_retry(["install", "-y", "--no-install-recommends", "chromium"], 420)


def chromium() -> Path:
    """Debian's Chromium, installed if missing; skip (fail under ``$CI``) where it cannot be."""
    if not CHROMIUM.exists():
        why = _install_chromium()
        if not CHROMIUM.exists():
            missing_tool(
                f"Chromium not at {CHROMIUM}: {why or 'the chromium package did not put it'}"
            )
    return CHROMIUM


def artifacts_dir() -> Path:
    path = Path(os.environ.get("LANES_TEST_ARTIFACTS", ROOT / ".lanes" / "artifacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path


USER, PASSWORD = "tester", f"pw-{uuid.uuid4().hex}"


@pytest.fixture
def flower_on_stack(lane_stack: LaneStack, tmp_path: Path) -> Iterator[str]:
    """``lanes flower`` on the lane stack's Redis and config, with known credentials; its URL.

    It starts before any job runs: Flower learns tasks from the workers' events as they come.
    """
    port = pick_port("127.0.0.1", 0)
    env = {k: v for k, v in child_env({}).items() if not k.startswith("FLOWER_")}
    env.update(FLOWER_BASIC_AUTH=f"{USER}:{PASSWORD}", REDIS_URL=lane_stack.redis_url)
    cmd = [sys.executable, "-m", "lanes", "--config", str(lane_stack.config_path), "flower",
           "--address", "127.0.0.1", "--port", str(port)]  # fmt: skip
    log_file = tmp_path / "flower.log"
    proc = spawn(cmd, env=env, log_file=log_file)
    try:
        url = flower_url("127.0.0.1", port)
        wait_answering(url, proc, log_file)
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().decode()
        assert PASSWORD not in cmdline and "flower" in cmdline
        yield url
    finally:
        stop_all([proc])
        print(f"flower log: {log_file}")


def _worker_name(url: str, prefix: str) -> str:
    """The lane stack's worker as Flower knows it from its events (waits for a heartbeat)."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while True:
        reply = httpx.get(f"{url}/workers", params={"json": 1}, auth=(USER, PASSWORD), timeout=5)
        reply.raise_for_status()
        names = [w["hostname"] for w in reply.json()["data"] if w.get("status")]
        found = [n for n in names if n.startswith(f"test-{prefix}@")]
        if found:
            return found[0]
        assert time.monotonic() < deadline, f"flower sees no worker test-{prefix}@: {names}"
        time.sleep(0.5)


def _run_one_job_per_lane(lane_stack: LaneStack, marker: str) -> dict[str, str]:
    """A job pinned to each lane; lane → job id."""
    done = {}
    with lane_stack.client() as lanes:
        for lane in lane_stack.config.lanes():
            job = {"prompt": f"{marker}: name one sorting algorithm", "max_tokens": 50,
                   "instance": lane, "cache": False}  # fmt: skip
            if lane in CHEAP:
                job["vital"] = False
            result = lanes.run(job, timeout_s=60)
            assert result.ok and result.instance == lane
            done[lane] = result.job_id
    return done


@pytest.mark.timeout(1200)
def test_flower_in_a_browser_shows_lanes_workers_queues_and_tasks_but_no_prompt(
    lane_stack: LaneStack, flower_on_stack: str
) -> None:
    from playwright.sync_api import expect, sync_playwright

    browser_path = chromium()
    url, lanes_ = flower_on_stack, lane_stack.config.lanes()
    assert httpx.get(f"{url}/workers", timeout=5).status_code == 401
    assert httpx.get(f"{url}/workers", auth=(USER, "wrong"), timeout=5).status_code == 401
    worker = _worker_name(url, lane_stack.config.redis_prefix)
    marker = f"secret-prompt-{uuid.uuid4().hex}"
    jobs = _run_one_job_per_lane(lane_stack, marker)
    out = artifacts_dir()
    print(f"flower screenshots in {out}")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(browser_path), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(
                http_credentials={"username": USER, "password": PASSWORD},
                viewport={"width": 1600, "height": 1000},
            )
            page = context.new_page()
            page.set_default_timeout(WAIT_MS)
            seen = []

            page.goto(f"{url}/workers")
            expect(page.get_by_text(worker).first).to_be_visible(timeout=WAIT_MS)
            page.screenshot(path=out / "flower-workers.png", full_page=True)
            seen.append(page.content())

            page.goto(f"{url}/worker/{worker}")
            page.locator("#worker-tab-queues").click()
            queues = page.locator("#worker-queues")
            for lane in lanes_:
                cell = queues.get_by_role("cell", name=lane, exact=True).first
                expect(cell).to_be_visible(timeout=WAIT_MS)
            page.screenshot(path=out / "flower-worker-queues.png", full_page=True)
            seen.append(page.content())

            page.goto(f"{url}/broker")
            for lane in lanes_:
                row = page.locator(f"#queue-table tr[id='{lane}']")
                expect(row).to_have_count(1, timeout=WAIT_MS)
            page.screenshot(path=out / "flower-broker.png", full_page=True)
            seen.append(page.content())

            page.goto(f"{url}/tasks?name=lanes.run&state=SUCCESS")
            rows = page.locator("#tasks-table tbody tr")
            for lane, job_id in jobs.items():
                row = rows.filter(has_text=f"job={job_id}")
                expect(row.first).to_contain_text("lanes.run", timeout=WAIT_MS)
                expect(row.first).to_contain_text("SUCCESS", timeout=WAIT_MS)
                label = re.compile(rf"lane={lane} hop=\d+ step=\d+ attempt=\d+ job={job_id}")
                expect(row.first).to_contain_text(label, timeout=WAIT_MS)
            page.screenshot(path=out / "flower-tasks.png", full_page=True)
            seen.append(page.content())

            page.goto(f"{url}/task/{jobs[lanes_[0]]}")
            expect(page.get_by_text(f"job={jobs[lanes_[0]]}").first).to_be_visible(timeout=WAIT_MS)
            seen.append(page.content())
        finally:
            browser.close()
    for html in seen:
        assert marker not in html
