"""Who reviews: the config's reviewers, Claude Code agent files, and the vital rule over both.

A reviewer comes from ``review.reviewers`` in the config. A Claude Code agent file
(``.claude/agents/<name>.md``: YAML front matter with ``name``, ``description``,
``model: haiku|sonnet|opus|inherit|<model id>`` and optionally ``instance: <lane>``; the body is
the agent's system prompt) named like a reviewer sets that reviewer's model, lane and prompt;
``--agents DIR`` makes every agent file in DIR a reviewer.

Security, architecture and performance reviews are vital whatever a file says: such a
reviewer is never pinned to a lane tagged ``cheap`` nor to a model only cheap lanes serve; the
pin is dropped and the report says so (:attr:`Reviewer.overrides`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

from kernel.config import Config
from kernel.config.models import ReviewerSpec
from kernel.errors import ConfigError
from kernel.taxonomy import Complexity

CHEAP_TAG = "cheap"
MODEL_ALIASES = ("haiku", "sonnet", "opus")
"""Claude Code's model shorthands; each names the newest configured Claude model of that tier."""


@dataclass(frozen=True)
class Reviewer:
    name: str
    focus: str
    vital: bool | None = None
    """True sends the job to vital lanes only, False lets it run on cheap ones; None leaves it
    to the classifier."""
    complexity: Complexity | None = None
    instance: str | None = None
    """Pin a lane; None lets the router choose."""
    model: str | None = None
    max_tokens: int = 800
    system: str | None = None
    source: str = "config"
    """Where the reviewer's settings came from: ``config`` or an agent file's path."""
    overrides: tuple[str, ...] = field(default=())
    """What lanes refused of the reviewer's settings, and why (shown in the report)."""

    @classmethod
    def from_spec(cls, spec: ReviewerSpec) -> Reviewer:
        return cls(
            name=spec.name,
            focus=spec.focus,
            vital=spec.vital,
            complexity=spec.complexity,
            instance=spec.instance,
            model=spec.model,
            max_tokens=spec.max_tokens,
            system=spec.system,
        )


@dataclass(frozen=True)
class AgentFile:
    """The part of a Claude Code agent file a reviewer uses."""

    path: Path
    name: str
    description: str
    model: str | None
    instance: str | None
    body: str


def configured_reviewers(config: Config) -> list[Reviewer]:
    return [Reviewer.from_spec(spec) for spec in config.review.reviewers]


def read_agent(path: Path) -> AgentFile:
    """One agent file; a ConfigError naming the file, the key and the fix if it is malformed."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read agent file: {exc}", source=str(path)) from None
    parts = text.split("---", 2) if text.startswith("---") else []
    if len(parts) < 3:
        raise ConfigError(
            "no front matter", source=str(path),
            fix="start the file with a --- block holding name, description and model",
        )  # fmt: skip
    try:
        front = yaml.safe_load(parts[1]) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"front matter is not YAML: {exc}", source=str(path)) from None
    if not isinstance(front, dict) or not isinstance(front.get("name"), str):
        raise ConfigError(
            "front matter has no name", source=str(path), key="name",
            fix="add `name: <reviewer>` to the front matter",
        )  # fmt: skip
    return AgentFile(
        path=path,
        name=front["name"].strip(),
        description=str(front.get("description") or "").strip(),
        model=_optional_str(front.get("model")),
        instance=_optional_str(front.get("instance")),
        body=parts[2].strip(),
    )


def _optional_str(value: object) -> str | None:
    return str(value).strip() or None if value is not None else None


def read_agents(directory: Path) -> list[AgentFile]:
    """Every ``*.md`` agent file of ``directory`` (none if it does not exist), by name."""
    if not directory.is_dir():
        return []
    return [read_agent(path) for path in sorted(directory.glob("*.md"))]


def resolve_model(config: Config, alias: str | None, source: str) -> str | None:
    """An agent file's ``model``: a configured id, a Claude tier (``haiku``...; the newest
    configured model of that tier), or ``inherit`` / nothing (the router chooses)."""
    if alias is None or alias == "inherit":
        return None
    if alias in config.models:
        return alias
    if alias in MODEL_ALIASES:
        tier = sorted(m for m, spec in config.models.items()
                      if spec.family == "claude" and alias in m)  # fmt: skip
        if tier:
            return tier[-1]
    raise ConfigError(
        f"unknown model {alias!r}", source=source, key="model",
        fix=f"use haiku, sonnet, opus, inherit or one of {', '.join(config.models)}",
    )  # fmt: skip


def from_agent(config: Config, agent: AgentFile, base: Reviewer | None) -> Reviewer:
    """``base`` (or a new reviewer) with the agent file's model, lane and prompt."""
    source = str(agent.path)
    if agent.instance and agent.instance not in (*config.instances, *config.pools):
        raise ConfigError(
            f"unknown lane {agent.instance!r}", source=source, key="instance",
            fix=f"use one of {', '.join([*config.instances, *config.pools])}",
        )  # fmt: skip
    reviewer = base or Reviewer(name=agent.name, focus=agent.description or agent.name)
    return replace(
        reviewer,
        focus=agent.description or reviewer.focus,
        model=resolve_model(config, agent.model, source) or reviewer.model,
        instance=agent.instance or reviewer.instance,
        system=agent.body or reviewer.system,
        source=source,
    )


