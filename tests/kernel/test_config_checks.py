"""Lane names Celery and kombu keep for themselves, and the range of every duration."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, get_args, get_origin

import pytest
import yaml
from pydantic import BaseModel

from lanes.kernel.config import Config, load_config
from lanes.kernel.errors import ConfigError

from ..conftest import EXAMPLE

EXAMPLE_DATA: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
RESERVED = ["unacked", "unacked_index", "unacked_mutex", "celery", "celeryev",
            "celery-task-meta-x", "celery-taskset-meta-x", "chord-unlock-x"]  # fmt: skip


def _load(tmp_path: Path, data: dict[str, Any], env: dict[str, str] | None = None) -> Config:
    path = tmp_path / "lanes.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return load_config(path, env=env or {})


def _with_lane(name: str, where: str) -> dict[str, Any]:
    data = copy.deepcopy(EXAMPLE_DATA)
    if where == "instances":
        data["instances"][name] = data["instances"]["zai"]
    else:
        data["pools"][name] = ["zai"]
    return data


@pytest.mark.parametrize("where", ["instances", "pools"])
@pytest.mark.parametrize("name", RESERVED)
def test_config_checks_refuse_names_celery_and_kombu_use(
    tmp_path: Path, name: str, where: str
) -> None:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, _with_lane(name, where))
    text = str(info.value)
    assert f": {where}.{name}: '{name}' is reserved" in text
    assert "fix: rename the lane" in text


@pytest.mark.parametrize("name", ["celery2", "lane-unacked", "unacked-lane", "default"])
def test_config_checks_keep_names_that_collide_with_nothing(tmp_path: Path, name: str) -> None:
    assert name in _load(tmp_path, _with_lane(name, "instances")).instances
    assert name in _load(tmp_path, _with_lane(name, "pools")).pools


@pytest.mark.parametrize(
    ("variable", "value", "fix"),
    [
        ("LANES_JANITOR_INTERVAL_S", "1e-6", "use 1 to 86400 seconds (a day), or 0 for never"),
        ("LANES_LIVENESS__INTERVAL_S", "0.001", "use 1 to 86400 seconds (a day), or 0 for never"),
        ("LANES_RETRY__BACKOFF_MAX_S", "1e300", "use 0 to 3600 seconds (an hour)"),
    ],
)
def test_config_checks_absurd_durations_from_the_environment_are_refused(
    variable: str, value: str, fix: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(EXAMPLE, env={variable: value})
    text = str(info.value)
    assert text.startswith(f"environment variable {variable}: ") and fix in text


def test_config_checks_zero_still_turns_the_sweeps_off() -> None:
    env = {"LANES_JANITOR_INTERVAL_S": "0", "LANES_LIVENESS__INTERVAL_S": "0"}
    config = load_config(EXAMPLE, env=env)
    assert config.janitor_interval_s == 0 and config.liveness.interval_s == 0


def _duration_keys(
    model: type[BaseModel], path: tuple[str, ...], data: Any
) -> list[tuple[str, ...]]:
    """Every ``*_s`` key under ``model``; a mapping of models is entered at its first entry
    in ``data`` (the example's)."""
    keys: list[tuple[str, ...]] = []
    for name, field in model.model_fields.items():
        annotation, here = field.annotation, (*path, name)
        inner = data.get(name) if isinstance(data, dict) else None
        if name.endswith("_s"):
            keys.append(here)
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys.extend(_duration_keys(annotation, here, inner or {}))
        elif get_origin(annotation) is dict and isinstance(inner, dict) and inner:
            value_type = get_args(annotation)[1]
            if isinstance(value_type, type) and issubclass(value_type, BaseModel):
                first = next(iter(inner))
                keys.extend(_duration_keys(value_type, (*here, first), inner[first]))
    return keys


DURATIONS = _duration_keys(Config, (), EXAMPLE_DATA)
LOOPS = {("janitor_interval_s",), ("liveness", "interval_s"), ("ledger", "flush_interval_s"),
         ("retry", "wait_slice_s"), ("janitor_quiet_s",), ("liveness", "timeout_s")}  # fmt: skip


def _set(data: dict[str, Any], key: tuple[str, ...], value: object) -> dict[str, Any]:
    data = copy.deepcopy(data)
    node = data
    for part in key[:-1]:
        node = node.setdefault(part, {})
    node[key[-1]] = value
    return data


def test_config_checks_every_duration_is_found() -> None:
    assert len(DURATIONS) >= 20 and set(DURATIONS) >= LOOPS
    assert ("models", "claude-opus-4-5", "latency_s") in DURATIONS
    assert ("instances", "claude1", "timeout_s") in DURATIONS


@pytest.mark.parametrize("key", DURATIONS, ids=".".join)
def test_config_checks_every_duration_has_a_ceiling_and_no_negative(
    tmp_path: Path, key: tuple[str, ...]
) -> None:
    for value in (10**12, 1e300, -1):
        with pytest.raises(ConfigError) as info:
            _load(tmp_path, _set(EXAMPLE_DATA, key, value))
        assert f": {'.'.join(key)}: " in str(info.value) and "fix: use" in str(info.value)


@pytest.mark.parametrize("key", sorted(LOOPS), ids=".".join)
def test_config_checks_loops_cannot_spin(tmp_path: Path, key: tuple[str, ...]) -> None:
    with pytest.raises(ConfigError, match="too short"):
        _load(tmp_path, _set(EXAMPLE_DATA, key, 1e-6))
