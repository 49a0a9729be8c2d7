"""The batch APIs: Message Batches through the official anthropic SDK, and OpenAI's
files and batches over raw HTTP (the openai SDK is exercised in test_sim_batches_openai)."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import anthropic
import httpx
import pytest
from anthropic.types.messages import MessageBatch

from lanes.sim import BATCH_BILLED, BILLED, Fault, Profile, Simulator, expected_reply

HAIKU = "claude-haiku-4-5"
SONNET = "claude-sonnet-4-6"
SMALL = "claude-small"  # 1000-token context window
LLAMA = "llama3.1:8b"
QWEN = "qwen2.5-coder:7b"
CLAUDE_MODELS = [SONNET, HAIKU, SMALL]

HELLO: list[Any] = [{"role": "user", "content": "Summarise the plot of Hamlet in one line."}]
OTHER: list[Any] = [{"role": "user", "content": "Name three primes."}]
HEADERS = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
BEARER = {"authorization": "Bearer k"}


def _claude(**knobs: Any) -> Profile:
    return Profile(models=CLAUDE_MODELS, context_windows={SMALL: 1000}, **knobs)


@pytest.fixture
def sim() -> Iterator[Simulator]:
    profiles = {
        "claude1": _claude(batch_delay_s=0.1, requests_per_min=1),
        "slow": _claude(batch_delay_s=30),
        "expiring": _claude(batch_delay_s=30, batch_expire_s=0.1),
        "flaky": _claude(batch_delay_s=0.05, batch_error_rate=1.0),
        "tiny": _claude(batch_delay_s=0.05, batch_max_requests=2),
        "local": Profile(models=[LLAMA, QWEN], batch_delay_s=0.1),
        "local-slow": Profile(models=[LLAMA], batch_delay_s=30),
        "local-expiring": Profile(models=[LLAMA], batch_delay_s=30, batch_expire_s=0.1),
        "local-flaky": Profile(models=[LLAMA], batch_delay_s=0.05, batch_error_rate=1.0),
    }
    with Simulator(profiles=profiles, seed=0) as simulator:
        yield simulator


def _client(sim: Simulator, instance: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key="k", base_url=sim.base_url(instance), max_retries=0)


@pytest.fixture
def claude(sim: Simulator) -> Iterator[anthropic.Anthropic]:
    with _client(sim, "claude1") as client:
        yield client


@pytest.fixture
def http(sim: Simulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.url, timeout=10.0) as client:
        yield client


def _request(custom_id: str, model: str = SONNET, messages: Any = HELLO, **params: Any) -> Any:
    return {
        "custom_id": custom_id,
        "params": {"model": model, "max_tokens": 300, "messages": messages, **params},
    }


def _until(read: Callable[[], Any], done: Callable[[Any], bool], timeout_s: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = read()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.02)


def _ended(client: anthropic.Anthropic, batch_id: str) -> MessageBatch:
    batch = _until(
        lambda: client.messages.batches.retrieve(batch_id),
        lambda b: b.processing_status == "ended",
    )
    assert batch.processing_status == "ended"
    return batch  # type: ignore[no-any-return]


def _results(client: anthropic.Anthropic, batch_id: str) -> dict[str, Any]:
    return {line.custom_id: line.result for line in client.messages.batches.results(batch_id)}


# --- Message Batches --------------------------------------------------------------------------


def test_batches_round_trip_answers_as_the_messages_endpoint(
    claude: anthropic.Anthropic, sim: Simulator
) -> None:
    system = "You are terse."
    created = claude.messages.batches.create(
        requests=[_request("one"), _request("two", HAIKU, OTHER, system=system)]
    )
    assert created.id.startswith("msgbatch_")
    assert created.type == "message_batch"
    assert created.processing_status == "in_progress"
    assert created.request_counts.processing == 2
    assert created.results_url is None and created.ended_at is None
    assert created.expires_at - created.created_at == timedelta(hours=24)

    batch = _ended(claude, created.id)
    counts = batch.request_counts
    assert (counts.processing, counts.succeeded, counts.errored) == (0, 2, 0)
    assert batch.ended_at is not None and batch.ended_at >= batch.created_at
    assert batch.results_url == f"{sim.base_url('claude1')}/v1/messages/batches/{batch.id}/results"

    results = _results(claude, batch.id)
    assert set(results) == {"one", "two"}
    one, two = results["one"], results["two"]
    assert one.type == "succeeded" and two.type == "succeeded"
    assert one.message.content[0].text == expected_reply(SONNET, HELLO, None, 300)
    assert two.message.content[0].text == expected_reply(HAIKU, OTHER, system, 300)
    assert one.message.model == SONNET and one.message.stop_reason == "end_turn"
    assert one.message.usage.service_tier == "batch"


def test_batches_bill_at_the_batch_rate_apart_from_calls(
    claude: anthropic.Anthropic, sim: Simulator
) -> None:
    batch = claude.messages.batches.create(requests=[_request("a"), _request("b", HAIKU)])
    _ended(claude, batch.id)
    usage = {cid: r.message.usage for cid, r in _results(claude, batch.id).items()}
    stats = sim.stats()["claude1"]
    assert stats["batches"] == 1 and stats["batch_requests"] == 2
    assert stats[f"{BATCH_BILLED}{SONNET}:input_tokens"] == usage["a"].input_tokens
    assert stats[f"{BATCH_BILLED}{SONNET}:output_tokens"] == usage["a"].output_tokens
    assert stats[f"{BATCH_BILLED}{HAIKU}:output_tokens"] == usage["b"].output_tokens
    assert not [key for key in stats if key.startswith(BILLED)]
    assert stats["requests"] == 0 and stats["input_tokens"] == 0


def test_batches_skip_the_per_minute_limits_and_faults(
    claude: anthropic.Anthropic, sim: Simulator
) -> None:
    """claude1 allows one call a minute: a batch of three takes none of it, and an armed
    fault fires on the next call, not on the batch."""
    sim.set_fault("claude1", Fault(kind="500", count=1))
    batch = claude.messages.batches.create(requests=[_request(f"r{i}") for i in range(3)])
    assert _ended(claude, batch.id).request_counts.succeeded == 3
    with pytest.raises(anthropic.InternalServerError):
        claude.messages.create(model=SONNET, max_tokens=10, messages=HELLO)
    claude.messages.create(model=SONNET, max_tokens=10, messages=HELLO)


def test_batches_list_pages_newest_first(claude: anthropic.Anthropic) -> None:
    ids = [claude.messages.batches.create(requests=[_request("x")]).id for _ in range(3)]
    newest_first = ids[::-1]
    page = claude.messages.batches.list(limit=2)
    assert [b.id for b in page.data] == newest_first[:2]
    assert page.has_more is True
    assert (page.first_id, page.last_id) == (newest_first[0], newest_first[1])
    assert [b.id for b in claude.messages.batches.list(limit=2)] == newest_first  # auto-paged
    after = claude.messages.batches.list(after_id=newest_first[0])
    assert [b.id for b in after.data] == newest_first[1:] and after.has_more is False
    before = claude.messages.batches.list(before_id=newest_first[2], limit=1)
    assert [b.id for b in before.data] == [newest_first[1]] and before.has_more is True
    with pytest.raises(anthropic.BadRequestError):
        claude.messages.batches.list(limit=1001)


def test_batches_cancel_before_the_delay_cancels_every_request(sim: Simulator) -> None:
    with _client(sim, "slow") as client:
        batch = client.messages.batches.create(requests=[_request("a"), _request("b")])
        canceling = client.messages.batches.cancel(batch.id)
        assert canceling.processing_status == "canceling"
        assert canceling.cancel_initiated_at is not None
        ended = _ended(client, batch.id)
        assert ended.request_counts.canceled == 2
        assert {r.type for r in _results(client, batch.id).values()} == {"canceled"}
        again = client.messages.batches.cancel(batch.id)
        assert again.processing_status == "ended" and again.request_counts.canceled == 2
    assert not [key for key in sim.stats()["slow"] if key.startswith(BATCH_BILLED)]


def test_batches_cancel_after_the_delay_changes_nothing(claude: anthropic.Anthropic) -> None:
    batch = claude.messages.batches.create(requests=[_request("a")])
    time.sleep(0.15)
    canceled = claude.messages.batches.cancel(batch.id)
    assert canceled.processing_status == "ended"
    assert canceled.request_counts.succeeded == 1 and canceled.cancel_initiated_at is None


def test_batches_expire_when_the_delay_outlasts_the_expiry(sim: Simulator) -> None:
    with _client(sim, "expiring") as client:
        batch = client.messages.batches.create(requests=[_request("a"), _request("b")])
        lifetime = batch.expires_at - batch.created_at
        assert abs(lifetime - timedelta(seconds=0.1)) <= timedelta(milliseconds=1)
        ended = _ended(client, batch.id)
        assert ended.request_counts.expired == 2
        assert ended.ended_at == ended.expires_at
        assert {r.type for r in _results(client, batch.id).values()} == {"expired"}


def test_batches_error_each_bad_request_on_its_own(claude: anthropic.Anthropic) -> None:
    requests = [
        _request("ok"),
        _request("unknown-model", "claude-nonexistent"),
        _request("too-long", SMALL, max_tokens=2000),
        {"custom_id": "no-max-tokens", "params": {"model": SONNET, "messages": HELLO}},
        _request("streams", stream=True),
    ]
    batch = claude.messages.batches.create(requests=requests)
    counts = _ended(claude, batch.id).request_counts
    assert (counts.succeeded, counts.errored) == (1, 4)
    results = _results(claude, batch.id)
    assert results["ok"].type == "succeeded"
    errors = {cid: r.error.error for cid, r in results.items() if r.type == "errored"}
    assert errors["unknown-model"].type == "not_found_error"
    assert errors["too-long"].type == "invalid_request_error"
    assert "prompt is too long" in errors["too-long"].message
    assert errors["no-max-tokens"].type == "invalid_request_error"
    assert "max_tokens" in errors["no-max-tokens"].message
    assert errors["streams"].type == "invalid_request_error"


def test_batches_error_rate_fails_requests_with_api_errors(sim: Simulator) -> None:
    with _client(sim, "flaky") as client:
        batch = client.messages.batches.create(requests=[_request("a"), _request("b")])
        assert _ended(client, batch.id).request_counts.errored == 2
        for result in _results(client, batch.id).values():
            assert result.type == "errored"
            assert result.error.type == "error" and result.error.error.type == "api_error"
    assert not [key for key in sim.stats()["flaky"] if key.startswith(BATCH_BILLED)]


def test_batches_error_rate_draws_from_the_seeded_source() -> None:
    def errored_ids() -> set[str]:
        profile = _claude(batch_delay_s=0.0, batch_error_rate=0.5)
        with Simulator(profiles={"c": profile}, seed=7) as sim, _client(sim, "c") as client:
            batch = client.messages.batches.create(requests=[_request(f"r{i}") for i in range(40)])
            _ended(client, batch.id)
            return {cid for cid, r in _results(client, batch.id).items() if r.type == "errored"}

    first = errored_ids()
    assert 0 < len(first) < 40
    assert errored_ids() == first


@pytest.mark.parametrize(
    "requests",
    [
        [_request("has space")],
        [_request("x" * 65)],
        [_request("")],
        [_request("dup"), _request("dup")],
        [],
        [{"custom_id": "a", "params": "not an object"}],
        [{"custom_id": "a", "params": {}, "extra": 1}],
    ],
    ids=["space", "too-long", "empty", "duplicate", "no-requests", "params", "extra-field"],
)
def test_batches_refuse_a_malformed_envelope(claude: anthropic.Anthropic, requests: Any) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        claude.messages.batches.create(requests=requests)
    assert caught.value.status_code == 400


def test_batches_accept_the_longest_custom_id(claude: anthropic.Anthropic) -> None:
    custom_id = "A-z_9" * 12 + "abcd"  # 64 characters
    batch = claude.messages.batches.create(requests=[_request(custom_id)])
    _ended(claude, batch.id)
    assert list(_results(claude, batch.id)) == [custom_id]


def test_batches_refuse_more_requests_than_the_profile_allows(sim: Simulator) -> None:
    with _client(sim, "tiny") as client, pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.batches.create(requests=[_request(f"r{i}") for i in range(3)])
    assert "at most 2 requests" in caught.value.message


def test_batches_delete_only_once_ended(sim: Simulator) -> None:
    with _client(sim, "slow") as client:
        batch = client.messages.batches.create(requests=[_request("a")])
        with pytest.raises(anthropic.BadRequestError):
            client.messages.batches.delete(batch.id)
        client.messages.batches.cancel(batch.id)
        _ended(client, batch.id)
        deleted = client.messages.batches.delete(batch.id)
        assert (deleted.id, deleted.type) == (batch.id, "message_batch_deleted")
        with pytest.raises(anthropic.NotFoundError):
            client.messages.batches.retrieve(batch.id)


def test_batches_results_wait_for_the_end(sim: Simulator, http: httpx.Client) -> None:
    with _client(sim, "slow") as client:
        batch = client.messages.batches.create(requests=[_request("a")])
        with pytest.raises(anthropic.AnthropicError, match="results_url"):
            client.messages.batches.results(batch.id)
    resp = http.get(f"/slow/v1/messages/batches/{batch.id}/results", headers=HEADERS)
    assert resp.status_code == 400
    assert resp.json()["error"]["type"] == "invalid_request_error"


def test_batches_results_are_jsonl_with_a_binary_type(
    claude: anthropic.Anthropic, http: httpx.Client
) -> None:
    batch = claude.messages.batches.create(requests=[_request("a"), _request("b")])
    url = _ended(claude, batch.id).results_url
    assert url is not None
    resp = http.get(url, headers=HEADERS)
    assert resp.headers["content-type"] == "application/binary"
    lines = resp.content.decode().splitlines()
    assert [json.loads(line)["custom_id"] for line in lines] == ["a", "b"]
    assert resp.content.endswith(b"\n")


def test_batches_check_headers_and_ids(http: httpx.Client) -> None:
    body = {"requests": [_request("a")]}
    no_key = http.post(
        "/claude1/v1/messages/batches", json=body, headers={"anthropic-version": "x"}
    )
    assert no_key.status_code == 401
    no_version = http.get("/claude1/v1/messages/batches", headers={"x-api-key": "k"})
    assert no_version.status_code == 400
    unknown = http.get("/claude1/v1/messages/batches/msgbatch_nope", headers=HEADERS)
    assert unknown.status_code == 404 and unknown.json()["error"]["type"] == "not_found_error"
    no_route = http.put("/claude1/v1/messages/batches/msgbatch_nope", headers=HEADERS)
    assert no_route.status_code == 404
    not_json = http.post("/claude1/v1/messages/batches", content=b"{", headers=HEADERS)
    assert not_json.status_code == 400


def test_batches_body_over_256_mb_is_refused_unread(sim: Simulator) -> None:
    head = (
        "POST /claude1/v1/messages/batches HTTP/1.1\r\nHost: x\r\n"
        f"Content-Length: {256 * 1024 * 1024 + 1}\r\nanthropic-version: 1\r\nx-api-key: k\r\n\r\n"
    )
    with socket.create_connection((sim.host, sim.port), timeout=5) as conn:
        conn.sendall(head.encode())
        answer = conn.recv(65536).decode("latin-1")
    assert answer.startswith("HTTP/1.1 413")
    assert "request_too_large" in answer


# --- OpenAI files and batches over raw HTTP ---------------------------------------------------


def _line(custom_id: str, model: str = LLAMA, messages: Any = HELLO, **body: Any) -> str:
    payload = {"model": model, "messages": messages, "max_tokens": 300, **body}
    return json.dumps(
        {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": payload}
    )


def _upload(http: httpx.Client, instance: str, lines: list[str], purpose: str = "batch") -> str:
    data = ("\n".join(lines) + "\n").encode()
    resp = http.post(
        f"/{instance}/v1/files",
        files={"file": ("input.jsonl", data, "application/jsonl")},
        data={"purpose": purpose},
        headers=BEARER,
    )
    assert resp.status_code == 200, resp.text
    uploaded: dict[str, Any] = resp.json()
    assert uploaded["object"] == "file" and uploaded["bytes"] == len(data)
    return str(uploaded["id"])


def _create(http: httpx.Client, instance: str, lines: list[str]) -> dict[str, Any]:
    file_id = _upload(http, instance, lines)
    body = {
        "input_file_id": file_id,
        "endpoint": "/v1/chat/completions",
        "completion_window": "24h",
        "metadata": {"run": "test"},
    }
    resp = http.post(f"/{instance}/v1/batches", json=body, headers=BEARER)
    assert resp.status_code == 200, resp.text
    batch: dict[str, Any] = resp.json()
    return batch


_DONE = {"completed", "failed", "expired", "cancelled"}


def _finished(http: httpx.Client, instance: str, batch_id: str) -> dict[str, Any]:
    batch: dict[str, Any] = _until(
        lambda: http.get(f"/{instance}/v1/batches/{batch_id}", headers=BEARER).json(),
        lambda b: b["status"] in _DONE,
    )
    return batch


def _file_lines(http: httpx.Client, instance: str, file_id: str) -> dict[str, Any]:
    resp = http.get(f"/{instance}/v1/files/{file_id}/content", headers=BEARER)
    assert resp.status_code == 200
    return {line["custom_id"]: line for line in map(json.loads, resp.text.splitlines())}


def test_openai_batch_round_trip_over_http(http: httpx.Client, sim: Simulator) -> None:
    system_turns = [{"role": "system", "content": "Be brief."}, *OTHER]
    created = _create(http, "local", [_line("a"), _line("b", messages=system_turns)])
    assert created["id"].startswith("batch_") and created["object"] == "batch"
    assert created["status"] == "validating"
    assert created["expires_at"] - created["created_at"] == 86_400
    assert created["metadata"] == {"run": "test"} and created["model"] == LLAMA

    batch = _finished(http, "local", created["id"])
    assert batch["status"] == "completed"
    assert batch["request_counts"] == {"total": 2, "completed": 2, "failed": 0}
    assert batch["completed_at"] >= batch["in_progress_at"] >= batch["created_at"]
    assert batch["error_file_id"] is None

    output = _file_lines(http, "local", batch["output_file_id"])
    a, b = output["a"], output["b"]
    assert a["id"].startswith("batch_req_") and a["error"] is None
    assert a["response"]["status_code"] == 200
    assert a["response"]["body"]["choices"][0]["message"]["content"] == expected_reply(
        LLAMA, HELLO, None, 300
    )
    assert b["response"]["body"]["choices"][0]["message"]["content"] == expected_reply(
        LLAMA, system_turns, None, 300
    )
    meta = http.get(f"/local/v1/files/{batch['output_file_id']}", headers=BEARER).json()
    assert meta["purpose"] == "batch_output"
    stats = sim.stats()["local"]
    assert stats["batches"] == 1 and stats["batch_requests"] == 2
    prompts = [line["response"]["body"]["usage"]["prompt_tokens"] for line in (a, b)]
    assert stats[f"{BATCH_BILLED}{LLAMA}:input_tokens"] == sum(prompts)


def test_openai_batch_failures_go_to_the_error_file(http: httpx.Client) -> None:
    lines = [_line("ok"), _line("unknown", "gpt-nope"), _line("bad", messages=[])]
    # One model per batch: the unknown model goes in a batch of its own.
    batch = _finished(http, "local", _create(http, "local", [lines[0], lines[2]])["id"])
    assert batch["request_counts"] == {"total": 2, "completed": 1, "failed": 1}
    errors = _file_lines(http, "local", batch["error_file_id"])
    assert list(errors) == ["bad"]
    assert errors["bad"]["response"]["status_code"] == 400
    assert "messages" in errors["bad"]["response"]["body"]["error"]["message"]

    unknown = _finished(http, "local", _create(http, "local", [lines[1]])["id"])
    line = _file_lines(http, "local", unknown["error_file_id"])["unknown"]
    assert line["response"]["status_code"] == 404
    assert line["response"]["body"]["error"]["code"] == "model_not_found"
    assert unknown["output_file_id"] is None


def test_openai_batch_error_rate_answers_500s(http: httpx.Client) -> None:
    batch = _finished(http, "local-flaky", _create(http, "local-flaky", [_line("a")])["id"])
    line = _file_lines(http, "local-flaky", batch["error_file_id"])["a"]
    assert line["response"]["status_code"] == 500
    assert line["response"]["body"]["error"]["type"] == "server_error"


def test_openai_batch_cancel_and_expire(http: httpx.Client) -> None:
    created = _create(http, "local-slow", [_line("a"), _line("b")])
    cancel = http.post(f"/local-slow/v1/batches/{created['id']}/cancel", headers=BEARER).json()
    assert cancel["status"] == "cancelling" and cancel["cancelling_at"] is not None
    batch = _finished(http, "local-slow", created["id"])
    assert batch["status"] == "cancelled" and batch["cancelled_at"] is not None
    for line in _file_lines(http, "local-slow", batch["error_file_id"]).values():
        assert line["response"] is None and line["error"]["code"] == "batch_cancelled"

    expiring = _create(http, "local-expiring", [_line("a")])
    expired = _finished(http, "local-expiring", expiring["id"])
    assert expired["status"] == "expired" and expired["expired_at"] == expired["expires_at"]
    line = _file_lines(http, "local-expiring", expired["error_file_id"])["a"]
    assert line["error"]["code"] == "batch_expired"


def test_openai_batch_cancel_of_a_completed_batch_conflicts(http: httpx.Client) -> None:
    batch = _finished(http, "local", _create(http, "local", [_line("a")])["id"])
    resp = http.post(f"/local/v1/batches/{batch['id']}/cancel", headers=BEARER)
    assert resp.status_code == 409
    assert "completed" in resp.json()["error"]["message"]


@pytest.mark.parametrize(
    ("lines", "code"),
    [
        (["{not json"], "invalid_json_line"),
        ([_line("a"), _line("a")], "duplicate_custom_id"),
        ([_line("a"), _line("b", QWEN)], "mismatched_model"),
        ([_line("a").replace("/v1/chat/completions", "/v1/embeddings")], "invalid_url"),
        (
            [json.dumps({"method": "POST", "url": "/v1/chat/completions", "body": {}})],
            "missing_required_parameter",
        ),
        ([""], "empty_file"),
    ],
    ids=["json", "duplicate", "models", "url", "custom-id", "empty"],
)
def test_openai_batch_input_that_does_not_validate_fails_the_batch(
    http: httpx.Client, lines: list[str], code: str
) -> None:
    created = _create(http, "local", lines)
    batch = _finished(http, "local", created["id"])
    assert batch["status"] == "failed" and batch["failed_at"] is not None
    assert [error["code"] for error in batch["errors"]["data"]][:1] == [code]
    assert batch["output_file_id"] is None and batch["error_file_id"] is None


def test_openai_batch_create_checks_its_arguments(http: httpx.Client) -> None:
    file_id = _upload(http, "local", [_line("a")])
    good: dict[str, Any] = {"input_file_id": file_id, "completion_window": "24h"}
    good["endpoint"] = "/v1/chat/completions"
    changes: list[tuple[dict[str, Any], int]] = [
        ({"input_file_id": "file-nope"}, 404),
        ({"endpoint": "/v1/embeddings"}, 400),
        ({"completion_window": "1h"}, 400),
        ({"metadata": {"k": 1}}, 400),
    ]
    for change, status in changes:
        resp = http.post("/local/v1/batches", json=good | change, headers=BEARER)
        assert resp.status_code == status, change
    other = _upload(http, "local", [_line("a")], purpose="user_data")
    resp = http.post("/local/v1/batches", json=good | {"input_file_id": other}, headers=BEARER)
    assert resp.status_code == 400
    assert http.post("/local/v1/batches", json=good).status_code == 401


def test_openai_files_round_trip_and_delete(http: httpx.Client) -> None:
    file_id = _upload(http, "local", [_line("a")])
    content = http.get(f"/local/v1/files/{file_id}/content", headers=BEARER)
    assert content.content == (_line("a") + "\n").encode()
    assert content.headers["content-type"] == "application/octet-stream"
    deleted = http.delete(f"/local/v1/files/{file_id}", headers=BEARER).json()
    assert deleted == {"id": file_id, "object": "file", "deleted": True}
    assert http.get(f"/local/v1/files/{file_id}", headers=BEARER).status_code == 404
    bad = http.post("/local/v1/files", content=b"x", headers=BEARER)
    assert bad.status_code == 400
    no_purpose = http.post(
        "/local/v1/files",
        files={"file": ("a.jsonl", b"x")},
        data={"purpose": "nope"},
        headers=BEARER,
    )
    assert no_purpose.status_code == 400


def test_openai_batches_list_newest_first(http: httpx.Client) -> None:
    ids = [_create(http, "local", [_line("a")])["id"] for _ in range(3)][::-1]
    page = http.get("/local/v1/batches", params={"limit": 2}, headers=BEARER).json()
    assert page["object"] == "list" and page["has_more"] is True
    assert [b["id"] for b in page["data"]] == ids[:2]
    rest = http.get("/local/v1/batches", params={"after": ids[1]}, headers=BEARER).json()
    assert [b["id"] for b in rest["data"]] == ids[2:] and rest["has_more"] is False


def test_batches_of_one_api_are_invisible_to_the_other(
    http: httpx.Client, claude: anthropic.Anthropic
) -> None:
    batch = claude.messages.batches.create(requests=[_request("a")])
    assert http.get(f"/claude1/v1/batches/{batch.id}", headers=BEARER).status_code == 404
    assert claude.messages.batches.list().data[0].id == batch.id
    openai_batch = _create(http, "claude1", [_line("a", SONNET)])
    with pytest.raises(anthropic.NotFoundError):
        claude.messages.batches.retrieve(openai_batch["id"])
    assert [b.id for b in claude.messages.batches.list()] == [batch.id]


def test_messages_endpoint_is_not_shadowed_by_batches(claude: anthropic.Anthropic) -> None:
    message = claude.messages.create(model=SONNET, max_tokens=50, messages=HELLO)
    assert message.type == "message"
