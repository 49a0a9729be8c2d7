"""``lanes bench savings``: what the providers' batch API and prompt cache save, each arm
against its plain twin in the same run, on one stack.

Real parts throughout: a Redis of its own (db 12, flushed), the simulator in its own process
(its batch APIs and prompt cache), worker processes serving every lane (their batcher threads
send and poll the batches), a ledger of the bench's own, and the response cache off (every
job is a provider call or a batched request). Arms, in this order:

- ``research_calls`` / ``research_batch``: the same research batch (``jobs`` jobs pinned to
  one model, so both arms run on the same lanes), as calls, then with a deadline of
  ``deadline_s`` (which sends them through the lanes' batch APIs).
- ``review_plain`` / ``review_cached``: ``reviews`` reviews of a ``diff_tokens``-token diff
  each (a fresh diff per review), built by ``lanes review``'s own job builder with the
  configured reviewers: the diff in each job's prompt, then as the cached prefix it is.

Each arm's spend is the ledger's, its bill the simulator's (reset before the arm), priced
with the same config. ``input cost`` is what the prompt tokens cost: uncached input, cache
writes and cache reads, at their rates.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lanes.bench.harness import bench_redis, derived_config, simulated_stack, simulated_unlimited
from lanes.bench.spend import spend_report
from lanes.broker.result import Result
from lanes.client import Lanes
from lanes.kernel.config import Config
from lanes.ops.ledger_view import books
from lanes.recipes.review.reviewers import configured_reviewers
from lanes.recipes.review.run import review_jobs
from lanes.sim import SimControl

SAVINGS_DB = 12
BATCH_COST_BAR = 0.55
CACHE_INPUT_COST_BAR = 0.45
ONE_MODEL = ("vital", "claude-sonnet-4-5")
_TOPICS = ("the history of the printing press", "how vaccines are tested",
           "the economics of container shipping", "why the sky is blue at noon",
           "the design of the Unix pipe", "how bridges carry load")  # fmt: skip


@dataclass(frozen=True)
class SavingsSettings:
    jobs: int = 1000
    deadline_s: float = 7200.0
    model: str = "claude-haiku-4-5"
    """The research jobs' model, pinned in both arms (every lane serving it has a batch API)."""
    max_tokens: int = 200
    reviews: int = 10
    diff_tokens: int = 40_000
    workers: int = 2
    concurrency: int = 32
    latency_s: float = 0.05
    timeout_s: float = 600.0


def savings_config(config: Config, directory: Path, redis_url: str) -> tuple[Config, Path]:
    """Every lane simulated without limits, the response cache off, batches gathered and
    polled fast, a ledger of the bench's own."""
    database = directory / "ledger.db"
    database.unlink(missing_ok=True)

    def change(data: dict[str, Any]) -> None:
        data.update(redis_url=redis_url, redis_prefix="bench-savings",
                    database_url=f"sqlite:///{database.resolve()}")  # fmt: skip
        simulated_unlimited(data)
        data["batch"] = {**data.get("batch", {}), "gather_window_s": 1.0, "poll_interval_s": 0.5}

    return derived_config(config, directory / "savings-config.yaml", change)


def run_savings(
    config: Config, settings: SavingsSettings, progress: Callable[[str], None]
) -> dict[str, Any]:
    state = Path(config.state_dir)
    home, logs = state / "bench-savings", state / "logs"
    with bench_redis(config, db=SAVINGS_DB) as url:
        cfg, path = savings_config(config, home, url)
        with simulated_stack(cfg, path, url, latency_s=settings.latency_s,
                             workers=settings.workers, concurrency=settings.concurrency,
                             log_dir=logs, name="bench-savings") as sim_url:  # fmt: skip
            arms = _arms(cfg, url, sim_url, settings, progress)
    return report(settings, arms)


def _arms(
    cfg: Config, url: str, sim_url: str, settings: SavingsSettings,
    progress: Callable[[str], None],
) -> dict[str, dict[str, Any]]:  # fmt: skip
    research = _research_jobs(settings)
    plans: list[tuple[str, list[dict[str, Any]]]] = [
        ("research_calls", research),
        ("research_batch", [{**job, "deadline_s": settings.deadline_s} for job in research]),
        ("review_plain", [_plain(job) for job in _review_jobs(cfg, settings, "plain")]),
        ("review_cached", _review_jobs(cfg, settings, "cached")),
        ("review_plain_one_model",
         [_plain(job) for job in _review_jobs(cfg, settings, "plain-one", one_model=True)]),
        ("review_cached_one_model", _review_jobs(cfg, settings, "cached-one", one_model=True)),
    ]  # fmt: skip
    arms: dict[str, dict[str, Any]] = {}
    with Lanes(cfg, url) as lanes, SimControl(sim_url) as sim:
        for name, jobs in plans:
            progress(f"{name}: {len(jobs)} jobs")
            arms[name] = _run_arm(cfg, lanes, sim, name, jobs, settings, progress)
    return arms


