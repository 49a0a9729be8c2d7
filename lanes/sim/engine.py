"""The provider behaviour both APIs share: model and context checks, faults, limits,
latency and the deterministic reply. The API modules only translate to and from JSON.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from lanes.sim.answers import PLAIN, ReplyPlan, ToolCall, compose
from lanes.sim.buckets import BucketState, Denial
from lanes.sim.instances import InstanceState
from lanes.sim.profiles import Fault, Profile
from lanes.sim.prompt_cache import NO_CACHE, NO_USAGE, CacheLookup, CachePlan, CacheUsage, cacheable
from lanes.sim.replies import Prompt
from lanes.sim.wire import Reply


@dataclass(frozen=True, slots=True)
class Call:
    """A validated completion request. ``max_tokens=None``: no cap but the context window;
    ``cache``: the prompt's cacheable prefixes; ``plan``: its tools and output format;
    ``stream``: answer with server-sent events; ``stream_usage``: OpenAI's
    ``stream_options.include_usage``."""

    model: str
    prompt: Prompt
    max_tokens: int | None
    cache: CachePlan = NO_CACHE
    plan: ReplyPlan = PLAIN
    stream: bool = False
    stream_usage: bool = False


@dataclass(frozen=True, slots=True)
class Runtime:
    """What every call of one server shares: the seeded random source and the stop flag."""

    rng: random.Random
    stopping: threading.Event


@dataclass(frozen=True, slots=True)
class Served:
    """A reply. ``limits`` (here, in :class:`Injected` and :class:`Limited`) are the buckets
    that govern the call's model: its own when it has ``model_limits``, else the
    instance-wide ones; they are what the rate-limit headers describe.

    ``input_tokens`` are the prompt tokens neither read from nor written to the cache;
    with ``cache``'s reads and writes they add up to :attr:`prompt_tokens`.

    A streamed call is served (settled, billed, its cache written) without waiting: its
    latency is left for the stream, whose first content comes ``first_token_s`` after the
    start and whose last comes ``latency_s`` after it."""

    text: str
    input_tokens: int
    output_tokens: int
    truncated: bool
    limits: list[BucketState]
    cache: CacheUsage = NO_USAGE
    tool_calls: tuple[ToolCall, ...] = ()
    latency_s: float = 0.0
    first_token_s: float = 0.0

    @property
    def prompt_tokens(self) -> int:
        """The whole prompt: uncached, read and written tokens."""
        return self.input_tokens + self.cache.read_tokens + self.cache.write_tokens


@dataclass(frozen=True, slots=True)
class UnknownModel:
    model: str


@dataclass(frozen=True, slots=True)
class Unsupported:
    """The model cannot take the request's input (images or documents on a text-only
    model); ``message`` says so."""

    message: str


@dataclass(frozen=True, slots=True)
class TooLong:
    """``requested_tokens`` is the prompt plus ``max_tokens``; ``window`` the model's."""

    requested_tokens: int
    input_tokens: int
    window: int


@dataclass(frozen=True, slots=True)
class Injected:
    fault: Fault
    limits: list[BucketState]


@dataclass(frozen=True, slots=True)
class Limited:
    denial: Denial
    limits: list[BucketState]


@dataclass(frozen=True, slots=True)
class Abandoned:
    """The server is stopping while the call waited: close without answering."""


Outcome = Served | UnknownModel | Unsupported | TooLong | Injected | Limited | Abandoned


def latency_s(profile: Profile, rng: random.Random) -> float:
    """One draw of the profile's latency: mean ± uniform jitter, never negative."""
    if profile.latency_jitter_s <= 0:
        return profile.latency_s
    jitter_s = rng.uniform(-profile.latency_jitter_s, profile.latency_jitter_s)
    return max(0.0, profile.latency_s + jitter_s)


