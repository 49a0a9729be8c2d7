"""Deterministic replies and plausible token counts.

A reply depends only on the model, the system text and the conversation, so a test can
compute what the simulator will answer with :func:`expected_reply`. Token counts follow
the usual rule of thumb of one token per four characters.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lanes.sim.content import content_media, content_text, message_text

CHARS_PER_TOKEN = 4
TOKENS_PER_MESSAGE = 4
"""Role markers and separators a real tokenizer adds around each message."""
MIN_REPLY_TOKENS = 20
MAX_REPLY_TOKENS = 120
SYSTEM_ROLES = frozenset({"system", "developer"})

_SYLLABLES = (
    "ka", "lo", "mi", "ren", "to", "va", "shi", "dor", "el", "qua", "nim", "bas", "te", "ro",
    "zu", "fen", "al", "mar", "pi", "sol", "un", "gra", "the", "lis", "co", "ver", "da", "nu",
    "sen", "or", "bi", "tal",
)  # fmt: skip


def count_tokens(text: str) -> int:
    """Tokens in ``text``: one per 4 characters, rounded up (so 1 for any non-empty text)."""
    return (len(text) + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN


@dataclass(frozen=True, slots=True)
class Prompt:
    """A conversation reduced to what replies and token counts depend on.

    System-role messages (OpenAI's ``system``/``developer``) are folded into ``system`` so
    the same conversation gets the same reply through either API. ``extra_tokens`` are
    those no text holds: images, documents and tool definitions; ``media_count`` and
    ``media_key`` (a digest of every image and document) tell the media apart.
    """

    system: str
    turns: tuple[tuple[str, str], ...]
    extra_tokens: int = 0
    media_count: int = 0
    media_key: bytes = b""
    input_tokens: int = field(init=False, compare=False)
    """System tokens plus each turn's tokens and its per-message overhead, plus
    ``extra_tokens``."""

    def __post_init__(self) -> None:
        turn_tokens = sum(count_tokens(text) + TOKENS_PER_MESSAGE for _, text in self.turns)
        # Computed once: every call reads it several times (window, limits, usage).
        total = count_tokens(self.system) + turn_tokens + self.extra_tokens
        object.__setattr__(self, "input_tokens", total)

    @classmethod
    def of(
        cls,
        messages: Sequence[Mapping[str, Any]],
        system: str | Sequence[Mapping[str, Any]] | None = None,
        tool_tokens: int = 0,
    ) -> Prompt:
        """``tool_tokens``: what the request's tool definitions count."""
        system_parts = [content_text(system)] if system else []
        turns: list[tuple[str, str]] = []
        media = [found for m in messages for found in content_media(m.get("content"))]
        for message in messages:
            text = message_text(message)
            if message["role"] in SYSTEM_ROLES:
                system_parts.append(text)
            else:
                turns.append((str(message["role"]), text))
        return cls(
            system="\n".join(system_parts),
            turns=tuple(turns),
            extra_tokens=tool_tokens + sum(found.tokens for found in media),
            media_count=len(media),
            media_key=b"".join(found.key for found in media),
        )

    def digest(self, model: str) -> bytes:
        """SHA-256 of the model, the system text, every turn (role included) and the media."""
        hasher = hashlib.sha256(model.encode())
        hasher.update(b"\x1e" + self.system.encode())
        for role, text in self.turns:
            hasher.update(b"\x1e" + role.encode() + b"\x1f" + text.encode())
        if self.media_key:
            hasher.update(b"\x1d" + self.media_key)
        return hasher.digest()


def _byte_stream(seed: bytes) -> Iterator[int]:
    counter = 0
    while True:
        yield from hashlib.sha256(seed + counter.to_bytes(4, "big")).digest()
        counter += 1


def _pseudo_words(seed: bytes) -> Iterator[str]:
    stream = _byte_stream(seed)
    while True:
        syllables = 1 + next(stream) % 3
        yield "".join(_SYLLABLES[next(stream) % len(_SYLLABLES)] for _ in range(syllables))


def generate_reply(model: str, prompt: Prompt, max_tokens: int) -> tuple[str, bool]:
    """The reply text and whether ``max_tokens`` cut it short.

    The natural length is 20-120 tokens, chosen by the hash; a cut reply is
    exactly ``max_tokens`` tokens long and may end mid-word, as a real one does.
    """
    seed = prompt.digest(model)
    # Words are at most 9 characters, so stopping before the target loses under 3 tokens:
    # aiming 2 tokens above the minimum keeps every reply within 20-120 tokens.
    low, high = MIN_REPLY_TOKENS + 2, MAX_REPLY_TOKENS
    target_chars = (low + int.from_bytes(seed[:4], "big") % (high - low + 1)) * CHARS_PER_TOKEN
    parts = [f"Simulated reply from {model}."]
    length = len(parts[0])
    for word in _pseudo_words(seed):
        if length + len(word) + 2 > target_chars:  # a space before, the final period after
            break
        parts.append(word)
        length += len(word) + 1
    text = " ".join(parts) + "."
    limit_chars = max_tokens * CHARS_PER_TOKEN
    if len(text) > limit_chars:
        return text[:limit_chars], True
    return text, False


def count_input_tokens(
    messages: Sequence[Mapping[str, Any]],
    system: str | Sequence[Mapping[str, Any]] | None = None,
) -> int:
    """The ``input_tokens`` (``prompt_tokens``) the simulator reports for this request."""
    return Prompt.of(messages, system).input_tokens


def expected_reply(
    model: str,
    messages: Sequence[Mapping[str, Any]],
    system: str | Sequence[Mapping[str, Any]] | None,
    max_tokens: int,
) -> str:
    """Exactly the text the simulator answers to this request, through either API.

    ``messages`` are as sent on the wire (string or text-block content). For the
    OpenAI endpoint pass ``system=None`` and keep the system messages in ``messages``;
    for a call without a token limit any ``max_tokens`` of 120 or more gives its reply.
    """
    text, _ = generate_reply(model, Prompt.of(messages, system), max_tokens)
    return text
