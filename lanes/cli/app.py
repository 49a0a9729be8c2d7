"""The typer application and what every command shares: config loading, output, exit codes.

Exit codes: 0 ok; 1 failure; 2 bad input (config, job, arguments); 3 no route;
4 budget exceeded; 5 infrastructure (Redis, broker) unavailable; 6 a job failed.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from lanes.config import Config, find_config, load_config

app = typer.Typer(
    name="lanes",
    help="Route LLM jobs to the right model on the right account, through Celery lanes.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
bench_app = typer.Typer(help="Benchmarks: print JSON figures measured in one run.")
app.add_typer(bench_app, name="bench")

console = Console()
err_console = Console(stderr=True)


@dataclass
class CliState:
    config_path: Path | None = None
    _config: Config | None = field(default=None, repr=False)

    def config(self) -> Config:
        """The config, loaded once per command."""
        if self._config is None:
            self._config = load_config(self.config_path)
        return self._config

    def config_file(self) -> Path:
        return find_config(self.config_path)


@app.callback()
def _root(
    ctx: typer.Context,
    config: Path | None = typer.Option(
        None,
        "--config",
        "-c",
        help="Config file (else $LANES_CONFIG, ./lanes.yaml, ops/lanes.yaml).",
    ),
) -> None:
    ctx.obj = CliState(config_path=config)


def state(ctx: typer.Context) -> CliState:
    obj = ctx.find_root().obj
    assert isinstance(obj, CliState)
    return obj


def print_json(data: Any) -> None:
    """One JSON document on stdout, nothing else."""
    sys.stdout.write(json.dumps(data, default=str) + "\n")
    sys.stdout.flush()
