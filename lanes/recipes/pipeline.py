"""Pipelines: steps across lanes as one Celery chain, each step routed like any job.

A pipeline file (YAML)::

    name: extract-synthesise
    steps:
      - name: extract
        instance: koala                 # any job field: instance, model, task_type, vital...
        max_tokens: 600
        prompt: |
          Extract the structure of this document as JSON ...
          {input}
      - name: synthesise
        instance: claude1
        prompt: |
          Write a one-page brief from this structure:
          {previous}

A top-level ``cache_prefix`` (or a step's own) is text each step reads first, ``{input}``
filled in: feed one document to several steps through it and the provider bills it in full
once, then at its cache-read rate (``cache_ttl: 1h`` for steps more than 5 minutes apart).

``{input}`` is the pipeline's input text; ``{previous}`` the answer of the step before (it is
appended when a later step's prompt does not say where). A step after a failed one does not
run; the pipeline's result says which step failed and why. Pipeline steps are never answered
from the response cache (each step's fresh answer is still stored there).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lanes.broker.chain_links import PREVIOUS
from lanes.broker.handle import JobHandle
from lanes.broker.result import Result
from lanes.data import package_file
from lanes.kernel.errors import ConfigError
from lanes.recipes.ports import RecipeClient
from lanes.recipes.rows import job_rows

EXAMPLE = package_file("pipelines/extract-synthesise.yaml")
EXAMPLE_INPUT = package_file("sample-document.md")
INPUT = "{input}"
PREVIOUS_FIELD = "{previous}"
STEP_KEYS = {"name", "prompt", "system", "max_tokens", "temperature", "task_type", "complexity",
             "vital", "instance", "model", "strategy", "chain", "constraints", "cache_prefix",
             "cache_ttl"}  # fmt: skip


@dataclass(frozen=True)
class Pipeline:
    name: str
    steps: list[dict[str, Any]]
    """Each step: ``name``, ``prompt`` (a template) and optional job fields."""
    cache_prefix: str | None = None
    """What every step without a ``cache_prefix`` of its own reads first (a template)."""

    def jobs(self, input_text: str, *, project: str | None = None) -> list[dict[str, Any]]:
        """The steps as jobs: ``{input}`` filled in, ``{previous}`` marked for the worker."""
        jobs = []
        for index, step in enumerate(self.steps):
            fields = {k: v for k, v in step.items() if k != "name"}
            prompt = str(fields.pop("prompt")).replace(PREVIOUS_FIELD, PREVIOUS)
            fields["prompt"] = prompt.replace(INPUT, input_text) if index == 0 or INPUT in prompt \
                else prompt  # fmt: skip
            prefix = fields.get("cache_prefix", self.cache_prefix)
            if prefix:
                fields["cache_prefix"] = str(prefix).replace(INPUT, input_text)
            fields["cache"] = False
            fields["metadata"] = {"pipeline": self.name, "step": str(step["name"])}
            if project is not None:
                fields["project"] = project
            jobs.append(fields)
        return jobs


def parse_pipeline(data: object, source: str) -> Pipeline:
    """A pipeline from parsed YAML; a ConfigError naming the source, the key and the fix."""
    if not isinstance(data, dict) or not isinstance(data.get("steps"), list) or not data["steps"]:
        raise ConfigError("no steps", source=source, key="steps",
                          fix="give a list of steps, each with a name and a prompt")  # fmt: skip
    steps = []
    for i, step in enumerate(data["steps"]):
        key = f"steps[{i}]"
        if not isinstance(step, dict) or not step.get("prompt") or not step.get("name"):
            raise ConfigError("a step needs a name and a prompt", source=source, key=key)
        unknown = sorted(set(step) - STEP_KEYS)
        if unknown:
            raise ConfigError(f"unknown key(s) {', '.join(unknown)}", source=source, key=key,
                              fix=f"use {', '.join(sorted(STEP_KEYS))}")  # fmt: skip
        steps.append(dict(step))
    shared = data.get("cache_prefix")
    if shared is not None and (not isinstance(shared, str) or not shared.strip()):
        raise ConfigError("cache_prefix must be text", source=source, key="cache_prefix")
    first = str(steps[0]["prompt"]) + str(steps[0].get("cache_prefix", shared) or "")
    if INPUT not in first:
        raise ConfigError(
            "the first step's prompt does not use {input}", source=source,
            key="steps[0].prompt", fix="put {input} where the input goes (or in cache_prefix)",
        )  # fmt: skip
    name = str(data.get("name") or Path(source).stem)
    return Pipeline(name=name, steps=steps, cache_prefix=shared)


def load_pipeline(path: Path) -> Pipeline:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read pipeline file: {exc}", source=str(path)) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"not YAML: {exc}", source=str(path)) from None
    return parse_pipeline(data, str(path))


@dataclass(frozen=True)
class PipelineRun:
    """Every step's result, in order (a step that never finished has None: it was cancelled
    at the deadline). ``handles``: the steps' jobs, in order (their rows name a cancelled
    step's job and where it was sent)."""

    pipeline: str
    steps: list[str]
    results: list[Result | None]
    elapsed_s: float
    calls_in_flight: int = 0
    """Calls of cancelled steps that had started: they finish and are billed."""
    handles: list[JobHandle] = field(default_factory=list)
    cancel_reason: str = "not finished in time"
    """Why the unfinished steps were cancelled (their rows' error says it)."""

    @property
    def ok(self) -> bool:
        return all(r is not None and r.ok for r in self.results)

    @property
    def output(self) -> str:
        last = self.results[-1]
        return last.text if last is not None and last.ok else ""

    def to_json(self) -> dict[str, Any]:
        rows = job_rows(self.results, self.handles, f"cancelled: {self.cancel_reason}")
        return {
            "pipeline": self.pipeline,
            "ok": self.ok,
            "elapsed_s": round(self.elapsed_s, 3),
            "total_cost_usd": round(sum(r.cost_usd for r in self.results if r), 6),
            "calls_in_flight": self.calls_in_flight,
            "steps": [{"step": name, **row} for name, row in zip(self.steps, rows, strict=True)],
            "output": self.output,
        }


