"""The figures of ``lanes bench budget`` (the bench itself runs real processes: not here)."""

from __future__ import annotations

from lanes.bench.budget import BudgetSettings, report


def run(accepted: int, reservation: float, *, refused: bool = True) -> dict[str, object]:
    return {"accepted": accepted, "refused": refused, "errors": 0,
            "max_reservation_usd": reservation}  # fmt: skip


def test_spending_to_the_limit_within_one_reservation_passes_both_bars() -> None:
    figures = report(BudgetSettings(dispatchers=2), [run(90, 0.0065), run(80, 0.007)], 1.004)
    assert figures["spent_fraction"] == 1.004 and figures["max_overspend_usd"] == 0.004
    assert figures["within_one_reservation"] and figures["spent_to_the_limit"]
    assert figures["jobs_accepted"] == 170 and figures["dispatchers_refused"] == 2


def test_stopping_short_of_the_limit_fails_the_spend_bar() -> None:
    figures = report(BudgetSettings(dispatchers=1), [run(100, 0.0065)], 0.65)
    assert figures["spent_fraction"] == 0.65
    assert figures["within_one_reservation"] and not figures["spent_to_the_limit"]


def test_overspending_by_more_than_a_reservation_fails_the_other_bar() -> None:
    figures = report(BudgetSettings(dispatchers=1), [run(100, 0.0065)], 1.01)
    assert not figures["within_one_reservation"] and figures["spent_to_the_limit"]
