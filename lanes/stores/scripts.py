"""The Lua scripts of ``broker/lua``, loaded once per process and registered per client.

Each script runs as one ``EVALSHA`` (``redis-py`` loads it on a ``NOSCRIPT`` reply and retries
once). Redis has no ``include``: the token-bucket scripts get ``bucket_lib.lua`` prepended here,
so the refill arithmetic exists once, the budget scripts ``budget_lib.lua`` and the scripts that
change what is pending ``backlog_lib.lua`` (:data:`LIBRARIES`).

Every script receives the keys it touches through ``KEYS`` (the budget scripts' one exception
is told at :class:`BudgetScripts`) and reads the clock with ``redis.call('TIME')``, never from
the caller.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import redis
from redis.commands.core import Script
from redis.exceptions import NoScriptError

from lanes.kernel.errors import InfrastructureError

_PACKAGE = "lanes.stores.lua"
LIBRARIES = {
    "submit": "backlog_lib",
    "track": "backlog_lib",
    "untrack": "backlog_lib",
    "forget": "backlog_lib",
    "acquire": "bucket_lib",
    "settle": "bucket_lib",
    "usage": "bucket_lib",
    "budget_start": "budget_lib",
    "budget_settle": "budget_lib",
    "budget_release": "budget_lib",
}
"""The library each script needs prepended (Redis Lua has no ``include``)."""


@contextmanager
def redis_errors(action: str) -> Iterator[None]:
    """Translate any ``redis`` exception raised inside into :class:`InfrastructureError`."""
    try:
        yield
    except redis.RedisError as exc:
        raise InfrastructureError(f"Redis failed while {action}: {exc}") from exc


def text(value: object) -> str:
    """A reply element as ``str`` whether the client decodes responses or not."""
    if isinstance(value, bytes):
        return value.decode()
    return str(value)


def server_time_s(seconds: object, micros: object) -> float:
    """Epoch seconds from the two elements of a Redis ``TIME`` reply."""
    return int(text(seconds)) + int(text(micros)) / 1_000_000


@cache
def lua_source(name: str) -> str:
    """The text of ``broker/lua/<name>.lua``, with its library (:data:`LIBRARIES`)
    prepended if it needs one.

    Raises ``FileNotFoundError`` for an unknown name.
    """
    text = resources.files(_PACKAGE).joinpath(f"{name}.lua").read_text(encoding="utf-8")
    library = LIBRARIES.get(name)
    if library is not None:
        lib = resources.files(_PACKAGE).joinpath(f"{library}.lua").read_text(encoding="utf-8")
        return f"{lib}\n{text}"
    return text


SCRIPT_NAMES = (
    "acquire",
    "settle",
    "usage",
    "cool_down",
    "health",
    "track",
    "record",
    "forget",
    "submit",
    "untrack",
    "call_start",
    "budget_reserve",
    "budget_start",
    "budget_settle",
    "budget_release",
    "batch_take",
)
"""Every script of ``broker/lua`` that runs on its own (the libraries are prepended)."""


def queue_script(
    pipe: redis.client.Pipeline, script: Script, keys: list[str], args: list[str | int | float]
) -> None:
    """Queue ``script`` on ``pipe`` as a bare ``EVALSHA``.

    ``Script.__call__`` on a pipeline makes every ``execute`` ask ``SCRIPT EXISTS`` first: one
    more round trip per pipeline. Run a pipeline holding such calls with
    :func:`execute_with_scripts`, which loads the scripts when Redis has forgotten them.
    """
    pipe.evalsha(script.sha, len(keys), *keys, *args)


def execute_with_scripts(
    client: redis.Redis, build: Callable[[redis.client.Pipeline], None]
) -> list[Any]:
    """Build a pipeline with ``build``, execute it and return its replies.

    On ``NOSCRIPT`` (a new or restarted Redis) every script is loaded and the pipeline is built
    and executed once more, so what ``build`` queues must be safe to run twice.
    """
    pipe = client.pipeline(transaction=False)
    build(pipe)
    try:
        return pipe.execute()
    except NoScriptError:
        for name in SCRIPT_NAMES:
            client.script_load(lua_source(name))
        pipe = client.pipeline(transaction=False)
        build(pipe)
        return pipe.execute()


@dataclass(frozen=True)
class LimiterScripts:
    """The rate limiter's scripts, registered on one client."""

    acquire: Script
    settle: Script
    usage: Script

    @classmethod
    def register(cls, client: redis.Redis) -> LimiterScripts:
        return cls(
            acquire=client.register_script(lua_source("acquire")),
            settle=client.register_script(lua_source("settle")),
            usage=client.register_script(lua_source("usage")),
        )


@dataclass(frozen=True)
class LaneStateScripts:
    """The lane state store's scripts, registered on one client."""

    cool_down: Script
    health: Script

    @classmethod
    def register(cls, client: redis.Redis) -> LaneStateScripts:
        return cls(
            cool_down=client.register_script(lua_source("cool_down")),
            health=client.register_script(lua_source("health")),
        )


@dataclass(frozen=True)
class JobScripts:
    """The job store's scripts, registered on one client."""

    submit: Script
    untrack: Script
    track: Script
    record: Script
    forget: Script
    call_start: Script

    @classmethod
    def register(cls, client: redis.Redis) -> JobScripts:
        return cls(
            submit=client.register_script(lua_source("submit")),
            untrack=client.register_script(lua_source("untrack")),
            track=client.register_script(lua_source("track")),
            record=client.register_script(lua_source("record")),
            forget=client.register_script(lua_source("forget")),
            call_start=client.register_script(lua_source("call_start")),
        )


@dataclass(frozen=True)
class BudgetScripts:
    """The budget store's scripts, registered on one client.

    The exception to "every key in ``KEYS``": ``start``, ``settle`` and ``release`` also touch
    the counters a job's reservation record names (reading the record first from the client
    would not be atomic). Every budget key carries the ``{budget}`` hash tag, so all of them
    live in one Redis Cluster slot.
    """

    reserve: Script
    start: Script
    settle: Script
    release: Script

    @classmethod
    def register(cls, client: redis.Redis) -> BudgetScripts:
        return cls(
            reserve=client.register_script(lua_source("budget_reserve")),
            start=client.register_script(lua_source("budget_start")),
            settle=client.register_script(lua_source("budget_settle")),
            release=client.register_script(lua_source("budget_release")),
        )
