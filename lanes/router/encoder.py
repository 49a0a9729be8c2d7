"""A static sentence encoder: what a request is about, as one unit vector, in microseconds.

Each word piece of a sentence-embedding model's vocabulary has one fixed vector: the model's
own output for that piece alone, reduced to ``dims`` components (built by ``lanes train
--distil``; see the manifest for the model and its licence). A text's vector is the mean of
its pieces' vectors, normalised; texts about the same thing point the same way even when
they share no word ("proration" sits near "invoice"). Stored and held as int8 with a scale
per piece (about 8 MB at 256 dimensions, loaded on the first request).

Splitting follows the model's tokenizer: lower case, accents removed, punctuation and CJK
characters apart, then the longest known piece first (``##`` marks a continuation). Only
the first ``MAX_WORDS`` words are read, and of those only words with a letter (marks and bare
numbers are left out); each word's pieces are remembered per process, so a request costs one
dict lookup per word and one gather-and-sum.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from itertools import islice

import numpy as np
import numpy.typing as npt

ENCODER_FILE = "encoder.npz"
MAX_WORDS = 160
MAX_CHARS = 4000
"""Characters read for those words: cost stays flat however long the text."""
MAX_WORD_CHARS = 100
WORD_CACHE_SIZE = 50_000
"""Words whose pieces are remembered per process."""
CONTINUATION = "##"
_ASCII_WORD = re.compile(r"[a-z0-9]+|[^a-z0-9\s\x00-\x1f\x7f]")
"""An ASCII word: letters and digits, or one mark (control characters are dropped)."""
Vector = npt.NDArray[np.float32]


def _is_punctuation(ch: str) -> bool:
    code = ord(ch)
    if 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(ch: str) -> bool:
    code = ord(ch)
    return (
        0x4E00 <= code <= 0x9FFF
        or 0x3400 <= code <= 0x4DBF
        or 0x20000 <= code <= 0x2FA1F
        or 0xF900 <= code <= 0xFAFF
    )


def _strip_accents(text: str) -> str:
    if text.isascii():
        return text
    return "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")


def words(text: str) -> list[str]:
    """The model tokenizer's words of ``text``: lower case, accents stripped, each
    punctuation mark and CJK character a word of its own; at most ``MAX_WORDS``."""
    head = text[:MAX_CHARS]
    if head.isascii():
        found = _ASCII_WORD.finditer(head.lower())
        return [m.group() for m in islice(found, MAX_WORDS)]
    out: list[str] = []
    for chunk in _strip_accents(head.lower()).split():
        if chunk.isalnum() and chunk.isascii():
            out.append(chunk)
        else:
            out += _split_marks(chunk, MAX_WORDS - len(out))
        if len(out) >= MAX_WORDS:
            break
    return out[:MAX_WORDS]


def _split_marks(chunk: str, limit: int) -> list[str]:
    """``chunk``'s words and marks, stopping once ``limit`` are found."""
    parts: list[str] = []
    current: list[str] = []
    for ch in chunk:
        if len(parts) >= limit:
            return parts
        if _is_punctuation(ch) or _is_cjk(ch):
            if current:
                parts.append("".join(current))
                current = []
            parts.append(ch)
        elif unicodedata.category(ch)[0] != "C":
            current.append(ch)
    if current:
        parts.append("".join(current))
    return parts


def _is_content(word: str) -> bool:
    """Words that say what a text is about: not a mark, not a bare number (an id, a count or
    a ticket number would pull short texts towards whatever their pieces happen to mean)."""
    return word.isalnum() and not word.isdigit()


def pieces(word: str, vocab: dict[str, int]) -> list[int]:
    """Vocabulary rows of ``word``'s pieces, longest known piece first; no rows when some
    part of it is unknown (the model's tokenizer would read it as unknown too)."""
    if len(word) > MAX_WORD_CHARS:
        return []
    rows: list[int] = []
    start = 0
    while start < len(word):
        end = len(word)
        row = None
        while end > start:
            piece = word[start:end] if start == 0 else CONTINUATION + word[start:end]
            row = vocab.get(piece)
            if row is not None:
                break
            end -= 1
        if row is None:
            return []
        rows.append(row)
        start = end
    return rows


@dataclass(frozen=True)
class Encoder:
    """Piece vocabulary and its vectors (int8, one scale per row)."""

    vocab: dict[str, int]
    codes: npt.NDArray[np.int8]
    scales: npt.NDArray[np.float32]
    _cache: dict[str, list[int]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @property
    def dims(self) -> int:
        return int(self.codes.shape[1])

    def _pieces(self, word: str) -> list[int]:
        cache = self._cache
        found = cache.get(word)
        if found is None:
            found = pieces(word, self.vocab)
            if len(cache) < WORD_CACHE_SIZE:
                cache[word] = found
        return found

    def encode(self, text: str) -> Vector:
        """``text``'s unit vector (all zeros when no word of it is known)."""
        rows = [row for word in words(text) if _is_content(word) for row in self._pieces(word)]
        if not rows:
            return np.zeros(self.dims, dtype=np.float32)
        total: Vector = self.scales[rows] @ self.codes[rows].astype(np.float32)
        norm = float(np.linalg.norm(total))
        return total / np.float32(norm) if norm else total

    def save(self, path: str) -> None:
        """Write the encoder as a compressed ``.npz`` (no pickles)."""
        ordered = sorted(self.vocab, key=self.vocab.__getitem__)
        np.savez_compressed(
            path,
            vocab=np.frombuffer("\n".join(ordered).encode(), dtype=np.uint8),
            codes=self.codes,
            scales=self.scales,
        )

    @classmethod
    def load(cls, path: object) -> Encoder:
        """Read an encoder written by :meth:`save` (a path or a file object)."""
        with np.load(path, allow_pickle=False) as data:  # type: ignore[arg-type]
            vocab = bytes(data["vocab"]).decode().split("\n")
            codes = data["codes"].astype(np.int8)
            scales = data["scales"].astype(np.float32)
        return cls({p: i for i, p in enumerate(vocab)}, codes, scales)

    @classmethod
    def quantized(cls, vocab: list[str], vectors: npt.NDArray[np.float32]) -> Encoder:
        """An encoder of float ``vectors`` (one row per piece of ``vocab``), stored as int8."""
        scales = np.abs(vectors).max(axis=1) / 127.0
        scales[scales == 0] = 1.0
        codes = np.round(vectors / scales[:, None]).astype(np.int8)
        return cls({p: i for i, p in enumerate(vocab)}, codes, scales.astype(np.float32))


@lru_cache(maxsize=1)
def shipped_encoder() -> Encoder:
    """The encoder shipped with lanes, loaded once per process."""
    with resources.files("lanes.router.data").joinpath(ENCODER_FILE).open("rb") as fh:
        return Encoder.load(fh)
