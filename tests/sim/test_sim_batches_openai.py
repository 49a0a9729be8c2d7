"""OpenAI's files and batches through the official openai SDK, unchanged."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from lanes.sim import BATCH_BILLED, Profile, Simulator, expected_reply

LLAMA = "llama3.1:8b"
HELLO: list[Any] = [{"role": "user", "content": "Summarise the plot of Hamlet in one line."}]
ENDED = {"completed", "failed", "expired", "cancelled"}


@pytest.fixture
def sim() -> Iterator[Simulator]:
    profiles = {
        "local": Profile(models=[LLAMA], batch_delay_s=0.1),
        "slow": Profile(models=[LLAMA], batch_delay_s=30),
    }
    with Simulator(profiles=profiles, seed=0) as simulator:
        yield simulator


def _client(sim: Simulator, instance: str) -> Any:
    return openai.OpenAI(api_key="k", base_url=sim.base_url(instance) + "/v1", max_retries=0)


def _input(*lines: tuple[str, str, list[Any]]) -> bytes:
    rows = [
        {
            "custom_id": custom_id,
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": model, "messages": messages, "max_tokens": 200},
        }
        for custom_id, model, messages in lines
    ]
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


def _submit(client: Any, data: bytes) -> Any:
    uploaded = client.files.create(file=("input.jsonl", data), purpose="batch")
    assert uploaded.purpose == "batch" and uploaded.bytes == len(data)
    return client.batches.create(
        input_file_id=uploaded.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata={"lane": "test"},
    )


def _ended(client: Any, batch_id: str) -> Any:
    deadline = time.monotonic() + 5
    batch = client.batches.retrieve(batch_id)
    while batch.status not in ENDED and time.monotonic() < deadline:
        time.sleep(0.02)
        batch = client.batches.retrieve(batch_id)
    assert batch.status in ENDED
    return batch


def _lines(client: Any, file_id: str) -> dict[str, Any]:
    text = client.files.content(file_id).text
    return {line["custom_id"]: line for line in map(json.loads, text.splitlines())}


def test_openai_sdk_batch_round_trip(sim: Simulator) -> None:
    client = _client(sim, "local")
    other: list[Any] = [{"role": "system", "content": "Be brief."}, *HELLO]
    created = _submit(client, _input(("a", LLAMA, HELLO), ("b", LLAMA, other)))
    assert created.status == "validating" and created.metadata == {"lane": "test"}

    batch = _ended(client, created.id)
    assert batch.status == "completed"
    assert batch.request_counts is not None and batch.request_counts.completed == 2
    assert batch.output_file_id is not None and batch.error_file_id is None
    lines = _lines(client, batch.output_file_id)
    bodies = {cid: line["response"]["body"] for cid, line in lines.items()}
    texts = {cid: body["choices"][0]["message"]["content"] for cid, body in bodies.items()}
    assert texts == {
        "a": expected_reply(LLAMA, HELLO, None, 200),
        "b": expected_reply(LLAMA, other, None, 200),
    }
    assert [b.id for b in client.batches.list()] == [batch.id]
    assert client.files.retrieve(batch.output_file_id).purpose == "batch_output"
    assert sim.stats()["local"][f"{BATCH_BILLED}{LLAMA}:output_tokens"] > 0


def test_openai_sdk_batch_failures_land_in_the_error_file(sim: Simulator) -> None:
    client = _client(sim, "local")
    batch = _ended(client, _submit(client, _input(("ok", LLAMA, HELLO), ("bad", LLAMA, []))).id)
    assert batch.request_counts is not None and batch.request_counts.failed == 1
    assert batch.error_file_id is not None
    bad = _lines(client, batch.error_file_id)["bad"]
    assert bad["response"]["status_code"] == 400 and bad["error"] is None


def test_openai_sdk_batch_cancel(sim: Simulator) -> None:
    client = _client(sim, "slow")
    created = _submit(client, _input(("a", LLAMA, HELLO)))
    assert client.batches.cancel(created.id).status == "cancelling"
    batch = _ended(client, created.id)
    assert batch.status == "cancelled" and batch.error_file_id is not None
    assert _lines(client, batch.error_file_id)["a"]["error"]["code"] == "batch_cancelled"


def test_openai_sdk_batch_that_does_not_validate_fails(sim: Simulator) -> None:
    client = _client(sim, "local")
    batch = _ended(client, _submit(client, _input(("a", LLAMA, HELLO), ("a", LLAMA, HELLO))).id)
    assert batch.status == "failed"
    assert batch.errors is not None and batch.errors.data is not None
    assert batch.errors.data[0].code == "duplicate_custom_id" and batch.errors.data[0].line == 2
    with pytest.raises(openai.NotFoundError):
        client.batches.retrieve("batch_nope")
