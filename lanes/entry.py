"""The ``lanes`` command: the command line, and the measurement commands (``lanes bench ...``,
``lanes train``) when they are installed.

They ship with the source tree (``lanes/bench``), not in the wheel: a user who installed the
wheel and asks for them is told where to get them.
"""

from __future__ import annotations

import typer
from rich.text import Text

from lanes.cli import main as run
from lanes.cli.app import app, err_console, flow_help

__all__ = ["app", "main"]

MISSING = (
    "the benchmarks and training commands ship with lanes' source, not with the installed"
    " package: git clone the lanes repository, `pip install -e '.[dev]'` in it (`make install`"
    " does), and run `lanes {command} ...` from that environment"
)

PASS_THROUGH = {"allow_extra_args": True, "ignore_unknown_options": True}


def main() -> None:
    """``lanes``: every command, the measurement ones if present."""
    run()


def add_measurement_commands(typer_app: typer.Typer) -> None:
    """``lanes bench`` and ``lanes train``, or, without them, commands that say how to get
    them (whatever arguments follow)."""
    try:
        from lanes.bench.cli import register
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith("lanes.bench"):
            raise
        for command in ("bench", "train"):
            _missing(typer_app, command)
        return
    register(typer_app)


def _missing(typer_app: typer.Typer, command: str) -> None:
    @typer_app.command(command, context_settings=PASS_THROUGH, add_help_option=False)
    def missing(ctx: typer.Context) -> None:
        """Not installed: ships with lanes' source tree."""
        err_console.print(Text(f"error: {MISSING.format(command=command)}"), soft_wrap=True)
        raise typer.Exit(2)


# Importing this module builds the whole command line, as importing lanes.cli registers its
# commands: ``app`` here is what ``lanes`` runs.
add_measurement_commands(app)
flow_help(app)
