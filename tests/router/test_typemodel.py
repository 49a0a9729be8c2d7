from __future__ import annotations

import numpy as np
import pytest

from lanes.kernel.taxonomy import TaskType
from lanes.router.typemodel import (
    CLASS_TYPES,
    MODEL_TOKENS,
    OTHER,
    features,
    shipped_model,
    text_words,
)


def test_features_read_the_opening_words_with_code_blanked() -> None:
    feats = features(*text_words("Please add `fooBar()` support\n```python\nsecret_token = 1\n```"))
    assert "l:add" in feats  # the lead word, after the filler
    assert "b:add support" in feats  # inline code is blanked
    assert not any("secret" in f or "foobar" in f for f in feats)  # code is not read
    assert "s:call" in feats and "s:camel" in feats  # ... but its shape is
    long = features(*text_words("word " * 10_000))
    assert len([f for f in long if f.startswith("w:")]) == MODEL_TOKENS


def test_the_cached_scores_equal_summing_every_feature() -> None:
    model = shipped_model()
    texts = ("Fix the crash when the cache is empty", "Add tests for parseTree()", "hi", "")
    for text in texts * 2:  # the second round reads the per-word cache
        words, head = text_words(text)
        expected = model.weights[model.rows(words, head)].sum(axis=0) + model.bias
        assert model.logits(text) == pytest.approx(expected, abs=1e-4)


def test_the_shipped_model_loads_and_knows_its_classes() -> None:
    model = shipped_model()
    assert set(model.classes) <= {*CLASS_TYPES, OTHER}
    assert set(CLASS_TYPES) <= set(model.classes)
    assert model.weights.shape == (len(model.vocab), len(model.classes))
    probs = model.probabilities("Fix the crash when the cache is empty")
    assert probs.sum() == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Fix crash when the config file is empty", TaskType.DEBUGGING),
        ("Add unit tests for the token bucket", TaskType.TESTING),
        ("Document the retry options in the README", TaskType.DOCUMENTATION),
        ("Extract the parser into its own module", TaskType.REFACTORING),
        ("Avoid an extra allocation in the hot loop", TaskType.REFACTORING),
        ("Support custom headers on outgoing requests", TaskType.CODE_GENERATION),
    ],
)
def test_the_model_reads_software_work(text: str, expected: TaskType) -> None:
    probs, other = shipped_model().type_probabilities(text)
    assert max(probs, key=probs.__getitem__) is expected
    assert other < max(probs.values())


def test_unknown_text_is_safe() -> None:
    model = shipped_model()
    for text in ("", "\x00\x01", "日本語のテキスト", "🙂" * 100):
        assert np.isfinite(model.logits(text)).all()


def test_the_classifier_and_the_model_read_the_same_words() -> None:
    from lanes.router._classify_scan import scan_text
    from lanes.router.typemodel import HEAD_CHARS

    model = shipped_model()
    text = "Fix the retry loop. " + "Context: the worker retries failed calls. " * 200
    words, head = text_words(text)
    scan = scan_text(text)
    assert scan.tokens[: len(words)] == words
    assert model.read(scan.tokens, text[:HEAD_CHARS]) == model.read(words, head)
