from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from lanes.kernel.config import Limits, SimMode, load_config
from lanes.kernel.config.models import ALL_MODELS
from lanes.kernel.errors import ConfigError

from ..conftest import EXAMPLE


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "lanes.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _example_with(tmp_path: Path, mutate: object) -> Path:
    data = yaml.safe_load(EXAMPLE.read_text())
    mutate(data)  # type: ignore[operator]
    return _write(tmp_path, yaml.safe_dump(data))


def test_config_example_has_the_five_default_lanes(example_config: object) -> None:
    cfg = load_config(EXAMPLE, env={})
    assert cfg.lanes() == ["claude1", "claude2", "claude3", "zai", "koala"]
    assert cfg.members("vital") == ["claude2", "claude3"]
    assert cfg.instances["zai"].provider == "anthropic"
    assert cfg.instances["zai"].base_url.startswith("https://api.z.ai")
    assert cfg.instances["koala"].provider == "openai"
    assert "cheap" in cfg.instances["zai"].tags and "vital" in cfg.instances["claude2"].tags


def test_config_env_interpolation_and_default(tmp_path: Path) -> None:
    cfg = load_config(EXAMPLE, env={"REDIS_URL": "redis://example:6380/3"})
    assert cfg.redis_url == "redis://example:6380/3"
    assert load_config(EXAMPLE, env={}).redis_url is None


def test_config_lanes_overrides_nested_keys() -> None:
    env = {"LANES_SIMULATOR__PORT": "9999", "LANES_SIMULATOR__MODE": "always",
           "LANES_WORKER__CONCURRENCY": "64"}  # fmt: skip
    cfg = load_config(EXAMPLE, env=env)
    assert cfg.simulator.port == 9999
    assert cfg.simulator.mode is SimMode.ALWAYS
    assert cfg.worker.concurrency == 64


def test_config_api_key_is_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZAI_API_KEY", "zk-very-secret")
    cfg = load_config(EXAMPLE, env={})
    key = cfg.instances["zai"].api_key()
    assert key is not None and key.get_secret_value() == "zk-very-secret"
    assert "zk-very-secret" not in repr(cfg) and "zk-very-secret" not in str(key)


def test_config_unknown_key_names_file_key_and_fix(tmp_path: Path) -> None:
    path = _example_with(tmp_path, lambda d: d["instances"]["zai"].update(rpm=5))
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    text = str(info.value)
    assert str(path) in text and "instances.zai.rpm" in text and "fix:" in text


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (lambda d: d["routing"]["weights"].update(cost=float("inf")), "routing.weights.cost"),
        (lambda d: d["models"]["glm-4.6"].update(latency_s=float("inf")), "models.glm-4.6"),
        (lambda d: d["instances"]["zai"].update(price_multiplier=float("nan")), "instances.zai"),
    ],
)
def test_config_refuses_non_finite_numbers(tmp_path: Path, change: object, key: str) -> None:
    path = _example_with(tmp_path, change)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="finite number") as info:
        load_config(path, env={})
    assert key in str(info.value)


def test_config_unknown_model_reference_is_named(tmp_path: Path) -> None:
    path = _example_with(tmp_path, lambda d: d["instances"]["zai"]["models"].append("glm-9"))
    with pytest.raises(ConfigError, match=r"instances\.zai\.models: unknown model 'glm-9'"):
        load_config(path, env={})


def test_config_bad_value_type_names_key(tmp_path: Path) -> None:
    path = _example_with(
        tmp_path, lambda d: d["instances"]["claude1"]["limits"].update(requests_per_min="many")
    )
    with pytest.raises(ConfigError, match=r"instances\.claude1\.limits\.requests_per_min") as info:
        load_config(path, env={})
    assert "whole number" in str(info.value)


def test_config_missing_env_var_without_default(tmp_path: Path) -> None:
    path = _write(tmp_path, "redis_url: ${NOT_SET_ANYWHERE}\n")
    with pytest.raises(ConfigError, match="NOT_SET_ANYWHERE is not set") as info:
        load_config(path, env={})
    assert "redis_url" in str(info.value)


def test_config_invalid_yaml_gives_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "models:\n  a: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML") as info:
        load_config(path, env={})
    assert "line" in str(info.value)