def run_pipeline(
    client: RecipeClient,
    pipeline: Pipeline,
    input_text: str,
    *,
    project: str | None = None,
    strategy: str | None = None,
    timeout_s: float = 600.0,
    on_sent: Callable[[], None] | None = None,
) -> PipelineRun:
    """Send ``pipeline`` as one Celery chain and wait for every step, ``timeout_s`` at most
    from the start (routing and sending included): the steps unfinished then are cancelled.
    A step refused at submit is named in the error; ``on_sent`` runs once the chain is sent.
    :class:`NoWorker` (every step cancelled) when a step waits on a lane with no worker."""
    started = time.monotonic()
    names = [str(step["name"]) for step in pipeline.steps]
    handles = client.submit_chain(
        pipeline.jobs(input_text, project=project),
        strategy=strategy,
        labels=[f"pipeline step {name!r}" for name in names],
    )
    if on_sent is not None:
        on_sent()
    reason = f"pipeline not finished within its {timeout_s:g}s timeout"
    got = client.collect(handles, started + timeout_s, reason)
    if got.no_worker is not None:
        raise got.no_worker.noting(f"; {len(got.cancelled)} step(s) of the pipeline cancelled")
    return PipelineRun(pipeline.name, names, got.results, time.monotonic() - started,
                       got.calls_in_flight, handles, reason)  # fmt: skip


async def arun_pipeline(
    client: RecipeClient,
    pipeline: Pipeline,
    input_text: str,
    *,
    project: str | None = None,
    strategy: str | None = None,
    timeout_s: float = 600.0,
) -> PipelineRun:
    """:func:`run_pipeline` for asyncio (runs in a thread)."""
    return await asyncio.to_thread(run_pipeline, client, pipeline, input_text, project=project,
                                   strategy=strategy, timeout_s=timeout_s)  # fmt: skip
