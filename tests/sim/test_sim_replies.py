"""Deterministic replies and token counts, without a server."""

from __future__ import annotations

import pytest

from lanes.sim import count_input_tokens, count_tokens, expected_reply
from lanes.sim.replies import TOKENS_PER_MESSAGE, Prompt

USER = [{"role": "user", "content": "Write a haiku about queues."}]


@pytest.mark.parametrize(
    ("text", "tokens"), [("", 0), ("a", 1), ("abcd", 1), ("abcde", 2), ("x" * 400, 100)]
)
def test_count_tokens_rounds_up_per_four_characters(text: str, tokens: int) -> None:
    assert count_tokens(text) == tokens


def test_expected_reply_is_deterministic_and_names_the_model() -> None:
    first = expected_reply("glm-4.6", USER, None, 1024)
    assert first == expected_reply("glm-4.6", USER, None, 1024)
    assert first.startswith("Simulated reply from glm-4.6.")


def test_expected_reply_differs_by_model_and_prompt() -> None:
    other_prompt = [{"role": "user", "content": "Write a limerick about queues."}]
    base = expected_reply("m1", USER, None, 1024)
    assert expected_reply("m2", USER, None, 1024) != base
    assert expected_reply("m1", other_prompt, None, 1024) != base
    assert expected_reply("m1", USER, "Be terse.", 1024) != base


def test_expected_reply_natural_length_is_20_to_120_tokens() -> None:
    lengths = {
        count_tokens(expected_reply("m", [{"role": "user", "content": f"q{i}"}], None, 4096))
        for i in range(50)
    }
    assert min(lengths) >= 20
    assert max(lengths) <= 120
    assert len(lengths) > 10


def test_expected_reply_cap_cuts_to_exactly_max_tokens() -> None:
    full = expected_reply("m", USER, None, 4096)
    capped = expected_reply("m", USER, None, 7)
    assert count_tokens(capped) == 7
    assert full.startswith(capped)


def test_prompt_folds_system_messages_into_system() -> None:
    openai_style = [{"role": "system", "content": "Be terse."}, *USER]
    assert Prompt.of(openai_style) == Prompt.of(USER, "Be terse.")
    assert expected_reply("m", openai_style, None, 100) == expected_reply(
        "m", USER, "Be terse.", 100
    )


def test_prompt_string_content_equals_single_text_block() -> None:
    blocks = [{"role": "user", "content": [{"type": "text", "text": USER[0]["content"]}]}]
    assert expected_reply("m", blocks, None, 100) == expected_reply("m", USER, None, 100)
    assert expected_reply("m", USER, [{"type": "text", "text": "S"}], 100) == expected_reply(
        "m", USER, "S", 100
    )


def test_count_input_tokens_adds_system_and_per_message_overhead() -> None:
    messages = [
        {"role": "user", "content": "abcd" * 10},
        {"role": "assistant", "content": "abcd" * 5},
    ]
    expected = count_tokens("sys!") + 10 + 5 + 2 * TOKENS_PER_MESSAGE
    assert count_input_tokens(messages, "sys!") == expected
