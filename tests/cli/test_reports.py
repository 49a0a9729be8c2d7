"""``lanes cost``, ``stats``, ``fallback``, ``export``, ``feedback``, ``budget`` and ``reset
--cache/--stats`` on a real ledger (SQLite in the test's state dir) and the test Redis."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis
from typer.testing import CliRunner

from lanes.entry import app
from lanes.kernel.config import Config
from lanes.kernel.errors import ConfigError, LanesError
from lanes.stores.cache import CachedAnswer
from lanes.stores.keys import Keys
from lanes.stores.ledger import (
    CallEvent,
    CostEvent,
    DecisionEvent,
    FallbackRow,
    LedgerEvent,
    OutcomeEvent,
    RateLimitEvent,
)
from lanes.stores.redis.budget import RedisBudgetStore
from lanes.stores.redis.cache import RedisResponseCache
from lanes.stores.redis.ledger import RedisLedgerSink
from lanes.stores.sql import open_ledger

from ..conftest import write_config

runner = CliRunner()
SONNET, GLM = "claude-sonnet-4-5", "glm-4.6"


def events(job_id: str, instance: str, model: str, cost_usd: float, **outcome: Any
           ) -> list[LedgerEvent]:  # fmt: skip
    who = {"job_id": job_id, "project": "acme", "user": "ann"}
    ids = {**who, "instance": instance, "model": model, "step": 0, "attempt": 0, "call": 1,
           "task_type": "documentation"}  # fmt: skip
    return [
        DecisionEvent(
            **who,
            instance=instance,
            model=model,
            strategy="best_for_task",
            task_type="documentation",
            complexity="simple",
            vital=False,
            difficulty=0.2,
            estimated_cost_usd=cost_usd,
        ),
        CallEvent(**ids, reserved_usd=cost_usd * 3),
        CostEvent(**ids, cost_usd=cost_usd, input_tokens=100, output_tokens=50),
        OutcomeEvent(
            **who,
            status=outcome.pop("status", "ok"),
            instance=instance,
            model=model,
            step=0,
            attempt=0,
            task_type="documentation",
            cost_usd=cost_usd,
            latency_s=1.0,
            **outcome,
        ),
    ]


@pytest.fixture
def setup(tmp_path: Path, example_config: Config, redis_url: str) -> tuple[Config, Path]:
    prefix = f"lanes-test-{uuid.uuid4().hex[:8]}"
    return write_config(example_config, tmp_path, redis_url=redis_url, redis_prefix=prefix,
                        state_dir=str(tmp_path / "state"))  # fmt: skip


@pytest.fixture
def books(setup: tuple[Config, Path]) -> tuple[Config, Path]:
    """The ledger holds 6 documentation jobs on claude1/sonnet and 6 on zai/glm (one of them
    fell back from claude2 after a 429); one more job's events still wait in Redis."""
    config, _ = setup
    written: list[LedgerEvent] = []
    for i in range(6):
        written += events(f"dear-{i}", "claude1", SONNET, 0.03)
        fell = [FallbackRow(to_step=1, from_instance="claude2", from_model=SONNET,
                            to_instance="zai", reason="RateLimited")] if i == 0 else []  # fmt: skip
        written += events(f"cheap-{i}", "zai", GLM, 0.001, fallbacks=fell)
    written.append(RateLimitEvent(job_id="cheap-0", instance="claude2", model=SONNET, step=0,
                                  attempt=0, call=1, cooldown_s=5, reason="429"))  # fmt: skip
    ledger = open_ledger(config)
    ledger.write(written)
    ledger.close()
    client = redis.Redis.from_url(config.redis_url or "", decode_responses=True)
    RedisLedgerSink(client, Keys(config.redis_prefix)).emit(events("queued", "zai", GLM, 0.001))
    client.close()
    return setup


def run(path: Path, *args: str, input: str | None = None, **env: str) -> Any:
    return runner.invoke(app, ["--config", str(path), *args], input=input, env=env)


def code(result: Any) -> int:
    """The exit code ``lanes`` gives: a LanesError's own (as :func:`lanes.cli.main` maps it)."""
    if isinstance(result.exception, LanesError):
        return result.exception.exit_code
    return int(result.exit_code)


