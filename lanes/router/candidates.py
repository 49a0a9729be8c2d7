"""Candidates: every (target, model) pair the router may choose, precomputed once per Config.

A target is what a decision names: a pool (its members collapsed into one target named by the
pool) or an instance that belongs to no pool. A pool target offers the models every member
offers, carries the union of its members' tags, and prices with the **largest** member price
multiplier, so an estimate never undercounts whichever member the dispatcher picks.

Instances that belong to a pool can still be addressed by name (a pin or a chain step naming
``claude2``); their candidates exist but are not ``routable``: no strategy picks them unasked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from lanes.kernel.config.models import Config
from lanes.kernel.errors import JobError
from lanes.kernel.taxonomy import TaskType

VITAL_TAG = "vital"
CHEAP_TAG = "cheap"
PREMIUM_TAG = "premium"
DEFAULT_STRENGTH = 70
"""Strength assumed for a task type a model lists no strength for."""


@dataclass(frozen=True, slots=True)
class Target:
    """A routable target (pool or lone instance) or a pool member addressed directly."""

    name: str
    pool: str | None
    """The pool name when this target is a pool, else None."""
    members: tuple[str, ...]
    """Instances behind the target: the pool's members, or the instance itself."""
    enabled_members: tuple[str, ...]
    """Members not switched off with ``enabled: false``."""
    tags: frozenset[str]
    models: tuple[str, ...]
    price_multiplier: float
    routable: bool


@dataclass(frozen=True, slots=True)
class Candidate:
    """One (target, model) pair with everything static the hot path needs.

    Prices are per single token and include the target's price multiplier. ``strengths``
    holds every task type (missing ones at ``DEFAULT_STRENGTH``), so a lookup never misses.
    """

    target: str
    model: str
    key: str
    """``"target/model"``: how rejections and logs name the pair."""
    pool: str | None
    tags: frozenset[str]
    cheap: bool
    """Tagged ``cheap``: vital work never goes here, not even when pinned."""
    vital_target: bool
    """Tagged ``vital``: vital work prefers it, other work avoids it on ties."""
    usd_per_input_token: float
    usd_per_output_token: float
    quality: int
    latency_s: float
    context_window: int
    max_output_tokens: int
    strengths: Mapping[str, int]
    features: frozenset[str]
    """What the model takes besides text (``models.<name>.features``)."""
    index: int
    """Position in config order; the last tie-breaker, so decisions are deterministic."""
    routable: bool


@dataclass(frozen=True)
class CandidateTable:
    """Every candidate of one Config, indexed for the lookups a decision makes."""

    targets: Mapping[str, Target]
    routable: tuple[Candidate, ...]
    by_pair: Mapping[tuple[str, str], Candidate]
    by_target: Mapping[str, tuple[Candidate, ...]]
    by_model: Mapping[str, tuple[Candidate, ...]]
    """Routable candidates offering each model."""
    instances: tuple[str, ...]
    """Every instance name: what the lane state is asked about."""
    largest_window: tuple[int, str]
    """(context window in tokens, model) of the largest window any instance offers."""

    def target_names(self) -> list[str]:
        """Names a job may pin: instances and pools."""
        return list(self.targets)

    def cheap_targets(self) -> frozenset[str]:
        """Targets tagged ``cheap``: such instances, and pools with such a member."""
        return frozenset(name for name, t in self.targets.items() if CHEAP_TAG in t.tags)

    def model_names(self) -> list[str]:
        """Models some target offers, in config order."""
        return list(dict.fromkeys(c.model for c in self.by_pair.values()))

    def pinned(self, target: str | None, model: str | None) -> tuple[Candidate, ...]:
        """The candidates a pin allows; JobError naming a bad pin and the valid choices.

        No pin: every routable candidate. Lane only: every model on it. Model only: every
        routable target offering it (for a model only some pool members offer: those
        members). Both: exactly that pair.
        """
        if target is not None and target not in self.targets:
            raise JobError(
                f"unknown instance or pool {target!r}; choose one of: {', '.join(self.targets)}"
            )
        if model is not None and model not in self.model_names():
            choices = ", ".join(self.model_names())
            raise JobError(f"unknown model {model!r}; choose one of: {choices}")
        if target is None:
            if model is None:
                return self.routable
            found = self.by_model.get(model)
            return found or tuple(c for c in self.by_pair.values() if c.model == model)
        if model is None:
            return self.by_target.get(target, ())
        pair = self.by_pair.get((target, model))
        if pair is None:
            offered = ", ".join(self.targets[target].models) or "no model"
            raise JobError(f"{target!r} does not offer model {model!r}; it offers: {offered}")
        return (pair,)


