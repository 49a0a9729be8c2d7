"""``hook``: the user function of ``routing.hook`` (:mod:`router.hooks`) decides.

A hook that raises, or answers with something that is not a surviving candidate, is a
:class:`ConfigError` naming ``routing.hook``.
"""

from __future__ import annotations

from kernel.errors import ConfigError, LanesError
from router.candidates import Candidate
from router.hooks import HOOK_KEY
from router.scorer import Option, rank
from router.strategies.base import Choice, DecisionContext
from router.strategies.scored import best_for_task


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
        wanted: tuple[object, object] = (answer.target, answer.model)
    elif isinstance(answer, tuple) and len(answer) == 2:
        wanted = (answer[0], answer[1])
    else:
        raise ConfigError(
            f"the hook returned {answer!r}; expected a Candidate, (target, model) or None",
            key=HOOK_KEY,
        )
    for option in ranking:
        if (option.candidate.target, option.candidate.model) == wanted:
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
