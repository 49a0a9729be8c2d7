"""A stand-in classifier for router tests that must not depend on the real one's judgement."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lanes.kernel.taxonomy import Classification, Complexity, TaskType
from lanes.router.job import Job


def fixed(**kw: Any) -> Callable[[Job], Classification]:
    """A classifier that always answers the same (defaults: medium code-review, small).

    Like the real one, it lets the job's ``vital`` override its own judgement.
    """
    fields: dict[str, Any] = {
        "type": TaskType.CODE_REVIEW,
        "complexity": Complexity.MEDIUM,
        "input_tokens": 500,
        "output_tokens": 400,
    }
    clf = Classification(**{**fields, **kw})

    def classify(job: Job) -> Classification:
        if job.vital is None or job.vital == clf.vital:
            return clf
        reason = "the job says vital: true" if job.vital else None
        return clf.model_copy(update={"vital": job.vital, "vital_reason": reason})

    return classify
