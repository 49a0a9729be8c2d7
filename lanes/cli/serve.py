"""Commands: see lanes --help."""

from __future__ import annotations

from lanes.cli.app import app, bench_app  # noqa: F401