def check_size(call: Call, profile: Profile) -> TooLong | int:
    """The output cap for this call, or why the prompt does not fit the model."""
    window = profile.context_window(call.model)
    input_tokens = call.prompt.input_tokens
    requested = input_tokens + (call.max_tokens or 0)
    if requested > window or input_tokens >= window:
        return TooLong(max(requested, input_tokens), input_tokens, window)
    return call.max_tokens if call.max_tokens is not None else window - input_tokens


def _look_up_cache(state: InstanceState, call: Call) -> CacheLookup:
    points = cacheable(call.cache, call.model, state.profile)
    return state.prompt_cache.look_up(call.model, points, automatic=call.cache.automatic)


def _limited_input(call: Call, usage: CacheUsage) -> int:
    """The input tokens charged to the limits: all but the cache reads for explicit caching
    (Anthropic does not count reads toward input tokens per minute for most models; here for
    every model), the whole prompt for automatic caching (OpenAI counts cached tokens)."""
    if call.cache.automatic:
        return call.prompt.input_tokens
    return call.prompt.input_tokens - usage.read_tokens


def output_cap(call: Call, profile: Profile) -> UnknownModel | Unsupported | TooLong | int:
    """The output cap for ``call`` on ``profile``, or why it cannot be served at all."""
    if not profile.serves(call.model):
        return UnknownModel(call.model)
    if call.prompt.media_count and call.model in profile.text_only_models:
        return Unsupported(f"model {call.model} does not support image or document input")
    return check_size(call, profile)


def serve(state: InstanceState, call: Call, runtime: Runtime) -> Outcome:
    """Run one completion call against ``state``; may sleep for latency or a fault.

    The cache is looked up before the limits are charged and written once the call is
    served, so a call that is refused or abandoned leaves the cache as it found it."""
    profile = state.profile
    cap = output_cap(call, profile)
    if not isinstance(cap, int):
        return cap
    fault = state.draw_fault(runtime.rng)
    if fault is not None and fault.kind != "timeout":
        return Injected(fault, state.limit_states(call.model))
    if fault is not None and runtime.stopping.wait(fault.delay_s):
        return Abandoned()
    answer = compose(call.model, call.prompt, call.plan, cap)
    output_tokens = answer.output_tokens
    # Without max_tokens the real APIs estimate output; here the exact reply is known.
    charged = call.max_tokens if call.max_tokens is not None else output_tokens
    cached = _look_up_cache(state, call)
    usage = cached.usage
    denial = state.admit(call.model, _limited_input(call, usage), charged)
    if denial is not None:
        return Limited(denial, state.limit_states(call.model))
    delay_s = latency_s(profile, runtime.rng)
    if not call.stream and delay_s > 0 and runtime.stopping.wait(delay_s):
        return Abandoned()
    input_tokens = call.prompt.input_tokens - usage.read_tokens - usage.write_tokens
    state.settle(call.model, input_tokens, charged, output_tokens, usage)
    state.prompt_cache.store(call.model, cached.stores)
    limits = state.limit_states(call.model)
    streamed_s = delay_s if call.stream else 0.0
    return Served(
        answer.text,
        input_tokens,
        output_tokens,
        answer.truncated,
        limits,
        usage,
        answer.tool_calls,
        latency_s=streamed_s,
        first_token_s=streamed_s * profile.first_token_fraction,
    )


class Dialect(Protocol):
    """One wire format (Anthropic Messages or OpenAI chat completions)."""

    def check_headers(self, headers: Mapping[str, str], profile: Profile) -> Reply | None:
        """An error reply when credentials or required headers are missing, else None."""

    def parse(self, body: bytes) -> Call:
        """The validated call; raises :class:`~lanes.sim.validate.InvalidRequest`."""

    def render(self, outcome: Outcome, call: Call) -> Reply: ...

    def error(self, status: int, message: str) -> Reply:
        """An error body in this API's form for ``status`` (400, 401, 404, 413, 500...)."""

    def models(self, profile: Profile) -> Reply: ...
