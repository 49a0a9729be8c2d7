"""General, non-software requests: the model's ``other`` class.

Without them the model would call every request one of the five software-change types,
a recipe question included. The rows are the human-written instructions of
``yizhongw/self-instruct`` (Apache-2.0): its 175 seed tasks and its 252 user-oriented
instructions, less those inspired by programming sites (their text is about code).
"""

from __future__ import annotations

import json
from pathlib import Path

from lanes.bench.training.commits import Row, run_git
from lanes.kernel.taxonomy import TaskType

REPOSITORY = "yizhongw/self-instruct"
LICENCE = "Apache-2.0"
FILES = ("data/seed_tasks.jsonl", "human_eval/user_oriented_instructions.jsonl")
CODE_APPS = frozenset({"leetcode", "github", "stackoverflow", "geeksforgeeks", "w3schools"})
"""Motivating apps whose instructions are about code: left out of ``other``."""
OTHER = "other"


def instruction_rows(gitdir: Path) -> list[Row]:
    """The ``other`` rows from a copy of the repository at ``gitdir``."""
    rows: list[Row] = []
    seen: set[str] = set()
    for path in FILES:
        text = run_git(gitdir, "show", f"HEAD:{path}")
        for line in text.splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            if str(item.get("motivation_app", "")).lower() in CODE_APPS:
                continue
            instruction = str(item["instruction"]).strip()
            if instruction and instruction.lower() not in seen:
                seen.add(instruction.lower())
                rows.append(Row(instruction, TaskType.SIMPLE_TASK, OTHER, REPOSITORY))
    return rows
