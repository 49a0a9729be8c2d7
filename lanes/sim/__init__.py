"""Provider simulator: Anthropic- and OpenAI-compatible endpoints with deterministic
replies, per-minute limits and switchable faults, for the demo, tests and benchmarks.

::

    with Simulator(profiles={"claude1": Profile(requests_per_min=50)}) as sim:
        client = anthropic.Anthropic(api_key="k", base_url=sim.base_url("claude1"))
        sim.set_fault("claude1", Fault(kind="529", count=1))
"""

from lanes.sim.client import SimControl
from lanes.sim.instances import BATCH_BILLED, BILLED
from lanes.sim.profiles import DEFAULT_CONTEXT_WINDOW, Fault, FaultKind, ModelLimits, Profile
from lanes.sim.replies import count_input_tokens, count_tokens, expected_reply
from lanes.sim.simulator import Simulator, run_forever

__all__ = [
    "BATCH_BILLED",
    "BILLED",
    "DEFAULT_CONTEXT_WINDOW",
    "Fault",
    "FaultKind",
    "ModelLimits",
    "Profile",
    "SimControl",
    "Simulator",
    "count_input_tokens",
    "count_tokens",
    "expected_reply",
    "run_forever",
]
