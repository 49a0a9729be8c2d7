"""The Python face of the simulator: start it, point clients at it, steer it, stop it."""

from __future__ import annotations

import contextlib
import random
import signal
import threading
import time
from collections.abc import Mapping
from types import FrameType, TracebackType
from typing import Self

from lanes.sim.batches import BatchBook
from lanes.sim.engine import Runtime
from lanes.sim.instances import Clock, Registry
from lanes.sim.profiles import Fault, Profile
from lanes.sim.server import SimServer

DEFAULT_PROFILE = Profile()
_POLL_INTERVAL_S = 0.05
"""How often the accept loop checks for stop(); bounds how long stop() takes."""


class Simulator:
    """Simulated provider instances served over HTTP from a background thread.

    Instances named in ``profiles`` use their profile; any other name in a request path
    uses ``default_profile``, or is unknown (404) when that is None. ``seed`` makes the
    fault draws and latency jitter reproducible for a sequential run. ``clock`` (seconds,
    monotonic) drives the limit buckets and the prompt-cache expiry, never the latency
    sleeps: a test can pass a fake one to expire cache entries without waiting.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        profiles: Mapping[str, Profile] | None = None,
        default_profile: Profile | None = DEFAULT_PROFILE,
        seed: int = 0,
        clock: Clock = time.monotonic,
    ) -> None:
        self.host = host
        self._requested_port = port
        self._registry = Registry(profiles or {}, default_profile, clock)
        self._runtime = Runtime(random.Random(seed), threading.Event())
        self._batches = BatchBook()
        self._lock = threading.Lock()
        self._server: SimServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        """Bind and serve in a daemon thread; a no-op if already running."""
        with self._lock:
            if self._server is None:
                self._runtime.stopping.clear()
                address = (self.host, self._requested_port)
                server = SimServer(address, self._registry, self._runtime, self._batches)
                thread = threading.Thread(
                    target=server.serve_forever,
                    kwargs={"poll_interval": _POLL_INTERVAL_S},
                    name=f"lanes-sim-{server.server_address[1]}",
                    daemon=True,
                )
                thread.start()
                self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        """Stop serving, hang up open connections and join the thread. Idempotent.

        Calls sleeping on latency or a timeout fault wake up and close without answering.
        """
        with self._lock:
            server, thread = self._server, self._thread
            self._server, self._thread = None, None
        if server is None or thread is None:
            return
        self._runtime.stopping.set()
        server.shutdown()
        server.close_connections()
        server.server_close()
        thread.join()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        """The bound port while running (the real one when asked for port 0)."""
        server = self._server
        return int(server.server_address[1]) if server is not None else self._requested_port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def base_url(self, instance: str) -> str:
        """The Anthropic SDK's ``base_url``; append ``/v1`` for OpenAI-style clients."""
        return f"{self.url}/{instance}"

    def set_profile(self, instance: str, profile: Profile) -> None:
        """Replace (or create) an instance's profile; its limit buckets restart full, its
        prompt cache is kept."""
        self._registry.set_profile(instance, profile)

    def profile(self, instance: str) -> Profile:
        return self._registry.require(instance).profile

    def set_fault(self, instance: str, fault: Fault) -> None:
        """Arm ``fault`` on ``instance`` in place of any faults armed there."""
        self._registry.set_faults(instance, [fault])

    def add_fault(self, instance: str, fault: Fault) -> None:
        """Arm ``fault`` after those already armed; each call fires at most one."""
        self._registry.add_fault(instance, fault)

    def clear_faults(self, instance: str | None = None) -> None:
        """Disarm ``instance``, or every instance when None."""
        self._registry.clear_faults(instance)

    def faults(self) -> dict[str, list[Fault]]:
        """Armed faults by instance (spent ``count`` faults are gone)."""
        return self._registry.faults()

    def stats(self) -> dict[str, dict[str, int]]:
        """Counters per instance: ``requests``, ``ok``, ``in_flight``, ``input_tokens``,
        ``output_tokens``, and once seen ``status_<code>``, ``rate_limited`` (limit
        refusals), ``faults`` (injections), ``dropped`` (closed without an answer),
        ``batches`` and ``batch_requests`` (batches created, requests in them) and the
        ``billed:``/``billed-batch:`` usage counters. Batch endpoints count in none of
        ``requests``, ``ok`` or ``status_<code>``, which are about completion calls."""
        return self._registry.stats()

    def reset_stats(self) -> None:
        self._registry.reset_stats()


def run_forever(
    host: str,
    port: int,
    profiles: dict[str, Profile],
    default_profile: Profile,
    *,
    seed: int = 0,
) -> None:
    """Serve in the foreground until Ctrl-C or SIGTERM, after printing one line with the URL."""
    stop = threading.Event()

    def _on_sigterm(signum: int, frame: FrameType | None) -> None:
        stop.set()

    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if in_main else None
    simulator = Simulator(host, port, profiles, default_profile, seed).start()
    print(f"lanes sim: serving on {simulator.url} (Ctrl-C to stop)", flush=True)
    try:
        # Ctrl-C is the normal way to stop, not an error.
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
    finally:
        simulator.stop()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
