"""The response cache's request key: which jobs may share one cached answer.

Two jobs get the same key exactly when a provider would be sent the same request, whichever
lane and model end up answering it: the key is model-agnostic, so an answer bought on one lane
serves the same question routed anywhere. What goes in, and why:

====================  =====  ===============================================================
field                 in?    why
====================  =====  ===============================================================
messages (or prompt)  in     the question itself; a ``prompt`` equals one user message
system                in     changes the answer; ``None`` and ``""`` both mean "no system";
                             blocks count as their joined text
top_p, stop_sequences in     change the answer; only set ones enter the key (keys of jobs
tools, tool_choice,          without them stay as they were)
output_schema
temperature           in     0 asks for one answer, 1 for a sample; ``None`` (the provider's
                             default) stays distinct from an explicit value
max_tokens            in     a smaller budget can cut the answer short
project               in     unless ``cache.share_across_projects``: a project only reads
                             answers it paid for (and no other project's prompts)
model, instance       out    the key is model-agnostic: routing chooses who answers, the
                             cache only whether anyone needs to
id, idempotency_key   out    unique per submit: they would make every key unique
metadata, user        out    the caller's labels, never sent to the provider; the project is
                             the sharing boundary
task_type, vital,     out    they steer routing, not the request a provider sees; a caller
constraints, ...             who must not be served a cached answer opts out (``cache``)
cache                 out    the job's own opt-out of *reading*: :func:`store_key` ignores it,
                             :func:`request_key` returns None
====================  =====  ===============================================================

Text is normalised only where it cannot change the answer: leading and trailing whitespace
is stripped and ``\\r\\n`` becomes ``\\n``. Whitespace inside a message is kept as it is
(indentation matters in code). The payload is canonical JSON (sorted keys, no spaces) with
a format version, hashed with SHA-256: a change of this recipe bumps
:data:`KEY_VERSION`, so old entries are simply never read again.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from lanes.kernel.config.models import CacheSpec
from lanes.router.job import Job

KEY_VERSION = 1
"""Part of every key: bump it when the recipe changes, so old entries fall out unread."""


def normalize_text(value: str | None) -> str:
    """``value`` with Windows line endings made ``\\n`` and outer whitespace stripped;
    ``None`` is ``""``."""
    return (value or "").replace("\r\n", "\n").strip()


def request_payload(job: Job, *, spec: CacheSpec) -> dict[str, Any]:
    """The normalised fields the key is the digest of (see the module docstring)."""
    messages = [
        {"role": m["role"], "content": _normalize_content(m["content"])} for m in job.as_messages()
    ]
    payload: dict[str, Any] = {
        "v": KEY_VERSION,
        "messages": messages,
        "system": normalize_text(job.system_text()),
        "temperature": job.temperature,
        "max_tokens": job.max_tokens,
        "project": None if spec.share_across_projects else job.project,
    }
    if job.cache_prefix:  # only when set: the keys of jobs without one stay as they were
        payload["prefix"] = normalize_text(job.cache_prefix)
    for name, value in _request_options(job).items():
        if value is not None:  # likewise
            payload[name] = value
    return payload


def _normalize_content(content: Any) -> Any:
    """Text normalised; blocks (images, tool calls and results) as they are."""
    return normalize_text(content) if isinstance(content, str) else content


def _request_options(job: Job) -> dict[str, Any]:
    """The fields besides the conversation that change what a provider answers."""
    dumped = job.model_dump(
        mode="json", include={"tools", "tool_choice", "output_schema"}, exclude_none=True
    )
    return {
        "top_p": job.top_p,
        "stop_sequences": job.stop_sequences,
        "tools": dumped.get("tools"),
        "tool_choice": dumped.get("tool_choice"),
        "output_schema": dumped.get("output_schema"),
    }


def store_key(job: Job, *, spec: CacheSpec) -> str | None:
    """The key ``job``'s answer is stored under, or None when the cache is off. Set even
    for a job that opted out (``cache: false`` only stops it being *answered* from the
    cache: its fresh answer still serves later jobs)."""
    if not spec.enabled:
        return None
    data = json.dumps(request_payload(job, spec=spec), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(data.encode()).hexdigest()


def request_key(job: Job, *, spec: CacheSpec) -> str | None:
    """The SHA-256 hex key to look ``job``'s answer up under, or None when the cache is off
    or the job opted out (``cache: false``).

    Example::

        key = request_key(Job(prompt="What is 2+2?", temperature=0), spec=config.cache)
    """
    if not job.cache:
        return None
    return store_key(job, spec=spec)
