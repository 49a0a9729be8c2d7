"""The measurement commands: ``lanes bench ...`` and ``lanes train``.

Importing this package registers them on the command line's app (:func:`register`); the
console entry (:mod:`lanes.entry`) does so when the package is there, which it is in a source
checkout and not in the wheel.
"""

from __future__ import annotations

import typer

from lanes.bench.cli import (  # noqa: F401  (importing registers the commands)
    budget,
    chaos,
    classify,
    difficulty,
    inflight,
    load,
    ratelimit,
    route,
    savings,
    serve,
    throughput,
    train,
)
from lanes.bench.cli.group import bench_app


def register(app: typer.Typer) -> None:
    """Add ``lanes bench`` to ``app`` (``lanes train`` registered itself on import)."""
    app.add_typer(bench_app, name="bench")
