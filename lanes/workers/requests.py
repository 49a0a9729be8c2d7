"""The provider request of one step of a job: the same for a call and a batched request."""

from __future__ import annotations

from lanes.broker.message import Envelope
from lanes.kernel.config import Config
from lanes.workers.providers.base import ProviderRequest


def provider_request(config: Config, env: Envelope) -> ProviderRequest:
    job = env.job
    return ProviderRequest(
        model=env.model,
        messages=job.as_messages(),
        max_tokens=job.max_tokens,
        system=job.system,
        temperature=job.temperature,
        timeout_s=config.instances[env.instance].timeout_s,
        cache_prefix=job.cache_prefix,
        cache_ttl=job.cache_ttl,
    )
