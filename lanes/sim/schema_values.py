"""A value that validates against a JSON schema, chosen deterministically from a seed.

Tool calls (their ``input``/``arguments``) and structured outputs are made with
:func:`example`. It covers what tool and output schemas use in practice:

- ``const`` and ``enum`` (a seeded pick among the members);
- ``type``, one or a list (the first that is not ``"null"``; ``null`` only when alone);
  without a ``type`` the kind is read from the keywords present, else a string;
- objects: every property, required or optional (nested freely), plus extra keys up to
  ``minProperties`` when ``additionalProperties`` allows them;
- arrays: ``items`` or ``prefixItems``, ``minItems`` items (one when unconstrained,
  none when ``maxItems`` is 0), distinct when ``uniqueItems`` asks;
- strings: pseudo-words within ``minLength``/``maxLength``;
- integers and numbers within ``minimum``/``maximum`` and their exclusive forms (draft
  2020 numbers), integers a multiple of ``multipleOf``;
- ``anyOf``/``oneOf`` take their first branch, ``allOf`` is merged into one schema,
  local ``$ref`` (``#/$defs/...``, ``#/definitions/...``) is followed.

``format``, ``pattern`` and ``multipleOf`` on numbers are ignored, so a schema that relies
on them may get a value it rejects. Past a nesting depth of :data:`MAX_DEPTH` only required
properties and ``minItems`` items are made, which ends recursive schemas.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

MAX_DEPTH = 8
_SYLLABLES = ("ka", "lo", "mi", "ren", "to", "va", "shi", "dor", "el", "qua", "nim", "bas")
_DEFAULT_SPAN = 100
"""Width of the range drawn from when a numeric bound is missing."""
_LOWS = ("minimum", "exclusiveMinimum")
_HIGHS = ("maximum", "exclusiveMaximum")
_KEYWORD_TYPES = (
    ("properties", "object"),
    ("required", "object"),
    ("items", "array"),
    ("prefixItems", "array"),
    ("minLength", "string"),
    ("maxLength", "string"),
    ("minimum", "number"),
    ("maximum", "number"),
)


def _bytes(seed: bytes) -> Iterator[int]:
    counter = 0
    while True:
        yield from hashlib.sha256(seed + counter.to_bytes(4, "big")).digest()
        counter += 1


def example(schema: Any, seed: bytes) -> Any:
    """A value valid under ``schema`` (a JSON schema as a dict, or ``True``/``None`` for
    anything), the same for the same schema and seed."""
    return _Maker(schema, seed).value(schema, 0)


class _Maker:
    def __init__(self, root: Any, seed: bytes) -> None:
        self._root = root if isinstance(root, Mapping) else {}
        self._stream = _bytes(seed)

    def below(self, n: int) -> int:
        """A draw in ``0..n-1`` (``n`` >= 1)."""
        return int.from_bytes(bytes(next(self._stream) for _ in range(4)), "big") % n

    def value(self, schema: Any, depth: int) -> Any:
        spec = self._resolve(schema)
        if "const" in spec:
            return spec["const"]
        if spec.get("enum"):
            members = list(spec["enum"])
            return members[self.below(len(members))]
        kind = _kind(spec)
        if kind == "object":
            return self._object(spec, depth)
        if kind == "array":
            return self._array(spec, depth)
        if kind == "integer":
            return self._integer(spec)
        if kind == "number":
            return self._number(spec)
        if kind == "boolean":
            return self.below(2) == 1
        if kind == "null":
            return None
        return self._string(spec)

    def _resolve(self, schema: Any) -> dict[str, Any]:
        """``schema`` with ``$ref`` followed, the first ``anyOf``/``oneOf`` branch taken and
        ``allOf`` merged in; the keywords beside them are kept."""
        if not isinstance(schema, Mapping):
            return {}
        spec = dict(schema)
        ref = spec.pop("$ref", None)
        if isinstance(ref, str):
            spec = {**self._lookup(ref), **spec}
        for key in ("anyOf", "oneOf"):
            branches = spec.pop(key, None)
            if branches:
                spec = _merge(spec, self._resolve(branches[0]))
        for part in spec.pop("allOf", None) or ():
            spec = _merge(spec, self._resolve(part))
        return spec

    def _lookup(self, ref: str) -> dict[str, Any]:
        if not ref.startswith("#"):
            return {}
        node: Any = self._root
        for part in ref.lstrip("#").strip("/").split("/"):
            if not part:
                continue
            if not isinstance(node, Mapping) or part not in node:
                return {}
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return self._resolve(node)

    def _object(self, spec: Mapping[str, Any], depth: int) -> dict[str, Any]:
        properties: Mapping[str, Any] = spec.get("properties") or {}
        required = [name for name in spec.get("required") or () if isinstance(name, str)]
        names = list(properties) if depth < MAX_DEPTH else []
        names += [name for name in required if name not in names]
        made = {name: self.value(properties.get(name, True), depth + 1) for name in names}
        extra = spec.get("additionalProperties", True)
        wanted = int(spec.get("minProperties") or 0)
        index = 0
        while len(made) < wanted and extra is not False:
            key = f"key_{index}"
            if key not in made:
                made[key] = self.value(extra, depth + 1)
            index += 1
        return made

    def _array(self, spec: Mapping[str, Any], depth: int) -> list[Any]:
        prefix = list(spec.get("prefixItems") or ())
        items = spec.get("items", True)
        low = int(spec.get("minItems") or 0)
        high = spec.get("maxItems")
        count = max(low, len(prefix) if depth < MAX_DEPTH else 0, 1 if depth < MAX_DEPTH else 0)
        if isinstance(high, int):
            count = min(count, high)
        made: list[Any] = []
        attempts = 0
        while len(made) < count:
            schema = prefix[len(made)] if len(made) < len(prefix) else items
            candidate = self.value(schema, depth + 1)
            attempts += 1
            if spec.get("uniqueItems") and candidate in made and attempts < count * 8:
                continue
            made.append(candidate)
        return made

    def _string(self, spec: Mapping[str, Any]) -> str:
        low = int(spec.get("minLength") or 0)
        high = spec.get("maxLength")
        target = max(low, 4 + self.below(12))
        if isinstance(high, int):
            target = max(low, min(target, high))
        text = ""
        while len(text) < target:
            text += _SYLLABLES[self.below(len(_SYLLABLES))]
        return text[:target]

    def _integer(self, spec: Mapping[str, Any]) -> int:
        low, high = _bounds(spec)
        first = (
            None if low is None else math.floor(low.value) + 1 if low.open else math.ceil(low.value)
        )
        last = (
            None
            if high is None
            else math.ceil(high.value) - 1
            if high.open
            else math.floor(high.value)
        )
        start, stop = (int(end) for end in _span(first, last))
        step = spec.get("multipleOf")
        if isinstance(step, int) and not isinstance(step, bool) and step > 0:
            lowest, highest = -(-start // step), stop // step
            return step * (lowest + self.below(max(1, highest - lowest + 1)))
        return start + self.below(stop - start + 1)

    def _number(self, spec: Mapping[str, Any]) -> float:
        low, high = _bounds(spec)
        if low is not None and high is not None and low.value == high.value:
            return low.value
        start, stop = _span(
            None if low is None else low.value, None if high is None else high.value
        )
        # Strictly inside the range, so exclusive bounds hold too.
        share = (1 + self.below(7)) / 8
        value = round(start + (stop - start) * share, 3)
        return value if start < value < stop else start + (stop - start) * share


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``extra``'s keywords added; properties and required lists are joined."""
    merged = {**extra, **base}
    if "properties" in base or "properties" in extra:
        merged["properties"] = {**(extra.get("properties") or {}), **(base.get("properties") or {})}
    if "required" in base or "required" in extra:
        names = list(extra.get("required") or ()) + list(base.get("required") or ())
        merged["required"] = list(dict.fromkeys(names))
    return merged


