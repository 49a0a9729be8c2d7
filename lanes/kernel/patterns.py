"""Regular expressions that users write (``routing.custom_rules``), compiled with RE2.

RE2 matches in time linear in the text, so no pattern can hang routing, whatever the prompt
(Python's ``re`` backtracks: ``(a+)+$`` on forty ``a`` and a ``!`` never finishes). RE2 has no
backreferences and no lookaround: such a pattern is refused when the config loads, with the
reason. Its compiled program is bounded in memory too (:data:`MAX_PROGRAM_BYTES`).
"""

from __future__ import annotations

from typing import Protocol, cast

import re2

MAX_PROGRAM_BYTES = 8 << 20
"""Memory RE2 may use for one compiled pattern; a larger pattern is refused."""


class SafePattern(Protocol):
    def search(self, text: str) -> object | None:
        """A match anywhere in ``text``, or None."""
        ...


def compile_safe(pattern: str) -> SafePattern:
    """``pattern`` compiled with RE2; ValueError saying why when RE2 cannot take it."""
    options = re2.Options()
    options.log_errors = False  # the error is raised below, not written to stderr
    options.max_mem = MAX_PROGRAM_BYTES
    try:
        return cast(SafePattern, re2.compile(pattern, options))
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else exc
        raise ValueError(
            f"invalid regex {pattern!r}: {reason} (patterns use RE2 syntax: no backreferences"
            " or lookaround, so that matching can never hang)"
        ) from None
