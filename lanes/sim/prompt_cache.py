"""Prompt caching: the live prefix entries of one instance and what a call reads and writes.

A request names its cacheable prefixes as breakpoints (:class:`Breakpoint`, found by
:mod:`lanes.sim.cache_prefixes`); each carries the prompt tokens up to and including the
marked point and a digest of that prefix. An entry is keyed by (model, digest) and lives
until its expiry; a read or a rewrite pushes the expiry out by the breakpoint's TTL and
never pulls it in.

A call reads the longest of its cacheable breakpoints found live and writes every longer
one. Writes are stored only once the call is served (:meth:`PromptCache.store` at settle
time), so two identical calls in flight together both write and neither reads.

Anthropic's explicit breakpoints report the write split by TTL: the tokens between one
breakpoint (or the end of the read) and the next written one go to that next one's TTL.
With the API's rule that no 1h breakpoint follows a 5m one, that is its documented split:
1h writes up to the last 1h breakpoint, 5m writes after it. OpenAI's automatic caching
(:attr:`CachePlan.automatic`) reports only the read; its writes cost the plain input
price, so they stay in the uncached input.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from lanes.sim.profiles import Profile

Clock = Callable[[], float]

FIVE_MINUTES_S = 300.0
ONE_HOUR_S = 3600.0
AUTOMATIC_MIN_TOKENS = 1024
"""OpenAI caches prompts of at least this many tokens."""
_PURGE_EVERY_S = 60.0
"""How often :meth:`PromptCache.store` drops expired entries, to bound memory."""


@dataclass(frozen=True, slots=True)
class Breakpoint:
    """One cacheable prefix: its prompt tokens, a digest of its text and its TTL."""

    tokens: int
    digest: bytes
    ttl_s: float = FIVE_MINUTES_S

    @property
    def one_hour(self) -> bool:
        return self.ttl_s > FIVE_MINUTES_S


@dataclass(frozen=True, slots=True)
class CachePlan:
    """The cacheable prefixes of one request, shortest first.

    ``automatic``: OpenAI-style caching, where every 128-token boundary is a breakpoint,
    writes are neither reported nor billed apart and reads still count toward the
    input-token limit."""

    breakpoints: tuple[Breakpoint, ...] = ()
    automatic: bool = False


NO_CACHE = CachePlan()


@dataclass(frozen=True, slots=True)
class CacheUsage:
    """What one call read from and wrote to the cache, in prompt tokens."""

    read_tokens: int = 0
    write_5m_tokens: int = 0
    write_1h_tokens: int = 0

    @property
    def write_tokens(self) -> int:
        """Every write, whatever its TTL."""
        return self.write_5m_tokens + self.write_1h_tokens

    def billed(self) -> dict[str, int]:
        """The nonzero ``billed:<model>:<kind>`` counts: ``cache_read_input_tokens``,
        ``cache_creation_input_tokens`` (every write) and ``cache_creation_1h_input_tokens``
        (the 1h part of it)."""
        counts = {
            "cache_read_input_tokens": self.read_tokens,
            "cache_creation_input_tokens": self.write_tokens,
            "cache_creation_1h_input_tokens": self.write_1h_tokens,
        }
        return {kind: tokens for kind, tokens in counts.items() if tokens}


NO_USAGE = CacheUsage()


@dataclass(frozen=True, slots=True)
class CacheLookup:
    """A call's cache usage and the entries to store (the read one included, to refresh
    it) once the call is served."""

    usage: CacheUsage
    stores: tuple[Breakpoint, ...]


MISS = CacheLookup(NO_USAGE, ())


def min_cache_tokens(model: str, profile: Profile, *, automatic: bool) -> int:
    """The shortest prefix ``model`` caches: the profile's ``cache_min_tokens`` entry, else
    1024 for automatic caching, else Anthropic's table (4096 for Opus 4.5 and Haiku 4.5,
    2048 for other Haiku models, 1024 for the rest)."""
    own = profile.cache_min_tokens.get(model)
    if own is not None:
        return own
    if automatic:
        return AUTOMATIC_MIN_TOKENS
    if "opus-4-5" in model or "haiku-4-5" in model:
        return 4096
    return 2048 if "haiku" in model else 1024


def cacheable(plan: CachePlan, model: str, profile: Profile) -> tuple[Breakpoint, ...]:
    """The breakpoints of ``plan`` long enough to cache; none when the profile never caches."""
    if not profile.prompt_cache or not plan.breakpoints:
        return ()
    shortest = min_cache_tokens(model, profile, automatic=plan.automatic)
    return tuple(point for point in plan.breakpoints if point.tokens >= shortest)


def _usage(writes: Iterable[Breakpoint], read_tokens: int, *, automatic: bool) -> CacheUsage:
    if automatic:
        return CacheUsage(read_tokens=read_tokens)
    by_ttl = {False: 0, True: 0}
    done = read_tokens
    for point in writes:
        by_ttl[point.one_hour] += max(0, point.tokens - done)
        done = max(done, point.tokens)
    return CacheUsage(read_tokens, write_5m_tokens=by_ttl[False], write_1h_tokens=by_ttl[True])


class PromptCache:
    """The live entries of one instance, by (model, digest). Thread-safe.

    Entries outlive profile swaps and stats resets: only time (``clock``) expires them.
    """

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._expiry: dict[tuple[str, bytes], float] = {}
        self._purge_at = clock() + _PURGE_EVERY_S

    def __len__(self) -> int:
        with self._lock:
            return len(self._expiry)

    def look_up(
        self, model: str, breakpoints: tuple[Breakpoint, ...], *, automatic: bool = False
    ) -> CacheLookup:
        """What a call with these (cacheable) breakpoints reads and writes; changes nothing."""
        if not breakpoints:
            return MISS
        hit = self._longest_live(model, breakpoints)
        read_tokens = hit.tokens if hit is not None else 0
        writes = tuple(point for point in breakpoints if point.tokens > read_tokens)
        stores = writes if hit is None else (hit, *writes)
        return CacheLookup(_usage(writes, read_tokens, automatic=automatic), stores)

    def store(self, model: str, entries: Iterable[Breakpoint]) -> None:
        """Make ``entries`` live for their TTL from now (or longer, if already so)."""
        with self._lock:
            now = self._clock()
            for point in entries:
                key = (model, point.digest)
                self._expiry[key] = max(self._expiry.get(key, now), now + point.ttl_s)
            if now >= self._purge_at:
                self._purge(now)

    def clear(self) -> None:
        with self._lock:
            self._expiry.clear()

    def _longest_live(self, model: str, breakpoints: tuple[Breakpoint, ...]) -> Breakpoint | None:
        with self._lock:
            now = self._clock()
            for point in reversed(breakpoints):
                if self._expiry.get((model, point.digest), now) > now:
                    return point
            return None

    def _purge(self, now: float) -> None:
        """Drop expired entries; hold the lock."""
        self._expiry = {key: at for key, at in self._expiry.items() if at > now}
        self._purge_at = now + _PURGE_EVERY_S
