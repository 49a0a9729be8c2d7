"""Keeping secrets out of provider text: errors are scrubbed where they are translated.

Some providers and proxies (a LiteLLM proxy among them) quote the API key they were sent in a
401 body. Whatever a provider says ends up in a result's ``error``, a fallback's reason, a
lane's disabled reason and the worker log, so every text that leaves a provider goes through
a :class:`Scrubber` first: each configured secret, and any ``Bearer`` token, is replaced.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from lanes.kernel.config import Config

REDACTED = "[redacted]"
_BEARER = re.compile(r"(?i)\b(bearer)\s+[^\s'\",;]+")
_MIN_SECRET_LEN = 4
"""Shorter values are not treated as secrets: replacing them would garble ordinary text."""


class Scrubber:
    def __init__(self, secrets: Iterable[str]) -> None:
        unique = {s for s in secrets if len(s) >= _MIN_SECRET_LEN}
        self._secrets = sorted(unique, key=len, reverse=True)  # longest first: no partial leak

    @classmethod
    def from_config(cls, config: Config) -> Scrubber:
        """Every API key the config's instances read from the environment now."""
        keys = (spec.api_key() for spec in config.instances.values())
        return cls(key.get_secret_value() for key in keys if key is not None)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return _BEARER.sub(rf"\1 {REDACTED}", text)


NO_SECRETS = Scrubber(())
"""A scrubber that knows no secret (still hides ``Bearer`` tokens)."""
