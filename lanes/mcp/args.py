"""The arguments of the ``lanes mcp`` tools, with the descriptions and bounds the client sees
(the SDK validates every call against them before a tool runs), and the server's own bound.

Light to import (no SDK, no client): ``lanes mcp --help`` reads its default from here."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from lanes.kernel.taxonomy import Complexity, StrategyName, TaskType

MAX_WAITS = 32
"""Default bound on the tool calls waiting for jobs at once (``lanes mcp --max-waits``)."""

Prompt = Annotated[
    str,
    Field(description="The whole task, self-contained: the model sees nothing of this chat."),
]
System = Annotated[str | None, Field(description="Optional system prompt.")]
MaxTokens = Annotated[int, Field(ge=1, le=128000, description="Longest reply, in tokens.")]
WaitS = Annotated[
    float,
    Field(gt=0, le=3600, description="Seconds to wait for the answer before giving up."),
]
TaskTypeHint = Annotated[
    TaskType | None, Field(description="Task type hint; unset: the classifier decides.")
]
ComplexityHint = Annotated[
    Complexity | None, Field(description="Complexity hint; unset: the classifier decides.")
]
Vital = Annotated[
    bool | None,
    Field(
        description="true: vital (costly if wrong), never on a cheap lane; false: cheap lanes"
        " are acceptable; unset: the classifier decides."
    ),
]
Instance = Annotated[str | None, Field(description="Pin a lane or pool (see list_models).")]
Model = Annotated[str | None, Field(description="Pin a model (see list_models).")]
Strategy = Annotated[
    StrategyName | None, Field(description="Routing strategy; unset: the configured one.")
]
Project = Annotated[str | None, Field(description="Project the job's spend is booked to.")]
