"""``lanes bench ratelimit``."""

from __future__ import annotations

from lanes.cli.app import bench_app  # noqa: F401
