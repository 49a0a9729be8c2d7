"""Prompt caching over HTTP: Anthropic's ``cache_control`` breakpoints and OpenAI's
automatic prefix caching, through the official SDK and raw HTTP, on a fake clock."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import pytest

from lanes.sim import BILLED, Profile, Simulator, count_input_tokens, count_tokens, expected_reply
from lanes.sim.prompt_cache import Breakpoint, PromptCache, min_cache_tokens

SONNET = "claude-sonnet-4-6"
HAIKU = "claude-haiku-4-5"
LLAMA = "llama3.1:8b"
HEADERS = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
AUTH = {"authorization": "Bearer k"}
BIG = "The cached preamble repeats itself. " * 150  # 5400 chars: 1350 tokens
OTHER = "A second long document, different. " * 150
HELLO: list[Any] = [{"role": "user", "content": "Summarise the preamble."}]
EPHEMERAL = {"type": "ephemeral"}
ONE_HOUR = {"type": "ephemeral", "ttl": "1h"}


class FakeClock:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sim(clock: FakeClock) -> Iterator[Simulator]:
    with Simulator(default_profile=Profile(), clock=clock) as simulator:
        yield simulator


@pytest.fixture
def claude(sim: Simulator) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(api_key="k", base_url=sim.base_url("acct"), max_retries=0) as client:
        yield client


@pytest.fixture
def http(sim: Simulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.url, timeout=10.0) as client:
        yield client


def _cached_system(text: str = BIG, control: dict[str, str] = EPHEMERAL) -> list[Any]:
    return [{"type": "text", "text": text, "cache_control": control}]


def _ask(
    client: anthropic.Anthropic,
    system: Any = None,
    messages: list[Any] = HELLO,
    model: str = SONNET,
) -> anthropic.types.Message:
    return client.messages.create(
        model=model,
        max_tokens=300,
        messages=messages,
        system=system if system is not None else anthropic.omit,
    )


def _counts(message: anthropic.types.Message) -> tuple[int, int, int]:
    """(uncached input, cache read, cache write) of one reply."""
    usage = message.usage
    read = usage.cache_read_input_tokens or 0
    return usage.input_tokens, read, usage.cache_creation_input_tokens or 0


def test_write_then_read_on_the_same_instance(claude: anthropic.Anthropic) -> None:
    total = count_input_tokens(HELLO, BIG)
    prefix = count_tokens(BIG)
    first = _ask(claude, _cached_system())
    assert _counts(first) == (total - prefix, 0, prefix)
    assert first.usage.cache_creation is not None
    assert first.usage.cache_creation.ephemeral_5m_input_tokens == prefix
    assert first.usage.cache_creation.ephemeral_1h_input_tokens == 0
    second = _ask(claude, _cached_system())
    assert _counts(second) == (total - prefix, prefix, 0)
    assert second.usage.cache_creation is not None
    assert second.usage.cache_creation.ephemeral_5m_input_tokens == 0


def test_another_instance_has_its_own_cache(sim: Simulator, claude: anthropic.Anthropic) -> None:
    _ask(claude, _cached_system())
    with anthropic.Anthropic(api_key="k", base_url=sim.base_url("other"), max_retries=0) as other:
        _, read, write = _counts(_ask(other, _cached_system()))
    assert (read, write) == (0, count_tokens(BIG))


def test_another_model_has_its_own_cache(claude: anthropic.Anthropic) -> None:
    _ask(claude, _cached_system())
    _, read, write = _counts(_ask(claude, _cached_system(), model="claude-opus-4-1"))
    assert (read, write) == (0, count_tokens(BIG))


def test_a_read_refreshes_the_five_minute_expiry(
    claude: anthropic.Anthropic, clock: FakeClock
) -> None:
    prefix = count_tokens(BIG)
    _ask(claude, _cached_system())
    clock.now_s += 299
    assert _counts(_ask(claude, _cached_system()))[1:] == (prefix, 0)
    clock.now_s += 299  # 598 s after the write, 299 after the read that refreshed it
    assert _counts(_ask(claude, _cached_system()))[1:] == (prefix, 0)
    clock.now_s += 301
    assert _counts(_ask(claude, _cached_system()))[1:] == (0, prefix)


def test_one_hour_entry_outlives_five_minutes(
    claude: anthropic.Anthropic, clock: FakeClock
) -> None:
    prefix = count_tokens(BIG)
    first = _ask(claude, _cached_system(control=ONE_HOUR))
    assert first.usage.cache_creation is not None
    assert first.usage.cache_creation.ephemeral_1h_input_tokens == prefix
    assert first.usage.cache_creation.ephemeral_5m_input_tokens == 0
    clock.now_s += 3599
    assert _counts(_ask(claude, _cached_system(control=ONE_HOUR)))[1:] == (prefix, 0)
    clock.now_s += 3601
    assert _counts(_ask(claude, _cached_system(control=ONE_HOUR)))[1:] == (0, prefix)


def test_mixed_ttls_split_the_write_and_expire_apart(
    claude: anthropic.Anthropic, clock: FakeClock
) -> None:
    system = _cached_system(control=ONE_HOUR)
    turns: list[Any] = [
        {"role": "user", "content": [{"type": "text", "text": OTHER, "cache_control": EPHEMERAL}]}
    ]
    system_tokens = count_tokens(BIG)
    conversation = count_input_tokens(turns, BIG)
    first = _ask(claude, system, turns)
    assert first.usage.cache_creation is not None
    assert first.usage.cache_creation.ephemeral_1h_input_tokens == system_tokens
    assert first.usage.cache_creation.ephemeral_5m_input_tokens == conversation - system_tokens
    assert _counts(first) == (0, 0, conversation)
    clock.now_s += 400  # the 5m entry is gone, the 1h one lives
    second = _ask(claude, system, turns)
    assert _counts(second) == (0, system_tokens, conversation - system_tokens)
    assert second.usage.cache_creation is not None
    assert second.usage.cache_creation.ephemeral_1h_input_tokens == 0


def test_prefix_below_the_model_minimum_is_not_cached(
    sim: Simulator, claude: anthropic.Anthropic
) -> None:
    short = "Too short to cache. " * 100  # 500 tokens
    for _ in range(2):
        assert _counts(_ask(claude, _cached_system(short)))[1:] == (0, 0)
    for _ in range(2):  # 1350 tokens: enough for Sonnet, not for Haiku 4.5's 4096
        assert _counts(_ask(claude, _cached_system(), model=HAIKU))[1:] == (0, 0)
    sim.set_profile("acct", Profile(cache_min_tokens={HAIKU: 1000}))
    assert _counts(_ask(claude, _cached_system(), model=HAIKU))[1:] == (0, count_tokens(BIG))


def test_minimum_cacheable_lengths() -> None:
    profile = Profile(cache_min_tokens={"claude-sonnet-4-6": 50})
    assert min_cache_tokens("claude-opus-4-5", profile, automatic=False) == 4096
    assert min_cache_tokens("claude-haiku-4-5-20251001", profile, automatic=False) == 4096
    assert min_cache_tokens("claude-3-5-haiku", profile, automatic=False) == 2048
    assert min_cache_tokens("claude-opus-4-1", profile, automatic=False) == 1024
    assert min_cache_tokens("claude-sonnet-4-6", profile, automatic=False) == 50
    assert min_cache_tokens("gpt-4o", profile, automatic=True) == 1024


def test_profile_without_prompt_cache_never_caches(
    sim: Simulator, claude: anthropic.Anthropic
) -> None:
    sim.set_profile("acct", Profile(prompt_cache=False))
    for _ in range(2):
        assert _counts(_ask(claude, _cached_system()))[1:] == (0, 0)


def test_set_profile_keeps_live_entries(sim: Simulator, claude: anthropic.Anthropic) -> None:
    _ask(claude, _cached_system())
    sim.set_profile("acct", Profile(latency_s=0.0, requests_per_min=100))
    assert _counts(_ask(claude, _cached_system()))[1] == count_tokens(BIG)


def test_concurrent_identical_calls_both_write(sim: Simulator, claude: anthropic.Anthropic) -> None:
    sim.set_profile("acct", Profile(latency_s=0.3))
    results: list[tuple[int, int, int]] = []
    barrier = threading.Barrier(2)

    def call() -> None:
        barrier.wait()
        results.append(_counts(_ask(claude, _cached_system())))

    threads = [threading.Thread(target=call) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    prefix = count_tokens(BIG)
    assert [counts[1:] for counts in results] == [(0, prefix), (0, prefix)]
    assert _counts(_ask(claude, _cached_system()))[1:] == (prefix, 0)


def _block(text: str, control: dict[str, str] | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "text", "text": text}
    if control is not None:
        block["cache_control"] = control
    return block


CONVERSATIONS: list[tuple[Any, list[Any]]] = [
    (_cached_system(), HELLO),
    (BIG, [{"role": "user", "content": [_block(OTHER, EPHEMERAL), _block("And now? ")]}]),
    (
        [_block("Intro.", ONE_HOUR), _block(BIG, ONE_HOUR), _block("Tail x")],
        [
            {"role": "user", "content": "First question, odd length.."},
            {"role": "assistant", "content": [_block(OTHER + "!", EPHEMERAL)]},
            {"role": "user", "content": [_block("Last"), _block("question?")]},
        ],
    ),
    (None, [{"role": "user", "content": [_block(BIG + OTHER + "abc", EPHEMERAL)]}]),
]


@pytest.mark.parametrize(("system", "messages"), CONVERSATIONS)
def test_uncached_read_and_written_tokens_add_up_to_the_prompt(
    claude: anthropic.Anthropic, system: Any, messages: list[Any]
) -> None:
    total = count_input_tokens(messages, system)
    for _ in range(2):  # the write, then the read
        assert sum(_counts(_ask(claude, system, messages))) == total
    longer = [*messages, {"role": "assistant", "content": "More."}]
    longer.append({"role": "user", "content": [_block(OTHER + " again", EPHEMERAL)]})
    counts = _counts(_ask(claude, system, longer))  # a partial read, then a write
    assert sum(counts) == count_input_tokens(longer, system)
    assert counts[1] > 0 and counts[2] > 0


def test_caching_never_changes_the_reply(claude: anthropic.Anthropic) -> None:
    expected = expected_reply(SONNET, HELLO, BIG, 300)
    for _ in range(2):
        assert _ask(claude, _cached_system()).content[0].text == expected  # type: ignore[union-attr]
    assert _ask(claude, BIG).content[0].text == expected  # type: ignore[union-attr]


def test_cache_reads_do_not_count_toward_input_tokens_per_minute(
    sim: Simulator, claude: anthropic.Anthropic
) -> None:
    total = count_input_tokens(HELLO, BIG)
    sim.set_profile("acct", Profile(input_tokens_per_min=total + 100))
    _ask(claude, _cached_system())  # the write is charged; the fake clock refills nothing
    _ask(claude, _cached_system())  # only the uncached rest is charged
    with pytest.raises(anthropic.RateLimitError):
        _ask(claude, BIG)  # the whole prompt uncached no longer fits


def test_top_level_cache_control_is_accepted_and_ignored(http: httpx.Client) -> None:
    body = {"model": SONNET, "max_tokens": 50, "messages": HELLO, "cache_control": EPHEMERAL}
    response = http.post("/acct/v1/messages", json=body, headers=HEADERS)
    assert response.status_code == 200
    assert response.json()["usage"]["cache_creation_input_tokens"] == 0


def _five_breakpoints() -> dict[str, Any]:
    return {"system": [_block(f"part {n}", EPHEMERAL) for n in range(5)]}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            {"system": _cached_system(control={"type": "ephemeral", "ttl": "10m"})},
            "system.0.cache_control.ttl: Input should be '5m' or '1h'",
        ),
        (
            {"system": _cached_system(control={"type": "persistent"})},
            "system.0.cache_control.type: Input should be 'ephemeral'",
        ),
        (
            {"system": [{"type": "text", "text": BIG, "cache_control": "ephemeral"}]},
            "system.0.cache_control: Input should be an object",
        ),
        (
            {"system": _cached_system(control={"type": "ephemeral", "scope": "org"})},
            "system.0.cache_control.scope: Extra inputs are not permitted",
        ),
        (
            {"messages": [{"role": "user", "content": [_block("", EPHEMERAL)]}]},
            "messages.0.content.0.text: cache_control cannot be set for empty text blocks",
        ),
        (_five_breakpoints(), "A maximum of 4 blocks with cache_control may be provided. Found 5."),
        (
            {
                "system": _cached_system(),
                "messages": [{"role": "user", "content": [_block("x", ONE_HOUR)]}],
            },
            "messages.0.content.0.cache_control.ttl: a ttl='1h' cache_control block must not "
            "come after a ttl='5m' cache_control block.",
        ),
    ],
)
def test_invalid_cache_control_is_rejected(
    http: httpx.Client, extra: dict[str, Any], message: str
) -> None:
    body = {"model": SONNET, "max_tokens": 50, "messages": HELLO, **extra}
    response = http.post("/acct/v1/messages", json=body, headers=HEADERS)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert message in response.json()["error"]["message"]


def test_bill_counts_cache_reads_and_writes_apart(
    sim: Simulator, claude: anthropic.Anthropic
) -> None:
    total = count_input_tokens(HELLO, BIG)
    prefix = count_tokens(BIG)
    _ask(claude, _cached_system(control=ONE_HOUR))
    _ask(claude, _cached_system(control=ONE_HOUR))
    _ask(claude, BIG)  # uncached: no cache counters move
    billed = {k: v for k, v in sim.stats()["acct"].items() if k.startswith(BILLED)}
    usage = {key.removeprefix(f"{BILLED}{SONNET}:"): value for key, value in billed.items()}
    assert usage.pop("output_tokens") > 0
    assert usage == {
        "input_tokens": 2 * (total - prefix) + total,
        "cache_creation_input_tokens": prefix,
        "cache_creation_1h_input_tokens": prefix,
        "cache_read_input_tokens": prefix,
    }
    assert sim.stats()["acct"]["input_tokens"] == usage["input_tokens"]


def test_no_cache_counters_without_caching(sim: Simulator, claude: anthropic.Anthropic) -> None:
    _ask(claude, BIG)
    assert not [key for key in sim.stats()["acct"] if "cache" in key]


# OpenAI-style automatic caching.

LONG_CHAT: list[Any] = [
    {"role": "system", "content": BIG + OTHER},  # 2700 tokens, well over 1024
    {"role": "user", "content": "What does it say?"},
]


def _chat(http: httpx.Client, messages: list[Any], instance: str = "acct") -> dict[str, Any]:
    body = {"model": LLAMA, "messages": messages, "max_tokens": 200}
    response = http.post(f"/{instance}/v1/chat/completions", json=body, headers=AUTH)
    assert response.status_code == 200
    usage: dict[str, Any] = response.json()["usage"]
    return usage


def _cached_tokens(usage: dict[str, Any]) -> int:
    return int(usage["prompt_tokens_details"]["cached_tokens"])


def test_chat_repeat_reads_whole_128_token_blocks(http: httpx.Client) -> None:
    total = count_input_tokens(LONG_CHAT)
    first = _chat(http, LONG_CHAT)
    assert first["prompt_tokens"] == total
    assert _cached_tokens(first) == 0
    second = _chat(http, LONG_CHAT)
    assert second["prompt_tokens"] == total
    assert _cached_tokens(second) == total // 128 * 128


def test_chat_shared_prefix_is_a_partial_hit(http: httpx.Client) -> None:
    _chat(http, LONG_CHAT)
    other_question = [LONG_CHAT[0], {"role": "user", "content": "Another question entirely."}]
    cached = _cached_tokens(_chat(http, other_question))
    system_tokens = count_tokens(BIG + OTHER)
    assert cached % 128 == 0 and system_tokens - 128 < cached <= system_tokens


def test_chat_short_prompt_and_non_caching_profile_read_nothing(
    sim: Simulator, http: httpx.Client
) -> None:
    for _ in range(2):
        assert _cached_tokens(_chat(http, HELLO)) == 0
    sim.set_profile("ollama", Profile(prompt_cache=False))
    for _ in range(2):
        assert _cached_tokens(_chat(http, LONG_CHAT, "ollama")) == 0


def test_chat_entries_expire_after_five_minutes(http: httpx.Client, clock: FakeClock) -> None:
    _chat(http, LONG_CHAT)
    clock.now_s += 301
    assert _cached_tokens(_chat(http, LONG_CHAT)) == 0


def test_chat_bill_splits_cached_from_uncached_input(sim: Simulator, http: httpx.Client) -> None:
    _chat(http, LONG_CHAT)
    cached = _cached_tokens(_chat(http, LONG_CHAT))
    stats = sim.stats()["acct"]
    total = count_input_tokens(LONG_CHAT)
    assert stats[f"{BILLED}{LLAMA}:input_tokens"] == 2 * total - cached
    assert stats[f"{BILLED}{LLAMA}:cache_read_input_tokens"] == cached
    assert f"{BILLED}{LLAMA}:cache_creation_input_tokens" not in stats


def test_chat_cached_tokens_parse_with_the_openai_sdk(sim: Simulator) -> None:
    import openai

    with openai.OpenAI(api_key="k", base_url=sim.base_url("acct") + "/v1", max_retries=0) as client:
        client.chat.completions.create(model=LLAMA, messages=LONG_CHAT)
        completion = client.chat.completions.create(model=LLAMA, messages=LONG_CHAT)
    usage = completion.usage
    assert usage.prompt_tokens == count_input_tokens(LONG_CHAT)
    assert usage.prompt_tokens_details.cached_tokens >= 1024


# The cache itself, without HTTP.


def test_prompt_cache_reads_the_longest_live_breakpoint_and_writes_the_rest() -> None:
    clock = FakeClock()
    cache = PromptCache(clock)
    points = (Breakpoint(1100, b"a"), Breakpoint(1500, b"b", 3600.0), Breakpoint(2000, b"c"))
    miss = cache.look_up("m", points)
    assert (miss.usage.read_tokens, miss.usage.write_5m_tokens) == (0, 1600)
    assert miss.usage.write_1h_tokens == 400
    assert len(cache) == 0  # a look-up stores nothing
    cache.store("m", miss.stores)
    clock.now_s += 301
    hit = cache.look_up("m", points)
    assert hit.usage.read_tokens == 1500
    assert (hit.usage.write_5m_tokens, hit.usage.write_1h_tokens) == (500, 0)
    assert hit.stores == points[1:]
    assert cache.look_up("other-model", points).usage.read_tokens == 0
