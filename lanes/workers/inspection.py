"""What ``celery inspect`` (and Flower's worker page, which asks the same) shows of the messages
a worker holds: a ``lanes.run`` message's label, never its envelope.

Celery answers ``active`` with each message's label (its ``argsrepr``) when asked ``safe``, as
Flower asks, but ``reserved``, ``scheduled`` (a job waiting out a countdown) and
``query_task`` always with the arguments, and a job's argument holds its prompt.
:func:`show_labels` wraps those three commands, in the worker process, so they answer with the
label as well.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from celery.worker.control import Panel
from pydantic import ValidationError

from lanes.broker.message import RUN_TASK, Envelope

HIDDEN = "(arguments hidden: not a lanes envelope)"


def show_labels() -> None:
    """Wrap ``reserved``, ``scheduled`` and ``query_task`` in this process (Celery keeps remote
    control commands in one registry per process). Calling it again changes nothing more."""
    _wrap("reserved", lambda infos: [_labelled(info) for info in infos])
    _wrap(
        "scheduled",
        lambda entries: [{**entry, "request": _labelled(entry["request"])} for entry in entries],
    )
    _wrap(
        "query_task",
        lambda found: {key: (state, _labelled(info)) for key, (state, info) in found.items()},
    )


def _wrap(name: str, shown: Callable[[Any], Any]) -> None:
    original = Panel.data[name]
    meta = Panel.meta[name]

    def command(state: Any, *args: Any, **kwargs: Any) -> Any:
        return shown(original(state, *args, **kwargs))

    command.__doc__ = original.__doc__
    Panel.register(name=name, **meta._asdict())(command)


def _labelled(info: dict[str, Any]) -> dict[str, Any]:
    """``info`` (Celery's description of a held message) with a job's label for arguments."""
    args = info.get("args")
    if info.get("name") != RUN_TASK or not isinstance(args, list | tuple) or not args:
        return info
    try:
        label = Envelope.model_validate(args[-1]).label()
    except ValidationError:
        label = HIDDEN
    return {**info, "args": label, "kwargs": "{}"}
