"""Run one step of a job: get capacity, call the step's provider, decide what happens next.

Plain functions over a :class:`WorkerContext`; the Celery task in ``lanes.workers.tasks`` only
adapts their :data:`Outcome` to Celery (return, ``retry``, ``replace``). Order of checks:

1. a redelivered message (the broker's flag, or the janitor's copy) whose job already has a
   result returns it as is, with no call; one whose job already moved on is dropped;
2. a step that cannot serve the job (disabled, context window too small) is skipped (before
   the step, the task has failed a message that breaks a rule the dispatcher keeps:
   :func:`broken_promise`);
3. a step that goes through its lane's batch API is numbered and parked for the batcher
   (:mod:`lanes.workers.services.batcher`), with no call here;
4. a cooling-down instance hands the job to another member of its pool, else the job waits
   (re-queued with a short countdown, bounded by ``retry.max_wait_s``), then falls back; a
   job whose wait would pass its ``deadline_s`` falls back at once (the last step waits); a
   job whose shared prefix another job is writing on this instance waits for that answer
   (:mod:`lanes.workers.prefix_gate`);
5. capacity is reserved in the global limiter (estimated input + ``max_tokens``), waiting the
   same bounded way; a batch job leaves ``interactive_reserve`` of every limit free, so an
   interactive job overtakes batch work waiting for capacity as it overtakes it in the queue;
6. the call is numbered: a job its caller cancelled ends here, its capacity given back, and
   so does one whose call a layer refuses (:mod:`lanes.layers`);
7. the call; success settles the reservation to actual usage and records the one result;
   a retryable failure retries the step with backoff, then falls back to the next step.

A Redis outage after the call repeats the writes, not the call (:mod:`lanes.workers.outage`).

A message delivered for the first time cannot be either, so step 1 reads nothing for it and
step 2 uses the worker's lane view (at most ``LANE_STATE_TTL_S`` old); a redelivered one reads
hand-off mark, result and live lane state in one unit (:class:`lanes.stores.frame.StepFrame`).
The writes after the call are one unit too: one Redis round trip each in a deployment. The
layers around the call (:mod:`lanes.layers`) are called at each point by their hooks, and hand
the events they record to those two round trips.
"""

from __future__ import annotations

import random

from lanes.broker import counters as metrics
from lanes.broker.message import Envelope
from lanes.kernel.errors import AuthFailed, InfrastructureError, LanesError, ProviderError
from lanes.kernel.taxonomy import Priority
from lanes.layers.hooks import Call
from lanes.router.candidates import CHEAP_TAG
from lanes.router.classifier import classify
from lanes.router.filters import VITAL_ON_CHEAP
from lanes.router.load import backlog_s, lane_drain
from lanes.stores.limiter import (
    Acquired,
    CapacityWait,
    Reason,
    Reservation,
    ReservationTooLarge,
)
from lanes.workers import feedback
from lanes.workers.answers import checked
from lanes.workers.context import WorkerContext
from lanes.workers.outage import outlast
from lanes.workers.outcome import Done, Drop, Forward, Outcome, Parked, Retry
from lanes.workers.parking import park
from lanes.workers.prefix_gate import after_call, wait_for_writer
from lanes.workers.providers.base import ProviderResponse
from lanes.workers.records import failure_result, success_result
from lanes.workers.requests import provider_request
from lanes.workers.streaming import ended, relay

MAX_COUNTDOWN_S = 30.0
"""Longest countdown a waiting job is re-queued with: far below any visibility timeout."""
SPREAD = (0.0, 1.0)
"""A waiting job comes back after this share (drawn at random) of the time its lane needs to
start its backlog: the waiting jobs return spread evenly over that time, about as fast as
the lane can take them, instead of all at once (redelivered again and again) or all late
(the lane idle meanwhile)."""