def build_candidates(config: Config) -> CandidateTable:
    """Precompute targets and candidates for ``config``. Pure: call once per Config."""
    targets = _build_targets(config)
    candidates: list[Candidate] = []
    for target in targets.values():
        for model in target.models:
            candidates.append(_candidate(config, target, model, len(candidates)))
    by_target: dict[str, list[Candidate]] = {}
    by_model: dict[str, list[Candidate]] = {}
    for cand in candidates:
        by_target.setdefault(cand.target, []).append(cand)
        if cand.routable:
            by_model.setdefault(cand.model, []).append(cand)
    return CandidateTable(
        targets=MappingProxyType(targets),
        routable=tuple(c for c in candidates if c.routable),
        by_pair=MappingProxyType({(c.target, c.model): c for c in candidates}),
        by_target=MappingProxyType({k: tuple(v) for k, v in by_target.items()}),
        by_model=MappingProxyType({k: tuple(v) for k, v in by_model.items()}),
        instances=tuple(config.instances),
        largest_window=_largest_window(config),
    )


def _build_targets(config: Config) -> dict[str, Target]:
    """Routable targets in config order (a pool sits where its first member is), then members."""
    pooled = {member: pool for pool, members in config.pools.items() for member in members}
    targets: dict[str, Target] = {}
    for name in config.instances:
        pool = pooled.get(name)
        if pool is None:
            targets[name] = _target(config, name, None, (name,), routable=True)
        elif pool not in targets:
            targets[pool] = _target(config, pool, pool, tuple(config.pools[pool]), routable=True)
    for pool in config.pools:
        if pool not in targets:
            targets[pool] = _target(config, pool, pool, tuple(config.pools[pool]), routable=True)
    for name in pooled:
        targets[name] = _target(config, name, None, (name,), routable=False)
    return targets


def _target(
    config: Config, name: str, pool: str | None, members: tuple[str, ...], *, routable: bool
) -> Target:
    specs = [config.instances[m] for m in members]
    first = specs[0].models
    models = tuple(m for m in first if all(m in spec.models for spec in specs[1:]))
    return Target(
        name=name,
        pool=pool,
        members=members,
        enabled_members=tuple(m for m, spec in zip(members, specs, strict=True) if spec.enabled),
        tags=frozenset(tag for spec in specs for tag in spec.tags),
        models=models,
        price_multiplier=max(spec.price_multiplier for spec in specs),
        routable=routable,
    )


def _candidate(config: Config, target: Target, model: str, index: int) -> Candidate:
    spec = config.models[model]
    strengths = {task.value: spec.strengths.get(task, DEFAULT_STRENGTH) for task in TaskType}
    return Candidate(
        target=target.name,
        model=model,
        key=f"{target.name}/{model}",
        pool=target.pool,
        tags=target.tags,
        cheap=CHEAP_TAG in target.tags,
        vital_target=VITAL_TAG in target.tags,
        usd_per_input_token=spec.price.input_per_mtok * target.price_multiplier / 1_000_000,
        usd_per_output_token=spec.price.output_per_mtok * target.price_multiplier / 1_000_000,
        quality=spec.quality,
        latency_s=spec.latency_s,
        context_window=spec.context_window,
        max_output_tokens=spec.max_output_tokens,
        strengths=MappingProxyType(strengths),
        features=spec.features,
        index=index,
        routable=target.routable,
    )


def _largest_window(config: Config) -> tuple[int, str]:
    offered = dict.fromkeys(m for inst in config.instances.values() for m in inst.models)
    model = max(offered, key=lambda m: config.models[m].context_window)  # first of equals
    return config.models[model].context_window, model
