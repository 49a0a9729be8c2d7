"""``hook``: a user function named in ``routing.hook`` (``"package.module:function"``) decides.

The function must satisfy :class:`RouteHook`. It is imported once per Router, on first use;
failing to import it, or a hook that raises or answers with something that is not a
surviving candidate, is a :class:`ConfigError` naming ``routing.hook``.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Protocol

from lanes.errors import ConfigError, LanesError
from router.candidates import Candidate
from router.job import Job
from router.scorer import Option, rank
from router.strategies.base import Choice, DecisionContext
from router.strategies.scored import best_for_task
from router.taxonomy import Classification

HOOK_KEY = "routing.hook"
HookAnswer = Candidate | tuple[str, str] | None


class RouteHook(Protocol):
    """A routing function: ``fn(job, classification, candidates) -> answer``.

    ``candidates`` are the surviving candidates (pins applied), best weighted score first.
    Answer with one of them, a ``(lane, model)`` tuple naming one of them, or None to let
    ``best_for_task`` decide. It runs on the routing hot path: keep it fast and pure.
    """

    def __call__(
        self, job: Job, classification: Classification, candidates: Sequence[Candidate], /
    ) -> HookAnswer: ...


class HookLoader:
    """Imports ``routing.hook`` on first use and keeps the function."""

    def __init__(self, spec: str | None) -> None:
        self._spec = spec
        self._fn: RouteHook | None = None

    def get(self) -> RouteHook:
        if self._fn is None:
            self._fn = _load(self._spec)
        return self._fn


def _load(spec: str | None) -> RouteHook:
    if spec is None:
        raise ConfigError(
            "strategy 'hook' needs a hook function",
            key=HOOK_KEY,
            fix='set routing.hook: "package.module:function"',
        )
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise ConfigError(
            f"cannot import {module_name!r}: {type(exc).__name__}: {exc}",
            key=HOOK_KEY,
            fix="check the module is importable (installed or on PYTHONPATH)",
        ) from exc
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise ConfigError(
            f"{module_name!r} has no function {attr!r}",
            key=HOOK_KEY,
            fix="name a function defined at the module's top level",
        )
    hook: RouteHook = fn
    return hook


def hook(ctx: DecisionContext) -> Choice:
    """Ask the user's hook; None from it means best_for_task."""
    fn = ctx.services.hook.get()
    ranking = rank(ctx.require(ctx.in_play()), ctx.floor)
    try:
        answer = fn(ctx.job, ctx.classification, tuple(o.candidate for o in ranking))
    except LanesError:
        raise
    except Exception as exc:
        raise ConfigError(f"the hook raised {type(exc).__name__}: {exc}", key=HOOK_KEY) from exc
    if answer is None:
        choice = best_for_task(ctx)
        choice.reasons.insert(0, "The routing hook had no opinion; used best_for_task")
        return choice
    chosen = _find(answer, ranking)
    rest = [o for o in ranking if o is not chosen]
    return Choice(ranking=[chosen, *rest], reasons=[f"Chosen by the routing hook {_name(fn)}"])


def _find(answer: object, ranking: list[Option]) -> Option:
    if isinstance(answer, Candidate):
        wanted: tuple[object, object] = (answer.lane, answer.model)
    elif isinstance(answer, tuple) and len(answer) == 2:
        wanted = (answer[0], answer[1])
    else:
        raise ConfigError(
            f"the hook returned {answer!r}; expected a Candidate, (lane, model) or None",
            key=HOOK_KEY,
        )
    for option in ranking:
        if (option.candidate.lane, option.candidate.model) == wanted:
            return option
    choices = ", ".join(o.candidate.key for o in ranking)
    raise ConfigError(
        f"the hook chose {wanted[0]}/{wanted[1]}, which is not a surviving candidate "
        f"(surviving: {choices})",
        key=HOOK_KEY,
    )


def _name(fn: object) -> str:
    module = getattr(fn, "__module__", "?")
    return f"{module}:{getattr(fn, '__qualname__', repr(fn))}"
