"""Reading text for the classifier: tokens, points per task type, flag bits, code surface.

Cost is linear in ``SCAN_CHARS`` (not in the text length): a ``str.translate`` + ``split``
tokeniser, C-level dict lookups (``map``) and a Python loop only over tokens that hit a cue.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from itertools import compress, islice
from typing import TypeVar

from lanes.kernel.taxonomy import TaskType
from lanes.router import _classify_rules as rules
from lanes.router._classify_index import PAIRS, TYPES, WORDS, Cue

SCAN_CHARS = 2000
"""Characters of text scanned for cues (the task is stated up front; pasted material
follows). Longer text still counts in full for token estimates."""
LEAD_BONUS = 1.5
"""Multiplier for the leading verb's points."""

SCORED_TOKENS = 120
"""Tokens of the request that vote on the type and raise every flag; later ones (pasted
material, mostly) raise only ``PASTE_FLAGS`` (a security word deep in a paste still makes
the work vital)."""
V = TypeVar("V")
Bands = tuple[tuple[int, int | None, float], ...]
"""``(start, stop, weight)`` token-index ranges; ``stop`` None runs to the end."""
BANDS: Bands = ((0, 12, 1.0), (12, 40, 0.75), (40, SCORED_TOKENS, 0.5))
"""``(start, stop, weight)`` token-index bands: the task is usually stated first, so later
words count less."""
STATEMENT_TOKENS = 40
"""Tokens that state the task (the first two weight bands)."""
CONTEXT_WEIGHT = 0.5
"""Weight of every token of the context (system prompt, earlier turns)."""
_CONTEXT_BANDS: Bands = ((0, None, CONTEXT_WEIGHT),)

_SEPARATORS = str.maketrans(
    {chr(c): " " for c in range(128) if not (chr(c).isalnum() or chr(c) in "_'")}
)
_FENCE_RE = re.compile(r"```.*?(?:```|\Z)", re.DOTALL)
_INLINE_CODE_RE = re.compile(r"`[^`\n]*`")
_FILE_RE = re.compile(
    r"\.(?:py|pyi|js|mjs|cjs|ts|tsx|jsx|go|rs|java|kt|c|cc|cpp|h|hpp|cs|rb|php|swift|scala"
    r"|sql|sh|vue|svelte|css|scss|html|json|ya?ml|toml|ini|lock|ipynb|md|rst)\b"
)
_CAMEL_RE = re.compile(r"[A-Z](?<=[a-z][A-Z])")
"""A lower-to-upper case step (``camelCase``); anchored on the rare capital for speed."""
_ENUM_RE = re.compile(r"\n[ \t]*(?:\d{1,2}[.)]|[-*\u2022]|step \d+:?)[ \t]+\S")
"""An enumerated line ("1. ...", "- ...", "step 2: ..."); starts at ``\n`` so the search
skips ahead by literal, much faster than a ``^`` in MULTILINE mode."""

ERROR_NAME_POINTS = 2.0
"""Debugging points for naming an error class, even inside pasted code or a traceback."""
_DEBUG = TYPES.index(TaskType.DEBUGGING)

_TIE_ORDER = (
    TaskType.CREATIVE,
    TaskType.TESTING,
    TaskType.DOCUMENTATION,
    TaskType.CODE_REVIEW,
    TaskType.ARCHITECTURE,
    TaskType.PLANNING,
    TaskType.COORDINATION,
    TaskType.ANALYSIS,
    TaskType.FACTUAL,
    TaskType.REFACTORING,
    TaskType.DEBUGGING,
    TaskType.CODE_GENERATION,
    TaskType.SIMPLE_TASK,
)
"""On equal points the more specific type wins: "Add tests" is testing, not new code."""
_PAIR_HEADS = frozenset(first for first, _ in PAIRS)
_TIE_BIAS = tuple(1e-6 * (len(_TIE_ORDER) - _TIE_ORDER.index(t)) for t in TYPES)


def tokenize(text: str) -> list[str]:
    """Lower-case tokens: runs of letters, digits, ``_`` and ``'``. Other ASCII characters
    separate tokens (``multi-tenant`` is two); non-ASCII characters stay inside tokens
    (so does the curly apostrophe, U+2019). Quotes around a word are dropped."""
    spaced = " " + text.lower().translate(_SEPARATORS) + " "
    if "'" in spaced:
        spaced = spaced.replace(" '", " ").replace("' ", " ")
    return spaced.split()


