"""Value checks the config models share: time ranges and names a lane may not take.

Each refusal is a ``PydanticCustomError`` whose context carries ``fix``, which the loader
puts in the ConfigError.
"""

from __future__ import annotations

from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

HOUR_S = 3600.0
DAY_S = 86400.0
WEEK_S = 7 * DAY_S
MONTH_S = 30 * DAY_S
YEAR_S = 365 * DAY_S


def seconds(low: float, high: float, *, off: str = "") -> AfterValidator:
    """A check that a duration lies in ``[low, high]`` seconds, or is 0 when ``off`` says what
    0 means. ``low`` keeps a loop from spinning a CPU or flooding Redis; ``high`` keeps time
    arithmetic (deadlines, TTLs in ms) far from overflow."""
    unit = _UNITS.get(high)
    fix = f"use {low:g} to {high:g} seconds" + (f" ({unit})" if unit else "")
    fix += f", or 0 for {off}" if off else ""

    def check(value: float) -> float:
        if low <= value <= high or (off and value == 0):
            return value
        problem = "too short" if value < low else "too long"
        raise PydanticCustomError(
            "seconds_range",
            "{value} s is {problem}",
            {"value": value, "problem": problem, "fix": fix},
        )

    return AfterValidator(check)


_UNITS = {HOUR_S: "an hour", DAY_S: "a day", WEEK_S: "a week", MONTH_S: "30 days", YEAR_S: "a year"}

RESERVED_NAMES = {
    "celery": "Celery's default queue and exchange",
    "celeryev": "the exchange of Celery's events (Flower reads them)",
    "unacked": "kombu's hash of the messages workers hold",
    "unacked_index": "kombu's index of the messages workers hold",
    "unacked_mutex": "kombu's lock on the messages workers hold",
}
"""Names kombu's Redis transport and Celery give their own keys, queues or exchanges (from
kombu/transport/redis.py, celery/app/defaults.py, celery/backends/base.py; Flower only reads
them). A lane is a queue under the same key prefix (``global_keyprefix``): a lane named
``unacked`` turns kombu's hash into a list and every worker on that database fails. Names with a
``.`` (``celery.pidbox``, ``reply.celery.pidbox``, ``celeryev.<id>``) cannot be lane names."""

RESERVED_PREFIXES = {
    "_kombu": "kombu's bindings (_kombu.binding.<exchange>)",
    "celery-": "Celery's result keys (celery-task-meta-<id>, celery-taskset-meta-<id>)",
    "chord-unlock-": "Celery's chord keys (chord-unlock-<id>)",
}


def _not_reserved(name: str) -> str:
    why = RESERVED_NAMES.get(name) or next(
        (why for start, why in RESERVED_PREFIXES.items() if name.startswith(start)), None
    )
    if why is not None:
        raise PydanticCustomError(
            "reserved_name",
            "{name} is reserved ({why}): a lane of that name would share its Redis keys",
            {"name": repr(name), "why": why, "fix": f"rename the lane (e.g. lane-{name})"},
        )
    return name


lane_name = AfterValidator(_not_reserved)
"""The check of an instance or pool name: not one of :data:`RESERVED_NAMES` or prefixes."""
