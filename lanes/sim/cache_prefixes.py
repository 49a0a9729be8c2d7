"""Where a request's cacheable prefixes end and how many prompt tokens each holds.

Prefix tokens follow :class:`~lanes.sim.replies.Prompt`'s count, so no prefix exceeds the
prompt and the uncached remainder is never negative:

- a breakpoint on system block ``i`` holds the tokens of system blocks ``0..i`` joined
  as the reply joins them (newlines);
- a breakpoint on block ``j`` of message ``m`` holds the whole system, every earlier
  message with its per-message overhead, and blocks ``0..j`` of message ``m`` with that
  message's overhead (the role marker opens the message, so it is in the prefix).

Anthropic requests mark breakpoints with ``cache_control``; chat-completion requests get
one at every 128-token boundary of their messages serialized in order (automatic caching).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lanes.sim.content import block_text, content_media, content_text, message_text
from lanes.sim.prompt_cache import FIVE_MINUTES_S, ONE_HOUR_S, Breakpoint, CachePlan
from lanes.sim.replies import CHARS_PER_TOKEN, TOKENS_PER_MESSAGE, count_tokens
from lanes.sim.validate import InvalidRequest

MAX_BREAKPOINTS = 4
TTLS_S = {"5m": FIVE_MINUTES_S, "1h": ONE_HOUR_S}
AUTOMATIC_BLOCK_TOKENS = 128
"""Automatic caching hits in whole blocks of this many tokens."""
_TTL_ORDER = (
    "a ttl='1h' cache_control block must not come after a ttl='5m' cache_control block. "
    "Note that blocks are processed in the following order: `tools`, `system`, `messages`."
)


@dataclass(frozen=True, slots=True)
class _Marker:
    """A ``cache_control`` found on a block: where (for errors), its TTL and its prefix."""

    where: str
    ttl: str
    point: Breakpoint


def anthropic_plan(
    system: Any,
    messages: Sequence[Mapping[str, Any]],
    tool_tokens: int = 0,
    tools_key: bytes = b"",
) -> CachePlan:
    """The ``cache_control`` breakpoints of a validated Messages request; its tool
    definitions (``tool_tokens``, digest ``tools_key``) come before everything else in
    every prefix, as the API processes ``tools`` first (their own ``cache_control`` marks
    no breakpoint here).

    Raises :class:`InvalidRequest` on a malformed ``cache_control``, a ``1h`` breakpoint
    after a ``5m`` one, or more than four breakpoints."""
    markers = list(_markers(system, messages, tool_tokens, tools_key))
    _check_order(markers)
    if len(markers) > MAX_BREAKPOINTS:
        raise InvalidRequest(
            f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided. "
            f"Found {len(markers)}."
        )
    return CachePlan(tuple(marker.point for marker in markers))


def _markers(
    system: Any, messages: Sequence[Mapping[str, Any]], tool_tokens: int, tools_key: bytes
) -> Iterator[_Marker]:
    """Every ``cache_control`` in API order: system blocks, then message blocks."""
    hasher = hashlib.sha256(b"anthropic\x1e" + tools_key)
    blocks = system if isinstance(system, list) else [{"text": system or ""}]
    yield from _block_markers(blocks, "system", hasher, base_tokens=tool_tokens, overhead=0)
    done = tool_tokens + count_tokens("\n".join(str(block["text"]) for block in blocks))
    for index, message in enumerate(messages):
        content = message["content"]
        hasher.update(b"\x1e" + str(message["role"]).encode() + b"\x1f")
        blocks = content if isinstance(content, list) else [{"text": content}]
        where = f"messages.{index}.content"
        yield from _block_markers(blocks, where, hasher, done, TOKENS_PER_MESSAGE)
        media_tokens = sum(found.tokens for found in content_media(content))
        done += count_tokens(content_text(content)) + media_tokens + TOKENS_PER_MESSAGE


def _block_markers(
    blocks: Sequence[Mapping[str, Any]],
    where: str,
    hasher: hashlib._Hash,
    base_tokens: int,
    overhead: int,
) -> Iterator[_Marker]:
    """The markers of one block list, feeding its text (newline-joined) and the digests of
    its media to ``hasher``."""
    texts: list[str] = []
    media_tokens = 0
    for index, block in enumerate(blocks):
        text = block_text(block)
        hasher.update(("\n" if texts else "").encode() + text.encode())
        texts.append(text)
        for found in content_media([block]):
            hasher.update(b"\x1d" + found.key)
            media_tokens += found.tokens
        ttl = _cache_ttl(block, f"{where}.{index}")
        if ttl is None:
            continue
        tokens = base_tokens + count_tokens("\n".join(texts)) + media_tokens + overhead
        point = Breakpoint(tokens, hasher.copy().digest(), TTLS_S[ttl])
        yield _Marker(f"{where}.{index}", ttl, point)


def _cache_ttl(block: Mapping[str, Any], where: str) -> str | None:
    """The block's ``cache_control`` TTL, None without one; raises if malformed."""
    control = block.get("cache_control")
    if control is None:
        return None
    if not isinstance(control, dict):
        raise InvalidRequest(f"{where}.cache_control: Input should be an object")
    if control.get("type") != "ephemeral":
        raise InvalidRequest(f"{where}.cache_control.type: Input should be 'ephemeral'")
    for key in control:
        if key not in ("type", "ttl"):
            raise InvalidRequest(f"{where}.cache_control.{key}: Extra inputs are not permitted")
    ttl = control.get("ttl", "5m")
    if ttl not in TTLS_S:
        raise InvalidRequest(f"{where}.cache_control.ttl: Input should be '5m' or '1h'")
    if block.get("type", "text") == "text" and not block["text"]:
        raise InvalidRequest(f"{where}.text: cache_control cannot be set for empty text blocks")
    return str(ttl)


def _check_order(markers: Sequence[_Marker]) -> None:
    seen_short = False
    for marker in markers:
        if marker.ttl == "1h" and seen_short:
            raise InvalidRequest(f"{marker.where}.cache_control.ttl: {_TTL_ORDER}")
        seen_short = seen_short or marker.ttl == "5m"


def automatic_plan(messages: Sequence[Mapping[str, Any]], prompt_tokens: int) -> CachePlan:
    """A breakpoint at every 128-token boundary of the chat messages serialized in order
    (role, then text, then the hex digests of any images; 4 characters a token), up to
    the prompt's token count."""
    if prompt_tokens < AUTOMATIC_BLOCK_TOKENS:
        return CachePlan(automatic=True)
    serialized = "".join(
        f"{message['role']}\x1f{message_text(message)}{_media_keys(message)}\x1e"
        for message in messages
    )
    block_chars = AUTOMATIC_BLOCK_TOKENS * CHARS_PER_TOKEN
    last_end = min(len(serialized), prompt_tokens * CHARS_PER_TOKEN)
    hasher = hashlib.sha256(b"chat\x1e")
    points: list[Breakpoint] = []
    for end in range(block_chars, last_end + 1, block_chars):
        hasher.update(serialized[end - block_chars : end].encode())
        tokens = end // CHARS_PER_TOKEN
        points.append(Breakpoint(tokens, hasher.copy().digest(), FIVE_MINUTES_S))
    return CachePlan(tuple(points), automatic=True)


def _media_keys(message: Mapping[str, Any]) -> str:
    """The digests of a message's images, so prompts differing only in them differ."""
    return "".join(found.key.hex() for found in content_media(message.get("content")))
