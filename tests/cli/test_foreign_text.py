"""Text lanes did not write reaches the terminal as plain text: no markup, no control bytes."""

from __future__ import annotations

import pytest
from rich.console import Console

from lanes.broker.result import Result
from lanes.cli.app import foreign
from lanes.cli.run import show_result
from lanes.cli.status import status_table

HOSTILE = "[/INST] done [bold]not bold[/bold] [/x] \x1b[31mred\x1b[0m \x07bell"


def _render(renderable: object) -> str:
    console = Console(width=200, record=True, force_terminal=False, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_foreign_text_is_shown_literally_without_control_bytes() -> None:
    shown = _render(foreign(HOSTILE))
    assert "[/INST] done [bold]not bold[/bold] [/x]" in shown
    assert "\x1b" not in shown and "\x07" not in shown
    assert "\ufffd[31mred" in shown


def test_foreign_text_in_a_reply_does_not_crash_lanes_run(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = Result(job_id="j", status="ok", instance="koala", model="llama3.1:8b", step=0,
                    attempt=0, text=HOSTILE)  # fmt: skip
    show_result(result)
    out = capsys.readouterr().out
    assert "[/INST] done" in out and "\x1b" not in out


def test_foreign_text_in_a_disabled_reason_does_not_crash_lanes_status() -> None:
    row = {
        "lane": "zai", "enabled": True, "disabled": f"HTTP 401: {HOSTILE}", "cooldown_s": 0.0,
        "health": 0.5, "queue_depth": 0, "backlog": 3, "drain_s": 2.5, "workers": ["w1@host"],
        "limits": {"requests_per_min": 10, "input_tokens_per_min": 0,
                   "output_tokens_per_min": 0, "concurrency": 0},
        "available_now": {"requests": 10, "input_tokens": None, "output_tokens": None,
                          "leases": 0},
        "model_limits": {},
    }  # fmt: skip
    shown = _render(status_table([row]))
    assert "[/x]" in shown and "\x1b" not in shown
