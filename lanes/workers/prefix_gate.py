"""Jobs that share a cacheable prefix on one instance: the first writes it, the others wait
for its answer and then read it (a provider makes a cache entry readable only once the call
that wrote it has answered, so a fan-out sent at once would pay for the write on every job).

A job waits at most ``caching.affinity_max_wait_s`` in all; past it, it calls and pays for
the prefix in full. A writer that dies holds the gate until its lease (the instance's call
timeout) lapses.
"""

from __future__ import annotations

import logging

from lanes.broker.message import Envelope
from lanes.kernel.errors import InfrastructureError
from lanes.router.prefix import cacheable, prefix_digest, ttl_s
from lanes.stores.prefixes import Gate
from lanes.workers.context import WorkerContext
from lanes.workers.outcome import Retry
from lanes.workers.providers import ProviderResponse

log = logging.getLogger("lanes.workers")

RECHECK_S = 0.25
"""How soon a job waiting for a writer looks again."""


def _digest(ctx: WorkerContext, env: Envelope) -> str | None:
    prefix = env.job.cache_prefix
    if not cacheable(ctx.config, env.model, prefix):
        return None
    assert prefix is not None
    return prefix_digest(prefix)


def wait_for_writer(ctx: WorkerContext, env: Envelope) -> Retry | None:
    """A retry when another job is writing ``env``'s prefix on its instance; else None (call
    now: the prefix is cached, this job writes it, or it has waited long enough)."""
    digest = _digest(ctx, env)
    if digest is None or env.waited_s >= ctx.config.caching.affinity_max_wait_s:
        return None
    lease_s = ctx.config.instances[env.instance].timeout_s
    gate = ctx.stores.prefixes.gate(digest, env.model, env.instance, env.job.id, lease_s)
    if gate is not Gate.WAIT:
        return None
    return Retry(env.waiting(RECHECK_S), RECHECK_S)


def after_call(ctx: WorkerContext, env: Envelope, response: ProviderResponse | None) -> None:
    """Record that the instance holds the prefix (a response that wrote or read it), or lift
    this job's gate (a failed call, or a provider that cached nothing). Redis away: logged
    and left, never raised (the call is made; the gate lapses with its lease)."""
    digest = _digest(ctx, env)
    if digest is None:
        return
    prefixes = ctx.stores.prefixes
    cached = response is not None and (
        response.cache_creation_input_tokens + response.cache_read_input_tokens > 0
    )
    try:
        if cached:
            ttl = ttl_s(env.job.cache_ttl)
            prefixes.written(digest, env.model, env.instance, env.job.id, ttl)
        else:
            prefixes.release(digest, env.model, env.instance, env.job.id)
    except InfrastructureError as exc:
        log.warning("job %s: where its prefix is cached was not recorded: %s", env.job.id, exc)
