"""Steps of a pipeline: Celery chain links, each a ``lanes.run`` job fed by the one before.

A later step's prompt holds :data:`PREVIOUS` where the previous step's answer goes. In a
Celery chain the worker gets the previous step's return value as an extra first argument: its
summary (job id, status, lane, model), never its reply. :func:`feed` reads that job's result
from the job store and puts its text in place (the message's response cache key no longer
describes the job: it is cleared, for the worker's layers to key the fed job again). A step
after a failed one does not run: it fails with the reason, so the chain ends with a failed
result.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lanes.broker.message import Envelope
from lanes.broker.result import Result

PREVIOUS = "\u27e6lanes:previous\u27e7"
"""Where a step's prompt takes the previous step's answer (``{previous}`` in a pipeline file)."""


def feed(
    env: Envelope,
    previous: Any,
    result_of: Callable[[str], Result | None],
    max_job_bytes: int,
) -> Envelope | str:
    """``env`` with the previous step's answer in its prompt, or why the step cannot run.

    ``previous`` is what the previous step returned (a ``lanes.run`` summary); ``result_of``
    reads a job's recorded result (``JobStore.result``; it may raise InfrastructureError)."""
    job_id = previous.get("job_id") if isinstance(previous, dict) else None
    if not isinstance(job_id, str):
        return f"the previous step returned no lanes job ({str(previous)[:200]!r})"
    before = result_of(job_id)
    if before is None:
        return f"the previous step (job {job_id}) has no recorded result (see result_ttl_s)"
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
    return env.model_copy(update={"job": job, "cache_key": None})
