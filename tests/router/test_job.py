from __future__ import annotations

import pytest

from lanes.dispatch.dispatcher import parse_job
from lanes.kernel.errors import JobError
from lanes.router.job import Job


def test_job_needs_prompt_or_messages() -> None:
    with pytest.raises(JobError, match="exactly one of 'prompt' or 'messages'"):
        parse_job({"max_tokens": 10})


def test_job_rejects_both_prompt_and_messages() -> None:
    with pytest.raises(JobError, match="exactly one"):
        parse_job({"prompt": "a", "messages": [{"role": "user", "content": "b"}]})


def test_job_error_names_the_field() -> None:
    with pytest.raises(JobError, match="max_tokens") as info:
        parse_job({"prompt": "hi", "max_tokens": 0})
    assert "greater than or equal to 1" in str(info.value)


@pytest.mark.parametrize("value", [float("inf"), float("nan"), "Infinity"])
def test_job_refuses_non_finite_constraints(value: object) -> None:
    with pytest.raises(JobError, match=r"constraints\.max_cost_usd"):
        parse_job({"prompt": "x", "constraints": {"max_cost_usd": value}})


def test_job_unknown_field_is_refused() -> None:
    with pytest.raises(JobError, match="promt"):
        parse_job({"promt": "typo"})


def test_job_unknown_task_type_is_refused() -> None:
    with pytest.raises(JobError, match="task_type"):
        parse_job({"prompt": "x", "task_type": "poetry-slam"})


def test_job_messages_must_end_with_user() -> None:
    with pytest.raises(JobError, match="last message"):
        parse_job(
            {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
        )


def test_job_text_includes_system_and_messages() -> None:
    job = Job(system="be brief", messages=[{"role": "user", "content": "why?"}])  # type: ignore[list-item]
    assert job.text() == "be brief\nwhy?"
    assert job.as_messages() == [{"role": "user", "content": "why?"}]


def test_job_gets_a_unique_id() -> None:
    assert Job(prompt="a").id != Job(prompt="a").id


def test_job_payload_bytes_counts_utf8_of_every_text_it_carries() -> None:
    job = Job(system="sé", messages=[{"role": "user", "content": "hi"}], metadata={"k": "vv"})  # type: ignore[list-item]
    assert job.payload_bytes() == len("sé".encode()) + 2 + 3


def test_job_max_tokens_must_be_a_whole_number_not_a_boolean() -> None:
    with pytest.raises(JobError, match="max_tokens"):
        parse_job({"prompt": "x", "max_tokens": True})


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"prompt": "x", "system": "\udfff"}, "system"),
        ({"prompt": "x", "id": "a\udfff"}, "id"),
        ({"prompt": "ok \ud800 then"}, "prompt"),
        ({"messages": [{"role": "user", "content": "q\udfff"}]}, "messages.0.content"),
        ({"prompt": "x", "metadata": {"k": "\udfff"}}, "metadata"),
        ({"prompt": "x", "metadata": {"\udfff": "v"}}, "metadata"),
        ({"prompt": "x", "project": "p\udc80"}, "project"),
        ({"prompt": "x", "idempotency_key": "\udfff"}, "idempotency_key"),
    ],
)
def test_job_refuses_text_that_cannot_be_encoded_as_utf8(
    fields: dict[str, object], field: str
) -> None:
    with pytest.raises(JobError) as info:
        parse_job(fields)
    message = str(info.value)
    assert message.startswith(f"invalid job: {field}: ") and "UTF-8" in message
    message.encode()  # the message itself can be printed anywhere


def test_job_keeps_text_that_is_utf8_whatever_the_script() -> None:
    job = parse_job({"prompt": "naïve 日本 \U0001f600", "system": "é", "metadata": {"ключ": "值"}})
    texts = ["naïve 日本 \U0001f600", "é", "ключ", "值"]
    assert job.payload_bytes() == sum(len(text.encode()) for text in texts)
