"""``round_robin``: rotate over the surviving options, in config order.

The turn comes from the context's :class:`~lanes.router.strategies.base.RotationCounter`: an
in-process counter by default; dispatchers sharing one rotation pass a shared counter. Vital
work rotates over the options on lanes tagged ``vital`` when there are any (it starts on the
vital lanes in every strategy); the others follow in the chain.
"""

from __future__ import annotations

from lanes.router.scorer import rank
from lanes.router.strategies.base import Choice, DecisionContext

COUNTER_KEY = "round_robin"


def round_robin(ctx: DecisionContext) -> Choice:
    """The next option in turn; the rest follow by score (alternatives and chain)."""
    options = sorted(ctx.require(ctx.in_play()), key=lambda o: o.candidate.index)
    on_vital = [o for o in options if o.candidate.vital_target]
    turns = on_vital if ctx.classification.vital and on_vital else options
    turn = ctx.services.counter.next(COUNTER_KEY)
    chosen = turns[turn % len(turns)]
    rest = rank([o for o in options if o is not chosen], ctx.floor)
    where = " on vital lanes (vital work)" if turns is on_vital else ""
    reason = f"Round robin: turn {turn} over {len(turns)} candidates{where}"
    return Choice(ranking=[chosen, *rest], reasons=[reason])
