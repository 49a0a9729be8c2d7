"""Workers on three simulated hosts (network namespaces, clocks +2 s, -2 s and 0): the pool's
limits hold across them, and a host cut off from Redis and a worker paused past its lease
lose no job, answer none twice and charge none twice."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lanes.bench.chaos_hosts import HostsSettings, run_chaos_hosts
from lanes.bench.hosts import simulated_hosts
from lanes.kernel.config import Config
from lanes.kernel.errors import InfrastructureError

SMALL = HostsSettings(
    jobs=60, latency_s=0.5, submit_window_s=15, visibility_timeout_s=10, call_timeout_s=4,
    fault_at_s=6, fault_s=18, late_s=12, drain_s=60, ratelimit_s=10, warmup_s=5,
    ratelimit_latency_s=1.0,
)  # fmt: skip


def _hosts_or_skip() -> None:
    """Network namespaces need root: skip without it, but fail under ``$CI``, which has it."""
    try:
        with simulated_hosts([0.0]):
            pass
    except InfrastructureError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set and simulated hosts cannot run: {exc}")
        pytest.skip(f"simulated hosts cannot run here: {exc}")


def test_guarantees_hold_across_three_hosts(example_config: Config, tmp_path: Path) -> None:
    _hosts_or_skip()
    liveness = example_config.liveness.model_copy(update={"interval_s": 3})  # clocks reported
    config = example_config.model_copy(
        update={"state_dir": str(tmp_path / "state"), "liveness": liveness}
    )
    report = run_chaos_hosts(config, SMALL, progress=lambda _: None)

    assert report["clock_offsets_s"] == [2.0, -2.0, 0.0]
    assert report["submitted"] == SMALL.jobs and report["completed"] == SMALL.jobs
    assert (report["lost"], report["duplicated_results"], report["double_charged"]) == (0, 0, 0)
    assert report["ratelimit"]["provider_429s"] == 0
    assert report["ratelimit"]["achieved_rpm"] > 0
    seen = report["clocks_seen"]  # lanes sees each host's offset, as its doctor reports it
    assert any(name.startswith("clock host1") and "fail" in row for name, row in seen.items())
    assert any(name.startswith("clock host2") and "fail" in row for name, row in seen.items())


def test_a_host_is_its_own_namespace_with_its_own_name_and_clock() -> None:
    _hosts_or_skip()
    with simulated_hosts([2.0]) as (host,):
        code = "import socket, time; print(socket.gethostname(), time.time())"
        env = {**os.environ, **host.env()}
        ran = subprocess.run(host.command([sys.executable, "-c", code]), env=env,
                             capture_output=True, text=True, check=True)  # fmt: skip
        name, clock = ran.stdout.split()
        assert name == "host1"
        assert 1.5 < float(clock) - time.time() < 2.5
