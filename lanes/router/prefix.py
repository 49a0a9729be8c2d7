"""A shared prompt prefix's identity and whether it is worth caching."""

from __future__ import annotations

import functools
import hashlib

from lanes.kernel.config import Config
from lanes.router.classifier import estimate_tokens


@functools.lru_cache(maxsize=32)
def prefix_digest(prefix: str) -> str:
    """The name a prefix is known by in the stores (its text never is). Kept for the few
    prefixes in use: a worker needs it twice per call (before and after), a prefix may be
    hundreds of kilobytes, and a string's own hash is computed once."""
    return hashlib.sha256(prefix.encode()).hexdigest()[:32]


def cacheable(config: Config, model: str, prefix: str | None) -> bool:
    """Whether ``prefix`` is long enough for ``model``'s provider to cache it, with prompt
    caching affinity on (a shorter one is sent plain: the provider would not cache it)."""
    if not prefix or not config.caching.affinity:
        return False
    return estimate_tokens(prefix) >= config.models[model].cache_min_tokens


def ttl_s(ttl: str) -> int:
    """Seconds of a cache TTL as the APIs write it (``5m``, ``1h``)."""
    return 3600 if ttl == "1h" else 300
