"""What a provider's answer tells every worker: cooldowns, disabled accounts, health.

A 429 cools the whole instance down (every worker, every host) for the window the provider
named: ``retry-after``, else the latest ``anthropic-ratelimit-*-reset``. A 429 with neither is
a spend cap: the account is exhausted for ``retry.exhausted_cooldown_s``. 401/402/403 disable
the instance and raise an alert. Every outcome feeds the health score the router filters on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from datetime import datetime

from lanes.kernel.config import Config
from lanes.kernel.errors import AuthFailed, ProviderError, RateLimited
from lanes.stores.lane_state import LaneStateStore

alerts = logging.getLogger("lanes.alerts")
log = logging.getLogger("lanes.workers")

_RESET_HEADERS = (
    "anthropic-ratelimit-requests-reset",
    "anthropic-ratelimit-input-tokens-reset",
    "anthropic-ratelimit-output-tokens-reset",
    "anthropic-ratelimit-tokens-reset",
)


def reset_in_s(headers: Mapping[str, str], now_s: float) -> float | None:
    """Seconds until the latest ``anthropic-ratelimit-*-reset`` (RFC 3339), if any is sent."""
    latest: float | None = None
    for name in _RESET_HEADERS:
        raw = headers.get(name)
        if not raw:
            continue
        try:
            at_s = datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp()
        except ValueError:
            continue
        latest = at_s if latest is None else max(latest, at_s)
    return None if latest is None else max(0.0, latest - now_s)


def on_error(
    config: Config, store: LaneStateStore, instance: str, exc: ProviderError
) -> float | None:
    """Record ``exc`` against ``instance`` and apply what it implies for everybody; returns
    the cooldown a 429 started (seconds), else None."""
    log.warning("instance %s: %s: %s", instance, type(exc).__name__, exc)
    store.record_failure(instance, type(exc).__name__)
    if isinstance(exc, RateLimited):
        return _cool_down(config, store, instance, exc)
    if isinstance(exc, AuthFailed):
        store.disable(instance, f"{exc} (fix the key in ${config.instances[instance].api_key_env})")
        alerts.error("instance %s disabled: %s", instance, exc)
    return None


def _cool_down(config: Config, store: LaneStateStore, instance: str, exc: RateLimited) -> float:
    seconds = exc.retry_after_s
    reason = "429 rate limited"
    if seconds is None:
        seconds = reset_in_s(exc.headers, time.time())
    if seconds is None:
        seconds = config.retry.exhausted_cooldown_s
        reason = "429 without retry-after: account exhausted (spend cap)"
        alerts.warning("instance %s exhausted for %.0fs: %s", instance, seconds, exc)
    left_s = store.cool_down(instance, max(seconds, 0.001), reason)
    log.info("instance %s cooling down %.1fs (%s)", instance, left_s, reason)
    return left_s