def lead_index(tokens: list[str], fillers: AbstractSet[str] = rules.LEADING_FILLER) -> int:
    """Index of the leading verb: the first token after at most 6 ``fillers``
    ("could you please ..."); 0 when all of the first 6 are fillers."""
    for i, tok in enumerate(tokens[:6]):
        if tok not in fillers:
            return i
    return 0


def _weight(i: int, lead: int, bands: Bands) -> float:
    """Weight of the token at index ``i``: ``LEAD_BONUS`` for the lead, else its band's."""
    if i == lead:
        return LEAD_BONUS
    for _start, stop, weight in bands:
        if stop is None or i < stop:
            return weight
    return bands[-1][2]


def pair_hits(
    tokens: list[str], table: Mapping[tuple[str, str], V], heads: AbstractSet[str]
) -> Iterator[tuple[int, V]]:
    """``(index, value)`` of every two-token phrase of ``tokens`` found in ``table``, by
    index; ``heads`` are the first tokens of its phrases. Candidate positions are found in
    C; Python only loops over those."""
    get = table.get
    for i in compress(range(len(tokens) - 1), map(heads.__contains__, tokens)):
        value = get((tokens[i], tokens[i + 1]))
        if value is not None:
            yield i, value


def _pair_hits(tokens: list[str]) -> Iterator[tuple[int, Cue]]:
    """``(index, cue)`` of every bigram of the cue tables in ``tokens``, by index."""
    return pair_hits(tokens, PAIRS, _PAIR_HEADS)


def _add_pairs(tokens: list[str], lead: int, bands: Bands, scores: list[float]) -> int:
    """Add bigram points to ``scores`` in place, minus the points of the words they replace;
    return the bigrams' OR-ed flags. Overlapping bigrams: the first wins."""
    flags = 0
    taken = -1
    for i, pair in _pair_hits(tokens):
        if i <= taken:
            continue
        taken = i + 1
        flags |= pair.flags
        weight = _weight(i, lead, bands)
        for type_i, pts in pair.scores:
            scores[type_i] += pts * weight
        for j in (i, i + 1):
            word = WORDS.get(tokens[j])
            if word is not None:
                weight = _weight(j, lead, bands)
                for type_i, pts in word.scores:
                    scores[type_i] -= pts * weight
    return flags


def score_tokens(tokens: list[str], scores: list[float], bands: Bands, lead: int) -> int:
    """Add each type's points for ``tokens`` to ``scores`` (indexed like ``TYPES``) in place
    and return the OR-ed flag bits. ``lead`` (-1 for none) gets ``LEAD_BONUS``.

    A matched bigram replaces the points of its two words ("for example" scores nothing,
    "test case" scores once); the words' flags still count, so "not urgent" carries
    ``URGENT`` and must be masked by its own ``NOT_URGENT`` flag.
    """
    flags = 0
    for start, stop, weight in bands:
        for cue in filter(None, map(WORDS.get, tokens[start:stop])):
            flags |= cue.flags
            for type_i, pts in cue.scores:
                scores[type_i] += pts * weight
    lead_cue = WORDS.get(tokens[lead]) if 0 <= lead < len(tokens) else None
    if lead_cue is not None:
        extra = LEAD_BONUS - _weight(lead, -1, bands)
        for type_i, pts in lead_cue.scores:
            scores[type_i] += pts * extra
    flags |= _add_pairs(tokens, lead, bands, scores)
    return flags


def statement_flags(tokens: list[str]) -> int:
    """The OR of every word's and pair's flags in ``tokens``."""
    flags = 0
    for cue in filter(None, map(WORDS.get, tokens)):
        flags |= cue.flags
    for _, pair in _pair_hits(tokens):
        flags |= pair.flags
    return flags


PASTE_FLAGS = rules.SECURITY | rules.CRITICAL | rules.CODE
"""The flags read from tokens past ``SCORED_TOKENS``: security and incident cues (vital
wherever they appear) and signs of code."""
_PASTE_WORDS = frozenset(w for w, cue in WORDS.items() if cue.flags & PASTE_FLAGS)
_PASTE_PAIRS = {k: cue.flags for k, cue in PAIRS.items() if cue.flags & PASTE_FLAGS}
_PASTE_HEADS = frozenset(first for first, _ in _PASTE_PAIRS)


