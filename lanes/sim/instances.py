"""Live state of each simulated instance: profile, limits, armed faults and counters.

Every instance has its own lock, so calls to different instances never wait on each
other; the lock is held only for bookkeeping, never while a call sleeps. Limits are kept
per model class: one set of buckets for each model with its own ``model_limits`` and one
instance-wide set shared by every other model.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping

from lanes.sim.buckets import BucketState, Denial, Limiter
from lanes.sim.profiles import Fault, Profile
from lanes.sim.prompt_cache import NO_USAGE, CacheUsage, PromptCache

Clock = Callable[[], float]

STAT_KEYS = ("requests", "ok", "in_flight", "input_tokens", "output_tokens")
"""Always present in a stats snapshot; ``status_<code>``, ``rate_limited``, ``faults``,
``dropped``, ``batches``, ``batch_requests`` and the ``billed:`` and ``billed-batch:``
counters appear once they happen."""
BILLED = "billed:"
"""Prefix of the per-model usage counters that count what the served calls are billed for:
``billed:<model>:input_tokens`` (the input neither read from nor written to the prompt
cache), ``billed:<model>:output_tokens``, and once nonzero
``billed:<model>:cache_read_input_tokens``, ``billed:<model>:cache_creation_input_tokens``
(every cache write, whatever its TTL) and ``billed:<model>:cache_creation_1h_input_tokens``
(the part of those written with the 1-hour TTL). A call's input, cache reads and cache
writes add up to its whole prompt; OpenAI-style automatic caching reports no writes, so
its prompt is input plus reads."""
BATCH_BILLED = "billed-batch:"
"""Prefix of the per-model counters of batch requests, billed at the batch rate:
``billed-batch:<model>:input_tokens`` and ``billed-batch:<model>:output_tokens``."""


def limiters(profile: Profile, now_s: float) -> dict[str | None, Limiter]:
    """Full buckets for every model class of ``profile``: None is the instance-wide class."""
    found: dict[str | None, Limiter] = {None: Limiter(profile.instance_limits(), now_s)}
    for model, limits in profile.model_limits.items():
        found[model] = Limiter(limits, now_s, model_class=model)
    return found


class _ArmedFault:
    __slots__ = ("fault", "left")

    def __init__(self, fault: Fault) -> None:
        self.fault = fault
        self.left = fault.count


class InstanceState:
    """One instance. All methods are thread-safe."""

    def __init__(self, name: str, profile: Profile, clock: Clock = time.monotonic) -> None:
        self.name = name
        self._clock = clock
        self._lock = threading.Lock()
        self._profile = profile
        self._limiters = limiters(profile, clock())
        self._faults: list[_ArmedFault] = []
        self._counts: Counter[str] = Counter()
        self._in_flight = 0
        self.prompt_cache = PromptCache(clock)
        """Live prompt-cache entries; kept across :meth:`set_profile` and stats resets."""

    @property
    def profile(self) -> Profile:
        return self._profile

    def set_profile(self, profile: Profile) -> None:
        """Swap the profile; every limit bucket restarts full under the new limits. The
        prompt cache is kept: entries still live are read under the new profile if it caches
        and the prefix is long enough for its minimum."""
        with self._lock:
            self._profile = profile
            self._limiters = limiters(profile, self._clock())

    def set_faults(self, faults: Iterable[Fault]) -> None:
        with self._lock:
            self._faults = [_ArmedFault(fault) for fault in faults]

    def add_fault(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(_ArmedFault(fault))

    def faults(self) -> list[Fault]:
        with self._lock:
            return [armed.fault for armed in self._faults]

    def draw_fault(self, rng: random.Random) -> Fault | None:
        """The first armed fault whose draw hits, counted and disarmed when spent."""
        with self._lock:
            for armed in self._faults:
                if armed.fault.rate < 1.0 and rng.random() >= armed.fault.rate:
                    continue
                if armed.left is not None:
                    armed.left -= 1
                    if armed.left <= 0:
                        self._faults.remove(armed)
                self._counts["faults"] += 1
                return armed.fault
            return None

    def _limiter(self, model: str) -> Limiter:
        """The buckets governing ``model``; hold the lock."""
        model_class, _ = self._profile.limits_for(model)
        return self._limiters[model_class]

    def admit(self, model: str, input_tokens: int, output_tokens: int) -> Denial | None:
        """Charge ``model``'s limits for one call, or refuse it and charge nothing."""
        with self._lock:
            denial = self._limiter(model).admit(input_tokens, output_tokens, self._clock())
            if denial is not None:
                self._counts["rate_limited"] += 1
            return denial

    def settle(
        self,
        model: str,
        input_tokens: int,
        charged_output: int,
        output_tokens: int,
        cache: CacheUsage = NO_USAGE,
    ) -> None:
        """Count a served call and refund the output tokens it did not use to ``model``'s
        buckets. After a profile swap mid-call the refund goes to the new, full buckets.

        ``input_tokens`` is the uncached input (the ``input_tokens`` stat counts the same);
        ``cache`` the call's cache reads and writes, billed apart."""
        with self._lock:
            self._limiter(model).refund(charged_output, output_tokens, self._clock())
            self._counts["input_tokens"] += input_tokens
            self._counts["output_tokens"] += output_tokens
            self._counts[f"{BILLED}{model}:input_tokens"] += input_tokens
            self._counts[f"{BILLED}{model}:output_tokens"] += output_tokens
            for kind, tokens in cache.billed().items():
                self._counts[f"{BILLED}{model}:{kind}"] += tokens

    def limit_states(self, model: str) -> list[BucketState]:
        """The limited buckets that govern ``model`` (its own, else the instance-wide)."""
        with self._lock:
            return self._limiter(model).states(self._clock())

    def begin(self) -> None:
        with self._lock:
            self._counts["requests"] += 1
            self._in_flight += 1

    def end(self, status: int | None) -> None:
        """Finish a call: ``status`` is the answer's HTTP status, None if dropped."""
        with self._lock:
            self._in_flight -= 1
            if status is None:
                self._counts["dropped"] += 1
            else:
                self._counts[f"status_{status}"] += 1
                if status == 200:
                    self._counts["ok"] += 1

    def stats(self) -> dict[str, int]:
        with self._lock:
            snapshot = dict.fromkeys(STAT_KEYS, 0)
            snapshot.update(self._counts)
            snapshot["in_flight"] = self._in_flight
            return snapshot

    def reset_stats(self) -> None:
        """Zero the counters; calls still in flight stay counted as in flight."""
        with self._lock:
            self._counts.clear()

    def count_batch(self, requests: int) -> None:
        """Count one batch created with ``requests`` requests."""
        with self._lock:
            self._counts["batches"] += 1
            self._counts["batch_requests"] += requests

    def bill_batch(self, model: str, input_tokens: int, output_tokens: int) -> None:
        """Bill one served batch request at the batch rate; no limit bucket is charged."""
        with self._lock:
            self._counts[f"{BATCH_BILLED}{model}:input_tokens"] += input_tokens
            self._counts[f"{BATCH_BILLED}{model}:output_tokens"] += output_tokens