def test_config_missing_file_says_where(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml", env={})


def test_config_pool_with_unknown_member(tmp_path: Path) -> None:
    path = _example_with(tmp_path, lambda d: d["pools"].update(vital=["claude2", "claude9"]))
    with pytest.raises(ConfigError, match=r"pools\.vital: unknown instance 'claude9'"):
        load_config(path, env={})


def test_config_bad_strategy_names_key(tmp_path: Path) -> None:
    path = _example_with(tmp_path, lambda d: d["routing"].update(strategy="fastest"))
    with pytest.raises(ConfigError, match=r"routing\.strategy.*unknown strategy 'fastest'"):
        load_config(path, env={})


def test_config_bad_regex_names_key(tmp_path: Path) -> None:
    path = _example_with(
        tmp_path, lambda d: d["routing"].update(custom_rules=[{"pattern": "(", "model": "glm-4.6"}])
    )
    with pytest.raises(ConfigError, match=r"routing\.custom_rules\.0\.pattern"):
        load_config(path, env={})


def test_config_regex_re2_cannot_take_is_refused_with_the_reason(tmp_path: Path) -> None:
    rule = {"pattern": r"(\w+) \1", "model": "glm-4.6"}
    path = _example_with(tmp_path, lambda d: d["routing"].update(custom_rules=[rule]))
    with pytest.raises(ConfigError, match=r"routing\.custom_rules\.0\.pattern") as info:
        load_config(path, env={})
    assert "RE2" in str(info.value) and "backreferences" in str(info.value)


def test_config_error_on_cli_exits_2_without_traceback(tmp_path: Path) -> None:
    path = _example_with(tmp_path, lambda d: d["instances"]["zai"].update(provider="grpc"))
    proc = subprocess.run(
        [sys.executable, "-m", "lanes", "--config", str(path), "config", "--json"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "instances.zai.provider" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_config_limits_for_gives_a_model_with_its_own_limits_its_own_class() -> None:
    spec = load_config(EXAMPLE, env={}).instances["claude1"]
    own = Limits(requests_per_min=7, input_tokens_per_min=7000, output_tokens_per_min=700)
    spec = spec.model_copy(update={"model_limits": {"claude-haiku-4-5": own}})
    assert spec.limits_for("claude-haiku-4-5") == ("claude-haiku-4-5", own)


def test_config_limits_for_gives_other_models_the_shared_instance_limits() -> None:
    spec = load_config(EXAMPLE, env={}).instances["claude1"]
    own = Limits(requests_per_min=7)
    spec = spec.model_copy(update={"model_limits": {"claude-haiku-4-5": own}})
    assert spec.limits_for("claude-sonnet-4-5") == (ALL_MODELS, spec.limits)
    assert spec.limits_for("claude-sonnet-4-5")[1].requests_per_min == 1000
    assert ALL_MODELS == "all"


def test_config_model_limits_load_from_yaml(tmp_path: Path) -> None:
    own = {"requests_per_min": 50, "input_tokens_per_min": 20000}
    path = _example_with(
        tmp_path, lambda d: d["instances"]["zai"].update(model_limits={"glm-4.6": own})
    )
    spec = load_config(path, env={}).instances["zai"]
    expected = Limits(requests_per_min=50, input_tokens_per_min=20000)
    assert spec.limits_for("glm-4.6") == ("glm-4.6", expected)
    assert spec.limits_for("glm-4.5-air") == (ALL_MODELS, spec.limits)


@pytest.mark.parametrize(
    ("change", "key", "words"),
    [
        (
            lambda d: d["pools"].update(vital=["claude2", "claude2"]),
            "pools.vital",
            "more than once",
        ),
        (lambda d: d["fallback_chains"].update(empty=[]), "fallback_chains.empty", "at least one"),
        (
            lambda d: d["fallback_chains"].update(
                odd=[{"instance": "zai", "model": "llama3.1:8b"}]
            ),
            "fallback_chains.odd[0].model",
            "zai does not offer",
        ),
        (lambda d: d["instances"]["zai"].update(timeout_s=1e12), "instances.zai.timeout_s", ""),
        (
            lambda d: d["instances"]["zai"]["limits"].update(requests_per_min=True),
            "instances.zai.limits.requests_per_min",
            "whole number",
        ),
        (lambda d: d["simulator"].update(host="0.0.0.0"), "simulator.host", "loopback"),
    ],
)
def test_config_refuses_mistakes_it_used_to_accept(
    tmp_path: Path, change: object, key: str, words: str
) -> None:
    path = _example_with(tmp_path, change)
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    text = str(info.value)
    assert f": {key}: " in text and words in text and "(top level)" not in text


def test_config_bad_override_names_the_variable_not_the_file() -> None:
    env = {"LANES_SIMULATOR__PORT": "not-a-port"}
    with pytest.raises(ConfigError) as info:
        load_config(EXAMPLE, env=env)
    text = str(info.value)
    assert text.startswith("environment variable LANES_SIMULATOR__PORT: simulator.port:")
    assert str(EXAMPLE) not in text and "fix or unset LANES_SIMULATOR__PORT" in text


def test_config_project_variables_are_not_overrides() -> None:
    env = {"LANES_EVAL_DEV": "/some/file.jsonl", "LANES_CONFIG": str(EXAMPLE)}
    assert load_config(EXAMPLE, env=env).lanes() == load_config(EXAMPLE, env={}).lanes()


@pytest.mark.parametrize(
    ("key", "value", "fix"),
    [
        (
            "api_key_env",
            "1BAD-NAME",
            "name an environment variable: letters, digits and '_', no leading digit",
        ),
        ("redis_prefix", "has space", "use 1 to 40 letters, digits, '.', '_' or '-'"),
    ],
)
def test_config_pattern_fix_describes_the_keys_own_pattern(
    tmp_path: Path, key: str, value: str, fix: str
) -> None:
    def change(d: dict[str, Any]) -> None:
        if key == "api_key_env":
            d["instances"]["zai"][key] = value
        else:
            d[key] = value

    with pytest.raises(ConfigError, match=f"fix: {re.escape(fix)}"):
        load_config(_example_with(tmp_path, change), env={})