def run_step(ctx: WorkerContext, env: Envelope, *, redelivered: bool = True) -> Outcome:
    """One step of ``env``'s job. ``redelivered``: this message may have run before (the
    broker redelivered it, or the janitor re-sent it); when unsure, say True."""
    if redelivered:
        before = ctx.stores.frame.before(env.job.id, env.hop, env.instance)
        if before.stale:
            return Drop()  # a redelivered message whose job already moved on
        if before.recorded is not None:  # a redelivery of a finished job: same result, no call
            ctx.stores.jobs.announce([before.recorded])  # its first run may have died unheard
            return Done(before.recorded)
        status = before.status
    else:
        status = ctx.lane_status(env.instance)
    unfit = _unfit_reason(ctx, env, status.disabled_reason)
    if unfit is not None:
        return _forward_or_fail(ctx, env, unfit)
    if env.batch:
        if ctx.config.batches_on(env.instance):
            return _park(ctx, env)
        env = env.model_copy(update={"batch": False})  # batches were turned off since
    if status.cooldown_s > 0:
        return _elsewhere_or_wait(ctx, env, status.cooldown_s, "cooling down")
    waiting = wait_for_writer(ctx, env)
    if waiting is not None:
        return waiting
    # Build the client before reserving: a reservation is only fair to the provider's own
    # bucket if the request leaves right after it (a first client build takes ~100 ms).
    ctx.provider(env.instance)
    try:
        acquired = ctx.capacity.acquire(
            env.instance, ctx.config.instances[env.instance], env.model,
            env.input_tokens, env.job.max_tokens, reserve=_reserve(ctx, env),
        )  # fmt: skip
    except ReservationTooLarge as exc:
        return _forward_or_fail(ctx, env, str(exc))
    except CapacityWait as wait:
        outcome = _elsewhere_or_wait(
            ctx, env, _admits_in_s(ctx, env, wait), f"at its {wait.reason} limit"
        )
        if isinstance(outcome, Retry):
            metrics.waited_for_limits(env.instance, outcome.countdown_s)
        return outcome
    return _call_with(ctx, env, acquired)


def _park(ctx: WorkerContext, env: Envelope) -> Outcome:
    """Leave the job to its lane's batch API: the call is numbered (and its budget held at
    the batch rate) now, the batcher sends and answers it. A redelivered message of a job
    already parked changes nothing."""
    if ctx.stores.batches.member(env.job.id) is not None:
        return Parked(env)
    call = _start(ctx, env, None)
    if isinstance(call, Done):
        return call
    park(ctx, env, call.number)
    return Parked(env)


def _reserve(ctx: WorkerContext, env: Envelope) -> float:
    """The share of the lane's limits this job must leave free: interactive work's reserve,
    for a batch job."""
    return ctx.config.interactive_reserve if env.job.priority == Priority.BATCH else 0.0


def _admits_in_s(ctx: WorkerContext, env: Envelope, wait: CapacityWait) -> float:
    """When the limiter should next admit the job. A bucket says exactly; a full concurrency
    limit only says when the earliest lease would expire (the call's whole timeout), while a
    slot usually frees within a call's latency: measured on the lane, else the model's."""
    if wait.reason is not Reason.CONCURRENCY:
        return wait.wait_s
    measured = ctx.lane_status(env.instance).latency_s
    typical = measured if measured is not None else ctx.config.models[env.model].latency_s
    return min(wait.wait_s, typical)


def broken_promise(ctx: WorkerContext, env: Envelope) -> str | None:
    """Why this message must not run although it reached a worker: it breaks a rule the
    dispatcher never breaks, so somebody built it by hand (e.g. through Flower's task API).
    Vital work on a lane tagged cheap: the job is classified again here (only for cheap lanes,
    so other lanes pay nothing for the check), as the dispatcher saw it: a pipeline step before
    the previous step's answer is fed in (the answer may read as vital, the request did not).
    A job that pins its lane and is vital on ``p_vital`` alone keeps its pin, as at dispatch."""
    if CHEAP_TAG not in ctx.config.instances[env.instance].tags or env.job.vital is False:
        return None
    clf = classify(env.job, ctx.config.routing.vital_threshold)
    pinned = env.job.instance is not None or env.job.model is not None
    if not clf.vital or (clf.vital_learned and pinned):
        return None
    why = f" ({clf.vital_reason})" if clf.vital_reason else ""
    return (
        f"refused: {VITAL_ON_CHEAP}, and this job is vital{why} but its message sends it to"
        f" {env.instance}; lanes' dispatcher never does: submit jobs through lanes"
    )


