"""Property-based fuzzing of lane names and ``LANES_*`` overrides: each case is a config or a
ConfigError, never a traceback. Same settings as ``tests/test_fuzz.py`` (derandomised)."""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import given
from hypothesis import strategies as st

from lanes.kernel.config import Config, load_config
from lanes.kernel.config.checks import RESERVED_NAMES, RESERVED_PREFIXES
from lanes.kernel.errors import ConfigError

from ..conftest import EXAMPLE
from ..test_fuzz import FUZZ

EXAMPLE_DATA: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
NEAR_RESERVED = [*RESERVED_NAMES, *(f"{p}x" for p in RESERVED_PREFIXES), "Celery", "unacked "]
LANE_NAMES = (
    st.sampled_from(NEAR_RESERVED)
    | st.text(max_size=45)
    | st.from_regex(r"[a-z_][a-z0-9_.:-]{0,44}", fullmatch=True)
)


def _load(data: dict[str, Any], env: dict[str, str] | None = None) -> Config:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "lanes.yaml"
        path.write_text(yaml.safe_dump(data), encoding="utf-8")
        return load_config(path, env=env or {})


def _reserved(name: str) -> bool:
    return name in RESERVED_NAMES or name.startswith(tuple(RESERVED_PREFIXES))


@FUZZ
@given(LANE_NAMES, st.sampled_from(["instances", "pools"]))
def test_fuzz_lane_name_loads_or_is_a_config_error(name: str, where: str) -> None:
    data = copy.deepcopy(EXAMPLE_DATA)
    if where == "instances":
        data["instances"][name] = data["instances"]["zai"]
    else:
        data["pools"][name] = ["zai"]
    try:
        config = _load(data)
    except ConfigError as exc:
        assert str(exc) and "Traceback" not in str(exc)
        return
    assert not _reserved(name), f"{name!r} is reserved but loaded"
    assert name in (config.instances if where == "instances" else config.pools)


OVERRIDE_PARTS = st.sampled_from(
    ["REDIS_URL", "DATABASE_URL", "STATE_DIR", "RESULT_TTL_S", "JANITOR_INTERVAL_S",
     "SIMULATOR", "PORT", "MODE", "MODELS", "GLM_4_6", "LLAMA3_1_8B", "QUALITY", "LATENCY_S",
     "INSTANCES", "ZAI", "TIMEOUT_S", "LIMITS", "POOLS", "VITAL", "ROUTING", "HOOK",
     "WEIGHTS", "COST", "LIVENESS", "INTERVAL_S", "RETRY", "BACKOFF_MAX_S"]
) | st.text(alphabet="ABCXYZ_az019.-:", min_size=1, max_size=12)  # fmt: skip
OVERRIDE_VALUES = (
    st.text(max_size=40)
    | st.sampled_from(["0", "1e-6", "1e300", "-1", "true", "on", "[a, b]", "{a: 1}", ":", "a: b",
                       "sqlite:///:memory:", "!!python/object:os.system", "*alias", "&a [*a]"])
    | st.floats(allow_nan=True, allow_infinity=True).map(repr)
)  # fmt: skip


@FUZZ
@given(
    st.dictionaries(
        st.lists(OVERRIDE_PARTS, min_size=1, max_size=4).map(lambda p: "LANES_" + "__".join(p)),
        OVERRIDE_VALUES,
        max_size=4,
    )
)
def test_fuzz_lanes_overrides_give_a_config_or_a_config_error(env: dict[str, str]) -> None:
    try:
        assert isinstance(load_config(EXAMPLE, env=env), Config)
    except ConfigError as exc:
        assert str(exc).startswith("environment variable LANES_") or str(EXAMPLE) in str(exc)
