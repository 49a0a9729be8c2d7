"""Which config file is used, how far it is trusted, and what a bad path is told."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from lanes.entry import app
from lanes.kernel.config import Origin, load_config, locate_config
from lanes.kernel.errors import ConfigError

from ..conftest import EXAMPLE

FILE_URL = "redis://file-redis.invalid:6379/0"
ENV_URL = "redis://127.0.0.1:6379/3"


@pytest.fixture
def checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An unvetted checkout as the current directory: its ``lanes.yaml`` sets its own Redis."""
    data = yaml.safe_load(EXAMPLE.read_text())
    data["redis_url"] = FILE_URL
    (tmp_path / "lanes.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("LANES_CONFIG", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    return tmp_path


def test_config_source_says_a_file_was_found_in_the_current_directory(checkout: Path) -> None:
    source = locate_config()
    assert source.origin is Origin.CURRENT_DIRECTORY and source.from_current_directory
    assert not source.named and "found in the current directory" in source.describe()
    assert locate_config(checkout / "lanes.yaml").origin is Origin.FLAG


def test_config_source_file_found_here_may_not_override_redis_url(checkout: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(env={"REDIS_URL": ENV_URL})
    text = str(info.value)
    assert "redis_url" in text and "REDIS_URL" in text and "current directory" in text
    assert "--config lanes.yaml" in text


def test_config_source_named_file_or_lanes_override_decides_redis(checkout: Path) -> None:
    named = load_config(checkout / "lanes.yaml", env={"REDIS_URL": ENV_URL})
    assert named.redis_url == FILE_URL and named.source is not None and named.source.named
    overridden = load_config(env={"REDIS_URL": ENV_URL, "LANES_REDIS_URL": ENV_URL})
    assert overridden.redis_url == ENV_URL
    agreeing = load_config(env={"REDIS_URL": FILE_URL})
    assert agreeing.redis_url == FILE_URL
    assert load_config(env={}).redis_url == FILE_URL  # no REDIS_URL: nothing is overridden


def test_config_source_cli_refuses_before_reaching_any_redis(checkout: Path) -> None:
    result = CliRunner().invoke(app, ["status", "--json"], env={"REDIS_URL": ENV_URL})
    assert isinstance(result.exception, ConfigError), result.output
    assert result.exception.exit_code == 2 and "REDIS_URL" in str(result.exception)


def test_config_source_cli_announces_a_file_found_here(checkout: Path) -> None:
    result = CliRunner().invoke(app, ["config", "--json"])
    assert result.exit_code == 0, result.output
    here = Path.cwd() / "lanes.yaml"  # the checkout, as the process sees it
    assert f"{here} (found in the current directory)" in result.stderr
    data = json.loads(result.stdout)
    assert data["config_file"] == str(here)
    assert data["config_origin"] == "found in the current directory"
    named = CliRunner().invoke(app, ["--config", "lanes.yaml", "config", "--json"])
    assert named.exit_code == 0 and "found in the current directory" not in named.stderr


HOOK_MODULE = """\
import pathlib
pathlib.Path("hook-ran").write_text("the hook module ran")


def choose(job, classification, candidates):
    return None
"""


def test_config_source_hook_from_the_current_directory_needs_a_named_config(
    checkout: Path,
) -> None:
    data = yaml.safe_load((checkout / "lanes.yaml").read_text())
    data["routing"].update(strategy="hook", hook="checkout_hook:choose")
    (checkout / "lanes.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    (checkout / "checkout_hook.py").write_text(HOOK_MODULE, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("LANES_CONFIG", "REDIS_URL")}
    route = ["route", "Write a haiku about autumn", "--json"]
    # `python -m` puts the current directory first on sys.path: the module is importable.
    searched = subprocess.run([sys.executable, "-m", "lanes", *route], cwd=checkout, env=env,
                              capture_output=True, text=True, timeout=120)  # fmt: skip
    assert searched.returncode == 2, searched.stderr
    assert "routing.hook" in searched.stderr and "--config" in searched.stderr
    assert not (checkout / "hook-ran").exists()
    named = subprocess.run(
        [sys.executable, "-m", "lanes", "--config", "lanes.yaml", *route],
        cwd=checkout, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert named.returncode == 0, named.stderr
    assert json.loads(named.stdout)["strategy"] == "hook"
    assert (checkout / "hook-ran").exists()


def test_config_source_directory_is_named_as_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory, not a config file") as info:
        load_config(tmp_path, env={})
    assert str(tmp_path / "lanes.yaml") in str(info.value)


def test_config_source_fifo_is_refused_without_being_opened(tmp_path: Path) -> None:
    fifo = tmp_path / "lanes.yaml"
    os.mkfifo(fifo)
    # In a child process: a regression that opened the FIFO would block there, not here.
    proc = subprocess.run([sys.executable, "-m", "lanes", "--config", str(fifo), "config"],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 2
    assert "FIFO" in proc.stderr and "not a regular file" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_config_source_missing_file_is_still_not_found(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        locate_config(tmp_path / "nope.yaml")
