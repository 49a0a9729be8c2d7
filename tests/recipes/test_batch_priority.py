"""A batch's jobs are batch work (interactive jobs overtake them on a lane) unless a line says
otherwise."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lanes.recipes.batch import run_batch
from lanes.recipes.batch.run import LINE_ID_KEY
from lanes.router.job import parse_job
from tests.recipes.test_fuzz_batch import Handle


class Recording:
    def __init__(self) -> None:
        self.jobs: list[dict[str, Any]] = []

    def submit(self, job: dict[str, Any], *, strategy: str | None = None) -> Handle:
        parse_job(job)
        self.jobs.append(job)
        return Handle(job)


def test_batch_lines_are_batch_work_unless_they_say_otherwise(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    lines = [{"id": 1, "prompt": "a"}, {"id": 2, "prompt": "b", "priority": "interactive"}]
    src.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    client = Recording()
    summary = run_batch(client, src, tmp_path / "out.jsonl", concurrency=1, timeout_s=5)
    assert summary.ok == 2
    by_id = {job["metadata"][LINE_ID_KEY]: job["priority"] for job in client.jobs}
    assert by_id == {"1": "batch", "2": "interactive"}
