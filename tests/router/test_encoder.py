"""The static encoder: the model tokenizer's splitting, pieces longest first, unit vectors that
put texts about the same thing close together."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lanes.router.encoder import MAX_WORDS, Encoder, pieces, shipped_encoder, words

VOCAB = {"pay": 0, "##ment": 1, "##s": 2, "re": 3, "##fund": 4, "x": 5}


def test_words_split_like_the_model_tokenizer() -> None:
    assert words("Fix the Café's `stripe.PaymentIntent` call!") == [
        "fix", "the", "cafe", "'", "s", "`", "stripe", ".", "paymentintent", "`", "call", "!",
    ]  # fmt: skip
    assert words("数据迁移 plan") == ["数", "据", "迁", "移", "plan"]
    assert len(words("word " * 1000)) == MAX_WORDS


def test_pieces_take_the_longest_known_piece_first() -> None:
    assert pieces("payments", VOCAB) == [0, 1, 2]
    assert pieces("refund", VOCAB) == [3, 4]
    assert pieces("refunds", VOCAB) == [3, 4, 2]
    assert pieces("paypal", VOCAB) == []  # "##pal" is unknown: the word is unknown
    assert pieces("x" * 101, VOCAB) == []


def test_encode_gives_a_unit_vector_and_zeros_for_nothing_known() -> None:
    enc = shipped_encoder()
    vec = enc.encode("rotate the database credentials")
    assert vec.shape == (enc.dims,) and abs(float(np.linalg.norm(vec)) - 1.0) < 1e-5
    assert not enc.encode("").any()


def test_texts_about_the_same_thing_are_closer_than_unrelated_ones() -> None:
    enc = shipped_encoder()
    billing = enc.encode("customers were charged twice for their subscription renewal")
    refund = enc.encode("issue a refund for the duplicate invoice payment")
    colour = enc.encode("make the sidebar buttons a lighter shade of grey")
    assert float(billing @ refund) > float(billing @ colour) + 0.1


def test_a_saved_encoder_loads_the_same(tmp_path: Path) -> None:
    vectors = np.array([[0.5, -1.0], [0.0, 0.0], [2.0, 1.0]], dtype=np.float32)
    enc = Encoder.quantized(["a", "##b", "c"], vectors)
    enc.save(str(tmp_path / "e.npz"))
    loaded = Encoder.load(str(tmp_path / "e.npz"))
    assert loaded.vocab == enc.vocab and loaded.dims == 2
    assert np.allclose(loaded.encode("c a"), enc.encode("c a"))
    assert np.allclose(enc.encode("c"), vectors[2] / np.linalg.norm(vectors[2]), atol=0.01)