def _unfit_reason(ctx: WorkerContext, env: Envelope, disabled: str | None) -> str | None:
    if not ctx.config.instances[env.instance].enabled:
        return f"{env.instance} is disabled in the config"
    if disabled:
        return f"{env.instance} is disabled: {disabled}"
    model = ctx.config.models[env.model]
    if env.input_tokens + env.job.max_tokens > model.context_window:
        return (
            f"{env.model} context window {model.context_window} cannot fit "
            f"{env.input_tokens} input + {env.job.max_tokens} output tokens"
        )
    return None


def _call_with(ctx: WorkerContext, env: Envelope, acquired: Acquired | None) -> Outcome:
    reservation = acquired.reservation if acquired is not None else None
    call = _start(ctx, env, reservation)
    if isinstance(call, Done):
        return call
    try:
        response = checked(env.job, _called(ctx, env))
    except ProviderError as exc:
        after_call(ctx, env, None)
        if reservation is not None:  # the provider counted the request: keep it charged
            ctx.stores.limiter.release(reservation, refund=False)
        cooldown_s = feedback.on_error(ctx.config, ctx.stores.lane_state, env.instance, exc)
        ctx.lane_state_changed()
        ctx.layers.after_failure(call, exc, cooldown_s)
        if cooldown_s:
            metrics.cooled_down(env.instance)
        return _after_error(ctx, env, exc)
    except BaseException:
        if reservation is not None:
            ctx.stores.limiter.release(reservation, refund=True)
        raise
    after_call(ctx, env, response)
    result = success_result(ctx.config, env, response)
    events = ctx.layers.success_events(call, result)
    # Repeat the writes, never the call, if Redis is away right now (lanes.workers.outage).
    standing = outlast(
        ctx.ping, ctx.config.retry.outage_s, f"recording the result of job {env.job.id}",
        lambda: ctx.stores.frame.after_success(result, reservation, events),
    )  # fmt: skip
    ctx.layers.after_success(call, result)
    if env.job.stream:
        ended(ctx, env, standing)
    metrics.billed(env.instance, env.model, result.cost_usd, result.latency_s)
    if standing == result:
        metrics.job_ended(env.instance, env.model, ok=True)
    return Done(standing)


def _called(ctx: WorkerContext, env: Envelope) -> ProviderResponse:
    """The provider's answer to ``env``'s request, relayed as it comes when the job streams."""
    provider = ctx.provider(env.instance)
    request = provider_request(ctx.config, env)
    if env.job.stream:
        return provider.stream(request, relay(ctx, env))
    return provider.call(request)


def _start(ctx: WorkerContext, env: Envelope, reservation: Reservation | None) -> Call | Done:
    """Number the call; or end the job, the capacity given back, when its caller cancelled
    it or a layer refuses the call."""
    try:
        call = _open_call(ctx, env)
    except InfrastructureError:
        _give_back(ctx, reservation)
        raise
    except LanesError as exc:  # a layer refused the call
        _give_back(ctx, reservation)
        return fail_step(ctx, env, f"refused: {exc}")
    except BaseException:
        _give_back(ctx, reservation)
        raise
    if call is None:
        _give_back(ctx, reservation)
        return _cancelled(ctx, env)
    return call


def _open_call(ctx: WorkerContext, env: Envelope) -> Call | None:
    """Number the call about to start, the layers' event handed off with its number (one
    round trip), and let the layers start it; None, with nothing handed off, when the job's
    caller cancelled it (no call may start). A layer refuses the call with a
    :class:`LanesError` that is no :class:`InfrastructureError`."""
    event = ctx.layers.numbered_event(env)
    number = ctx.stores.frame.start_call(env.job.id, env.step, env.attempt, event)
    if number == 0:
        return None
    call = Call(env, number)
    try:
        ctx.layers.before_call(call)
    except InfrastructureError:
        raise
    except LanesError:
        ctx.layers.after_skip(call)
        raise
    return call


def _give_back(ctx: WorkerContext, reservation: Reservation | None) -> None:
    if reservation is not None:
        ctx.stores.limiter.release(reservation, refund=True)


def _cancelled(ctx: WorkerContext, env: Envelope) -> Done:
    """The caller gave up on the job: the result it recorded stands, with no call made."""
    standing = ctx.stores.jobs.result(env.job.id) or failure_result(env, "cancelled by its caller")
    ctx.layers.after_job_failed(env, standing)
    return Done(standing)


