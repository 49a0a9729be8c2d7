"""``hook``: the user function of ``routing.hook`` (:mod:`router.hooks`) decides.

A hook that raises, or answers with something that is not a surviving candidate, is a
:class:`ConfigError` naming ``routing.hook``. The one exception: a hook that sends vital work
to a cheap lane is overruled (vital work never goes to one) and best_for_task decides.
"""

from __future__ import annotations

from kernel.errors import ConfigError, LanesError
from router.candidates import Candidate
from router.filters import VITAL_ON_CHEAP
from router.hooks import HOOK_KEY, HookAnswer, RouteHook
from router.scorer import Option, rank
from router.strategies.base import Choice, DecisionContext
from router.strategies.scored import best_for_task


def hook(ctx: DecisionContext) -> Choice:
    """Ask the user's hook; None from it means best_for_task."""
    fn = ctx.services.hook.get()
    ranking = rank(ctx.require(ctx.in_play()), ctx.floor)
    answer = _ask(fn, ctx, ranking)
    if answer is None:
        return _best_for_task(ctx, "The routing hook had no opinion; used best_for_task")
    wanted = _wanted(answer)
    chosen = next((o for o in ranking if _pair(o.candidate) == wanted), None)
    if chosen is not None:
        rest = [o for o in ranking if o is not chosen]
        reason = f"Chosen by the routing hook {_name(fn)}"
        return Choice(ranking=[chosen, *rest], reasons=[reason])
    if _cheap_for_vital(ctx, wanted):
        return _best_for_task(
            ctx,
            f"The routing hook {_name(fn)} chose {wanted[0]}/{wanted[1]}, a cheap lane: "
            f"{VITAL_ON_CHEAP}; used best_for_task",
        )
    choices = ", ".join(o.candidate.key for o in ranking)
    raise ConfigError(
        f"the hook chose {wanted[0]}/{wanted[1]}, which is not a surviving candidate "
        f"(surviving: {choices})",
        key=HOOK_KEY,
    )


def _ask(fn: RouteHook, ctx: DecisionContext, ranking: list[Option]) -> HookAnswer:
    """The hook's answer; ConfigError naming ``routing.hook`` when it raises."""
    try:
        return fn(ctx.job, ctx.classification, tuple(o.candidate for o in ranking))
    except LanesError:
        raise
    except Exception as exc:
        raise ConfigError(f"the hook raised {type(exc).__name__}: {exc}", key=HOOK_KEY) from exc


def _best_for_task(ctx: DecisionContext, why: str) -> Choice:
    choice = best_for_task(ctx)
    choice.reasons.insert(0, why)
    return choice


def _wanted(answer: object) -> tuple[object, object]:
    """The (target, model) a hook's answer names; ConfigError for any other answer."""
    if isinstance(answer, Candidate):
        return _pair(answer)
    if isinstance(answer, tuple) and len(answer) == 2:
        return (answer[0], answer[1])
    raise ConfigError(
        f"the hook returned {answer!r}; expected a Candidate, (target, model) or None",
        key=HOOK_KEY,
    )


def _pair(cand: Candidate) -> tuple[object, object]:
    return (cand.target, cand.model)


def _cheap_for_vital(ctx: DecisionContext, wanted: tuple[object, object]) -> bool:
    """True when the job is vital and the hook named a candidate on a cheap lane."""
    target, model = wanted
    if not (ctx.classification.vital and isinstance(target, str) and isinstance(model, str)):
        return False
    cand = ctx.table.by_pair.get((target, model))
    return cand is not None and cand.cheap


def _name(fn: object) -> str:
    module = getattr(fn, "__module__", "?")
    return f"{module}:{getattr(fn, '__qualname__', repr(fn))}"
