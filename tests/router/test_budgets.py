"""Budget policy: windows and reset times in the budget time zone, overrides, budget ids,
per-request checks, alert thresholds and the refusal message."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from lanes.kernel.config.models import (
    MAX_BUDGET_USD,
    BudgetAction,
    BudgetAlert,
    BudgetLimit,
    BudgetSpec,
)
from lanes.kernel.errors import BudgetExceeded
from lanes.router.budgets import (
    WINDOW_MARGIN_S,
    Hold,
    active_actions,
    check_per_request,
    crossed,
    exceeded_message,
    holds,
    parse_budget_id,
    usd,
    window_hold,
)

PARIS = ZoneInfo("Europe/Paris")
LA = ZoneInfo("America/Los_Angeles")


def _spec(*ids: str, timezone: str = "UTC", **kw: object) -> BudgetSpec:
    limits = [parse_budget_id(budget_id, 1.0) for budget_id in ids]
    return BudgetSpec.model_validate({"timezone": timezone, "limits": limits, **kw})


def _hold(budget_id: str, timezone: str, now: datetime) -> Hold:
    return window_hold(parse_budget_id(budget_id, 1.0), timezone, now)


def _job_holds(
    spec: BudgetSpec,
    now: datetime,
    *,
    instance: str | None = "claude1",
    project: str | None = None,
    user: str | None = None,
    overrides: dict[str, float] | None = None,
) -> dict[str, Hold]:
    found = holds(spec, instance=instance, project=project, user=user, now=now,
                  overrides=overrides or {})  # fmt: skip
    return {hold.budget_id: hold for hold in found}


# -- windows --------------------------------------------------------------------------------


def test_window_daily_in_paris_just_before_and_at_local_midnight() -> None:
    before = datetime(2026, 12, 2, 22, 59, 59, tzinfo=UTC)  # 23:59:59 in Paris (UTC+1)
    hold = _hold("global:daily", "Europe/Paris", before)
    assert hold.counter == "global:daily:2026-12-02"
    assert hold.resets_at == datetime(2026, 12, 3, tzinfo=PARIS)
    assert hold.resets_at.astimezone(UTC) == datetime(2026, 12, 2, 23, tzinfo=UTC)
    assert hold.starts_at.astimezone(UTC) == datetime(2026, 12, 1, 23, tzinfo=UTC)
    assert hold.ttl_s == 1 + WINDOW_MARGIN_S

    at_midnight = _hold("global:daily", "Europe/Paris", before + timedelta(seconds=1))
    assert at_midnight.counter == "global:daily:2026-12-03"
    assert at_midnight.ttl_s == 86400 + WINDOW_MARGIN_S


def test_window_daily_differs_from_utc_date_in_los_angeles() -> None:
    now = datetime(2026, 12, 2, 7, 30, tzinfo=UTC)  # still Dec 1st, 23:30 PST (UTC-8)
    hold = _hold("global:daily", "America/Los_Angeles", now)
    assert hold.counter == "global:daily:2026-12-01"
    assert hold.resets_at.astimezone(UTC) == datetime(2026, 12, 2, 8, tzinfo=UTC)
    assert hold.ttl_s == 30 * 60 + WINDOW_MARGIN_S
    assert _hold("global:daily", "UTC", now).counter == "global:daily:2026-12-02"


def test_window_monthly_at_month_end_in_los_angeles() -> None:
    now = datetime(2026, 12, 1, 7, 59, tzinfo=UTC)  # Nov 30th, 23:59 PST
    hold = _hold("project:acme:monthly", "America/Los_Angeles", now)
    assert hold.counter == "project:acme:monthly:2026-11"
    assert hold.resets_at == datetime(2026, 12, 1, tzinfo=LA)
    assert hold.starts_at == datetime(2026, 11, 1, tzinfo=LA)
    after = _hold("project:acme:monthly", "America/Los_Angeles", now + timedelta(minutes=1))
    assert after.counter == "project:acme:monthly:2026-12"
    assert after.resets_at.astimezone(UTC) == datetime(2027, 1, 1, 8, tzinfo=UTC)


def test_window_monthly_december_resets_in_january_of_the_next_year() -> None:
    hold = _hold("global:monthly", "Europe/Paris", datetime(2026, 12, 31, 22, 59, tzinfo=UTC))
    assert hold.counter == "global:monthly:2026-12"
    assert hold.resets_at == datetime(2027, 1, 1, tzinfo=PARIS)
    assert hold.ttl_s == 60 + WINDOW_MARGIN_S


def test_window_daily_on_a_dst_day_lasts_23_hours() -> None:
    now = datetime(2026, 3, 29, 12, tzinfo=UTC)  # Paris springs forward at 02:00 that night
    hold = _hold("global:daily", "Europe/Paris", now)
    assert hold.counter == "global:daily:2026-03-29"
    assert hold.starts_at.astimezone(UTC) == datetime(2026, 3, 28, 23, tzinfo=UTC)
    assert hold.resets_at.astimezone(UTC) == datetime(2026, 3, 29, 22, tzinfo=UTC)
    assert hold.ttl_s == 10 * 3600 + WINDOW_MARGIN_S  # real seconds, not wall-clock hours


def test_window_needs_an_aware_now() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        _hold("global:daily", "UTC", datetime(2026, 12, 2, 12))


def test_window_per_request_has_none() -> None:
    with pytest.raises(ValueError, match="no window"):
        _hold("global:per_request", "UTC", datetime(2026, 12, 2, tzinfo=UTC))


# -- which budgets hold a job ---------------------------------------------------------------

NOW = datetime(2026, 12, 2, 12, tzinfo=UTC)
SPEC = _spec(
    "global:daily",
    "global:monthly",
    "global:per_request",
    "instance:claude1:daily",
    "project:acme:monthly",
    "user:bob:daily",
)


def test_holds_match_instance_project_and_user() -> None:
    found = _job_holds(SPEC, NOW, project="acme", user="bob")
    assert set(found) == {
        "global:daily",
        "global:monthly",
        "instance:claude1:daily",
        "project:acme:monthly",
        "user:bob:daily",
    }
    assert found["user:bob:daily"].counter == "user:bob:daily:2026-12-02"
    assert found["project:acme:monthly"].counter == "project:acme:monthly:2026-12"


def test_holds_leave_out_other_names_and_unknown_fields() -> None:
    found = _job_holds(SPEC, NOW, instance="claude3", project="beta", user=None)
    assert set(found) == {"global:daily", "global:monthly"}
    assert set(_job_holds(SPEC, NOW, instance=None)) == {"global:daily", "global:monthly"}


def test_holds_override_replaces_a_config_limit() -> None:
    found = _job_holds(SPEC, NOW, overrides={"global:daily": 25.0})
    assert found["global:daily"].limit_usd == 25.0
    assert found["global:monthly"].limit_usd == 1.0


def test_holds_override_creates_a_budget_the_config_lacks() -> None:
    overrides = {"project:beta:daily": 3.0, "user:eve:monthly": 7.0, "user:bob:per_request": 1.0}
    found = _job_holds(_spec(), NOW, project="beta", user="bob", overrides=overrides)
    assert set(found) == {"project:beta:daily"}
    assert found["project:beta:daily"].limit_usd == 3.0
    assert found["project:beta:daily"].counter == "project:beta:daily:2026-12-02"


def test_holds_none_without_windowed_budgets() -> None:
    assert holds(_spec("global:per_request"), instance="claude1", project=None, user=None,
                 now=NOW) == []  # fmt: skip


# -- budget ids -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "budget_id",
    ["global:daily", "instance:claude1:monthly", "project:acme:daily", "user:bob:per_request",
     "project:team:a:daily"],
)  # fmt: skip
def test_parse_budget_id_round_trips(budget_id: str) -> None:
    limit = parse_budget_id(budget_id, 2.5)
    assert limit.budget_id == budget_id
    assert limit.limit_usd == 2.5


def test_parse_budget_id_splits_scope_name_and_period() -> None:
    limit = parse_budget_id("project:team:a:daily")
    assert (limit.scope.value, limit.name, limit.period.value) == ("project", "team:a", "daily")
    assert parse_budget_id("global:monthly") == BudgetLimit(period="monthly", limit_usd=0)


@pytest.mark.parametrize(
    ("budget_id", "problem"),
    [
        ("", "must start with a scope"),
        ("daily", "must start with a scope"),
        ("team:x:daily", "must start with a scope"),
        ("global:weekly", "must end with a period"),
        ("project:acme", "must end with a period"),
        ("global:acme:daily", "global budget takes no name"),
        ("project:daily", "needs a name"),
        ("user::daily", "needs a name"),
        ("user:" + "x" * 200 + ":daily", "at most 128 characters"),
    ],
)
def test_parse_budget_id_explains_what_is_wrong(budget_id: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_budget_id(budget_id)


def test_parse_budget_id_refuses_a_negative_limit() -> None:
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        parse_budget_id("global:daily", -1.0)


@pytest.mark.parametrize("limit_usd", [1e308, 9.3e9, MAX_BUDGET_USD * 1.000001])
def test_parse_budget_id_refuses_a_limit_above_the_maximum(limit_usd: float) -> None:
    """Above a billion USD a limit would overflow the budget counters (the reserve script
    would hand a 9.3e9 limit back as -9223372036.85)."""
    with pytest.raises(ValueError, match="above the largest budget lanes keeps"):
        parse_budget_id("global:daily", limit_usd)
    assert parse_budget_id("global:daily", MAX_BUDGET_USD).limit_usd == MAX_BUDGET_USD


@pytest.mark.parametrize("limit_usd", [float("inf"), float("nan"), float("-inf")])
def test_parse_budget_id_refuses_a_limit_that_is_no_amount(limit_usd: float) -> None:
    with pytest.raises(ValueError, match="finite"):
        parse_budget_id("global:daily", limit_usd)


def test_a_negative_zero_limit_is_zero() -> None:
    limit = parse_budget_id("global:daily", -0.0)
    assert str(limit.limit_usd) == "0.0"


def test_config_limits_are_bounded_like_set_limits() -> None:
    with pytest.raises(ValidationError, match="above the largest budget"):
        BudgetSpec.model_validate({"limits": [{"period": "daily", "limit_usd": 1e10}]})
    with pytest.raises(ValidationError, match="control characters"):
        BudgetSpec.model_validate(
            {"limits": [{"scope": "project", "name": "a\x00", "period": "daily",
                         "limit_usd": 1}]}
        )  # fmt: skip


# -- per request ----------------------------------------------------------------------------


def test_check_per_request_refuses_an_estimate_above_the_limit() -> None:
    spec = BudgetSpec(limits=[BudgetLimit(period="per_request", limit_usd=0.05)])
    check_per_request(spec, 0.05, instance="claude1", project=None, user=None)
    with pytest.raises(BudgetExceeded) as info:
        check_per_request(spec, 0.0712, instance="claude1", project=None, user=None)
    assert info.value.exit_code == 4
    assert info.value.budget == "global:per_request"
    message = str(info.value)
    assert "global:per_request" in message
    assert "$0.05 per request" in message
    assert "~$0.07" in message


def test_check_per_request_only_for_the_matching_user_and_with_overrides() -> None:
    spec = BudgetSpec(limits=[BudgetLimit(scope="user", name="bob", period="per_request",
                                          limit_usd=0.01)])  # fmt: skip
    check_per_request(spec, 1.0, instance="claude1", project=None, user="alice")
    with pytest.raises(BudgetExceeded, match="user:bob:per_request"):
        check_per_request(spec, 1.0, instance="claude1", project=None, user="bob")
    check_per_request(spec, 1.0, instance="claude1", project=None, user="bob",
                      overrides={"user:bob:per_request": 2.0})  # fmt: skip
    with pytest.raises(BudgetExceeded, match="project:acme:per_request"):
        check_per_request(spec, 1.0, instance="claude1", project="acme", user=None,
                          overrides={"project:acme:per_request": 0.5})  # fmt: skip


def test_check_per_request_ignores_windowed_budgets() -> None:
    spec = BudgetSpec(limits=[BudgetLimit(period="daily", limit_usd=0.01)])
    check_per_request(spec, 5.0, instance="claude1", project=None, user=None)


# -- alerts ---------------------------------------------------------------------------------

ALERTS = BudgetSpec(
    alerts=[
        BudgetAlert(at=0.9, action=BudgetAction.BLOCK_EXPENSIVE_MODELS),
        BudgetAlert(at=0.5, action=BudgetAction.NOTIFY),
        BudgetAlert(at=0.75, action=BudgetAction.SWITCH_TO_CHEAPER),
    ]
)


def test_crossed_lists_reached_thresholds_lowest_first() -> None:
    assert crossed(ALERTS, 0.49) == []
    assert [a.at for a in crossed(ALERTS, 0.5)] == [0.5]
    assert [a.at for a in crossed(ALERTS, 0.95)] == [0.5, 0.75, 0.9]


def test_active_actions_is_the_union_over_budgets() -> None:
    assert active_actions(ALERTS, {}) == set()
    assert active_actions(ALERTS, {"global:daily": 0.2, "project:a:daily": 0.8}) == {
        BudgetAction.NOTIFY,
        BudgetAction.SWITCH_TO_CHEAPER,
    }
    assert BudgetAction.BLOCK_EXPENSIVE_MODELS in active_actions(ALERTS, {"x": 1.2, "y": 0.0})


# -- messages -------------------------------------------------------------------------------


def test_exceeded_message_names_budget_limit_spend_and_reset() -> None:
    hold = _hold("global:daily", "UTC", NOW)
    assert exceeded_message(hold, 0.98, 0.01, 0.03) == (
        "budget global:daily is spent: $0.98 of $1.00 spent (+$0.01 in flight); this job needs"
        " ~$0.03; it resets at 2026-12-03 00:00 UTC (raise it to N USD with `lanes budget"
        " --set-daily N --scope global`)"
    )


@pytest.mark.parametrize(
    ("budget_id", "command"),
    [
        ("global:daily", "lanes budget --set-daily N --scope global"),
        ("global:monthly", "lanes budget --set-monthly N --scope global"),
        ("project:research:daily", "lanes budget --set-daily N --scope project:research"),
        ("project:research:monthly", "lanes budget --set-monthly N --scope project:research"),
        ("instance:claude1:daily", "lanes budget --set-daily N --scope instance:claude1"),
        ("user:bob:monthly", "lanes budget --set-monthly N --scope user:bob"),
        ("project:a:b:daily", "lanes budget --set-daily N --scope project:a:b"),
        ("project:my team:daily", "lanes budget --set-daily N --scope 'project:my team'"),
    ],
)
def test_exceeded_message_names_the_command_for_that_budget(budget_id: str, command: str) -> None:
    """The hint is the exact command that raises this budget: its period's option and its
    scope (quoted for a shell where the name needs it), whatever the scope and period."""
    message = exceeded_message(_hold(budget_id, "UTC", NOW), 1.0, 0.0, 0.5)
    assert message.endswith(f"(raise it to N USD with `{command}`)")


@pytest.mark.parametrize(
    ("budget_id", "command"),
    [
        ("global:per_request", "lanes budget --set-per-request N --scope global"),
        ("project:research:per_request",
         "lanes budget --set-per-request N --scope project:research"),
        ("user:bob:per_request", "lanes budget --set-per-request N --scope user:bob"),
        ("instance:claude1:per_request",
         "lanes budget --set-per-request N --scope instance:claude1"),
    ],
)  # fmt: skip
def test_per_request_refusal_names_the_command_for_that_budget(
    budget_id: str, command: str
) -> None:
    spec = BudgetSpec(limits=[parse_budget_id(budget_id, 0.01)])
    with pytest.raises(BudgetExceeded) as info:
        check_per_request(spec, 1.0, instance="claude1", project="research", user="bob")
    assert str(info.value).endswith(f"raise it to N USD with `{command}`)")


def test_exceeded_message_in_the_budget_zone_without_flight() -> None:
    hold = _hold("project:acme:monthly", "Europe/Paris", NOW)
    message = exceeded_message(hold, 1.0, 0.0, 0.002)
    assert "in flight" not in message
    assert "~$0.002;" in message
    assert "resets at 2027-01-01 00:00 CET" in message
    assert "--set-monthly" in message


def test_usd_shows_cents_or_three_digits_below_a_cent() -> None:
    assert [usd(0), usd(1234.5), usd(0.019), usd(0.00312), usd(-0.0)] == [
        "$0.00",
        "$1,234.50",
        "$0.02",
        "$0.00312",
        "$0.00",
    ]
