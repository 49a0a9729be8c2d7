"""A user routing function named in ``routing.hook`` (``"package.module:function"``).

The function must satisfy :class:`RouteHook`. It is imported once per Router, on first use;
failing to import it is a :class:`ConfigError` naming ``routing.hook``. The ``hook`` strategy
(:mod:`lanes.router.strategies.hook`) calls it.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Protocol

from lanes.kernel.errors import ConfigError
from lanes.kernel.taxonomy import Classification
from lanes.router.candidates import Candidate
from lanes.router.job import Job

HOOK_KEY = "routing.hook"
HookAnswer = Candidate | tuple[str, str] | None


class RouteHook(Protocol):
    """A routing function: ``fn(job, classification, candidates) -> answer``.

    ``candidates`` are the surviving candidates (pins applied), best weighted score first.
    Answer with one of them, a ``(target, model)`` tuple naming one of them, or None to let
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
