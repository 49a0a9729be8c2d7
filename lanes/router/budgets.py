"""Budget policy: which budgets a job is held against, when their windows reset, what an alert
threshold turns on, and what a refusal says. Pure: no I/O, time comes in as ``now``.

A budget is a :class:`lanes.kernel.config.models.BudgetLimit` of the config, or one created at run
time by an *override* (``lanes budget --set-*``: budget id → limit in USD), which also replaces
the config's limit of the same id. Budget ids read ``scope[:name]:period``::

    global:daily   instance:claude1:monthly   project:acme:daily   user:bob:per_request

``per_request`` budgets are checked against one job's estimate (:func:`check_per_request`).
``daily`` and ``monthly`` budgets accumulate spend in *windows* that reset at local midnight
(the first of the month) in ``budgets.timezone``; each (budget, window) is one :class:`Hold`,
whose ``counter`` names the store's counter (``global:daily:2026-12-02``,
``project:acme:monthly:2026-12``).
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from lanes.kernel.config.models import (
    BudgetAction,
    BudgetAlert,
    BudgetLimit,
    BudgetPeriod,
    BudgetScope,
    BudgetSpec,
)
from lanes.kernel.errors import BudgetExceeded

WINDOW_MARGIN_S = 2 * 86400
"""How long a counter outlives its window: late settles of calls that began before the reset
still find it."""

_WINDOWED = (BudgetPeriod.DAILY, BudgetPeriod.MONTHLY)


@dataclass(frozen=True)
class Hold:
    """One windowed budget a job is held against, in the window of the moment it was made.

    ``limit_usd`` is the config's limit (or the override known when it was made; the store's
    override, if any, wins). ``resets_at`` and ``starts_at`` are tz-aware, in the budget time
    zone. ``ttl_s`` is how long the counter should live from then: until ``resets_at`` plus
    :data:`WINDOW_MARGIN_S`.
    """

    budget_id: str
    counter: str
    limit_usd: float
    resets_at: datetime
    ttl_s: int
    starts_at: datetime


def parse_budget_id(budget_id: str, limit_usd: float = 0.0) -> BudgetLimit:
    """The :class:`BudgetLimit` a budget id names, with ``limit_usd``.

    ``ValueError`` for an id that is not ``global:<period>`` or ``<scope>:<name>:<period>``
    (the name may itself contain ``:``), an unknown scope or period, or a negative limit.
    """
    parts = budget_id.split(":")
    scopes = ", ".join(s.value for s in BudgetScope)
    periods = ", ".join(p.value for p in BudgetPeriod)
    if len(parts) < 2 or parts[0] not in set(BudgetScope):
        raise ValueError(
            f"budget id {budget_id!r} must start with a scope ({scopes}), e.g. global:daily"
            " or project:acme:monthly"
        )
    if parts[-1] not in set(BudgetPeriod):
        raise ValueError(f"budget id {budget_id!r} must end with a period ({periods})")
    scope = BudgetScope(parts[0])
    name = ":".join(parts[1:-1]) or None
    if scope is BudgetScope.GLOBAL and name is not None:
        raise ValueError(f"budget id {budget_id!r}: a global budget takes no name")
    if scope is not BudgetScope.GLOBAL and name is None:
        raise ValueError(
            f"budget id {budget_id!r}: a {scope.value} budget needs a name, e.g."
            f" {scope.value}:NAME:{parts[-1]}"
        )
    try:
        return BudgetLimit(
            scope=scope, name=name, period=BudgetPeriod(parts[-1]), limit_usd=limit_usd
        )
    except ValidationError as exc:
        problems = "; ".join(
            str(e["msg"]).removeprefix("Value error, ") for e in exc.errors(include_url=False)
        )
        raise ValueError(f"budget id {budget_id!r}: {problems}") from None


def raise_command(budget_id: str) -> str:
    """The command that sets the limit of ``budget_id`` (``N``: the new limit in USD), e.g.
    ``lanes budget --set-daily N --scope project:research`` for ``project:research:daily``;
    the scope is quoted for a shell when it needs to be. A malformed id gets the general
    form."""
    who, _, period = budget_id.rpartition(":")
    if not who or period not in set(BudgetPeriod):
        return "lanes budget --set-daily|--set-monthly|--set-per-request N --scope SCOPE"
    option = "--set-" + period.replace("_", "-")
    return f"lanes budget {option} N --scope {shlex.quote(who)}"


def budget_limits(spec: BudgetSpec, overrides: Mapping[str, float] = {}) -> list[BudgetLimit]:
    """Every budget in force: the config's (with overridden limits), then the budgets that
    only overrides define. ``ValueError`` for a malformed override id."""
    configured = {limit.budget_id for limit in spec.limits}
    out = [
        limit.model_copy(update={"limit_usd": overrides[limit.budget_id]})
        if limit.budget_id in overrides
        else limit
        for limit in spec.limits
    ]
    out += [
        parse_budget_id(budget_id, usd)
        for budget_id, usd in sorted(overrides.items())
        if budget_id not in configured
    ]
    return out


def applies(
    limit: BudgetLimit, *, instance: str | None, project: str | None, user: str | None
) -> bool:
    """Whether ``limit`` covers a job of ``project`` and ``user`` run on ``instance``."""
    if limit.scope is BudgetScope.GLOBAL:
        return True
    who = {BudgetScope.INSTANCE: instance, BudgetScope.PROJECT: project, BudgetScope.USER: user}
    return who[limit.scope] is not None and who[limit.scope] == limit.name


def holds(
    spec: BudgetSpec,
    *,
    instance: str | None,
    project: str | None,
    user: str | None,
    now: datetime,
    overrides: Mapping[str, float] = {},
) -> list[Hold]:
    """The daily and monthly budgets a job is held against at ``now`` (tz-aware).

    ``instance`` None (not chosen yet) leaves instance budgets out.
    """
    return [
        window_hold(limit, spec.timezone, now)
        for limit in budget_limits(spec, overrides)
        if limit.period in _WINDOWED
        and applies(limit, instance=instance, project=project, user=user)
    ]


def window_hold(limit: BudgetLimit, timezone: str, now: datetime) -> Hold:
    """The :class:`Hold` of a daily or monthly ``limit`` in the window holding ``now``."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"now must be timezone-aware, got {now!r}")
    zone = ZoneInfo(timezone)
    local = now.astimezone(zone)
    if limit.period is BudgetPeriod.DAILY:
        window = local.date().isoformat()
        starts_at = _midnight(local.date(), zone)
        resets_at = _midnight(local.date() + timedelta(days=1), zone)
    elif limit.period is BudgetPeriod.MONTHLY:
        window = f"{local.year:04d}-{local.month:02d}"
        starts_at = _midnight(date(local.year, local.month, 1), zone)
        resets_at = _midnight(_next_month(local.date()), zone)
    else:
        raise ValueError(f"budget {limit.budget_id} has no window (period {limit.period.value})")
    ttl_s = math.ceil(resets_at.timestamp() - now.timestamp()) + WINDOW_MARGIN_S
    return Hold(
        budget_id=limit.budget_id,
        counter=f"{limit.budget_id}:{window}",
        limit_usd=limit.limit_usd,
        resets_at=resets_at,
        ttl_s=ttl_s,
        starts_at=starts_at,
    )


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    # A midnight skipped by a DST change resolves (fold=0) to the instant of the change.
    return datetime(day.year, day.month, day.day, tzinfo=zone)


