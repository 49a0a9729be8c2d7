"""``lanes --help``: each command's short help is one flowing paragraph."""

from __future__ import annotations

import inspect

import pytest
import typer
from typer.testing import CliRunner

from lanes.bench.cli.group import bench_app
from lanes.entry import app


def _first_paragraphs(typer_app: typer.Typer) -> dict[str, str]:
    """Command name → the first paragraph of its help, whitespace made single spaces."""
    out = {}
    for command in typer_app.registered_commands:
        text = command.help or inspect.getdoc(command.callback) or ""
        name = command.name or (command.callback.__name__ if command.callback else "")
        if text and not command.hidden:
            out[name] = " ".join(inspect.cleandoc(text).split("\n\n")[0].split())
    return out


@pytest.mark.parametrize(
    ("typer_app", "args"),
    [(app, ["--help"]), (bench_app, ["bench", "--help"])],
    ids=["lanes", "bench"],
)
def test_cli_help_lists_each_command_on_one_line(typer_app: typer.Typer, args: list[str]) -> None:
    result = CliRunner().invoke(app, args, env={"COLUMNS": "1000", "TERMINAL_WIDTH": "1000"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    expected = _first_paragraphs(typer_app)
    assert len(expected) >= 7
    for name, paragraph in expected.items():
        line = next((line for line in lines if line.lstrip("│ ").startswith(f"{name} ")), "")
        assert paragraph in line, f"{name}: {paragraph!r} is not on one line of --help"


def test_cli_help_joins_the_lines_a_docstring_wraps() -> None:
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "1000"})
    assert "run it again with the same OUT to resume" in result.output
    assert "latency, tokens and cost" in result.output