class Registry:
    """Every instance by name. Unlisted names get ``default_profile`` on first use, or
    do not exist when it is None."""

    def __init__(
        self,
        profiles: Mapping[str, Profile],
        default_profile: Profile | None,
        clock: Clock = time.monotonic,
    ) -> None:
        self._clock = clock
        self._default = default_profile
        self._lock = threading.Lock()
        self._states = {name: InstanceState(name, p, clock) for name, p in profiles.items()}

    def get(self, name: str) -> InstanceState | None:
        state = self._states.get(name)
        if state is not None or self._default is None:
            return state
        with self._lock:
            return self._states.setdefault(name, InstanceState(name, self._default, self._clock))

    def require(self, name: str) -> InstanceState:
        """The instance, created with the default profile if need be; KeyError if unknown."""
        state = self.get(name)
        if state is None:
            raise KeyError(f"unknown instance {name!r} and no default profile")
        return state

    def set_profile(self, name: str, profile: Profile) -> None:
        with self._lock:
            state = self._states.get(name)
            if state is None:
                self._states[name] = InstanceState(name, profile, self._clock)
                return
        state.set_profile(profile)

    def states(self) -> list[InstanceState]:
        with self._lock:
            return list(self._states.values())

    def set_faults(self, name: str, faults: Iterable[Fault]) -> None:
        """Replace the instance's armed faults (an empty list disarms it)."""
        self.require(name).set_faults(faults)

    def add_fault(self, name: str, fault: Fault) -> None:
        """Arm one more fault after those already armed; the first that fires wins."""
        self.require(name).add_fault(fault)

    def clear_faults(self, name: str | None = None) -> None:
        """Disarm one instance, or every instance when ``name`` is None."""
        states = self.states() if name is None else [self._states.get(name)]
        for state in states:
            if state is not None:
                state.set_faults(())

    def faults(self) -> dict[str, list[Fault]]:
        return {state.name: state.faults() for state in self.states() if state.faults()}

    def profiles(self) -> dict[str, Profile]:
        return {state.name: state.profile for state in self.states()}

    def stats(self) -> dict[str, dict[str, int]]:
        return {state.name: state.stats() for state in self.states()}

    def reset_stats(self) -> None:
        for state in self.states():
            state.reset_stats()
