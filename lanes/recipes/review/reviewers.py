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

from lanes.kernel.config import Config
from lanes.kernel.config.models import ReviewerSpec
from lanes.kernel.errors import ConfigError, JobError
from lanes.kernel.taxonomy import Complexity
from lanes.recipes.review.diffs import read_regular

CHEAP_TAG = "cheap"
AGENT_FILE_MAX_BYTES = 1024 * 1024
"""Largest agent file read (its body is a system prompt)."""
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
    """One agent file; a ConfigError naming the file, the key and the fix if it is malformed
    (or not a regular file, or larger than AGENT_FILE_MAX_BYTES)."""
    try:
        data = read_regular(path, "agent file", AGENT_FILE_MAX_BYTES)
        text = data.decode("utf-8")
    except JobError as exc:
        raise ConfigError(str(exc), source=str(path)) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text (byte {exc.start})", source=str(path)) from None
    head, body = _front_matter(text, path)
    try:
        front = yaml.safe_load(head) or {}
    except (yaml.YAMLError, RecursionError) as exc:
        raise ConfigError(f"front matter is not YAML: {exc}", source=str(path)) from None
    name = front.get("name") if isinstance(front, dict) else None
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(
            "front matter has no name", source=str(path), key="name",
            fix="add `name: <reviewer>` to the front matter",
        )  # fmt: skip
    return AgentFile(
        path=path,
        name=name.strip(),
        description=_optional_str(front.get("description")) or "",
        model=_optional_str(front.get("model")),
        instance=_optional_str(front.get("instance")),
        body=body.strip(),
    )


def _front_matter(text: str, path: Path) -> tuple[str, str]:
    """The YAML between the first line ``---`` and the next line ``---``, and the rest."""
    lines = text.splitlines(keepends=True)
    ends = [i for i, line in enumerate(lines) if line.strip() == "---"]
    if len(ends) < 2 or ends[0] != 0:
        raise ConfigError(
            "no front matter", source=str(path),
            fix="start the file with a --- block holding name, description and model",
        )  # fmt: skip
    return "".join(lines[1 : ends[1]]), "".join(lines[ends[1] + 1 :])


def _optional_str(value: object) -> str | None:
    return (str(value).strip() or None) if value is not None else None


def read_agents(directory: Path) -> list[AgentFile]:
    """Every ``*.md`` agent file of ``directory`` (none if it does not exist), by name."""
    if not directory.is_dir():
        return []
    try:
        paths = sorted(directory.glob("*.md"))
    except OSError as exc:
        raise ConfigError(
            f"cannot list agent files: {exc.strerror}", source=str(directory)
        ) from None
    return [read_agent(path) for path in paths]


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


@dataclass(frozen=True)
class ReviewerChoice:
    """The reviewers of one review, and the agent files read but not used (their name matches
    no reviewer; ``--agents DIR`` makes every file of DIR a reviewer)."""

    reviewers: list[Reviewer]
    unused_agents: list[Path]

    def notes(self) -> list[str]:
        """What the report says about agent files that were not used (none: [])."""
        if not self.unused_agents:
            return []
        names = ", ".join(str(p) for p in self.unused_agents)
        where = self.unused_agents[0].parent
        return [
            f"agent files not used (no reviewer of that name): {names}; name a file like a"
            f" reviewer, or pass --agents {where} to make each of its files a reviewer"
        ]


def select_reviewers(
    config: Config,
    *,
    agents_dir: Path | None = None,
    use_all_agents: bool = False,
    names: Iterable[str] = (),
) -> list[Reviewer]:
    """The reviewers of one review (see :func:`choose_reviewers`)."""
    choice = choose_reviewers(
        config, agents_dir=agents_dir, use_all_agents=use_all_agents, names=names
    )
    return choice.reviewers


def choose_reviewers(
    config: Config,
    *,
    agents_dir: Path | None = None,
    use_all_agents: bool = False,
    names: Iterable[str] = (),
) -> ReviewerChoice:
    """The config's reviewers, updated by agent files named like them (every agent file of
    ``agents_dir`` when ``use_all_agents``), narrowed to ``names`` if given, each held to the
    vital rule; and the agent files that matched no reviewer."""
    reviewers = {r.name: r for r in configured_reviewers(config)}
    unused: list[Path] = []
    for agent in read_agents(agents_dir or Path(config.review.agents_dir)):
        base = reviewers.get(agent.name) or reviewers.get(agent.name.removesuffix("-reviewer"))
        if base is None and not use_all_agents:
            unused.append(agent.path)
            continue
        merged = from_agent(config, agent, base)
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
    return ReviewerChoice([hold_vital(config, r) for r in reviewers.values()], unused)


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
