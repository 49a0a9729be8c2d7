"""What a chat completions body may ask for: options lanes does not run are refused by
name, whatever value turns them on (``true`` is no ``1`` here)."""

from __future__ import annotations

from typing import Any

import pytest

from lanes.kernel.errors import JobError
from lanes.serve.openai_in import job_fields

ASK = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    ("extra", "name"),
    [({"n": 2}, "n"), ({"logprobs": True}, "logprobs"), ({"top_logprobs": 1}, "top_logprobs"),
     ({"modalities": ["audio"]}, "modalities")],
)  # fmt: skip
def test_options_lanes_does_not_run_are_refused(extra: dict[str, Any], name: str) -> None:
    with pytest.raises(JobError, match=f"^{name}: not supported"):
        job_fields({"messages": ASK, **extra})


def test_options_that_are_off_are_accepted() -> None:
    fields = job_fields({"messages": ASK, "n": 1, "logprobs": False, "modalities": []})
    assert fields["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
