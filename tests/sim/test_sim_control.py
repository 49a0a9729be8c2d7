"""The /_sim/ control API, driven through SimControl as another process would."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import pytest

from lanes.sim import Fault, Profile, SimControl, Simulator

SONNET = "claude-sonnet-4-6"
HELLO: list[Any] = [{"role": "user", "content": "ping"}]


@pytest.fixture
def control(sim: Simulator) -> Iterator[SimControl]:
    with SimControl(sim.url) as client:
        yield client


def _call(client: anthropic.Anthropic) -> str:
    try:
        client.messages.create(model=SONNET, max_tokens=256, messages=HELLO)
    except anthropic.APIStatusError as exc:
        return str(exc.status_code)
    except anthropic.APIConnectionError:
        return "dropped"
    return "ok"


def test_control_health_is_true_when_running(control: SimControl) -> None:
    assert control.health() is True


def test_control_health_is_false_when_nothing_listens() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with SimControl(f"http://127.0.0.1:{port}", timeout_s=1.0) as client:
        assert client.health() is False


def test_control_switches_faults_on_and_off(
    control: SimControl, claude: anthropic.Anthropic
) -> None:
    control.set_fault("claude1", Fault(kind="529"))
    assert _call(claude) == "529"
    assert control.faults() == {"claude1": [Fault(kind="529")]}
    control.clear_faults("claude1")
    assert _call(claude) == "ok"
    control.set_fault("claude1", Fault(kind="500"))
    control.set_fault("zai", Fault(kind="500"))
    control.clear_faults()
    assert control.faults() == {}
    assert _call(claude) == "ok"


def test_control_add_fault_arms_after_existing(
    control: SimControl, claude: anthropic.Anthropic
) -> None:
    control.set_fault("claude1", Fault(kind="500", count=1))
    control.add_fault("claude1", Fault(kind="drop", count=1))
    assert [_call(claude) for _ in range(3)] == ["500", "dropped", "ok"]


def test_control_set_profile_changes_served_models(sim: Simulator, control: SimControl) -> None:
    control.set_profile("fresh", Profile(models=["m1", "m2"], requests_per_min=7))
    assert control.profiles()["fresh"] == Profile(models=["m1", "m2"], requests_per_min=7)
    assert sim.profile("fresh").requests_per_min == 7
    headers = {"authorization": "Bearer k"}
    models = httpx.get(f"{sim.url}/fresh/v1/models", headers=headers).json()
    assert [m["id"] for m in models["data"]] == ["m1", "m2"]


def test_control_stats_count_per_status_and_reset(
    sim: Simulator, control: SimControl, claude: anthropic.Anthropic
) -> None:
    control.add_fault("claude1", Fault(kind="429", count=1))
    control.add_fault("claude1", Fault(kind="529", count=1))
    control.add_fault("claude1", Fault(kind="drop", count=1))
    assert [_call(claude) for _ in range(5)] == ["429", "529", "dropped", "ok", "ok"]
    stats = control.stats()["claude1"]
    assert stats == sim.stats()["claude1"]
    assert stats["requests"] == 5
    assert stats["ok"] == stats["status_200"] == 2
    assert stats["status_429"] == stats["status_529"] == stats["dropped"] == 1
    assert stats["faults"] == 3
    assert stats["in_flight"] == 0
    assert stats["output_tokens"] > 0
    control.reset_stats()
    reset = control.stats()["claude1"]
    assert reset["requests"] == reset["ok"] == reset["output_tokens"] == 0


def test_control_rejects_an_invalid_fault(sim: Simulator) -> None:
    response = httpx.put(f"{sim.url}/_sim/faults/claude1", json={"kind": "418"})
    assert response.status_code == 400
    assert response.json()["ok"] is False


def test_control_accepts_a_list_of_faults_and_numeric_kinds(sim: Simulator) -> None:
    body = [{"kind": 429, "count": 1}, {"kind": "drop", "rate": 0.5}]
    response = httpx.put(f"{sim.url}/_sim/faults/claude1", json=body)
    assert response.status_code == 200
    assert [f.kind for f in sim.faults()["claude1"]] == ["429", "drop"]


def test_control_unknown_route_is_404(sim: Simulator) -> None:
    assert httpx.get(f"{sim.url}/_sim/nothing").status_code == 404
    assert httpx.get(f"{sim.url}/_sim/faults/a/b").status_code == 404
