"""Server lifecycle, routing and connection handling, down to raw sockets."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from lanes.sim import Profile, Simulator
from lanes.sim.__main__ import load_profiles
from lanes.sim.engine import latency_s

HELLO: list[Any] = [{"role": "user", "content": "ping"}]
GUARD_S = 20.0
"""Upper bound on waiting for something that should happen; a hang guard, not a speed check."""


def _raw_request(port: int, instance: str = "x", *, close: bool = False) -> bytes:
    body = json.dumps({"model": "m", "messages": HELLO}).encode()
    head = (
        f"POST /{instance}/v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer k\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n" + ("Connection: close\r\n" if close else "") + "\r\n"
    )
    return head.encode() + body


def _read_response(conn: socket.socket) -> tuple[int, dict[str, str], bytes]:
    reader = conn.makefile("rb")
    status = int(reader.readline().split()[1])
    headers: dict[str, str] = {}
    while (line := reader.readline().decode().strip()) != "":
        name, _, value = line.partition(":")
        headers[name.lower()] = value.strip()
    return status, headers, reader.read(int(headers["content-length"]))


def _wait_for(condition: Any) -> None:
    deadline = time.monotonic() + GUARD_S
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def test_simulator_context_manager_serves_then_refuses() -> None:
    with Simulator() as sim:
        port = sim.port
        assert port > 0
        assert sim.url == f"http://127.0.0.1:{port}"
        assert sim.base_url("claude1") == f"http://127.0.0.1:{port}/claude1"
        assert httpx.get(f"{sim.url}/_sim/health").json() == {"ok": True}
    assert not sim.running
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/_sim/health")


def test_simulator_stop_is_idempotent_and_start_returns_self() -> None:
    sim = Simulator()
    assert sim.start() is sim
    assert sim.start() is sim
    sim.stop()
    sim.stop()
    assert not sim.running


def test_simulator_keeps_connections_alive() -> None:
    with Simulator() as sim, socket.create_connection(("127.0.0.1", sim.port)) as conn:
        for _ in range(3):
            conn.sendall(_raw_request(sim.port))
            status, headers, body = _read_response(conn)
            assert status == 200
            assert "connection" not in headers
            assert json.loads(body)["object"] == "chat.completion"
        conn.sendall(_raw_request(sim.port, close=True))
        status, headers, _ = _read_response(conn)
        assert headers["connection"] == "close"
        assert conn.recv(1) == b""


def test_simulator_holds_many_slow_calls_in_flight_at_once() -> None:
    connections = 120
    with Simulator(default_profile=Profile(latency_s=2.0)) as sim:
        sockets = [socket.create_connection(("127.0.0.1", sim.port)) for _ in range(connections)]
        try:
            for conn in sockets:
                conn.sendall(_raw_request(sim.port, "slow"))
            _wait_for(lambda: sim.stats().get("slow", {}).get("in_flight") == connections)
            assert all(_read_response(conn)[0] == 200 for conn in sockets)
        finally:
            for conn in sockets:
                conn.close()
        assert sim.stats()["slow"]["ok"] == connections


def test_simulator_stop_hangs_up_on_sleeping_calls() -> None:
    sim = Simulator(default_profile=Profile(latency_s=600.0)).start()
    client = anthropic.Anthropic(api_key="k", base_url=sim.base_url("slow"), max_retries=0)
    errors: list[BaseException] = []

    def call() -> None:
        try:
            client.messages.create(model="m", max_tokens=10, messages=HELLO)
        except anthropic.APIError as exc:
            errors.append(exc)

    worker = threading.Thread(target=call)
    worker.start()
    _wait_for(lambda: sim.stats().get("slow", {}).get("in_flight") == 1)
    sim.stop()
    worker.join(GUARD_S)
    assert not worker.is_alive()
    assert len(errors) == 1
    assert isinstance(errors[0], anthropic.APIConnectionError)
    client.close()


def test_simulator_without_default_profile_only_serves_listed_instances() -> None:
    with Simulator(profiles={"known": Profile()}, default_profile=None) as sim:
        anthropic_headers = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
        body = {"model": "m", "max_tokens": 10, "messages": HELLO}
        response = httpx.post(f"{sim.url}/other/v1/messages", json=body, headers=anthropic_headers)
        assert response.status_code == 404
        assert response.json()["error"]["type"] == "not_found_error"
        chat = {"model": "m", "messages": HELLO}
        openai_headers = {"authorization": "Bearer k"}
        response = httpx.post(
            f"{sim.url}/other/v1/chat/completions", json=chat, headers=openai_headers
        )
        assert response.status_code == 404
        assert set(response.json()["error"]) == {"message", "type", "param", "code"}
        assert (
            httpx.post(
                f"{sim.url}/known/v1/chat/completions", json=chat, headers=openai_headers
            ).status_code
            == 200
        )
        assert set(sim.stats()) == {"known"}


def test_simulator_unknown_path_is_404(sim: Simulator, http: httpx.Client) -> None:
    response = http.get("/claude1/v1/complete", headers={"anthropic-version": "2023-06-01"})
    assert response.status_code == 404
    assert response.json()["type"] == "error"


def test_simulator_oversize_body_is_413_without_reading_it(sim: Simulator) -> None:
    head = (
        "POST /claude1/v1/messages HTTP/1.1\r\nHost: x\r\nx-api-key: k\r\n"
        "anthropic-version: 2023-06-01\r\nContent-Length: 40000000\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", sim.port)) as conn:
        conn.sendall(head.encode())
        status, headers, body = _read_response(conn)
    assert status == 413
    assert headers["connection"] == "close"
    assert json.loads(body)["error"]["type"] == "request_too_large"


def test_latency_draws_stay_within_jitter_and_repeat_per_seed() -> None:
    profile = Profile(latency_s=1.0, latency_jitter_s=0.5)
    first_rng, second_rng = random.Random(3), random.Random(3)
    first = [latency_s(profile, first_rng) for _ in range(50)]
    assert first == [latency_s(profile, second_rng) for _ in range(50)]
    assert all(0.5 <= value <= 1.5 for value in first)
    assert len(set(first)) > 1
    assert latency_s(Profile(latency_s=0.25), first_rng) == 0.25


def test_run_forever_prints_url_and_stops_on_sigterm() -> None:
    code = (
        "from lanes.sim import Profile, run_forever\n"
        "run_forever('127.0.0.1', 0, {'c': Profile()}, Profile())\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=os.environ.copy()
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        url = line.split()[line.split().index("on") + 1]
        assert url.startswith("http://127.0.0.1:")
        assert httpx.get(f"{url}/_sim/health").json() == {"ok": True}
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=GUARD_S) == 0
    finally:
        process.kill()
        process.wait()


def test_load_profiles_reads_named_and_default_profiles(tmp_path: Path) -> None:
    path = tmp_path / "profiles.yaml"
    path.write_text('claude1: {models: [m1], requests_per_min: 5}\n"*": {latency_s: 0.5}\n')
    profiles, default = load_profiles(path)
    assert profiles == {"claude1": Profile(models=["m1"], requests_per_min=5)}
    assert default == Profile(latency_s=0.5)