def _run_arm(
    cfg: Config, lanes: Lanes, sim: SimControl, name: str, jobs: list[dict[str, Any]],
    settings: SavingsSettings, progress: Callable[[str], None],
) -> dict[str, Any]:  # fmt: skip
    time.sleep(0.01)  # the ledger's timestamps: this arm's events come after the last one's
    since = datetime.now(UTC)
    sim.reset_stats()
    started = time.monotonic()
    handles = [lanes.submit({**job, "id": f"{name}-{i}"}) for i, job in enumerate(jobs)]
    results = [handle.get(timeout_s=settings.timeout_s) for handle in handles]
    elapsed_s = time.monotonic() - started
    stats = sim.stats()
    with books(cfg, warn=progress) as ledger:
        spend = spend_report(cfg, ledger, stats, since)
        discounts = ledger.discounts(since)
    return {
        "jobs": len(jobs),
        "ok": sum(r.ok for r in results),
        "answered_once": _answered_once(results, jobs, stats),
        "batched": sum(r.batched for r in results),
        "elapsed_s": round(elapsed_s, 2),
        "cost_usd": round(sum(r.cost_usd for r in results), 6),
        "input_cost_usd": round(sum(_input_cost(cfg, r) for r in results), 6),
        "prompt_cache_saved_usd": round(discounts.prompt_cache_saved_usd, 6),
        "batch_saved_usd": round(discounts.batch_saved_usd, 6),
        "cache_read_tokens": sum(r.usage.get("cache_read_input_tokens", 0) for r in results),
        "cache_write_tokens": sum(r.usage.get("cache_creation_input_tokens", 0) for r in results),
        "lanes": sorted({f"{r.instance}/{r.model}" for r in results}),
        **spend,
    }


def _answered_once(
    results: Sequence[Result], jobs: Sequence[dict[str, Any]], stats: dict[str, dict[str, int]]
) -> bool:
    """Every job has its one ok result, and the provider served no more requests than jobs
    (a request answered twice would be billed twice)."""
    served = sum(s.get("ok", 0) + s.get("batch_requests", 0) for s in stats.values())
    ids = {r.job_id for r in results}
    return all(r.ok for r in results) and len(ids) == len(jobs) and served == len(jobs)


def _input_cost(cfg: Config, result: Result) -> float:
    usage = {k: v for k, v in result.usage.items() if k != "output_tokens"}
    return cfg.price_usd(result.instance, result.model, usage, batch=result.batched)


def _research_jobs(settings: SavingsSettings) -> list[dict[str, Any]]:
    return [
        {
            "prompt": f"Write a short research note on {_TOPICS[i % len(_TOPICS)]} (item {i}).",
            "model": settings.model,
            "max_tokens": settings.max_tokens,
            "task_type": "analysis",
            "priority": "batch",
        }
        for i in range(settings.jobs)
    ]


def _review_jobs(
    cfg: Config, settings: SavingsSettings, seed: str, *, one_model: bool = False
) -> list[dict[str, Any]]:
    """Each review's jobs as ``lanes review`` builds them; ``one_model``: every reviewer
    pinned to the ``vital`` pool's Sonnet (so all four share the diff's prefix)."""
    reviewers = configured_reviewers(cfg)
    if one_model:
        instance, model = ONE_MODEL
        reviewers = [dataclasses.replace(r, instance=instance, model=model) for r in reviewers]
    jobs: list[dict[str, Any]] = []
    for review in range(settings.reviews):
        diff = synthetic_diff(f"{seed}-{review}", settings.diff_tokens)
        jobs += [job for _, job in review_jobs(cfg, diff, reviewers)]
    return [{**job, "cache": False} for job in jobs]


def _plain(job: dict[str, Any]) -> dict[str, Any]:
    """The same job as lanes sent it before prompt caching: the diff inside the prompt."""
    plain = {k: v for k, v in job.items() if k != "cache_prefix"}
    plain["prompt"] = f"{job['cache_prefix']}\n\n{job['prompt']}"
    return plain


def synthetic_diff(seed: str, tokens: int) -> str:
    """A unified diff of about ``tokens`` tokens (4 characters each), different per seed."""
    lines = [f"diff --git a/src/{seed}.py b/src/{seed}.py", f"--- a/src/{seed}.py",
             f"+++ b/src/{seed}.py", "@@ -1,1 +1,9999 @@"]  # fmt: skip
    size = sum(len(line) + 1 for line in lines)
    n = 0
    while size < tokens * 4:
        digest = hashlib.sha256(f"{seed}:{n}".encode()).hexdigest()[:24]
        line = f"+    value_{n} = compute('{digest}', retries={n % 7})  # step {n}"
        lines.append(line)
        size += len(line) + 1
        n += 1
    return "\n".join(lines)


def _same_usd(one: float, other: float) -> bool:
    """Equal but for rounding: both are sums of many products, each rounded to 6 places."""
    return abs(one - other) <= 1e-6 * (1 + max(abs(one), abs(other)))


def _ratio(arm: dict[str, Any], twin: dict[str, Any], key: str) -> float:
    return round(arm[key] / twin[key], 4) if twin[key] else 0.0


def report(settings: SavingsSettings, arms: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "batch_cost_ratio": _ratio(arms["research_batch"], arms["research_calls"], "cost_usd"),
        "cache_input_cost_ratio": _ratio(
            arms["review_cached"], arms["review_plain"], "input_cost_usd"
        ),
        "cache_input_cost_ratio_one_model": _ratio(
            arms["review_cached_one_model"], arms["review_plain_one_model"], "input_cost_usd"
        ),
        "answered_exactly_once": all(arm["answered_once"] for arm in arms.values()),
        "spend_matches_bill": all(
            _same_usd(arm["ledger_spend_usd"], arm["billed_usd"]) for arm in arms.values()
        ),
        "batch_cost_bar": BATCH_COST_BAR,
        "cache_input_cost_bar": CACHE_INPUT_COST_BAR,
        "settings": vars(settings),
        "arms": arms,
    }
