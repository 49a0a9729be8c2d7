"""Hostile and careless input through the real command line, one process each: every case
ends within its time limit with the exit code it should have, a message and no traceback,
and touches nothing it must not (each area's own tests say why in detail)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from .conftest import EXAMPLE

LIMIT_S = 60.0


@dataclass(frozen=True)
class Case:
    args: list[str]
    code: int
    says: str
    env: dict[str, str] = field(default_factory=dict)


def _fifo(tmp: Path) -> str:
    path = tmp / "fifo"
    os.mkfifo(path)
    return str(path)


def _jobs(tmp: Path) -> str:
    path = tmp / "in.jsonl"
    path.write_text('{"id": 1, "prompt": "hello"}\n')
    return str(path)


def _config_with(tmp: Path, change: Callable[[dict[str, object]], None]) -> str:
    data = yaml.safe_load(EXAMPLE.read_text())
    change(data)
    path = tmp / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def _unacked_lane(data: dict[str, object]) -> None:
    instances = data["instances"]
    assert isinstance(instances, dict)
    instances["unacked"] = instances.pop("koala")


def _surrogate_job(tmp: Path) -> str:
    path = tmp / "job.json"
    path.write_text('{"prompt": "hi", "system": "\\udfff"}')
    return str(path)


CASES: dict[str, Callable[[Path], Case]] = {
    "review a FIFO diff": lambda t: Case(["review", "--diff", _fifo(t)], 2, "not a regular"),
    "review /dev/zero": lambda t: Case(["review", "/dev/zero"], 2, "/dev/zero"),
    "review a diff from /dev/zero": lambda t: Case(["review", "--diff", "/dev/zero"], 2, "zero"),
    "review a git range that is an option": lambda t: Case(
        ["review", "--git", f"--output={t / 'victim'}"], 2, "--output"
    ),
    "classify lines from /dev/zero": lambda t: Case(
        ["classify", "--jsonl", "/dev/zero"], 2, "/dev/zero"
    ),
    "route lines from a FIFO": lambda t: Case(["route", "--jsonl", _fifo(t)], 2, "fifo"),
    "run a job from a FIFO": lambda t: Case(["run", "--job", _fifo(t)], 2, "fifo"),
    "run a job with a lone surrogate": lambda t: Case(
        ["run", "--job", _surrogate_job(t)], 2, "system"
    ),
    "batch into /dev/full": lambda t: Case(["batch", _jobs(t), "-o", "/dev/full"], 2, "full"),
    "batch into /dev/null": lambda t: Case(["batch", _jobs(t), "-o", "/dev/null"], 2, "null"),
    "a budget too large to count": lambda t: Case(
        ["budget", "--set-daily", "1e308", "--scope", "global"], 2, "1e+308"
    ),
    "a database URL that does not parse": lambda t: Case(
        ["cost"], 2, "LANES_DATABASE_URL", env={"LANES_DATABASE_URL": "postgresql://u:pw@[::1"}
    ),
    "a directory as the config": lambda t: Case(["--config", str(t), "config"], 2, "directory"),
    "a FIFO as the config": lambda t: Case(["--config", _fifo(t), "config"], 2, "FIFO"),
    "a lane named like kombu's own hash": lambda t: Case(
        ["--config", _config_with(t, _unacked_lane), "config"], 2, "unacked"
    ),
    "an interval that would spin": lambda t: Case(
        ["config"], 2, "LANES_JANITOR_INTERVAL_S", env={"LANES_JANITOR_INTERVAL_S": "1e-6"}
    ),
    "a backoff that overflows": lambda t: Case(
        ["config"], 2, "LANES_RETRY__BACKOFF_MAX_S", env={"LANES_RETRY__BACKOFF_MAX_S": "1e300"}
    ),
    "an in-memory ledger URL stays a URL": lambda t: Case(
        ["config", "--json"], 0, "sqlite", env={"LANES_DATABASE_URL": "sqlite:///:memory:"}
    ),
    "the same lane twice in a comparison": lambda t: Case(
        ["compare", "hi", "--lanes", "claude1,claude1"], 2, "listed twice"
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_input_ends_cleanly(name: str, tmp_path: Path, isolated_redis_url: str) -> None:
    case = CASES[name](tmp_path)
    env = {**os.environ, "LANES_CONFIG": str(EXAMPLE), "REDIS_URL": isolated_redis_url,
           "LANES_REDIS_PREFIX": f"hostile-{uuid.uuid4().hex[:8]}",
           "LANES_STATE_DIR": str(tmp_path / "state"), **case.env}  # fmt: skip
    proc = subprocess.run([sys.executable, "-m", "lanes", *case.args], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=LIMIT_S)  # fmt: skip
    said = proc.stdout + proc.stderr
    assert "Traceback" not in said, said[-3000:]
    assert proc.returncode == case.code, said[-3000:]
    assert case.says.lower() in " ".join(said.split()).lower(), said[-3000:]
    assert "pw@" not in said  # a URL's password is never echoed
    assert not (tmp_path / "victim").exists()
    if case.code == 0:
        json.loads(proc.stdout)
