"""The provider request of one step of a job: the same for a call and a batched request."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from lanes.broker.message import Envelope
from lanes.kernel.config import Config
from lanes.workers.providers.base import ProviderRequest


def provider_request(config: Config, env: Envelope) -> ProviderRequest:
    job = env.job
    return ProviderRequest(
        model=env.model,
        messages=job.as_messages(),
        max_tokens=job.max_tokens,
        system=_system(job.system),
        temperature=job.temperature,
        top_p=job.top_p,
        stop_sequences=job.stop_sequences,
        tools=[t.model_dump(mode="json", exclude_none=True) for t in job.tools or ()] or None,
        tool_choice=_dump(job.tool_choice),
        output_schema=job.output_schema,
        timeout_s=config.instances[env.instance].timeout_s,
        cache_prefix=job.cache_prefix,
        cache_ttl=job.cache_ttl,
    )


def _system(system: str | list[Any] | None) -> str | list[dict[str, Any]] | None:
    if isinstance(system, list):
        return [block.model_dump(mode="json", exclude_none=True) for block in system]
    return system


def _dump(value: BaseModel | None) -> dict[str, Any] | None:
    return None if value is None else value.model_dump(mode="json", exclude_none=True)