def _kind(spec: Mapping[str, Any]) -> str:
    declared = spec.get("type")
    if isinstance(declared, str):
        return declared
    if isinstance(declared, list) and declared:
        others = [kind for kind in declared if kind != "null"]
        return str(others[0]) if others else "null"
    for keyword, kind in _KEYWORD_TYPES:
        if keyword in spec:
            return kind
    return "string"


@dataclass(frozen=True, slots=True)
class _Bound:
    value: float
    open: bool
    """Exclusive: the value itself is not allowed."""


def _bounds(spec: Mapping[str, Any]) -> tuple[_Bound | None, _Bound | None]:
    """The tighter of the plain and the exclusive keyword at each end."""
    lows = [_Bound(spec[k], k != "minimum") for k in _LOWS if _is_number(spec.get(k))]
    highs = [_Bound(spec[k], k != "maximum") for k in _HIGHS if _is_number(spec.get(k))]
    low = max(lows, key=lambda b: (b.value, b.open)) if lows else None
    high = min(highs, key=lambda b: (b.value, not b.open)) if highs else None
    return low, high


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _span(low: float | None, high: float | None) -> tuple[float, float]:
    """Both ends of a range, a missing one put :data:`_DEFAULT_SPAN` from the other."""
    if low is None and high is None:
        return 0, _DEFAULT_SPAN
    if low is None:
        assert high is not None
        return high - _DEFAULT_SPAN, high
    if high is None:
        return low, low + _DEFAULT_SPAN
    return low, high
