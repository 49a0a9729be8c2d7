"""Fit the type model: multinomial logistic regression over :func:`lanes.router.typemodel.features`.

Classes are weighted so each type counts equally; each repository's rows of one prefix are
capped (``PER_SOURCE_CAP``) so a large repository does not set the model's voice. Features
seen in fewer than ``MIN_COUNT`` rows are left out; so are features whose weights all round
to nothing once fitted (the shipped file stays small).
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence

import numpy as np
from scipy.sparse import csr_matrix
from sklearn.linear_model import LogisticRegression

from lanes.bench.training.commits import Row
from lanes.router.typemodel import CLASS_TYPES, OTHER, TypeModel, features, text_words

_CLASS_OF_PREFIX = {
    "doc": "docs",
    "tests": "test",
    "tst": "test",
    "ref": "refactor",
    "enh": "feat",
    "bug": "fix",
}

MIN_COUNT = 3
PER_SOURCE_CAP = 1500
C = 0.1
"""Inverse regularisation strength, chosen on held-out repositories (never on the dev set)."""
MAX_CLASS_WEIGHT = 20.0
PRUNE_BELOW = 0.05
"""Largest absolute weight under which a feature is dropped from the shipped model."""


def sample_key(text: str) -> str:
    """Seeded order used to sample rows: SHA-256 of ``"20240601:" + text``."""
    return hashlib.sha256(f"20240601:{text}".encode()).hexdigest()


def capped(
    rows: Sequence[Row],
    cap: int = PER_SOURCE_CAP,
    label: Callable[[Row], str] = lambda row: row.prefix,
) -> list[Row]:
    """At most ``cap`` rows per (source, ``label``), sampled by :func:`sample_key`."""
    groups: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for row in rows:
        groups[row.source, label(row)].append(row)
    out: list[Row] = []
    for group in groups.values():
        out += sorted(group, key=lambda r: sample_key(r.text))[:cap]
    return out


def fit(rows: Sequence[Row], *, c: float = C, min_count: int = MIN_COUNT) -> TypeModel:
    """A model trained on ``rows`` (capped per source and prefix, classes balanced)."""
    train = capped(rows)
    feats = [features(*text_words(r.text)) for r in train]
    counts = Counter(f for fs in feats for f in set(fs))
    vocab = {f: i for i, f in enumerate(sorted(f for f, n in counts.items() if n >= min_count))}
    present = {model_class(r) for r in train}
    classes = tuple(c for c in (*CLASS_TYPES, OTHER) if c in present)
    x = _matrix(feats, vocab)
    y = np.array([classes.index(model_class(r)) for r in train])
    clf = LogisticRegression(C=c, max_iter=300, class_weight=_class_weights(y, len(classes)))
    clf.fit(x, y)
    weights = clf.coef_.T.astype(np.float32)
    bias = clf.intercept_.astype(np.float32)
    if len(classes) == 2:  # sklearn keeps one column for two classes
        weights = np.hstack([-weights / 2, weights / 2])
        bias = np.array([-bias[0] / 2, bias[0] / 2], dtype=np.float32)
    return _pruned(TypeModel(classes, vocab, weights, bias))


def _class_weights(y: np.ndarray, count: int) -> dict[int, float]:
    """Balanced weights (each class counts as much as any other), capped at
    ``MAX_CLASS_WEIGHT`` so a small class is not blown up past what its rows can say."""
    sizes = np.bincount(y, minlength=count)
    return {i: min(MAX_CLASS_WEIGHT, len(y) / (count * int(n))) for i, n in enumerate(sizes) if n}


def model_class(row: Row) -> str:
    """The model class of a row: its prefix, with spelling variants folded."""
    return _CLASS_OF_PREFIX.get(row.prefix, row.prefix)


def _matrix(feats: Sequence[Sequence[str]], vocab: dict[str, int]) -> csr_matrix:
    """Rows of feature counts (a feature that occurs twice counts 2, as at run time)."""
    indptr = [0]
    indices: list[int] = []
    data: list[float] = []
    for fs in feats:
        counts = Counter(vocab[f] for f in fs if f in vocab)
        for col in sorted(counts):
            indices.append(col)
            data.append(float(counts[col]))
        indptr.append(len(indices))
    values = np.array(data, dtype=np.float32)
    return csr_matrix((values, indices, indptr), shape=(len(feats), len(vocab)))


def _pruned(model: TypeModel) -> TypeModel:
    keep = np.abs(model.weights).max(axis=1) >= PRUNE_BELOW
    words = sorted(model.vocab, key=model.vocab.__getitem__)
    kept = [w for w, k in zip(words, keep, strict=True) if k]
    return TypeModel(
        model.classes, {w: i for i, w in enumerate(kept)}, model.weights[keep], model.bias
    )
