"""The dispatcher's part in the providers' discounts: whether a job goes to its lane's batch
API, and which pool member a job with a shared prefix goes to."""

from __future__ import annotations

import time

from lanes.kernel.config import Config
from lanes.router.classifier import estimate_tokens
from lanes.router.job import Job
from lanes.router.lane_state import LaneStateReader, LaneStatus
from lanes.router.load import backlog_s, lane_drain
from lanes.router.prefix import cacheable, prefix_digest
from lanes.stores.prefixes import PrefixStore


def batch_due_at(
    config: Config, job: Job, instance: str, now_s: float | None = None
) -> float | None:
    """When ``job`` is due, as a Unix time, if it goes to ``instance``'s batch API: it has
    slack enough (``economy``, or a ``deadline_s`` of ``batch.min_deadline_s`` or more) and
    the instance has a batch API, and more time than ``batch.withdraw_margin_s``. None: it
    is a call (always for a streaming job: its caller reads the answer as it comes)."""
    if job.stream or not config.batches_on(instance):
        return None
    spec = config.batch
    deadline_s = job.deadline_s
    if deadline_s is None and job.economy:
        deadline_s = spec.economy_deadline_s
    if deadline_s is None or (not job.economy and deadline_s < spec.min_deadline_s):
        return None
    if deadline_s <= spec.withdraw_margin_s:
        return None  # it would be taken out of its batch as soon as it got there
    return (time.time() if now_s is None else now_s) + deadline_s


def prefix_member(
    config: Config,
    prefixes: PrefixStore,
    lane_state: LaneStateReader,
    job: Job,
    step: tuple[str, str],
    choice: str,
    input_tokens: int,
) -> str:
    """The member of pool ``step[0]`` (serving model ``step[1]``) to send ``job`` to: the one
    whose cache holds (or is writing) its prefix, unless it is unusable, its backlog would
    make the job wait ``caching.affinity_max_wait_s`` longer than at ``choice``, or reading
    the prefix there costs more than writing it at ``choice`` (a dearer account)."""
    lane, model = step
    members = config.pools.get(lane)
    if not members or len(members) < 2 or not cacheable(config, model, job.cache_prefix):
        return choice
    assert job.cache_prefix is not None
    found = prefixes.place(prefix_digest(job.cache_prefix), model, members, choice)
    if found == choice:
        return choice
    statuses = lane_state.statuses([found, choice])
    held = statuses[found]
    if held.cooldown_s > 0 or held.disabled_reason or not config.instances[found].enabled:
        return choice
    extra_s = _wait_s(config, found, held, input_tokens, job.max_tokens) - _wait_s(
        config, choice, statuses[choice], input_tokens, job.max_tokens
    )
    if extra_s > config.caching.affinity_max_wait_s:
        return choice
    cheaper = _cheaper_there(config, model, job.cache_prefix, input_tokens, (found, choice))
    return found if cheaper else choice


def _wait_s(
    config: Config, name: str, status: LaneStatus, input_tokens: int, max_tokens: int
) -> float:
    drain = lane_drain(config, name, status, input_tokens, max_tokens)
    return backlog_s(drain, status.backlog) or 0.0


def _cheaper_there(
    config: Config, model: str, prefix: str, input_tokens: int, where: tuple[str, str]
) -> bool:
    """Whether the prompt costs less read from ``where[0]``'s cache than written afresh on
    ``where[1]`` (their price multipliers may differ)."""
    cached = min(input_tokens, estimate_tokens(prefix))
    read = {"cache_read_input_tokens": cached, "input_tokens": input_tokens - cached}
    fresh = {"cache_creation_input_tokens": cached, "input_tokens": input_tokens - cached}
    held, other = where
    return config.price_usd(held, model, read) <= config.price_usd(other, model, fresh)
