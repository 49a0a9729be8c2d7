"""With Redis unreachable, commands that need it exit 5 with one line, not a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ..conftest import EXAMPLE
from .test_routing import run_main

DEAD = "redis://:pw-hidden@127.0.0.1:1/0"


@pytest.fixture
def dead_config(tmp_path: Path) -> Path:
    data = yaml.safe_load(EXAMPLE.read_text())
    data["redis_url"] = DEAD
    data["state_dir"] = str(tmp_path / "state")
    path = tmp_path / "lanes.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    "args", [("up",), ("demo",), ("bench", "throughput", "--jobs", "10", "--rounds", "1")]
)
def test_cli_unreachable_redis_exits_5_naming_it_without_its_password(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    dead_config: Path,
    args: tuple[str, ...],
) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    assert run_main(monkeypatch, "--config", str(dead_config), *args) == 5
    out = capsys.readouterr()
    assert "cannot reach Redis at redis://***@127.0.0.1:1/0" in out.err
    assert "pw-hidden" not in out.err + out.out and "Traceback" not in out.err


def test_cli_unreachable_a_redis_url_that_is_not_one_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    data = yaml.safe_load(EXAMPLE.read_text())
    data["redis_url"] = "http://127.0.0.1:6379"
    path = tmp_path / "lanes.yaml"
    path.write_text(yaml.safe_dump(data))
    assert run_main(monkeypatch, "--config", str(path), "config", "--json") == 2
    assert "redis_url: 'http' is not a Redis URL" in capsys.readouterr().err
