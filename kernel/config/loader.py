"""Load a config: find the file, read YAML, interpolate ``${ENV}``, apply ``LANES_*``, validate.

Sources, in order of precedence (highest first):

1. ``LANES_*`` environment variables: ``LANES_REDIS_URL``, ``LANES_SIMULATOR__PORT``
   (``__`` separates nesting levels, values are parsed as YAML scalars);
2. the YAML file, after ``${VAR}`` / ``${VAR:-default}`` interpolation;
3. the defaults of :class:`kernel.config.models.Config`.

The file is the first of: the explicit path, ``$LANES_CONFIG``, ``./lanes.yaml``,
``~/.config/lanes/lanes.yaml``, and the example shipped in ``ops/lanes.yaml``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from kernel.config.models import Config
from kernel.config.yaml_file import read_yaml
from kernel.errors import ConfigError

EXAMPLE_CONFIG = Path(__file__).resolve().parents[2] / "ops" / "lanes.yaml"
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_OVERRIDE_PREFIX = "LANES_"
_NOT_OVERRIDES = frozenset({"LANES_CONFIG", "LANES_EVAL_DEV"})
"""``LANES_*`` variables that are not config overrides."""


def find_config(path: str | os.PathLike[str] | None = None) -> Path:
    """The config file to use; raise ConfigError if an explicit one is missing."""
    if path is not None:
        return _must_exist(Path(path), "--config")
    env = os.environ.get("LANES_CONFIG")
    if env:
        return _must_exist(Path(env), "LANES_CONFIG")
    for candidate in (Path("lanes.yaml"), Path.home() / ".config" / "lanes" / "lanes.yaml"):
        if candidate.is_file():
            return candidate
    return _must_exist(EXAMPLE_CONFIG, "the shipped example")


def _must_exist(path: Path, origin: str) -> Path:
    if not path.is_file():
        raise ConfigError(
            "config file not found",
            source=str(path),
            fix=f"check the path given by {origin}, or copy ops/lanes.yaml there",
        )
    return path


def load_config(
    path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> Config:
    """Load and validate the config. Every failure is a :class:`ConfigError`."""
    env = os.environ if env is None else env
    file = find_config(path)
    raw = read_yaml(file)
    data = _interpolate(raw, env, str(file))
    data = apply_overrides(data, env)
    return validate(data, str(file), overrides=override_keys(env))


def _interpolate(value: Any, env: Mapping[str, str], source: str, key: str = "") -> Any:
    if isinstance(value, dict):
        return {
            k: _interpolate(v, env, source, f"{key}.{k}" if key else str(k))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_interpolate(v, env, source, f"{key}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise ConfigError(
            f"environment variable {name} is not set",
            source=source,
            key=key,
            fix=f"export {name}=..., or write ${{{name}:-default}} in the file",
        )

    result = _ENV_REF.sub(substitute, value)
    return None if result == "" else result


def override_keys(env: Mapping[str, str]) -> dict[str, str]:
    """Config key (``a.b``) → the ``LANES_A__B`` variable that overrides it."""
    keys = {}
    for name in env:
        if name.startswith(_OVERRIDE_PREFIX) and name not in _NOT_OVERRIDES:
            path = [p.lower() for p in name[len(_OVERRIDE_PREFIX) :].split("__") if p]
            if path:
                keys[".".join(path)] = name
    return keys


def apply_overrides(data: dict[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """Return ``data`` with every ``LANES_A__B=value`` set at ``a.b``."""
    out = dict(data)
    for key, name in override_keys(env).items():
        raw = env[name]
        path = key.split(".")
        node = out
        for part in path[:-1]:
            child = node.get(part)
            child = dict(child) if isinstance(child, dict) else {}
            node[part] = child
            node = child
        node[path[-1]] = _scalar(raw)
    return out


def _scalar(raw: str) -> Any:
    if raw == "":
        return None
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw


def validate(
    data: dict[str, Any], source: str, *, overrides: Mapping[str, str] | None = None
) -> Config:
    """``data`` as a Config; a ConfigError naming the file, or the ``LANES_*`` variable when
    the bad value came from one (``overrides``: key → variable)."""
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        error = _config_error(exc, source)
        variable = _override_for(error.key, overrides or {})
        if variable is None:
            raise error from None
        raise ConfigError(
            error.message, source=f"environment variable {variable}", key=error.key,
            fix=f"fix or unset {variable}",
        ) from None  # fmt: skip


def _override_for(key: str | None, overrides: Mapping[str, str]) -> str | None:
    """The variable that set ``key`` or one of its parents (or children), if any."""
    if not key:
        return None
    for set_key, variable in overrides.items():
        if key == set_key or key.startswith(f"{set_key}.") or set_key.startswith(f"{key}."):
            return variable
    return None


def _config_error(exc: ValidationError, source: str) -> ConfigError:
    err = exc.errors(include_url=False)[0]
    key = ".".join(str(p) for p in err["loc"])
    message = str(err["msg"]).removeprefix("Value error, ")
    if not key and ": " in message:  # a cross-reference check names its key in the message
        key, message = message.split(": ", 1)
    fix = _FIXES.get(err["type"], "see ops/lanes.yaml for a valid example")
    if err["type"] == "string_pattern_mismatch":
        fix = _PATTERN_FIXES.get(str(err["loc"][-1]), fix)
    if err["type"] == "extra_forbidden":
        message = f"unknown key {err['loc'][-1]!r}"
    more = exc.error_count() - 1
    if more:
        message += f" (and {more} more problem{'s' if more > 1 else ''})"
    return ConfigError(message, source=source, key=key or "(top level)", fix=fix)


_PATTERN_FIXES = {
    "api_key_env": "name an environment variable: letters, digits and '_', no leading digit",
    "redis_prefix": "use 1 to 40 letters, digits, '.', '_' or '-'",
    "hook": "write it as package.module:function",
}
"""Fixes for keys whose pattern differs from the one of names (NAME_PATTERN)."""

_FIXES = {
    "missing": "add this key",
    "extra_forbidden": "remove it or check its spelling",
    "string_pattern_mismatch": "start with a lowercase letter; then lowercase letters, digits,"
    " '-' or '_' (40 at most)",
    "greater_than_equal": "use a larger value",
    "greater_than": "use a larger value",
    "less_than_equal": "use a smaller value",
    "int_parsing": "use a whole number",
    "int_type": "use a whole number",
    "finite_number": "use a finite number",
    "float_parsing": "use a number",
    "enum": "use one of the allowed values",
    "literal_error": "use one of the allowed values",
    "too_short": "add at least one entry",
    "dict_type": "use a mapping (key: value)",
    "list_type": "use a list",
}
