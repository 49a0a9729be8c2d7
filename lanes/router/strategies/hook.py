"""``hook``: the user function of ``routing.hook`` (:mod:`lanes.router.hooks`) decides.

A hook that raises, or answers with something that is not a surviving candidate, is a
:class:`ConfigError` naming ``routing.hook``. The one exception: a hook that sends vital work
to a cheap lane is overruled (vital work never goes to one) and best_for_task decides.

A config found by searching the current directory (an unvetted checkout's ``lanes.yaml``) may
not have its hook imported from that directory: the module is located first (nothing of it
runs) and refused if it lies there. Named with ``--config`` / ``$LANES_CONFIG``, it may.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from lanes.kernel.config import Config
from lanes.kernel.errors import ConfigError, LanesError
from lanes.router.candidates import Candidate
from lanes.router.filters import VITAL_ON_CHEAP
from lanes.router.hooks import HOOK_KEY, HookAnswer, RouteHook
from lanes.router.scorer import Option, rank
from lanes.router.strategies.base import Choice, DecisionContext
from lanes.router.strategies.scored import best_for_task


def hook(ctx: DecisionContext) -> Choice:
    """Ask the user's hook; None from it means best_for_task."""
    refuse_hook_from_current_directory(ctx.config)
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


def refuse_hook_from_current_directory(config: Config) -> None:
    """ConfigError if ``routing.hook`` would be imported from the current directory while the
    config itself was only found there by searching (see the module docstring)."""
    source, spec = config.source, config.routing.hook
    if source is None or not source.from_current_directory or spec is None:
        return
    try:
        here = Path.cwd().resolve()
    except OSError:  # the directory is gone: nothing can be imported from it either
        return
    top = spec.partition(":")[0].split(".")[0]
    for place in _module_places(top):
        if place.is_relative_to(here):
            raise ConfigError(
                f"refusing to import {top!r} from {place}: {source.path} was found by searching"
                " the current directory, so its hook may not run code from there",
                key=HOOK_KEY,
                fix=f"name the config (--config {source.path} or LANES_CONFIG) to trust its"
                " hook, or install the hook's package",
            )


def _module_places(name: str) -> list[Path]:
    """Where the top-level module ``name`` is (or would be) imported from; finding it runs
    none of its code."""
    module = sys.modules.get(name)
    if module is not None:
        places = [getattr(module, "__file__", None), *getattr(module, "__path__", [])]
    else:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            return []  # the hook loader reports the failed import
        if spec is None:
            return []
        places = [spec.origin, *(spec.submodule_search_locations or [])]
    return [Path(p).resolve() for p in places if isinstance(p, str) and p not in _NOT_FILES]


_NOT_FILES = frozenset({"built-in", "frozen"})


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