def _after_error(ctx: WorkerContext, env: Envelope, exc: ProviderError) -> Outcome:
    reason = f"{type(exc).__name__} on {env.instance}/{env.model}: {exc}"
    if not exc.retryable:
        if isinstance(exc, AuthFailed):
            return _forward_or_fail(ctx, env, reason)
        return fail_step(ctx, env, reason)
    if env.attempt + 1 < ctx.config.retry.attempts_per_step:
        return Retry(env.retried(), backoff_s(ctx, env.attempt))
    return _forward_or_fail(ctx, env, reason)


def backoff_s(ctx: WorkerContext, attempt: int) -> float:
    """Exponential backoff with full jitter: uniform(0, min(max, base * 2**attempt))."""
    spec = ctx.config.retry
    ceiling = min(spec.backoff_max_s, spec.backoff_base_s * (2**attempt))
    return random.uniform(0, ceiling)


def _elsewhere_or_wait(ctx: WorkerContext, env: Envelope, wait_s: float, why: str) -> Outcome:
    """Another pool member if one is usable; else wait (bounded, and within the job's
    deadline unless its chain has no step left); else fall back."""
    lane = env.chain[env.step].instance
    if lane in ctx.config.pools:
        other = ctx.pools.expand(lane)
        if other != env.instance and ctx.stores.lane_state.status(other).cooldown_s <= 0:
            return Forward(env.moved(other))
    if env.waited_s >= ctx.config.retry.max_wait_s:
        waited = f"{env.instance} {why}; waited {env.waited_s:.0f}s (retry.max_wait_s)"
        return _forward_or_fail(ctx, env, waited)
    left_s = ctx.config.retry.max_wait_s - env.waited_s
    countdown_s = wait_countdown(wait_s, _ahead_s(ctx, env), left_s)
    deadline_s = env.job.deadline_s
    steps_left = env.step + 1 < len(env.chain)
    if steps_left and deadline_s is not None and env.waited_s + countdown_s > deadline_s:
        late = f"{env.instance} {why}; waiting {countdown_s:.1f}s more would pass"
        return _forward_or_fail(ctx, env, f"{late} the job's deadline_s {deadline_s:g}")
    return Retry(env.waiting(countdown_s), countdown_s)


def wait_countdown(
    wait_s: float, ahead_s: float, left_s: float, draw: float | None = None
) -> float:
    """How long a job that must wait re-queues itself for: until the limiter could admit it
    (``wait_s``), or until its turn behind the jobs ahead of it (``ahead_s``: their number
    over the lane's rate, of which a random share in :data:`SPREAD`), whichever is later;
    at most :data:`MAX_COUNTDOWN_S` and the ``left_s`` of its ``retry.max_wait_s``."""
    share = random.uniform(*SPREAD) if draw is None else draw
    return max(0.05, min(max(wait_s, share * ahead_s), MAX_COUNTDOWN_S, max(left_s, 0.05)))


def _ahead_s(ctx: WorkerContext, env: Envelope) -> float:
    """Seconds the instance's limits need to start the jobs on its lane (its backlog, as the
    worker's lane view last read it), for jobs of this one's size."""
    status = ctx.lane_status(env.instance)
    drain = lane_drain(ctx.config, env.instance, status, env.input_tokens, env.job.max_tokens)
    return backlog_s(drain, status.backlog) or 0.0


def _forward_or_fail(ctx: WorkerContext, env: Envelope, reason: str) -> Outcome:
    if env.step + 1 >= len(env.chain):
        return fail_step(ctx, env, f"chain exhausted; last: {reason}")
    instance = ctx.pools.expand(env.chain[env.step + 1].instance)
    return Forward(env.advanced(instance, reason))


def fail_step(ctx: WorkerContext, env: Envelope, reason: str) -> Done:
    """End ``env``'s job as failed for ``reason``, without a call (or after the last one)."""
    failed = failure_result(env, reason)
    standing = ctx.stores.jobs.record(failed)
    if standing == failed:
        metrics.job_ended(env.instance, env.model, ok=False)
    ctx.layers.after_job_failed(env, standing)
    return Done(standing)
