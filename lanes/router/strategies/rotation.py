"""``round_robin``: rotate over the surviving options, in config order.

The turn comes from the context's :class:`~lanes.router.strategies.base.RotationCounter`: an
in-process counter by default; dispatchers sharing one rotation pass a shared counter.
"""

from __future__ import annotations

from lanes.router.scorer import rank
from lanes.router.strategies.base import Choice, DecisionContext

COUNTER_KEY = "round_robin"


def round_robin(ctx: DecisionContext) -> Choice:
    """The next option in turn; the rest follow by score (alternatives and chain)."""
    options = sorted(ctx.require(ctx.in_play()), key=lambda o: o.candidate.index)
    turn = ctx.services.counter.next(COUNTER_KEY)
    chosen = options[turn % len(options)]
    rest = rank([o for o in options if o is not chosen], ctx.floor)
    reason = f"Round robin: turn {turn} over {len(options)} candidates"
    return Choice(ranking=[chosen, *rest], reasons=[reason])
