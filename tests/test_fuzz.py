"""Property-based fuzzing of every way input gets in: config files, jobs, CLI files, the
classifier and ``--json`` output. No input may produce a traceback, a hang (each case has a
deadline) or output that is not JSON; every refusal is one of lanes' errors.

:data:`FUZZ` is the one setting every fuzz test uses (derandomised: the same cases on every
run). The cases of one area sit beside that area's tests: lane names and ``LANES_*``
overrides (``kernel/test_fuzz_config.py``), batch lines and ``--job``/``--jsonl`` files
(``lanes/test_fuzz_batch.py``), budget values and export fields (``lanes/test_fuzz_books.py``),
MCP tool arguments (``lanes/test_fuzz_mcp.py``), review paths, agent files and ``--git``
ranges (``lanes/test_fuzz_review.py``)."""

from __future__ import annotations

import json
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from lanes.entry import app as cli_app
from lanes.kernel.config import Config, load_config
from lanes.kernel.errors import ConfigError, JobError, LanesError
from lanes.router.classifier import classify
from lanes.router.job import Job, parse_job

from .conftest import EXAMPLE

FUZZ = settings(
    max_examples=60,
    deadline=timedelta(seconds=5),
    derandomize=True,  # the same cases on every run: CI is not a lottery
    suppress_health_check=[HealthCheck.too_slow],
)
EXAMPLE_DATA = yaml.safe_load(EXAMPLE.read_text())
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
JOB_KEYS = sorted(Job.model_fields)


def _write(data: str | bytes) -> Path:
    handle = tempfile.NamedTemporaryFile("wb", suffix=".yaml", delete=False)  # noqa: SIM115
    handle.write(data.encode() if isinstance(data, str) else data)
    handle.close()
    return Path(handle.name)


def _set_path(data: dict[str, Any], path: list[str], value: Any) -> dict[str, Any]:
    node: Any = data
    for part in path[:-1]:
        if not isinstance(node, dict) or part not in node:
            return data
        node = node[part]
    if isinstance(node, dict):
        node[path[-1]] = value
    return data


@FUZZ
@given(st.binary(max_size=400) | st.text(max_size=400))
def test_fuzz_config_any_file_content_is_a_config_or_a_config_error(content: str | bytes) -> None:
    path = _write(content)
    try:
        assert isinstance(load_config(path, env={}), Config)
    except ConfigError as exc:
        assert str(path) in str(exc)
    finally:
        path.unlink()


CONFIG_KEYS = st.sampled_from(
    [["redis_url"], ["result_ttl_s"], ["max_job_bytes"], ["routing", "strategy"],
     ["routing", "weights", "cost"], ["instances", "zai", "timeout_s"],
     ["instances", "zai", "limits"], ["instances", "koala", "models"], ["pools", "vital"],
     ["fallback_chains", "cheap"], ["models", "glm-4.6", "price"], ["simulator", "host"],
     ["routing", "custom_rules"], ["worker", "concurrency"], ["limit_margin"]]
)  # fmt: skip


@FUZZ
@given(CONFIG_KEYS, JSON_VALUES)
def test_fuzz_config_any_value_at_any_key_is_accepted_or_named(key: list[str], value: Any) -> None:
    data = _set_path(json.loads(json.dumps(EXAMPLE_DATA)), key, value)
    path = _write(yaml.safe_dump(data))
    try:
        load_config(path, env={})
    except ConfigError as exc:
        assert str(path) in str(exc) and ": " in str(exc)
    finally:
        path.unlink()


@FUZZ
@given(st.dictionaries(st.sampled_from(JOB_KEYS) | st.text(max_size=8), JSON_VALUES, max_size=6))
def test_fuzz_job_any_payload_is_a_job_or_a_job_error(payload: dict[str, Any]) -> None:
    try:
        assert isinstance(parse_job(payload), Job)
    except JobError as exc:
        assert str(exc).startswith("invalid job: ")


@FUZZ
@given(st.text(max_size=2000))
def test_fuzz_classifier_takes_any_text(text: str) -> None:
    clf = classify(Job(prompt=text or "x", max_tokens=64))
    assert 0 <= clf.confidence <= 1 and clf.input_tokens >= 0


@FUZZ
@given(st.text(min_size=1, max_size=300))
def test_fuzz_route_json_is_always_json(text: str) -> None:
    runner = CliRunner()
    result = runner.invoke(cli_app, ["--config", str(EXAMPLE), "route", text, "--json"])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        assert isinstance(result.exception, LanesError), repr(result.exception)
        return
    assert result.exit_code == 0, result.output
    decision = json.loads(result.stdout)
    assert decision["instance"] and decision["model"]


@FUZZ
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_fuzz_job_file_is_refused_cleanly_before_any_connection(content: bytes) -> None:
    path = _write(content)
    runner = CliRunner()
    env = {"REDIS_URL": "redis://127.0.0.1:1/0"}  # nothing there: refusals come first
    try:
        result = runner.invoke(cli_app, ["--config", str(EXAMPLE), "run", "--job", str(path)],
                               env=env)  # fmt: skip
    finally:
        path.unlink()
    exc = result.exception
    assert exc is None or isinstance(exc, SystemExit | LanesError), repr(exc)
    if isinstance(exc, LanesError):
        assert exc.exit_code in (2, 5)
