"""Checking an answer that must be JSON of a job's ``output_schema``.

An Anthropic lane answers by calling the forced tool (:data:`OUTPUT_TOOL`), an OpenAI-compatible
one in its message text (its ``response_format``); a text answer may come wrapped in a Markdown
code fence, which is taken off. The answer that stands is the JSON alone, in ``text`` and as
one text block. One that does not parse or match is a :class:`BadAnswer` carrying the call's
usage: the call is charged, and the job is retried and then falls back like any failed call.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any

import jsonschema

from lanes.kernel.errors import BadAnswer
from lanes.router.content import OUTPUT_TOOL
from lanes.router.job import Job
from lanes.workers.providers.base import ProviderResponse

_FENCE = re.compile(r"^```[A-Za-z0-9_-]*\s*\n(.*)\n```\s*$", re.DOTALL)


def checked(job: Job, response: ProviderResponse) -> ProviderResponse:
    """``response`` as the answer that stands for ``job``; raises :class:`BadAnswer`."""
    schema = job.output_schema
    if schema is None:
        return response
    value = _answer(response)
    problem = _mismatch(value, schema)
    if problem is not None:
        raise BadAnswer(
            f"the answer does not match output_schema: {problem}", usage=response.usage()
        )
    text = json.dumps(value, ensure_ascii=False)
    stop = "end_turn" if response.stop_reason == "tool_use" else response.stop_reason
    return replace(response, text=text, content=[{"type": "text", "text": text}], stop_reason=stop)


def _answer(response: ProviderResponse) -> Any:
    for block in response.content:
        if block.get("type") == "tool_use" and block.get("name") == OUTPUT_TOOL:
            return block.get("input")
    text = response.text.strip()
    fenced = _FENCE.match(text)
    try:
        return json.loads(fenced.group(1) if fenced else text)
    except ValueError:
        raise BadAnswer(
            f"the answer is not JSON (output_schema asks for it): {text[:80]!r}",
            usage=response.usage(),
        ) from None


def _mismatch(value: Any, schema: dict[str, Any]) -> str | None:
    validator = jsonschema.validators.validator_for(schema)(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(value))
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "the top level"
    return f"at {where}: {error.message[:200]}"
