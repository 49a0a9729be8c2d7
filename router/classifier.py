"""PLACEHOLDER: replaced by the real classifier. Signature is the contract."""

from __future__ import annotations

from router.job import Job
from router.taxonomy import Classification, Complexity, TaskType


def classify(job: Job) -> Classification:
    text = job.text()
    return Classification(
        type=job.task_type or TaskType.SIMPLE_TASK,
        complexity=job.complexity or Complexity.MEDIUM,
        input_tokens=len(text) // 4 + 1,
        output_tokens=min(job.max_tokens, 512),
    )
