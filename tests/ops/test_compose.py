from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from kernel.config import load_config

ROOT = Path(__file__).resolve().parents[2]


def _compose() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "docker-compose.yml").read_text()))


def test_compose_file_matches_the_compose_spec() -> None:
    schema = json.loads((ROOT / "ops" / "schemas" / "compose-spec.json").read_text())
    jsonschema.validate(_compose(), schema)


def test_compose_has_one_worker_per_lane() -> None:
    lanes = load_config(ROOT / "ops" / "lanes.yaml", env={}).lanes()
    services = _compose()["services"]
    assert {f"worker-{lane}" for lane in lanes} <= set(services)
    for lane in lanes:
        assert services[f"worker-{lane}"]["command"] == ["lanes", "worker", lane]


def test_compose_binds_to_localhost_and_authenticates() -> None:
    services = _compose()["services"]
    for name in ("redis", "flower"):
        assert all(str(p).startswith("127.0.0.1:") for p in services[name]["ports"]), name
    command = " ".join(services["redis"]["command"])
    assert "requirepass" in command and "/run/secrets/redis_password" in command
    assert "noeviction" in command and "--appendonly yes" in command
    assert "FLOWER_BASIC_AUTH" in services["flower"]["environment"]


def test_compose_redis_password_is_in_no_command_line_or_healthcheck() -> None:
    compose = _compose()
    redis = compose["services"]["redis"]
    shown = json.dumps([redis["command"], redis["healthcheck"], redis.get("environment", {})])
    assert "REDIS_PASSWORD" not in shown  # never interpolated into what ps/inspect show
    assert "-a " not in shown and "--requirepass" not in shown
    assert redis["secrets"] == ["redis_password"]
    assert compose["secrets"]["redis_password"] == {"environment": "REDIS_PASSWORD"}
    assert "REDISCLI_AUTH" in redis["healthcheck"]["test"][1]


def test_compose_every_service_is_hardened() -> None:
    services = _compose()["services"]
    for name, service in services.items():
        assert service.get("read_only") is True, name
        assert service.get("cap_drop") == ["ALL"], name
        assert "no-new-privileges:true" in service.get("security_opt", []), name
        assert "/tmp" in service.get("tmpfs", []), name
    assert not str(services["redis"]["user"]).startswith("0")


def test_compose_workers_call_the_real_providers() -> None:
    services = _compose()["services"]
    workers = [s for name, s in services.items() if name.startswith("worker-")]
    assert workers and all(w["environment"]["LANES_SIMULATOR__MODE"] == "never" for w in workers)
