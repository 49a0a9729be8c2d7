"""The response cache's request key: what makes two jobs the same request, and what does not."""

from __future__ import annotations

from typing import Any

import pytest

from lanes.kernel.config.models import CacheSpec
from lanes.router.cache_key import normalize_text, request_key, store_key
from lanes.router.job import Job, Message

SPEC = CacheSpec()
BASE: dict[str, Any] = {
    "prompt": "Summarise this function:\n    def f(x):\n        return x",
    "system": "You are terse.",
    "temperature": 0.0,
    "max_tokens": 512,
    "project": "payments",
}


def key_of(spec: CacheSpec = SPEC, **changes: Any) -> str | None:
    return request_key(Job(**{**BASE, **changes}), spec=spec)


def test_request_key_same_request_same_key() -> None:
    first = key_of()
    assert first is not None
    assert len(first) == 64
    assert int(first, 16) >= 0  # hex
    assert key_of() == first


@pytest.mark.parametrize(
    "change",
    [
        {"model": "claude-opus-4-5"},
        {"instance": "zai"},
        {"id": "another-id"},
        {"metadata": {"ticket": "PAY-1"}},
        {"idempotency_key": "idem-1"},
        {"user": "ana"},
        {"task_type": "documentation"},
        {"strategy": "cost_optimized"},
        {"priority": "batch"},
        {"deadline_s": 60},
    ],
)
def test_request_key_ignores_what_the_provider_never_sees(change: dict[str, Any]) -> None:
    assert key_of(**change) == key_of()


@pytest.mark.parametrize(
    "change",
    [
        {"temperature": 0.7},
        {"temperature": None},
        {"max_tokens": 513},
        {"system": "You are verbose."},
        {"system": None},
        {"prompt": "Summarise this function:\n    def g(x):\n        return x"},
        {"project": "search"},
        {"project": None},
    ],
)
def test_request_key_changes_with_what_the_provider_sees(change: dict[str, Any]) -> None:
    assert key_of(**change) != key_of()


def test_request_key_no_temperature_is_not_temperature_zero() -> None:
    assert key_of(temperature=None) != key_of(temperature=0.0)


def test_request_key_no_system_and_empty_system_are_one_request() -> None:
    assert key_of(system=None) == key_of(system="") == key_of(system="  \n")


def test_request_key_a_prompt_is_one_user_message() -> None:
    as_messages: dict[str, Any] = {
        "prompt": None,
        "messages": [Message(role="user", content=BASE["prompt"])],
    }
    assert key_of(**as_messages) == key_of()


def test_request_key_conversation_order_and_roles_count() -> None:
    def convo(*pairs: tuple[str, str]) -> str | None:
        msgs = [Message(role=role, content=text) for role, text in pairs]
        return key_of(prompt=None, messages=msgs)

    base = convo(("user", "a"), ("assistant", "b"), ("user", "c"))
    assert convo(("user", "a"), ("assistant", "b"), ("user", "c")) == base
    assert convo(("user", "b"), ("assistant", "a"), ("user", "c")) != base
    assert convo(("user", "a"), ("user", "b"), ("user", "c")) != base


def test_request_key_normalises_line_endings_and_outer_whitespace() -> None:
    crlf = "  Summarise this function:\r\n    def f(x):\r\n        return x\n\n"
    assert key_of(prompt=crlf, system="You are terse.\r\n") == key_of()


def test_request_key_keeps_inner_whitespace() -> None:
    flattened = "Summarise this function:\n def f(x):\n return x"
    assert key_of(prompt=flattened) != key_of()
    assert normalize_text("a  b\n\tc") == "a  b\n\tc"


def test_request_key_shared_across_projects_ignores_the_project() -> None:
    shared = CacheSpec(share_across_projects=True)
    assert key_of(shared, project="search") == key_of(shared, project="payments")
    assert key_of(shared, project=None) == key_of(shared)
    assert key_of(shared) != key_of()


def test_request_key_none_when_the_cache_is_off() -> None:
    assert key_of(CacheSpec(enabled=False)) is None


def test_request_key_none_when_the_job_opts_out() -> None:
    assert key_of(cache=True) == key_of()
    assert key_of(cache=False) is None


def test_store_key_is_the_request_key_even_for_a_job_that_opts_out() -> None:
    opted_out = Job(**BASE, cache=False)
    assert store_key(opted_out, spec=SPEC) == key_of()
    assert store_key(Job(**BASE), spec=SPEC) == key_of()


def test_store_key_none_when_the_cache_is_off() -> None:
    assert store_key(Job(**BASE, cache=False), spec=CacheSpec(enabled=False)) is None
