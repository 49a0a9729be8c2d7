"""``LANES_*`` overrides: text stays text; model ids with ``.``, ``-``, ``:`` are reachable."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from lanes.kernel.config import SimMode, load_config
from lanes.kernel.errors import ConfigError

from ..conftest import EXAMPLE

EXAMPLE_DATA: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())


@pytest.mark.parametrize(
    ("variable", "value", "read"),
    [
        ("LANES_DATABASE_URL", "sqlite:///:memory:", lambda c: c.database_url),
        ("LANES_REDIS_URL", "redis://h:6379/0?key=a: b", lambda c: c.redis_url),
        ("LANES_REDIS_PREFIX", "2024", lambda c: c.redis_prefix),
        ("LANES_STATE_DIR", "on", lambda c: c.state_dir),
        ("LANES_ROUTING__HOOK", "hooks.mine:choose", lambda c: c.routing.hook),
    ],
)
def test_config_overrides_keep_text_keys_as_written(variable: str, value: str, read: Any) -> None:
    assert read(load_config(EXAMPLE, env={variable: value})) == value


def test_config_overrides_still_parse_values_of_other_types() -> None:
    env = {"LANES_WORKER__CONCURRENCY": "64", "LANES_PRODUCTION": "true",
           "LANES_SIMULATOR__MODE": "never", "LANES_POOLS__VITAL": "[claude2]",
           "LANES_DATABASE_URL": ""}  # fmt: skip
    config = load_config(EXAMPLE, env=env)
    assert config.worker.concurrency == 64 and config.production is True
    assert config.simulator.mode is SimMode.NEVER and config.pools["vital"] == ["claude2"]
    assert config.database_url is None


def test_config_overrides_reach_model_ids_with_dots_dashes_and_colons() -> None:
    env = {"LANES_MODELS__LLAMA3_1_8B__QUALITY": "55",
           "LANES_MODELS__CLAUDE_SONNET_4_5__LATENCY_S": "3.5",
           "LANES_INSTANCES__CLAUDE1__LIMITS__CONCURRENCY": "7"}  # fmt: skip
    config = load_config(EXAMPLE, env=env)
    assert config.models["llama3.1:8b"].quality == 55
    assert config.models["claude-sonnet-4-5"].latency_s == 3.5
    assert config.instances["claude1"].limits.concurrency == 7
    assert set(config.models) == set(EXAMPLE_DATA["models"])  # no model was added


def test_config_overrides_bad_value_of_a_dotted_id_names_variable_and_key() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(EXAMPLE, env={"LANES_MODELS__LLAMA3_1_8B__QUALITY": "500"})
    text = str(info.value)
    assert text.startswith("environment variable LANES_MODELS__LLAMA3_1_8B__QUALITY: ")
    assert "models.llama3.1:8b.quality" in text


def test_config_overrides_refuse_a_name_matching_two_keys(tmp_path: Path) -> None:
    data = copy.deepcopy(EXAMPLE_DATA)
    data["models"]["glm.4.6"] = data["models"]["glm-4.6"]
    path = tmp_path / "lanes.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path, env={"LANES_MODELS__GLM_4_6__QUALITY": "50"})
    text = str(info.value)
    assert "LANES_MODELS__GLM_4_6__QUALITY" in text
    assert "'glm-4.6'" in text and "'glm.4.6'" in text and "fix:" in text
