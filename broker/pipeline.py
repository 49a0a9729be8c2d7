"""Steps of a pipeline: Celery chain links, each a ``lanes.run`` job fed by the one before.

A later step's prompt holds :data:`PREVIOUS` where the previous step's answer goes. In a
Celery chain the worker gets that step's result as an extra first argument; :func:`feed` puts
its text in place (and re-keys the response cache for the fed prompt). A step after a failed
one does not run: it fails with the reason, so the chain ends with a failed result.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from broker.message import Envelope
from broker.result import Result
from kernel.config import CacheSpec
from router.cache_key import store_key

PREVIOUS = "\u27e6lanes:previous\u27e7"
"""Where a step's prompt takes the previous step's answer (``{previous}`` in a pipeline file)."""


def feed(env: Envelope, previous: Any, cache: CacheSpec, max_job_bytes: int) -> Envelope | str:
    """``env`` with the previous step's answer in its prompt, or why the step cannot run."""
    try:
        before = Result.model_validate(previous)
    except ValidationError:
        return f"the previous step returned no lanes result ({str(previous)[:200]!r})"
    if not before.ok:
        return f"the previous step (job {before.job_id}) failed: {before.error}"
    if env.job.prompt is None:
        return f"job {env.job.id} is a pipeline step without a prompt to take the answer"
    prompt = env.job.prompt
    if PREVIOUS in prompt:
        prompt = prompt.replace(PREVIOUS, before.text)
    else:
        prompt = f"{prompt}\n\n{before.text}"
    job = env.job.model_copy(update={"prompt": prompt})
    if job.payload_bytes() > max_job_bytes:
        return (
            f"with the previous step's answer, job {job.id} carries {job.payload_bytes()} bytes;"
            f" the limit is {max_job_bytes} (max_job_bytes): lower that step's max_tokens"
        )
    return env.model_copy(update={"job": job, "cache_key": store_key(job, spec=cache)})
