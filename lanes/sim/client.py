"""A small client for the ``/_sim/`` control API of a simulator in another process."""

from __future__ import annotations

from types import TracebackType
from typing import Any, Self

import httpx

from lanes.sim.profiles import Fault, Profile


class SimControl:
    """Drive a running simulator at ``url`` (``http://host:port``, no instance path).

    Methods mirror :class:`~sim.Simulator`; any non-2xx answer raises
    ``httpx.HTTPStatusError``.
    """

    def __init__(self, url: str, timeout_s: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=f"{self.url}/_sim", timeout=timeout_s)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _call(self, method: str, path: str, json: Any = None) -> Any:
        response = self._http.request(method, path, json=json)
        response.raise_for_status()
        return response.json()

    def health(self) -> bool:
        """True when the simulator answers; False when it cannot be reached."""
        try:
            return bool(self._call("GET", "/health").get("ok"))
        except httpx.HTTPError:
            return False

    def stats(self) -> dict[str, dict[str, int]]:
        result: dict[str, dict[str, int]] = self._call("GET", "/stats")
        return result

    def reset_stats(self) -> None:
        self._call("POST", "/reset")

    def set_fault(self, instance: str, fault: Fault) -> None:
        """Arm ``fault`` in place of any faults armed on ``instance``."""
        self._call("PUT", f"/faults/{instance}", fault.model_dump())

    def add_fault(self, instance: str, fault: Fault) -> None:
        self._call("POST", f"/faults/{instance}", fault.model_dump())

    def clear_faults(self, instance: str | None = None) -> None:
        """Disarm ``instance``, or every instance when None."""
        self._call("DELETE", "/faults" if instance is None else f"/faults/{instance}")

    def faults(self) -> dict[str, list[Fault]]:
        raw: dict[str, list[dict[str, Any]]] = self._call("GET", "/faults")
        return {name: [Fault.model_validate(f) for f in items] for name, items in raw.items()}

    def set_profile(self, instance: str, profile: Profile) -> None:
        self._call("PUT", f"/profiles/{instance}", profile.model_dump())

    def profiles(self) -> dict[str, Profile]:
        raw: dict[str, dict[str, Any]] = self._call("GET", "/profiles")
        return {name: Profile.model_validate(p) for name, p in raw.items()}
