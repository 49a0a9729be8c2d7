"""Property-based fuzzing of the money commands: any budget value and scope given to ``lanes
budget --set-*`` is set or refused with one of lanes' errors (exit 2), never a traceback;
whatever text a project or user holds, no CSV cell of ``lanes export`` starts with a character
a spreadsheet reads as a formula."""

from __future__ import annotations

import csv
import io
import math
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from lanes.entry import app
from lanes.kernel.config import Config, load_config
from lanes.kernel.config.models import MAX_BUDGET_USD
from lanes.kernel.errors import LanesError
from lanes.ops.reports import FORMULA_STARTS, csv_cell
from lanes.stores.ledger import OutcomeEvent
from lanes.stores.sql import open_ledger

from ..conftest import EXAMPLE, write_config
from ..test_fuzz import FUZZ

runner = CliRunner()
SPECIAL_VALUES = [0.0, -0.0, 1e308, -1e308, math.inf, -math.inf, math.nan, MAX_BUDGET_USD,
                  MAX_BUDGET_USD * 1.0000001, 9.22e9, 9.3e9, 5e-324, 1e-12]  # fmt: skip
VALUES = st.sampled_from(SPECIAL_VALUES) | st.floats(allow_nan=True, allow_infinity=True)
SCOPES = st.text(max_size=40) | st.builds(
    lambda scope, name: f"{scope}:{name}",
    st.sampled_from(["global", "project", "user", "instance", "team"]),
    st.text(max_size=30),
)
OPTIONS = st.sampled_from(["--set-daily", "--set-monthly", "--set-per-request"])
FUZZ_CLI = settings(FUZZ, max_examples=30)
"""Each case runs a whole command against Redis and SQLite: fewer cases, the same rules."""


@pytest.fixture(scope="module")
def books_config(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One config (its own Redis prefix and SQLite ledger) for every case of the module."""
    tmp = tmp_path_factory.mktemp("fuzz-books")
    prefix = f"lanes-test-{uuid.uuid4().hex[:8]}"
    _, path = write_config(load_config(EXAMPLE, env={}), tmp, redis_url=redis_url,
                           redis_prefix=prefix, state_dir=str(tmp / "state"))  # fmt: skip
    yield path
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(f"{prefix}:*", count=1000):
        client.delete(key)
    client.close()


def _clean(result: Any) -> None:
    """Exited on its own, or refused with one of lanes' errors: never a traceback."""
    exc = result.exception
    assert exc is None or isinstance(exc, SystemExit | LanesError), repr(exc)


@FUZZ
@given(value=VALUES, scope=SCOPES, option=OPTIONS)
def test_fuzz_budget_any_value_and_scope_is_set_or_refused(
    books_config: Path, value: float, scope: str, option: str
) -> None:
    result = runner.invoke(app, ["--config", str(books_config), "budget", option, repr(value),
                                 "--scope", scope, "--json"])  # fmt: skip
    _clean(result)
    in_range = math.isfinite(value) and 0 <= value <= MAX_BUDGET_USD
    if not in_range:
        assert isinstance(result.exception, LanesError), (value, scope, result.output)
        assert result.exception.exit_code == 2
    if result.exit_code == 0:
        assert in_range and "$-0" not in result.output


@FUZZ_CLI
@given(value=VALUES)
def test_fuzz_budget_a_value_out_of_range_saves_nothing(books_config: Path, value: float) -> None:
    scope = f"project:fuzz-{uuid.uuid4().hex[:8]}"
    result = runner.invoke(app, ["--config", str(books_config), "budget", "--set-daily",
                                 repr(value), "--scope", scope])  # fmt: skip
    _clean(result)
    config = load_config(books_config, env={})
    ledger = open_ledger(config)
    try:
        saved = {row.budget_id: row.limit_usd for row in ledger.budget_limits()}
    finally:
        ledger.close()
    if math.isfinite(value) and 0 <= value <= MAX_BUDGET_USD:
        assert result.exit_code == 0, result.output
        assert saved[f"{scope}:daily"] == value and str(saved[f"{scope}:daily"]) != "-0.0"
    else:
        assert f"{scope}:daily" not in saved


@FUZZ
@given(st.text(max_size=60) | st.sampled_from(["=1+1", "+1", "-1", "@A1", "\t=1", "\r=1"]))
def test_fuzz_csv_cell_never_starts_with_a_formula_character(text: str) -> None:
    cell = csv_cell(text)
    assert not str(cell).startswith(FORMULA_STARTS)
    assert str(cell).removeprefix("'") == text or cell == text


@FUZZ_CLI
@given(project=st.text(max_size=40), user=st.text(max_size=40))
def test_fuzz_export_csv_cells_never_start_with_a_formula_character(
    books_config: Path, project: str, user: str
) -> None:
    config: Config = load_config(books_config, env={})
    job_id = f"fuzz-{uuid.uuid4().hex}"
    outcome = OutcomeEvent(job_id=job_id, status="ok", instance="zai", model="glm-4.6", step=0,
                           attempt=0, project=project, user=user, cost_usd=0.5)  # fmt: skip
    ledger = open_ledger(config)
    try:
        ledger.write([outcome])
    finally:
        ledger.close()
    result = runner.invoke(app, ["--config", str(books_config), "export", "--format", "csv"])
    _clean(result)
    assert result.exit_code == 0, result.output
    rows = {row["job_id"]: row for row in csv.DictReader(io.StringIO(result.stdout))}
    row = rows[job_id]
    for cell in row.values():
        assert not cell.startswith(FORMULA_STARTS), (project, user, row)
    assert row["project"] in (project, "'" + project)
    assert float(row["cost_usd"]) == 0.5