def select_reviewers(
    config: Config,
    *,
    agents_dir: Path | None = None,
    use_all_agents: bool = False,
    names: Iterable[str] = (),
) -> list[Reviewer]:
    """The reviewers of one review: the config's, updated by agent files named like them
    (every agent file of ``agents_dir`` when ``use_all_agents``), narrowed to ``names`` if
    given, each held to the vital rule."""
    reviewers = {r.name: r for r in configured_reviewers(config)}
    directory = agents_dir or Path(config.review.agents_dir)
    for agent in read_agents(directory):
        base = reviewers.get(agent.name) or reviewers.get(agent.name.removesuffix("-reviewer"))
        if base is not None or use_all_agents:
            merged = from_agent(config, agent, base)
            if use_all_agents and base is None:
                reviewers[agent.name] = merged
            else:
                reviewers[merged.name] = merged
    wanted = list(names)
    if wanted:
        unknown = [n for n in wanted if n not in reviewers]
        if unknown:
            raise ConfigError(
                f"unknown reviewer(s) {', '.join(unknown)}", key="review.reviewers",
                fix=f"use one of {', '.join(reviewers)} or add an agent file",
            )  # fmt: skip
        reviewers = {n: reviewers[n] for n in wanted}
    return [hold_vital(config, r) for r in reviewers.values()]


def is_vital_focus(config: Config, name: str) -> bool:
    lowered = name.lower()
    return any(focus in lowered for focus in config.review.vital_focus)


def hold_vital(config: Config, reviewer: Reviewer) -> Reviewer:
    """A security, architecture or performance reviewer made vital, its cheap pins dropped
    (each drop noted in ``overrides``); any other reviewer as it is."""
    if not is_vital_focus(config, reviewer.name):
        return reviewer
    notes = list(reviewer.overrides)
    if reviewer.vital is not True:
        if reviewer.vital is False:
            notes.append(f"vital: {reviewer.name} reviews are vital (set vital: false)")
        reviewer = replace(reviewer, vital=True)
    if reviewer.instance and _cheap_target(config, reviewer.instance):
        notes.append(
            f"instance {reviewer.instance} dropped: it is tagged cheap and a {reviewer.name}"
            " review is vital (from " + reviewer.source + ")"
        )
        reviewer = replace(reviewer, instance=None)
    if reviewer.model and _only_cheap(config, reviewer.model):
        notes.append(
            f"model {reviewer.model} dropped: only cheap lanes serve it and a {reviewer.name}"
            " review is vital (from " + reviewer.source + ")"
        )
        reviewer = replace(reviewer, model=None)
    return replace(reviewer, overrides=tuple(notes))


def _cheap_target(config: Config, target: str) -> bool:
    return any(CHEAP_TAG in config.instances[m].tags for m in config.members(target))


def _only_cheap(config: Config, model: str) -> bool:
    serving = [spec for spec in config.instances.values() if model in spec.models]
    return bool(serving) and all(CHEAP_TAG in spec.tags for spec in serving)
