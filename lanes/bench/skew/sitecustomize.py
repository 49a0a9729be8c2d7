"""A simulated host's clock offset (``lanes.bench.hosts``): Python's wall clock runs
``$SIMULATED_CLOCK_SKEW_S`` seconds off. Loaded by every Python process started with this
directory on its path; a no-op without the variable."""

import os
import time

_skew = float(os.environ.get("SIMULATED_CLOCK_SKEW_S") or 0)
if _skew:
    _time, _time_ns = time.time, time.time_ns
    time.time = lambda: _time() + _skew
    time.time_ns = lambda: _time_ns() + int(_skew * 1e9)
