"""The schema value generator: whatever schema (of the supported kinds) and seed, the
value validates."""

from __future__ import annotations

from typing import Any

import jsonschema
from hypothesis import given, settings
from hypothesis import strategies as st

from lanes.sim.schema_values import example

_NAMES = st.text(alphabet="abcdefgh_", min_size=1, max_size=6)


@st.composite
def _integers(draw: st.DrawFn) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "integer"}
    low = draw(st.none() | st.integers(-50, 50))
    if low is not None:
        schema[draw(st.sampled_from(["minimum", "exclusiveMinimum"]))] = low
    high = draw(st.none() | st.integers(0, 60))
    if high is not None and (low is None or high >= low + 2):
        schema[draw(st.sampled_from(["maximum", "exclusiveMaximum"]))] = high
    return schema


@st.composite
def _numbers(draw: st.DrawFn) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "number"}
    low = draw(st.none() | st.floats(-10, 10))
    if low is not None:
        schema[draw(st.sampled_from(["minimum", "exclusiveMinimum"]))] = low
    high = draw(st.none() | st.floats(-10, 30))
    if high is not None and (low is None or high > low + 0.01):
        schema[draw(st.sampled_from(["maximum", "exclusiveMaximum"]))] = high
    return schema


@st.composite
def _strings(draw: st.DrawFn) -> dict[str, Any]:
    low = draw(st.integers(0, 30))
    high = draw(st.integers(low, low + 30))
    return {"type": "string", "minLength": low, "maxLength": high, "format": "date"}


_SCALARS = st.one_of(
    _integers(),
    _numbers(),
    _strings(),
    st.just({"type": "boolean"}),
    st.just({"type": "null"}),
    st.lists(st.integers() | st.text(max_size=5), min_size=1, max_size=4).map(
        lambda v: {"enum": v}
    ),
    (st.integers() | st.text(max_size=5)).map(lambda v: {"const": v}),
)


def _containers(inner: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    objects = st.builds(
        lambda props, data: {
            "type": "object",
            "properties": props,
            "required": data.draw(st.lists(st.sampled_from(sorted(props)), unique=True))
            if props
            else [],
            "additionalProperties": False,
        },
        st.dictionaries(_NAMES, inner, max_size=4),
        st.data(),
    )
    arrays = st.builds(
        lambda items, low: {"type": "array", "items": items, "minItems": low},
        inner,
        st.integers(0, 3),
    )
    either = st.builds(lambda a, b: {"anyOf": [a, b]}, inner, inner)
    nullable = _strings().map(lambda s: {**s, "type": ["string", "null"]})
    return objects | arrays | either | nullable


SCHEMAS = st.recursive(_SCALARS, _containers, max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(SCHEMAS, st.binary(max_size=8))
def test_generated_values_validate(schema: dict[str, Any], seed: bytes) -> None:
    jsonschema.validate(example(schema, seed), schema)


def test_same_seed_same_value() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}}
    assert example(schema, b"x") == example(schema, b"x")


def test_refs_all_of_and_one_of() -> None:
    schema: dict[str, Any] = {
        "$defs": {
            "Node": {
                "type": "object",
                "properties": {
                    "label": {"type": "string"},
                    "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}},
                },
                "required": ["label", "children"],
            }
        },
        "allOf": [
            {
                "type": "object",
                "properties": {"root": {"$ref": "#/$defs/Node"}},
                "required": ["root"],
            },
            {
                "properties": {
                    "kind": {"oneOf": [{"type": "string", "enum": ["x"]}, {"type": "object"}]}
                }
            },
        ],
    }
    value = example(schema, b"seed")
    jsonschema.validate(value, schema)
    assert value["kind"] == "x"


def test_minimum_items_and_properties() -> None:
    schema = {
        "type": "object",
        "minProperties": 3,
        "additionalProperties": {"type": "integer", "multipleOf": 5, "minimum": 7},
        "properties": {
            "xs": {
                "type": "array",
                "items": {"type": "boolean"},
                "minItems": 4,
                "uniqueItems": False,
            }
        },
    }
    value = example(schema, b"")
    jsonschema.validate(value, schema)
    assert len(value["xs"]) == 4
