"""Masking credentials in URLs before they are shown (``redis://:secret@host``,
``rediss://user:secret@host``, ``?password=secret``)."""

from __future__ import annotations

import re

MASK = "***"
_USERINFO = re.compile(r"(://)[^/@\s]+@")
_QUERY_SECRET = re.compile(r"(?i)([?&;](?:password|passwd|pwd|secret|token|api_key|key)=)[^&#\s]*")


def mask_url_secrets(text: str) -> str:
    """``text`` with every URL's user info and secret query values replaced by ``***``."""
    return _QUERY_SECRET.sub(rf"\1{MASK}", _USERINFO.sub(rf"\1{MASK}@", text))
