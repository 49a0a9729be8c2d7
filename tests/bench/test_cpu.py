import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from lanes.bench.cpu import RoleMeter

pytestmark = pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc (Linux only)")


def _spin(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_the_callers_cpu_is_counted_per_request() -> None:
    meter = RoleMeter()
    before = meter.snapshot()
    _spin(0.3)
    spent = meter.since(before, per=3)
    assert 80 <= spent["caller"] <= 200  # 300 ms over 3 requests, ticks of 10 ms
    assert spent["total"] >= spent["caller"]


def test_a_child_is_told_apart_by_its_command_line() -> None:
    meter = RoleMeter()
    before = meter.snapshot()
    code = "import time; end = time.process_time() + 0.3\nwhile time.process_time() < end: pass"
    child = subprocess.Popen([sys.executable, "-c", code, "celery"])
    deadline = time.monotonic() + 10
    try:  # not reaped until wait(): its CPU stays readable meanwhile
        while meter.since(before, per=1).get("workers", 0) < 250 and time.monotonic() < deadline:
            time.sleep(0.02)
        spent = meter.since(before, per=1)
    finally:
        child.wait()
    assert spent["workers"] >= 250 and spent.get("caller", 0) < 250


def test_redis_is_counted_from_its_own_figures(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    meter = RoleMeter(client)
    before = meter.snapshot()
    for _ in range(2000):
        client.ping()
    assert meter.since(before, per=1)["redis"] > 0
    client.close()
