"""``LANES_*`` environment variables that override config keys.

``LANES_A__B=value`` sets key ``a.b``: ``__`` separates levels, and each part is matched
case-insensitively against the keys already in the file at that level, where every character
of a key that is not a letter or digit (``.``, ``-``, ``:``...) counts as ``_``. So
``LANES_MODELS__QWEN2_5_CODER_14B__QUALITY=80`` sets ``models."qwen2.5-coder:14b".quality``.
A part that matches no key is taken as written, in lowercase; one that matches two keys is
refused. The value is kept as written for a key that only takes text (URLs, paths, names,
enums), and parsed as a YAML scalar otherwise (``9000``, ``true``, ``[a, b]``); empty means
unset.
"""

from __future__ import annotations

import re
import types
from collections.abc import Mapping
from typing import Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel

from lanes.kernel.config.models import Config
from lanes.kernel.errors import ConfigError

PREFIX = "LANES_"
NOT_OVERRIDES = frozenset({"LANES_CONFIG", "LANES_EVAL_DEV"})
"""``LANES_*`` variables that are not config overrides."""

_NOT_WORD = re.compile(r"[^a-z0-9]")


def apply_overrides(
    data: dict[str, Any], env: Mapping[str, str]
) -> tuple[dict[str, Any], dict[str, str]]:
    """``data`` with every ``LANES_*`` override set, and config key (``a.b``) → variable."""
    out = dict(data)
    applied: dict[str, str] = {}
    for variable in sorted(env):
        parts = _parts(variable)
        if not parts:
            continue
        path = _resolve(out, parts, variable)
        _set(out, path, _value(env[variable], path))
        applied[".".join(path)] = variable
    return out, applied


def _parts(variable: str) -> list[str]:
    if not variable.startswith(PREFIX) or variable in NOT_OVERRIDES:
        return []
    return [p for p in variable[len(PREFIX) :].split("__") if p]


def _resolve(data: dict[str, Any], parts: list[str], variable: str) -> list[str]:
    """The key path ``parts`` address in ``data`` (see the module docstring)."""
    path: list[str] = []
    node: Any = data
    for part in parts:
        key = _match(node, part, variable, path)
        path.append(key)
        node = node.get(key) if isinstance(node, dict) else None
    return path


def _match(node: Any, part: str, variable: str, path: list[str]) -> str:
    if not isinstance(node, dict):
        return part.lower()
    if part in node:
        return part
    wanted = _NOT_WORD.sub("_", part.lower())
    found = [k for k in node if isinstance(k, str) and _NOT_WORD.sub("_", k.lower()) == wanted]
    if len(found) > 1:
        where = ".".join(path) or "the top level"
        raise ConfigError(
            f"{part} matches {', '.join(repr(k) for k in found)} under {where}",
            source=f"environment variable {variable}",
            fix="rename one of those keys so that they differ in more than punctuation",
        )
    return found[0] if found else part.lower()


def _set(data: dict[str, Any], path: list[str], value: Any) -> None:
    node = data
    for part in path[:-1]:
        child = node.get(part)
        child = dict(child) if isinstance(child, dict) else {}
        node[part] = child
        node = child
    node[path[-1]] = value


def _value(raw: str, path: list[str]) -> Any:
    if raw == "":
        return None
    if _text_only(_annotation(path)):
        return raw
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw


def _annotation(path: list[str]) -> Any:
    """The declared type of the key at ``path`` in :class:`Config`, or None if unknown."""
    current: Any = Config
    for part in path:
        current = _without_none(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(part)
            if field is None:
                return None
            current = field.annotation
        elif get_origin(current) is dict:
            current = get_args(current)[1]
        else:
            return None
    return current


def _without_none(annotation: Any) -> Any:
    """``X`` for ``X | None``; any other annotation as it is."""
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _text_only(annotation: Any) -> bool:
    """True for ``str``, ``str | None``, a string enum or a Literal of strings."""
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        return bool(args) and all(_text_only(a) for a in args)
    if get_origin(annotation) is Literal:
        return all(isinstance(a, str) for a in get_args(annotation))
    return isinstance(annotation, type) and issubclass(annotation, str)
