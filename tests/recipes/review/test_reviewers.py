"""Who reviews: config reviewers, Claude Code agent files, and the vital rule over both."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lanes.kernel.config import Config
from lanes.kernel.errors import ConfigError
from lanes.recipes.review.reviewers import (
    choose_reviewers,
    read_agent,
    resolve_model,
    select_reviewers,
)


def _agent(directory: Path, name: str, front: str, body: str = "") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.md"
    path.write_text(f"---\nname: {name}\n{front}---\n{body}\n", encoding="utf-8")
    return path


def test_an_agent_file_named_like_a_reviewer_sets_its_model_lane_and_prompt(
    example_config: Config, tmp_path: Path
) -> None:
    _agent(tmp_path, "type-safety", "description: strict typing\nmodel: haiku\n"
           "instance: claude1\n", "You check types.")  # fmt: skip
    _agent(tmp_path, "test-writer", "description: writes tests\nmodel: sonnet\n")
    reviewers = {r.name: r for r in select_reviewers(example_config, agents_dir=tmp_path)}
    assert set(reviewers) == {"type-safety", "security", "architecture", "performance"}
    typed = reviewers["type-safety"]
    assert (typed.model, typed.instance) == ("claude-haiku-4-5", "claude1")
    assert (typed.focus, typed.system) == ("strict typing", "You check types.")
    assert typed.source.endswith("type-safety.md") and typed.vital is False
    assert reviewers["security"].source == "config"


def test_with_use_all_agents_every_agent_file_is_a_reviewer(
    example_config: Config, tmp_path: Path
) -> None:
    _agent(tmp_path, "test-writer", "description: writes tests\nmodel: inherit\n")
    names = [r.name for r in select_reviewers(example_config, agents_dir=tmp_path,
                                               use_all_agents=True)]  # fmt: skip
    assert "test-writer" in names and len(names) == 5
    only = select_reviewers(example_config, agents_dir=tmp_path, use_all_agents=True,
                            names=["test-writer"])  # fmt: skip
    assert [(r.name, r.model) for r in only] == [("test-writer", None)]


def test_a_vital_reviewer_pinned_to_a_cheap_lane_is_overridden_and_says_so(
    example_config: Config, tmp_path: Path
) -> None:
    _agent(tmp_path, "security", "description: security\nmodel: glm-4.6\ninstance: zai\n")
    _agent(tmp_path, "performance-reviewer", "description: perf\nmodel: opus\n")
    reviewers = {r.name: r for r in select_reviewers(example_config, agents_dir=tmp_path)}
    security = reviewers["security"]
    assert security.vital is True
    assert security.instance is None and security.model is None
    assert any("instance zai dropped" in note for note in security.overrides)
    assert any("model glm-4.6 dropped" in note for note in security.overrides)
    perf = reviewers["performance"]
    assert perf.model == "claude-opus-4-5" and perf.overrides == ()


def test_a_vital_reviewer_set_not_vital_in_the_config_is_made_vital(
    example_config: Config,
) -> None:
    data = example_config.model_dump(mode="json")
    data["review"]["reviewers"][1]["vital"] = False
    config = Config.model_validate(data)
    security = select_reviewers(config, agents_dir=Path("/nonexistent"), names=["security"])[0]
    assert security.vital is True and "vital" in security.overrides[0]


def test_agent_file_errors_name_the_file_the_key_and_the_fix(
    example_config: Config, tmp_path: Path
) -> None:
    bad_lane = _agent(tmp_path / "a", "security", "instance: nowhere\n")
    with pytest.raises(ConfigError) as err:
        select_reviewers(example_config, agents_dir=bad_lane.parent)
    assert str(bad_lane) in str(err.value) and "instance" in str(err.value)
    assert "claude1" in str(err.value)
    with pytest.raises(ConfigError, match="model: unknown model 'gpt-9'"):
        resolve_model(example_config, "gpt-9", "x.md")
    no_front = tmp_path / "plain.md"
    no_front.write_text("just text", encoding="utf-8")
    with pytest.raises(ConfigError, match="front matter"):
        read_agent(no_front)
    with pytest.raises(ConfigError, match="unknown reviewer"):
        select_reviewers(example_config, agents_dir=tmp_path / "none", names=["style"])


def test_a_bad_review_config_is_refused_at_load(example_config: Config) -> None:
    data = example_config.model_dump(mode="json")
    data["review"]["reviewers"][0]["instance"] = "nowhere"
    with pytest.raises(ValueError, match=r"review.reviewers\[0\].instance: unknown lane"):
        Config.model_validate(data)


def test_agent_files_named_like_no_reviewer_are_listed_as_not_used(
    example_config: Config, tmp_path: Path
) -> None:
    _agent(tmp_path, "security", "description: security\n")
    unused = _agent(tmp_path, "test-writer", "description: writes tests\nmodel: sonnet\n")
    choice = choose_reviewers(example_config, agents_dir=tmp_path)
    assert choice.unused_agents == [unused]
    (note,) = choice.notes()
    assert str(unused) in note and f"--agents {tmp_path}" in note
    every = choose_reviewers(example_config, agents_dir=tmp_path, use_all_agents=True)
    assert every.unused_agents == [] and every.notes() == []
    assert "test-writer" in [r.name for r in every.reviewers]


@pytest.mark.timeout(30)  # a FIFO read would block: fail, do not hang
def test_an_agent_file_that_is_not_a_regular_file_is_refused_not_waited_on(
    example_config: Config, tmp_path: Path
) -> None:
    os.mkfifo(tmp_path / "security.md")
    with pytest.raises(ConfigError, match="is a FIFO, not a regular file"):
        select_reviewers(example_config, agents_dir=tmp_path)


def test_agent_front_matter_ends_at_a_line_of_three_dashes(tmp_path: Path) -> None:
    path = tmp_path / "a.md"
    path.write_text("---\nname: a---b\ndescription: x --- y\n---\nBody --- text\n", "utf-8")
    agent = read_agent(path)
    assert (agent.name, agent.description, agent.body) == ("a---b", "x --- y", "Body --- text")
    path.write_text("---\nname: '  '\n---\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="no name"):
        read_agent(path)
