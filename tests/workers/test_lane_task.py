"""End to end through real worker processes: dispatcher → lane queue → worker → simulator."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid

import pytest

from lanes.broker.result import Result
from lanes.kernel.errors import JobError
from lanes.sim import Fault, Profile, expected_reply
from lanes.stores.keys import Keys
from lanes.stores.redis.lane_state import RedisLaneState

from ..conftest import LaneStack


def _depths(lane_stack: LaneStack) -> dict[str, int]:
    """How many messages wait on each lane's queue."""
    keys = Keys(lane_stack.config.redis_prefix)
    with lane_stack.redis() as client:
        return {lane: client.llen(keys.queue(lane)) for lane in lane_stack.config.lanes()}


def _messages(prompt: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": prompt}]


@pytest.mark.parametrize(
    ("instance", "model", "kind"),
    [
        ("claude1", "claude-haiku-4-5", "anthropic"),
        ("zai", "glm-4.5-air", "anthropic-compatible"),
        ("koala", "llama3.1:8b", "openai-compatible"),
    ],
)
def test_lane_job_round_trips_on_each_provider_kind(
    lane_stack: LaneStack, instance: str, model: str, kind: str
) -> None:
    prompt = f"Say hello from the {kind} lane"
    with lane_stack.client() as lanes:
        handle = lanes.submit({"prompt": prompt, "max_tokens": 80, "instance": instance,
                               "model": model})  # fmt: skip
        result = handle.get(timeout_s=60)
    assert result.status == "ok"
    assert (result.instance, result.model) == (instance, model)
    assert result.text == expected_reply(model, _messages(prompt), None, 80)
    assert result.input_tokens > 0 and result.output_tokens > 0
    price = lane_stack.config.models[model].price
    expected_cost = (result.input_tokens * price.input_per_mtok
                     + result.output_tokens * price.output_per_mtok) / 1e6  # fmt: skip
    assert result.cost_usd == pytest.approx(expected_cost)


def test_lane_pool_job_lands_on_a_member(lane_stack: LaneStack) -> None:
    with lane_stack.client() as lanes:
        handles = [lanes.submit({"prompt": f"pool {i}", "max_tokens": 20, "instance": "vital"})
                   for i in range(4)]  # fmt: skip
        instances = [h.get(timeout_s=60).instance for h in handles]
    assert sorted(set(instances)) == ["claude2", "claude3"]
    assert instances.count("claude2") == 2


def test_lane_falls_back_to_next_step_when_a_lane_fails(lane_stack: LaneStack) -> None:
    lane_stack.sim.set_fault("zai", Fault(kind="529"))
    try:
        with lane_stack.client() as lanes:
            handle = lanes.submit({"prompt": "cheap work", "max_tokens": 20, "instance": "zai",
                                   "chain": "cheap"})  # fmt: skip
            result = handle.get(timeout_s=60)
    finally:
        lane_stack.sim.clear_faults("zai")
    assert result.status == "ok"
    assert result.instance == "koala"
    assert result.fallbacks[0].from_instance == "zai"
    assert "Overloaded" in result.fallbacks[0].reason


def test_lane_job_waits_out_a_long_cooldown_over_many_requeues(lane_stack: LaneStack) -> None:
    # zai keeps cooling down 0.2 s at a time for 2 s: the job goes back on its queue with a
    # short countdown again and again (far more often than Celery's default of 3 retries).
    state = RedisLaneState(lane_stack.redis(), Keys(lane_stack.config.redis_prefix))
    stop = threading.Event()

    def keep_cooling() -> None:
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline and not stop.is_set():
            state.cool_down("zai", 0.2, "test: held down")
            time.sleep(0.05)

    holder = threading.Thread(target=keep_cooling)
    holder.start()
    try:
        with lane_stack.client() as lanes:
            result = lanes.submit({"prompt": "patient", "max_tokens": 10, "instance": "zai"}).get(
                timeout_s=60, raise_on_failure=False
            )
    finally:
        stop.set()
        holder.join()
        state.clear("zai")
    assert result.status == "ok", result.error
    assert result.instance == "zai"


def test_lane_bad_request_fails_fast_without_fallback(lane_stack: LaneStack) -> None:
    small = Profile(models=["glm-4.6", "glm-4.5-air"], default_context_window=50)
    lane_stack.sim.set_profile("zai", small)
    try:
        with lane_stack.client() as lanes:
            handle = lanes.submit({"prompt": "word " * 100, "max_tokens": 20, "instance": "zai",
                                   "chain": "cheap"})  # fmt: skip
            result = handle.get(timeout_s=60, raise_on_failure=False)
    finally:
        from lanes.ops.stack import sim_profiles

        lane_stack.sim.set_profile("zai", sim_profiles(lane_stack.config)["zai"])
    assert result.status == "failed"
    assert result.instance == "zai" and result.fallbacks == []
    assert "BadRequest" in (result.error or "")


def test_lane_refuses_bad_jobs_at_submit_and_enqueues_nothing(lane_stack: LaneStack) -> None:
    before = _depths(lane_stack)
    with lane_stack.client() as lanes:
        with pytest.raises(JobError, match="max_tokens"):
            lanes.submit({"prompt": "x", "max_tokens": -1})
        with pytest.raises(JobError, match="nope"):
            lanes.submit({"prompt": "x", "instance": "nope"})
        with pytest.raises(JobError, match="gpt-17"):
            lanes.submit({"prompt": "x", "model": "gpt-17"})
        with pytest.raises(JobError, match="context window"):
            lanes.submit({"prompt": "word " * 300_000, "max_tokens": 100})
    assert _depths(lane_stack) == before


def test_lane_idempotency_key_returns_the_first_job(lane_stack: LaneStack) -> None:
    with lane_stack.client() as lanes:
        first = lanes.submit({"prompt": "once", "max_tokens": 10, "idempotency_key": "idem-1"})
        second = lanes.submit({"prompt": "once", "max_tokens": 10, "idempotency_key": "idem-1"})
        assert second.id == first.id
        assert second.get(timeout_s=60).job_id == first.id
        with pytest.raises(JobError, match="idempotency key 'idem-1' was used for another job"):
            lanes.submit({"prompt": "another", "max_tokens": 10, "idempotency_key": "idem-1"})


def test_lane_handle_can_be_awaited(lane_stack: LaneStack) -> None:
    async def main() -> Result:
        with lane_stack.client() as lanes:
            handle = lanes.submit({"prompt": "async please", "max_tokens": 10, "instance": "zai"})
            return await handle.wait(timeout_s=60)

    assert asyncio.run(main()).status == "ok"


def test_lane_task_message_carries_no_secret_and_shows_only_a_label(
    lane_stack: LaneStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY_1", "sk-ant-never-in-a-message")
    with lane_stack.client() as lanes:
        sig = lanes.dispatcher.signature({"prompt": "x", "instance": "claude1"})
    assert sig.options["argsrepr"].startswith("lane=claude1 hop=0 ")
    assert "sk-ant-never-in-a-message" not in json.dumps(sig.args)
    assert "prompt" not in sig.options["argsrepr"]


def test_lane_every_key_of_a_job_is_under_the_configured_prefix(lane_stack: LaneStack) -> None:
    prefix = lane_stack.config.redis_prefix
    assert prefix != "lanes"
    with lane_stack.client() as lanes:
        handle = lanes.submit({"prompt": "where do my keys go", "max_tokens": 10,
                               "instance": "zai", "idempotency_key": "prefix-check"})  # fmt: skip
        result = handle.get(timeout_s=60)
    client = lane_stack.redis()
    assert client.hgetall(f"{prefix}:charge:{handle.id}") == {"0:0": repr(result.cost_usd)}
    assert (client.get(f"{prefix}:{{jobs}}:idem:prefix-check") or "").startswith(f"{handle.id} ")
    assert not client.exists(f"lanes:charge:{handle.id}", "lanes:{jobs}:idem:prefix-check")


def test_lane_task_returns_a_summary_even_to_a_chain_link_and_logs_no_reply(
    lane_stack: LaneStack,
) -> None:
    with lane_stack.client() as lanes:
        sig = lanes.signature({"prompt": "first link", "max_tokens": 10, "instance": "zai"})
        follow = lanes.app.signature("celery.accumulate", kwargs={"index": 0}, queue="zai")
        linked = (sig | follow).apply_async().get(timeout=60)
        stored = lanes.job(linked["job_id"]).get(timeout_s=10)
        plain = lanes.submit({"prompt": "no link", "max_tokens": 10, "instance": "zai"})
        result = plain.get(timeout_s=60)
    assert linked == {"job_id": stored.job_id, "status": "ok", "instance": "zai",
                      "model": stored.model}  # fmt: skip
    assert stored.text and result.text  # callers read the stored result, whole
    # The result is stored before Celery logs the task's success: give the log a moment.
    lines = [f"lanes.run[{plain.id}] succeeded", f"lanes.run[{stored.job_id}] succeeded"]
    deadline = time.monotonic() + 10
    logs = lane_stack.log_file.read_text()
    while not all(line in logs for line in lines) and time.monotonic() < deadline:
        time.sleep(0.05)
        logs = lane_stack.log_file.read_text()
    assert all(line in logs for line in lines)
    assert result.text not in logs and stored.text not in logs  # log lines show summaries


def test_lane_a_job_id_cannot_be_taken_over_by_another_payload(lane_stack: LaneStack) -> None:
    job_id = f"chosen-{uuid.uuid4().hex[:8]}"
    with lane_stack.client() as lanes:
        first = lanes.submit({"id": job_id, "prompt": "owner's prompt", "max_tokens": 10,
                              "instance": "zai", "user": "alice"})  # fmt: skip
        result = first.get(timeout_s=60)
        before = _depths(lane_stack)
        with pytest.raises(JobError, match="already belongs to another job"):
            lanes.submit({"id": job_id, "prompt": "someone else's", "max_tokens": 10,
                          "instance": "zai", "user": "mallory"})  # fmt: skip
        again = lanes.submit({"id": job_id, "prompt": "owner's prompt", "max_tokens": 10,
                              "instance": "zai", "user": "alice"})  # fmt: skip
        assert again.get(timeout_s=10) == result  # the same job: its one result, no new call
    assert _depths(lane_stack) == before
    assert result.user == "alice"


def test_lane_a_job_over_max_job_bytes_is_refused_and_nothing_is_enqueued(
    lane_stack: LaneStack,
) -> None:
    before = _depths(lane_stack)
    limit = lane_stack.config.max_job_bytes
    with lane_stack.client() as lanes:
        with pytest.raises(JobError, match="max_job_bytes") as info:
            lanes.submit({"prompt": "hi", "instance": "zai", "metadata": {"blob": "x" * limit}})
        lanes.submit({"prompt": "hi", "instance": "zai", "metadata": {"note": "small"}}).get(
            timeout_s=60
        )
    assert str(limit) in str(info.value)
    assert _depths(lane_stack) == before