def paste_flags(tokens: list[str]) -> int:
    """``PASTE_FLAGS`` raised by ``tokens``; C-level scans, Python only on hits."""
    flags = 0
    for token in compress(tokens, map(_PASTE_WORDS.__contains__, tokens)):
        flags |= WORDS[token].flags
    for _, pair_flags in pair_hits(tokens, _PASTE_PAIRS, _PASTE_HEADS):
        flags |= pair_flags
    return flags & PASTE_FLAGS


def _joined(text: str, part: str) -> bool:
    """True if ``part`` directly follows a letter/digit somewhere: ``f(``, ``snake_case``,
    ``KeyError``. Case-sensitive; a C-level ``find`` per occurrence of ``part``."""
    i = text.find(part, 1)
    while i > 0:
        if text[i - 1].isalnum():
            return True
        i = text.find(part, i + 1)
    return False


def names_an_error(head: str) -> bool:
    """True if ``head`` names an error class (``TypeError``, ``NullPointerException``)."""
    return _joined(head, "Error") or _joined(head, "Exception")


def looks_like_code(head: str) -> bool:
    """Code-ish surface in ``head``: fences, file names, calls ``f(``, ``snake_case``,
    ``camelCase``/``KeyError``. Sharp edges: brand names like "iPhone" and prose such as
    "word(s)" count as code."""
    return bool(
        "```" in head
        or _FILE_RE.search(head)
        or _joined(head, "(")
        or _joined(head, "_")
        or _CAMEL_RE.search(head)
    )


@dataclass(slots=True)
class Scan:
    """What the classifier read from one text. ``code`` is computed on first use."""

    head: str
    scores: list[float]
    flags: int
    question: bool
    enumerated: bool
    tokens: list[str]
    """The request's prose tokens (context excluded)."""
    statement_flags: int
    """Flags raised where the task is stated (its first paragraph, at most
    ``STATEMENT_TOKENS`` tokens), as opposed to material pasted after it."""
    _code: bool | None = None

    @property
    def code(self) -> bool:
        if self._code is None:
            self._code = bool(self.flags & rules.CODE) or looks_like_code(self.head)
        return self._code


def prose(head: str) -> str:
    """``head`` with fenced and inline code blanked out."""
    plain = _FENCE_RE.sub(" ", head) if "```" in head else head
    return _INLINE_CODE_RE.sub(" ", plain) if "`" in plain else plain


def scan_text(text: str, context: str = "") -> Scan:
    """Score the first ``SCAN_CHARS`` characters of ``text`` (the task) and, within the same
    budget, of ``context`` (system prompt, earlier turns), which weighs ``CONTEXT_WEIGHT``
    and has no leading verb. Code is blanked out first, so pasted code does not vote on the
    type; it still counts for ``Scan.code`` and error names."""
    head = text[:SCAN_CHARS]
    plain = prose(head)
    tokens = tokenize(plain)
    scores = list(_TIE_BIAS)
    flags = score_tokens(tokens[:SCORED_TOKENS], scores, BANDS, lead_index(tokens))
    flags |= paste_flags(tokens[SCORED_TOKENS - 1 :])
    context_head = context[: SCAN_CHARS - len(head)]
    if context_head:
        flags |= score_tokens(tokenize(prose(context_head)), scores, _CONTEXT_BANDS, -1)
        head = f"{head}\n{context_head}"
    if names_an_error(head):
        scores[_DEBUG] += ERROR_NAME_POINTS
    question = bool(tokens) and (tokens[0] in rules.QUESTION_WORDS or plain.rstrip().endswith("?"))
    enumerated = "\n" in plain and len(list(islice(_ENUM_RE.finditer("\n" + plain), 2))) == 2
    paragraph, blank, _ = plain.partition("\n\n")
    stated = (
        tokenize(paragraph)[: STATEMENT_TOKENS + 1] if blank else tokens[: STATEMENT_TOKENS + 1]
    )
    statement = statement_flags(stated)
    return Scan(head, scores, flags, question, enumerated, tokens, statement)
