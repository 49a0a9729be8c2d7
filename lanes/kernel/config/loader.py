"""Load a config: find the file, read YAML, interpolate ``${ENV}``, apply ``LANES_*``, validate.

Sources, in order of precedence (highest first):

1. ``LANES_*`` environment variables: ``LANES_REDIS_URL``, ``LANES_SIMULATOR__PORT``
   (:mod:`lanes.kernel.config.overrides` says how names and values are read);
2. the YAML file, after ``${VAR}`` / ``${VAR:-default}`` interpolation;
3. the defaults of :class:`lanes.kernel.config.models.Config`.

The file is the first of: the explicit path, ``$LANES_CONFIG``, ``./lanes.yaml``,
``~/.config/lanes/lanes.yaml``, and the example shipped with the package (``lanes/data/lanes.yaml``,
found through the package: ``lanes config --example`` prints it); the loaded
config's :attr:`~lanes.kernel.config.models.Config.source` says which, and how it was chosen.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from lanes.data import package_file
from lanes.kernel.config.models import Config
from lanes.kernel.config.overrides import apply_overrides
from lanes.kernel.config.source import ConfigSource, Origin, refuse_redis_override
from lanes.kernel.config.yaml_file import read_yaml
from lanes.kernel.errors import ConfigError

EXAMPLE_CONFIG = package_file("lanes.yaml")
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def find_config(path: str | os.PathLike[str] | None = None) -> Path:
    """The config file to use; raise ConfigError if an explicit one is missing."""
    return locate_config(path).path


def locate_config(path: str | os.PathLike[str] | None = None) -> ConfigSource:
    """The config file to use and how it was chosen; ConfigError if a named one is missing,
    a directory or not a regular file (a FIFO is never opened: reading it would block)."""
    if path is not None:
        return ConfigSource(_regular_file(Path(path), "--config"), Origin.FLAG)
    env = os.environ.get("LANES_CONFIG")
    if env:
        return ConfigSource(_regular_file(Path(env), "LANES_CONFIG"), Origin.ENV)
    searched = (
        (Path("lanes.yaml"), Origin.CURRENT_DIRECTORY),
        (Path.home() / ".config" / "lanes" / "lanes.yaml", Origin.USER),
    )
    for candidate, origin in searched:
        if candidate.is_file():
            return ConfigSource(candidate, origin)
    return ConfigSource(_regular_file(EXAMPLE_CONFIG, "the shipped example"), Origin.EXAMPLE)


_KINDS = {
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
}


def _regular_file(path: Path, origin: str) -> Path:
    """``path`` if it is a regular file (after symlinks); ConfigError saying what it is else."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise ConfigError(
            "config file not found",
            source=str(path),
            fix=f"check the path given by {origin}, or write the shipped example there"
            " (lanes config --example > lanes.yaml)",
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"cannot read: {exc.strerror}",
            source=str(path),
            fix=f"check the path given by {origin}",
        ) from None
    if stat.S_ISDIR(mode):
        raise ConfigError(
            "is a directory, not a config file",
            source=str(path),
            fix=f"give {origin} the YAML file itself, e.g. {path / 'lanes.yaml'}",
        )
    if not stat.S_ISREG(mode):
        kind = _KINDS.get(stat.S_IFMT(mode), "not a regular file")
        raise ConfigError(
            f"is {kind}, not a regular file",
            source=str(path),
            fix=f"give {origin} a YAML file on disk; lanes never reads a config from a pipe",
        )
    return path


def load_config(
    path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> Config:
    """Load and validate the config. Every failure is a :class:`ConfigError`.

    ``env`` supplies ``${VAR}`` values and ``LANES_*`` overrides (default: ``os.environ``).
    The config's :attr:`~lanes.kernel.config.models.Config.source` records where it came from.
    """
    env = os.environ if env is None else env
    source = locate_config(path)
    raw = read_yaml(source.path)
    data = _interpolate(raw, env, str(source.path))
    data, overrides = apply_overrides(data, env)
    source = replace(source, overrides=overrides)
    config = validate(data, str(source.path), overrides=overrides)
    refuse_redis_override(source, config.redis_url, env.get("REDIS_URL") or None)
    config._source = source
    return config


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
            fix=f"fix or unset {variable}" + (f"; {error.fix}" if error.fix else ""),
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
    # "[key]" marks an error in a mapping's key (a lane name), not a key of its own.
    key = ".".join(str(p) for p in err["loc"] if p != "[key]")
    message = str(err["msg"]).removeprefix("Value error, ")
    if not key and ": " in message:  # a cross-reference check names its key in the message
        key, message = message.split(": ", 1)
    context = err.get("ctx") or {}
    fix = str(
        context.get("fix") or _FIXES.get(err["type"], "see the example: lanes config --example")
    )
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
    "int_from_float": "use a whole number",
    "int_parsing_size": "use a smaller whole number",
    "finite_number": "use a finite number",
    "float_parsing": "use a number",
    "enum": "use one of the allowed values",
    "literal_error": "use one of the allowed values",
    "too_short": "add at least one entry",
    "dict_type": "use a mapping (key: value)",
    "list_type": "use a list",
}
