"""The learned half of the type classifier: a linear model over words, word pairs and
sub-word pieces of the request's opening words.

It is trained (``lanes train``) on real, labelled software task text, Conventional Commits
subjects from many public repositories (see ``bench/training/manifest.json``), and shipped as
package data (``router/data/typemodel.npz``); nothing is downloaded at run time. It knows the
five types such text carries labels for: code-generation, debugging, documentation, testing
and refactoring. The cue tables (``_classify_rules``) still name the other types.

Features (:func:`features`) are strings, looked up in the model's vocabulary (a dict): an
unknown feature counts for nothing, so any text is safe. Cost: about 20-40 microseconds for
the ``MODEL_TOKENS`` opening tokens, whatever the text's length.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from itertools import pairwise
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from lanes.kernel.taxonomy import TaskType
from lanes.router import _classify_rules as rules
from lanes.router._classify_scan import SCAN_CHARS, lead_index, prose, tokenize

MODEL_TOKENS = 24
"""Opening tokens the model reads: the task is stated first."""
HEAD_CHARS = 320
PIECE_WORDS = 12
"""Words whose sub-word pieces are features."""
MIN_PIECE_WORD = 4
WORD_CACHE_SIZE = 20_000
"""Words whose scores are remembered per process (about 200 bytes each)."""
MODEL_FILE = "typemodel.npz"
_CALL_RE = re.compile(r"\w\(")
_CAMEL_RE = re.compile(r"[A-Z](?<=[a-z][A-Z])")
"""A lower-to-upper case step, anchored on the rarer capital for speed."""
_FILLER = rules.LEADING_FILLER - {"i'd", "re"}
"""Tokens skipped before the lead word: the classifier's fillers, as the model was trained."""
FloatArray = npt.NDArray[np.float32]


def pieces(word: str) -> list[str]:
    """Sub-word pieces of ``word``: its 3-, 4- and 5-character slices, ends marked."""
    padded = f"<{word}>"
    return [padded[i : i + n] for n in (3, 4, 5) for i in range(len(padded) - n + 1)]


def text_words(text: str) -> tuple[list[str], str]:
    """The words the model reads and the head its shape marks come from: the classifier's
    own prose tokens (lower case, code blanked; ``lanes.router._classify_scan``), the first
    ``MODEL_TOKENS`` of them. The classifier passes its scan's tokens instead of calling
    this, so both read exactly the same words."""
    return tokenize(prose(text[:SCAN_CHARS]))[:MODEL_TOKENS], text[:HEAD_CHARS]


def _context(words: list[str], head: str) -> list[str]:
    """Features beyond single words: adjacent pairs, the lead word (after fillers like
    "please") and its successor, and shape marks (a call ``f(``, camelCase, length)."""
    lead = lead_index(words, _FILLER)
    feats = [f"b:{a} {b}" for a, b in pairwise(words)]
    if words:
        feats.append(f"l:{words[lead]}")
        if lead + 1 < len(words):
            feats.append(f"l2:{words[lead]} {words[lead + 1]}")
    if "(" in head and _CALL_RE.search(head):
        feats.append("s:call")
    if _CAMEL_RE.search(head):
        feats.append("s:camel")
    feats.append(f"s:len{len(words) // 6}")
    return feats


def _has_pieces(word: str) -> bool:
    return len(word) >= MIN_PIECE_WORD


def features(words: list[str], head: str) -> list[str]:
    """The model's features for ``words`` (see :func:`text_words`): the words, the sub-word
    :func:`pieces` of the first ``PIECE_WORDS`` of them, and the :func:`_context` features
    (``head`` gives the shape marks). A feature that occurs twice counts twice."""
    words = words[:MODEL_TOKENS]
    feats = [f"w:{w}" for w in words]
    for word in words[:PIECE_WORDS]:
        if _has_pieces(word):
            feats += pieces(word)
    return feats + _context(words, head)


CLASS_TYPES: dict[str, TaskType] = {
    "feat": TaskType.CODE_GENERATION,
    "fix": TaskType.DEBUGGING,
    "docs": TaskType.DOCUMENTATION,
    "test": TaskType.TESTING,
    "refactor": TaskType.REFACTORING,
    "perf": TaskType.REFACTORING,
}
"""The model's classes and the task type each stands for. Performance work is its own class
(its wording differs from restructuring) and counts as refactoring."""
OTHER = "other"
"""The class of requests that are no software change at all (a recipe, a letter)."""


WordScore = tuple[bool, tuple[float, ...] | None]
"""Whether the model knows a word, and the summed weights of its features (the word and its
pieces; None when it has none the model knows)."""


class Reading(NamedTuple):
    types: dict[TaskType, float]
    other: float
    known_words: int


def _softmax(z: list[float]) -> list[float]:
    """Softmax of a handful of floats: plain Python beats numpy's call overhead here."""
    top = max(z)
    e = [math.exp(v - top) for v in z]
    total = sum(e)
    return [v / total for v in e]


