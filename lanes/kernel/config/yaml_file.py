"""Reading a YAML config file safely: UTF-8 only, no duplicate keys, no alias bombs.

PyYAML's safe loader keeps the last of two equal keys (so a second ``zai:`` silently replaces
the first) and expands aliases by reference: a few hundred bytes of nested aliases stand for
billions of nodes, and a recursive alias for infinitely many. Here a duplicate key is an error
naming its line, and the loaded data may hold at most :data:`MAX_NODES` nodes, counted as a
walk of the data would meet them.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import yaml

from lanes.kernel.errors import ConfigError

MAX_NODES = 100_000
"""More than any real config; far less than an alias bomb expands to."""
MAX_BYTES = 16 * 1024 * 1024
"""Largest config file read: a real one is a few kilobytes."""


class _UniqueKeyLoader(yaml.SafeLoader):
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            if not isinstance(key, str | int | float | bool | None):
                continue  # an unhashable key: the base loader refuses it below
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first on line {seen[key]})",
                    key_node.start_mark,
                )  # fmt: skip
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def read_yaml(file: Path) -> dict[str, Any]:
    """The top-level mapping of ``file``; ConfigError naming the file (and line) otherwise."""
    try:
        text = _read_regular(file).decode("utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", source=str(file)) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"not UTF-8 text (byte {exc.start})", source=str(file), fix="save the file as UTF-8"
        ) from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError(
            f"not valid YAML: {getattr(exc, 'problem', exc)}",
            source=str(file),
            key=f"line {mark.line + 1}" if mark is not None else "",
            fix="fix the YAML (indentation, quotes, colons; each key once per mapping)",
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(
            "the top level must be a mapping", source=str(file), fix="start with e.g. 'models:'"
        )
    check_size(data, str(file))
    return data


def _read_regular(file: Path) -> bytes:
    """The bytes of ``file``, opened without blocking (a FIFO put in the file's place after it
    was found would otherwise hang the read) and refused unless it is a regular file of at most
    :data:`MAX_BYTES`."""
    fd = os.open(file, os.O_RDONLY | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError("not a regular file", source=str(file), fix="give a YAML file")
        data = handle.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise ConfigError(
            f"larger than {MAX_BYTES // 1024 // 1024} MiB", source=str(file),
            fix="a config is a few kilobytes: check that this is the right file",
        )  # fmt: skip
    return data


def check_size(data: Any, source: str) -> None:
    """Walk ``data`` as interpolation will; refuse a cycle or more than MAX_NODES nodes."""
    count = 0
    stack: list[tuple[Any, frozenset[int]]] = [(data, frozenset())]
    while stack:
        node, path = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise ConfigError(
                f"the file expands to more than {MAX_NODES} values",
                source=source,
                fix="YAML aliases (*name) may expand exponentially: write the values out",
            )
        if isinstance(node, dict | list):
            if id(node) in path:
                raise ConfigError(
                    "a YAML alias refers to itself", source=source, fix="remove the recursive alias"
                )
            inner = path | {id(node)}
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, inner) for child in children)
