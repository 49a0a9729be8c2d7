"""``lanes run --stream`` and ``lanes serve`` through the real entry point, on the session's
lane stack."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import pytest

from lanes.broker.embedded import free_port
from lanes.ops.processes import child_env
from lanes.stores.sql import open_ledger

from ..conftest import LaneStack
from .test_routing import run_main


def test_run_stream_prints_the_answer_as_it_comes(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], lane_stack: LaneStack
) -> None:
    code = run_main(monkeypatch, "--config", str(lane_stack.config_path), "run",
                    "Explain how DNS caching works", "--stream", "--instance", "claude2",
                    "--max-tokens", "60", "--timeout", "60")  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    assert len(out.split()) > 5 and "claude2/" in err and " ok" in err


def test_serve_answers_on_its_port_with_a_key_from_the_ledger(lane_stack: LaneStack) -> None:
    ledger = open_ledger(lane_stack.config)
    key = ledger.create_key("cli-serve", None, None, time.time()).key
    ledger.close()
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "lanes", "--config", str(lane_stack.config_path), "serve",
         "--port", str(port)],
        env=child_env({"REDIS_URL": lane_stack.redis_url}),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            try:
                models = httpx.get(f"{url}/v1/models", headers={"x-api-key": key}, timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "lanes serve did not answer within 30 s"
                time.sleep(0.2)
        assert models.json()["data"][0]["id"] == "lanes:auto"
        answer = httpx.post(
            f"{url}/v1/chat/completions", headers={"authorization": f"Bearer {key}"},
            json={"model": "lanes:auto", "max_tokens": 20,
                  "messages": [{"role": "user", "content": "Say hello"}]}, timeout=30,
        )  # fmt: skip
        assert answer.status_code == 200, answer.text
        assert answer.json()["choices"][0]["message"]["content"]
        assert answer.headers["x-lanes-job-id"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
