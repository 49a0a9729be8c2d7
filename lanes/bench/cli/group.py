"""The ``lanes bench`` group every benchmark command joins."""

from __future__ import annotations

import typer

bench_app = typer.Typer(help="Benchmarks: print JSON figures measured in one run.")