@dataclass(frozen=True)
class TypeModel:
    """Vocabulary, weights (one column per class) and biases of a trained linear model."""

    classes: tuple[str, ...]
    vocab: dict[str, int]
    weights: FloatArray
    bias: FloatArray
    _cache: tuple[dict[str, WordScore], dict[str, WordScore]] = field(
        default_factory=lambda: ({}, {}), init=False, repr=False, compare=False
    )
    """Per word: its scores without and with its pieces (the first ``PIECE_WORDS`` words)."""
    _bias: tuple[float, ...] = field(default=(), init=False, repr=False, compare=False)

    def rows(self, words: list[str], head: str) -> list[int]:
        """Vocabulary rows of the :func:`features` the model knows, repeats kept."""
        return [i for i in map(self.vocab.get, features(words, head)) if i is not None]

    def _scores(self, words: list[str], head: str) -> tuple[list[float], int]:
        """Logits (one per class) and how many words the model knows. Equal to summing the
        weight rows of :meth:`rows` plus the bias, but each word's share is computed once
        per process and kept; only the word pairs and shape marks are looked up each time."""
        words = words[:MODEL_TOKENS]
        parts = [self._bias]
        known = 0
        for i, word in enumerate(words):
            is_known, score = self._word_score(word, i < PIECE_WORDS)
            known += is_known
            if score is not None:
                parts.append(score)
        context = [i for i in map(self.vocab.get, _context(words, head)) if i is not None]
        if context:
            parts.append(tuple(np.take(self.weights, context, axis=0).sum(axis=0).tolist()))
        return [sum(column) for column in zip(*parts, strict=True)], known

    def _word_score(self, word: str, with_pieces: bool) -> WordScore:
        cache = self._cache[with_pieces]
        entry = cache.get(word)
        if entry is None:
            get = self.vocab.get
            own = get(f"w:{word}")
            parts = pieces(word) if with_pieces and _has_pieces(word) else []
            found = [i for i in (own, *map(get, parts)) if i is not None]
            score = tuple(self.weights[found].sum(axis=0).tolist()) if found else None
            entry = (own is not None, score)
            if len(cache) < WORD_CACHE_SIZE:
                cache[word] = entry
        return entry

    def __post_init__(self) -> None:
        object.__setattr__(self, "_bias", tuple(self.bias.tolist()))

    def logits(self, text: str) -> FloatArray:
        """One score per class in ``classes`` for ``text``; higher is likelier."""
        return np.array(self._scores(*text_words(text))[0], dtype=np.float32)

    def probabilities(self, text: str) -> FloatArray:
        """Softmax of :meth:`logits`."""
        return np.array(_softmax(self._scores(*text_words(text))[0]), dtype=np.float32)

    def read_text(self, text: str) -> Reading:
        """:meth:`read` of ``text``'s :func:`text_words`."""
        return self.read(*text_words(text))

    def read(self, words: list[str], head: str) -> Reading:
        """What the model makes of a request's ``words`` (see :func:`text_words`): each
        known task type's probability (classes of one type summed), the probability of
        :data:`OTHER`, and how many of its words the model has seen in training."""
        scores, known = self._scores(words, head)
        probs = _softmax(scores)
        out: dict[TaskType, float] = {}
        other = 0.0
        for cls, p in zip(self.classes, probs, strict=True):
            kind = CLASS_TYPES.get(cls)
            if kind is None:
                other += p
            else:
                out[kind] = out.get(kind, 0.0) + p
        return Reading(out, other, known)

    def type_probabilities(self, text: str) -> tuple[dict[TaskType, float], float]:
        """:meth:`read_text` without the word count."""
        reading = self.read_text(text)
        return reading.types, reading.other

    def save(self, path: str) -> None:
        """Write the model as a compressed ``.npz`` (no pickles)."""
        ordered = sorted(self.vocab, key=self.vocab.__getitem__)
        np.savez_compressed(
            path,
            classes=np.frombuffer("\n".join(self.classes).encode(), dtype=np.uint8),
            vocab=np.frombuffer("\n".join(ordered).encode(), dtype=np.uint8),
            weights=self.weights.astype(np.float16),
            bias=self.bias.astype(np.float32),
        )

    @classmethod
    def load(cls, path: object) -> TypeModel:
        """Read a model written by :meth:`save` (a path or a file object)."""
        with np.load(path, allow_pickle=False) as data:  # type: ignore[arg-type]
            classes = tuple(bytes(data["classes"]).decode().split("\n"))
            words = bytes(data["vocab"]).decode().split("\n")
            weights = data["weights"].astype(np.float32)
            bias = data["bias"].astype(np.float32)
        return cls(classes, {w: i for i, w in enumerate(words)}, weights, bias)


@lru_cache(maxsize=1)
def shipped_model() -> TypeModel:
    """The model shipped with lanes, loaded once per process."""
    with resources.files("lanes.router.data").joinpath(MODEL_FILE).open("rb") as fh:
        return TypeModel.load(fh)