def as_json(path: Path, *args: str) -> Any:
    result = run(path, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_cost_groups_spend_drains_redis_first_and_suggests_a_downgrade(
    books: tuple[Config, Path],
) -> None:
    _, path = books
    report = as_json(path, "cost", "--by", "model")
    by_model = {line["key"]: line for line in report["lines"]}
    assert by_model[SONNET]["cost_usd"] == pytest.approx(0.18)
    assert by_model[GLM]["cost_usd"] == pytest.approx(0.007)  # the queued job included
    assert report["total_usd"] == pytest.approx(0.187)
    assert report["projected_month_usd"] > report["total_usd"]
    [advice] = report["suggestions"]
    assert (advice["from_instance"], advice["to_instance"]) == ("claude1", "zai")
    assert "route documentation from claude1/claude-sonnet-4-5 to zai/glm-4.6" in advice["text"]
    by_project = as_json(path, "cost", "--by", "project")
    assert [line["key"] for line in by_project["lines"]] == ["acme"]


def test_cost_refuses_an_unknown_grouping_or_period(books: tuple[Config, Path]) -> None:
    _, path = books
    assert code(run(path, "cost", "--by", "colour")) == 2
    assert code(run(path, "cost", "--period", "year")) == 2


def test_stats_and_fallback_read_the_outcomes(books: tuple[Config, Path]) -> None:
    _, path = books
    lanes = {(r["instance"], r["model"]): r for r in as_json(path, "stats")["lanes"]}
    assert lanes[("claude1", SONNET)]["outcomes"] == 6
    assert lanes[("claude1", SONNET)]["success_rate"] == 1.0
    assert lanes[("zai", GLM)]["outcomes"] == 7
    fallback = as_json(path, "fallback")
    assert fallback["chains"]  # the example config's chains
    [edge] = fallback["rates"]
    assert (edge["from_instance"], edge["to_instance"], edge["count"]) == ("claude2", "zai", 1)


def test_export_csv_and_feedback_round_trip(books: tuple[Config, Path]) -> None:
    _, path = books
    rated = as_json(path, "feedback", "dear-0", "--rating", "2")
    assert rated == {"job_id": "dear-0", "rating": 2}
    result = run(path, "export", "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = {row["job_id"]: row for row in csv.DictReader(io.StringIO(result.stdout))}
    assert len(rows) == 13
    assert rows["dear-0"]["rating"] == "2"
    exported = as_json_lines(run(path, "export", "--format", "json").stdout)
    assert {row["job_id"] for row in exported} == set(rows)


def as_json_lines(text: str) -> list[dict[str, Any]]:
    data = json.loads(text)
    assert isinstance(data, list)
    return data


def test_feedback_refuses_an_unknown_job_and_a_rating_out_of_range(
    books: tuple[Config, Path],
) -> None:
    _, path = books
    unknown = run(path, "feedback", "no-such-job", "--rating", "3")
    assert code(unknown) == 2
    assert "no-such-job" in str(unknown.exception)
    assert code(run(path, "feedback", "dear-1", "--rating", "6")) == 2
    assert code(run(path, "feedback", "dear-1", "--rating", "0")) == 2


def test_budget_set_shows_and_refuses_bad_limits(books: tuple[Config, Path]) -> None:
    config, path = books
    shown = as_json(path, "budget", "--set-daily", "2.5", "--scope", "project:acme")
    [row] = shown["budgets"]
    assert (row["budget_id"], row["limit_usd"]) == ("project:acme:daily", 2.5)
    assert row["spent_usd"] == pytest.approx(0.187)  # rebuilt from the ledger
    assert row["source"] != "config"
    again = as_json(path, "budget")  # the limit is kept
    assert again["budgets"][0]["limit_usd"] == 2.5
    ledger = open_ledger(config)
    assert [r.budget_id for r in ledger.budget_limits()] == ["project:acme:daily"]
    ledger.close()
    for bad in (["--set-daily", "-1"], ["--set-monthly", "3", "--scope", "planet:mars"],
                ["--set-daily", "1", "--scope", "instance:nope"]):  # fmt: skip
        result = run(path, "budget", *bad)
        assert code(result) == 2, (bad, result.output, result.exception)


def test_reset_stats_keeps_costs_and_reset_cache_asks_first(books: tuple[Config, Path]) -> None:
    config, path = books
    client = redis.Redis.from_url(config.redis_url or "", decode_responses=True)
    cache = RedisResponseCache(client, Keys(config.redis_prefix))
    answer = CachedAnswer(text="hi", instance="zai", model=GLM, created_at=0.0)
    cache.put("k1", answer, 60)
    declined = run(path, "reset", "--cache", input="n\n")
    assert code(declined) == 1 and cache.get("k1") is not None
    assert run(path, "reset", "--cache", "--yes").exit_code == 0
    assert cache.get("k1") is None
    client.close()
    assert run(path, "reset", "--stats", "--yes").exit_code == 0
    rows = as_json(path, "stats")["lanes"]
    assert rows and all(r["decisions"] == 0 and r["outcomes"] == 0 for r in rows)
    assert as_json(path, "cost")["total_usd"] == pytest.approx(0.187)


def test_an_unreachable_database_exits_5(setup: tuple[Config, Path]) -> None:
    _, path = setup
    result = run(path, "cost", LANES_DATABASE_URL="postgresql://postgres@127.0.0.1:1/nowhere")
    assert code(result) == 5
    assert "127.0.0.1:1" in str(result.exception)


# -- bad values, literal names, empty figures ------------------------------------------------


def _saved_limits(config: Config) -> tuple[list[str], dict[str, float]]:
    """The budget limits kept in the ledger and in Redis."""
    ledger = open_ledger(config)
    try:
        rows = [row.budget_id for row in ledger.budget_limits()]
    finally:
        ledger.close()
    client = redis.Redis.from_url(config.redis_url or "", decode_responses=True)
    try:
        return rows, RedisBudgetStore(client, Keys(config.redis_prefix)).limits()
    finally:
        client.close()


@pytest.mark.parametrize(
    "bad",
    [
        ["--set-daily", "1e308"],
        ["--set-daily", "9.3e9"],
        ["--set-daily", "inf"],
        ["--set-daily", "nan"],
        ["--set-daily", "5", "--set-monthly", "1e10"],  # one bad value: nothing is saved
    ],
)
def test_budget_refuses_a_limit_no_counter_can_hold_and_saves_nothing(
    setup: tuple[Config, Path], bad: list[str]
) -> None:
    config, path = setup
    result = run(path, "budget", *bad, "--scope", "project:acme")
    assert code(result) == 2, (result.output, result.exception)
    assert isinstance(result.exception, LanesError)
    assert "largest budget lanes keeps, 1,000,000,000 USD" in str(result.exception) or (
        "finite" in str(result.exception)
    )
    assert _saved_limits(config) == ([], {})


def test_budget_a_negative_zero_is_zero_and_names_are_shown_as_written(
    setup: tuple[Config, Path],
) -> None:
    _, path = setup
    result = run(path, "budget", "--set-daily", "-0", "--scope", "project:a:b")
    assert result.exit_code == 0, (result.output, result.exception)
    assert "budget project:a:b:daily set to $0.00" in result.stderr
    assert "$-0" not in result.output
    assert "project:a:b:daily" in result.stdout  # not "project🅰b:daily"
    assert "\U0001f170" not in result.output


def test_stats_shows_no_success_rate_where_no_job_ended(setup: tuple[Config, Path]) -> None:
    config, path = setup
    decided = events("only-decided", "claude3", SONNET, 0.01)[0]
    ledger = open_ledger(config)
    ledger.write([decided])
    ledger.close()
    [row] = as_json(path, "stats")["lanes"]
    assert (row["decisions"], row["outcomes"]) == (1, 0)
    assert row["success_rate"] is None and row["p50_latency_s"] is None
    table = run(path, "stats")
    assert table.exit_code == 0, table.output
    [line] = [line for line in table.stdout.splitlines() if "claude3" in line]
    cells = [cell.strip() for cell in line.split("\u2502")[1:-1]]
    assert cells[2:7] == ["1", "0", "\u2013", "\u2013", "\u2013"]  # success, p50, p95


def test_cost_leaves_out_suggestions_saving_less_than_a_cent_a_month(
    setup: tuple[Config, Path],
) -> None:
    config, path = setup
    written: list[LedgerEvent] = []
    for i in range(6):
        written += events(f"dear-{i}", "claude1", SONNET, 2e-9)
        written += events(f"cheap-{i}", "zai", GLM, 1e-9)
    ledger = open_ledger(config)
    ledger.write(written)
    ledger.close()
    report = as_json(path, "cost")
    assert report["suggestions"] == []
    assert "suggestion" not in run(path, "cost").stdout


FORMULAS = ["=HYPERLINK(\"http://x\",\"y\")", "+cmd|'/C calc'!A0", "-2+3", "@SUM(1+1)",
            "\tTAB", "\rCR"]  # fmt: skip


def test_export_csv_neutralises_cells_a_spreadsheet_would_run(setup: tuple[Config, Path]) -> None:
    config, path = setup
    written: list[LedgerEvent] = []
    for i, formula in enumerate(FORMULAS):
        for event in events(f"job-{i}", "zai", GLM, 0.001):
            written.append(event.model_copy(update={"project": formula, "user": formula}))
    ledger = open_ledger(config)
    ledger.write(written)
    ledger.close()
    result = run(path, "export", "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert sorted(row["project"] for row in rows) == sorted("'" + f for f in FORMULAS)
    assert all(row["user"] == row["project"] for row in rows)
    for row in rows:
        for cell in row.values():
            assert not cell.startswith(("=", "+", "@", "\t", "\r")), cell
        assert float(row["cost_usd"]) == pytest.approx(0.001)  # numbers stay numbers
    exported = json.loads(run(path, "export", "--format", "json").stdout)
    assert sorted(row["project"] for row in exported) == sorted(FORMULAS)  # JSON is verbatim


@pytest.mark.parametrize(
    "command",
    [["cost"], ["stats"], ["fallback"], ["export", "--format", "csv"], ["budget"],
     ["budget", "--set-daily", "1"], ["feedback", "x", "--rating", "3"], ["reset", "--stats",
     "--yes"]],
)  # fmt: skip
def test_a_malformed_database_url_is_a_config_error_that_hides_the_password(
    setup: tuple[Config, Path], command: list[str]
) -> None:
    _, path = setup
    result = run(path, *command, LANES_DATABASE_URL="postgresql://u:s3cret@[::1")
    assert code(result) == 2, (result.output, result.exception)
    assert isinstance(result.exception, ConfigError)
    message = str(result.exception)
    assert "LANES_DATABASE_URL" in message and "not a database URL" in message
    assert "s3cret" not in message and "s3cret" not in result.output


def test_doctor_reports_a_malformed_database_url_without_the_password(
    setup: tuple[Config, Path],
) -> None:
    _, path = setup
    result = run(path, "doctor", "--json", LANES_DATABASE_URL="postgresql://u:s3cret@h:x/db")
    assert result.exit_code == 1, (result.output, result.exception)
    checks = {check["name"]: check for check in json.loads(result.stdout)["checks"]}
    assert checks["database"]["status"] == "fail"
    assert "LANES_DATABASE_URL" in checks["database"]["detail"]
    assert "s3cret" not in result.output


def test_tables_show_names_as_written(setup: tuple[Config, Path]) -> None:
    """Rich reads ``:a:`` as an emoji code and ``[b]`` as markup: names from the ledger are
    shown literally in every table."""
    config, path = setup
    odd = "m:a:[b]x"
    fell = [FallbackRow(to_step=1, from_instance="zai", from_model=odd, to_instance="claude1",
                        reason=":smile: [red]x")]  # fmt: skip
    written = events("odd-1", "zai", odd, 0.01, fallbacks=fell)
    ledger = open_ledger(config)
    ledger.write([e.model_copy(update={"project": "p:a:q"}) for e in written])
    ledger.close()
    for command in (["stats"], ["fallback"], ["cost", "--by", "project"], ["cost"]):
        result = run(path, *command)
        assert result.exit_code == 0, (command, result.output)
        assert "\U0001f170" not in result.stdout and "\U0001f604" not in result.stdout, command
    assert odd in run(path, "stats").stdout
    assert ":smile: [red]x" in run(path, "fallback").stdout
    assert "p:a:q" in run(path, "cost", "--by", "project").stdout


def test_an_error_naming_a_budget_is_printed_as_written(setup: tuple[Config, Path]) -> None:
    """The command line's error line (``lanes.cli.main``) shows ``project:a:b`` literally: the
    name a refusal asks the user to type back."""
    _, path = setup
    done = subprocess.run(
        [sys.executable, "-m", "lanes", "--config", str(path), "budget", "--set-daily", "1e308",
         "--scope", "project:a:b"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "budget id 'project:a:b:daily'" in done.stderr
    assert "Traceback" not in done.stderr