def _next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def check_per_request(
    spec: BudgetSpec,
    est_usd: float,
    *,
    instance: str | None,
    project: str | None,
    user: str | None,
    overrides: Mapping[str, float] = {},
) -> None:
    """Raise :class:`BudgetExceeded` when a ``per_request`` budget covering the job allows
    less than its estimate ``est_usd``."""
    for limit in budget_limits(spec, overrides):
        if (
            limit.period is BudgetPeriod.PER_REQUEST
            and applies(limit, instance=instance, project=project, user=user)
            and est_usd > limit.limit_usd
        ):
            raise BudgetExceeded(
                limit.budget_id,
                f"budget {limit.budget_id} allows {usd(limit.limit_usd)} per request; this job"
                f" needs ~{usd(est_usd)} (lower max_tokens, pick a cheaper model, or raise it"
                f" to N USD with `{raise_command(limit.budget_id)}`)",
            )


def crossed(spec: BudgetSpec, usage_fraction: float) -> list[BudgetAlert]:
    """The alerts whose threshold ``usage_fraction`` (spent + reserved over the limit) has
    reached, lowest threshold first."""
    return sorted((a for a in spec.alerts if usage_fraction >= a.at), key=lambda a: a.at)


def active_actions(spec: BudgetSpec, fractions: Mapping[str, float]) -> set[BudgetAction]:
    """The actions of every alert crossed by any budget; ``fractions``: budget id → usage."""
    return {alert.action for f in fractions.values() for alert in crossed(spec, f)}


def exceeded_message(hold: Hold, spent_usd: float, reserved_usd: float, est_usd: float) -> str:
    """Why a job was refused, and what to do, e.g.::

    budget project:research:daily is spent: $0.98 of $1.00 spent (+$0.01 in flight); this
    job needs ~$0.03; it resets at 2026-12-03 00:00 UTC (raise it to N USD with
    `lanes budget --set-daily N --scope project:research`)
    """
    in_flight = f" (+{usd(reserved_usd)} in flight)" if reserved_usd > 0 else ""
    return (
        f"budget {hold.budget_id} is spent: {usd(spent_usd)} of {usd(hold.limit_usd)} spent"
        f"{in_flight}; this job needs ~{usd(est_usd)}; it resets at"
        f" {hold.resets_at:%Y-%m-%d %H:%M %Z} (raise it to N USD with"
        f" `{raise_command(hold.budget_id)}`)"
    )


def usd(amount: float) -> str:
    """Dollars for people: cents, or three significant digits below a cent (``$0.00312``)."""
    amount += 0.0  # never "$-0.00"
    if amount == 0 or abs(amount) >= 0.01:
        return f"${amount:,.2f}"
    return f"${amount:.3g}"


def fraction(spent_usd: float, reserved_usd: float, limit_usd: float) -> float:
    """How much of a limit is used or in flight; a zero limit counts as fully used."""
    if limit_usd <= 0:
        return 1.0
    return (spent_usd + reserved_usd) / limit_usd
