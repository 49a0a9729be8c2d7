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
    assert "--requirepass" in services["redis"]["command"]
    assert "noeviction" in services["redis"]["command"]
    assert "--appendonly" in services["redis"]["command"]
    assert "FLOWER_BASIC_AUTH" in services["flower"]["environment"]
