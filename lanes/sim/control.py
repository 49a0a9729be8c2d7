"""The ``/_sim/`` control API, so another process can drive a running simulator.

Routes (JSON in and out)::

    GET    /_sim/health               {"ok": true}
    GET    /_sim/stats                {instance: {counter: n}}
    POST   /_sim/reset                zero the counters
    GET    /_sim/faults               {instance: [Fault, ...]} for armed instances
    PUT    /_sim/faults/{instance}    body: a Fault or a list of them; replaces
    POST   /_sim/faults/{instance}    body: a Fault; arms it after the others
    DELETE /_sim/faults/{instance}    disarm one instance
    DELETE /_sim/faults               disarm every instance
    GET    /_sim/profiles             {instance: Profile}
    PUT    /_sim/profiles/{instance}  body: a Profile
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import TypeAdapter, ValidationError

from lanes.sim.instances import Registry
from lanes.sim.profiles import Fault, Profile
from lanes.sim.wire import Reply, json_reply

PREFIX = "/_sim/"

_OK = {"ok": True}
_faults_adapter: TypeAdapter[Fault | list[Fault]] = TypeAdapter(Fault | list[Fault])

Route = Callable[[Registry, str, bytes], Reply]


def _health(registry: Registry, name: str, body: bytes) -> Reply:
    return json_reply(200, _OK)


def _stats(registry: Registry, name: str, body: bytes) -> Reply:
    return json_reply(200, registry.stats())


def _reset(registry: Registry, name: str, body: bytes) -> Reply:
    registry.reset_stats()
    return json_reply(200, _OK)


def _list_faults(registry: Registry, name: str, body: bytes) -> Reply:
    faults = registry.faults()
    return json_reply(200, {k: [f.model_dump() for f in v] for k, v in faults.items()})


def _put_faults(registry: Registry, name: str, body: bytes) -> Reply:
    parsed = _faults_adapter.validate_json(body)
    registry.set_faults(name, parsed if isinstance(parsed, list) else [parsed])
    return json_reply(200, _OK)


def _add_fault(registry: Registry, name: str, body: bytes) -> Reply:
    registry.add_fault(name, Fault.model_validate_json(body))
    return json_reply(200, _OK)


def _clear_faults(registry: Registry, name: str, body: bytes) -> Reply:
    registry.clear_faults(name or None)
    return json_reply(200, _OK)


def _list_profiles(registry: Registry, name: str, body: bytes) -> Reply:
    profiles = registry.profiles()
    return json_reply(200, {k: p.model_dump() for k, p in profiles.items()})


def _put_profile(registry: Registry, name: str, body: bytes) -> Reply:
    registry.set_profile(name, Profile.model_validate_json(body))
    return json_reply(200, _OK)


# Keyed by (method, route); "/*" marks a route that ends in an instance name.
_ROUTES: dict[tuple[str, str], Route] = {
    ("GET", "health"): _health,
    ("GET", "stats"): _stats,
    ("POST", "reset"): _reset,
    ("GET", "faults"): _list_faults,
    ("DELETE", "faults"): _clear_faults,
    ("PUT", "faults/*"): _put_faults,
    ("POST", "faults/*"): _add_fault,
    ("DELETE", "faults/*"): _clear_faults,
    ("GET", "profiles"): _list_profiles,
    ("PUT", "profiles/*"): _put_profile,
}


def handle_control(registry: Registry, method: str, path: str, body: bytes) -> Reply:
    """Answer one control request; ``path`` starts with ``/_sim/`` and has no query."""
    parts = path[len(PREFIX) :].strip("/").split("/")
    if len(parts) > 2:
        return _error(404, f"no control route {path}")
    key = parts[0] + ("/*" if len(parts) == 2 else "")
    route = _ROUTES.get((method, key))
    if route is None:
        return _error(404, f"no control route {method} {path}")
    name = parts[1] if len(parts) == 2 else ""
    try:
        return route(registry, name, body)
    except ValidationError as exc:
        return _error(400, str(exc))
    except KeyError as exc:
        return _error(404, str(exc.args[0]) if exc.args else "not found")


def _error(status: int, message: str) -> Reply:
    return json_reply(status, {"ok": False, "error": message})
