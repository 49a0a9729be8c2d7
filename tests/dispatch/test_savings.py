"""Which jobs go to a batch API, which pool member a shared prefix picks, and the prices."""

from __future__ import annotations

import pytest

from lanes.dispatch.savings import batch_due_at, prefix_member
from lanes.kernel.config import Config
from lanes.router.job import Job
from lanes.stores.memory import memory_stores

LONG = "shared context line\n" * 400


@pytest.mark.parametrize(
    ("fields", "instance", "due_in_s"),
    [
        ({"deadline_s": 7200}, "claude1", 7200),
        ({"deadline_s": 60}, "claude1", None),  # too little slack
        ({"economy": True}, "claude2", 86400),  # the providers' own window
        ({"economy": True, "deadline_s": 900}, "claude2", 900),  # the caller said so
        ({"economy": True, "deadline_s": 600}, "claude2", None),  # within the withdraw margin
        ({"deadline_s": 7200}, "zai", None),  # no batch API on this lane
        ({}, "claude1", None),
    ],
)
def test_batch_eligibility(example_config: Config, fields: dict[str, object], instance: str,
                           due_in_s: float | None) -> None:  # fmt: skip
    job = Job(prompt="x", **fields)  # type: ignore[arg-type]
    due = batch_due_at(example_config, job, instance, now_s=1000.0)
    assert due == (None if due_in_s is None else 1000.0 + due_in_s)


def test_batches_off_in_config_keeps_every_job_a_call(example_config: Config) -> None:
    off = example_config.model_copy(
        update={"batch": example_config.batch.model_copy(update={"enabled": False})}
    )
    assert batch_due_at(off, Job(prompt="x", economy=True), "claude1") is None


def test_a_prefix_follows_the_member_that_holds_it(example_config: Config) -> None:
    stores = memory_stores()
    job = Job(prompt="review", cache_prefix=LONG)
    step = ("vital", "claude-sonnet-4-5")
    first = prefix_member(example_config, stores.prefixes, stores.lane_state, job, step,
                          "claude3", 100)  # fmt: skip
    again = prefix_member(example_config, stores.prefixes, stores.lane_state, job, step,
                          "claude2", 100)  # fmt: skip
    assert first == again == "claude3"


def test_a_prefix_does_not_follow_a_cooling_member(example_config: Config) -> None:
    stores = memory_stores()
    job = Job(prompt="review", cache_prefix=LONG)
    step = ("vital", "claude-sonnet-4-5")
    prefix_member(example_config, stores.prefixes, stores.lane_state, job, step, "claude3", 10)
    stores.lane_state.cool_down("claude3", 30.0, "429")
    assert prefix_member(example_config, stores.prefixes, stores.lane_state, job, step,
                         "claude2", 10) == "claude2"  # fmt: skip


def test_a_short_prefix_or_a_lone_lane_changes_nothing(example_config: Config) -> None:
    stores = memory_stores()
    short = Job(prompt="review", cache_prefix="tiny")
    for job, step in (
        (short, ("vital", "claude-sonnet-4-5")),
        (Job(prompt="r", cache_prefix=LONG), ("claude1", "claude-sonnet-4-5")),
    ):
        prefix_member(example_config, stores.prefixes, stores.lane_state, job, step, "claude3", 1)
        assert prefix_member(example_config, stores.prefixes, stores.lane_state, job, step,
                             "claude2", 1) == "claude2"  # fmt: skip


def test_cache_writes_and_batches_are_priced_at_the_provider_rates(
    example_config: Config,
) -> None:
    price = example_config.price_usd
    sonnet = "claude-sonnet-4-5"
    million = 1_000_000
    assert price("claude2", sonnet, {"cache_read_input_tokens": million}) == pytest.approx(0.3)
    writes_5m = {"cache_creation_input_tokens": million}
    assert price("claude2", sonnet, writes_5m) == pytest.approx(3.75)
    writes_1h = {"cache_creation_input_tokens": million, "cache_creation_1h_input_tokens": million}
    assert price("claude2", sonnet, writes_1h) == pytest.approx(6.0)  # 2x input
    usage = {"input_tokens": million, "output_tokens": million}
    assert price("claude2", sonnet, usage, batch=True) == pytest.approx(9.0)
    assert price("zai", "glm-4.6", usage, batch=True) == price("zai", "glm-4.6", usage)


def test_a_prefix_does_not_follow_to_a_dearer_account(example_config: Config) -> None:
    claude3 = example_config.instances["claude3"].model_copy(update={"price_multiplier": 20.0})
    dear = example_config.model_copy(
        update={"instances": {**example_config.instances, "claude3": claude3}}
    )
    stores = memory_stores()
    job = Job(prompt="review", cache_prefix=LONG)
    step = ("vital", "claude-sonnet-4-5")
    prefix_member(dear, stores.prefixes, stores.lane_state, job, step, "claude3", 2200)
    assert prefix_member(dear, stores.prefixes, stores.lane_state, job, step,
                         "claude2", 2200) == "claude2"  # fmt: skip
