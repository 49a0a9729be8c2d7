"""``lanes bench chaos``: jobs through real workers while workers die, Redis restarts and a
lane fails; then proof that no job was lost, no result duplicated, nothing charged twice.

Everything runs on its own: an embedded Redis (AOF, ``appendfsync always``, data under
``<state_dir>/bench-chaos``), a simulator process and worker processes consuming every
lane, all from a derived config with a short visibility timeout (30 s, so messages held by
a killed worker come back within the run), 10 s calls and a janitor that looks for lost
messages every 5 s (a message popped by a worker killed before it recorded it). Worker
processes that exit on their own are replaced, as a supervisor would. On exit, even on
Ctrl-C, all of it is stopped.

Counts: ``completed`` jobs have a final result (``ok`` or ``failed``); ``lost`` = submitted
- completed; ``duplicated_results`` = jobs whose caller-visible result is not the one result
recorded by the workers; ``double_charged`` = jobs charged more than once, or whose recorded
``cost_usd`` differs from the sum of their charges. Also reported: ``failed``, ``fallbacks``
(results that moved down their chain), ``submit_retries`` (submits refused while Redis was
down, then repeated), ``refused_no_route`` (submits the router refused, e.g. a lane pin while
that lane is unhealthy: never accepted, so never counted), ``provider_calls`` and
``repeated_ok_calls`` (successful calls beyond one per ``ok`` result: calls repeated after a
kill), and, when there are any, ``caller_errors``, ``lost_states`` and a few ``examples``.
Money (:mod:`lanes.bench.spend`): ``ledger_spend_usd`` (every call that started, in the run's own
SQLite ledger) against ``billed_usd`` (what the simulator served, at the config's prices),
with ``unsettled_calls`` (calls whose worker died mid-call) and their reservations.
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lanes.bench.chaos_faults import FaultRunner, FaultSpec, WorkerFleet, fault_plan
from lanes.bench.chaos_jobs import Audit, JobMix, Submitter, Watcher, audit, chaos_jobs
from lanes.bench.harness import derived_config, sim_process
from lanes.bench.rabbits import RabbitCluster, rabbit_cluster
from lanes.bench.spend import spend_report
from lanes.broker.app import wait_for_queues
from lanes.broker.embedded import EmbeddedRedis
from lanes.client import Lanes
from lanes.kernel.config import Config, SimMode
from lanes.kernel.errors import InfrastructureError
from lanes.ops.ledger_view import books
from lanes.sim import SimControl

Progress = Callable[[str], None]
_NOTE_EVERY_S = 10.0
_JOIN_S = 5.0
_DRAIN_MIN_S = 30.0
"""Time the last jobs submitted get in any case, however long ago the last fault was."""


@dataclass(frozen=True)
class ChaosSettings:
    jobs: int = 1000
    workers: int = 3
    concurrency: int = 8
    """Calls in flight per worker process."""
    latency_s: float = 0.5
    """Simulated latency of every call: long enough for kills to land mid-call."""
    submit_window_s: float = 60.0
    """Jobs are submitted evenly over this window, while the faults are injected."""
    visibility_timeout_s: int = 30
    """Redelivery timeout of unacknowledged messages (at least twice ``call_timeout_s``)."""
    janitor_interval_s: float = 5.0
    janitor_quiet_s: float = 20.0
    """A job is checked for a lost message once its state has not moved for this long."""
    call_timeout_s: float = 10.0
    """``timeout_s`` of every instance: one call never outlives the visibility timeout."""
    drain_s: float | None = None
    """How long to wait for results after the last fault; None: visibility timeout + 60 s."""
    seed: int = 7
    mix: JobMix = field(default_factory=JobMix)
    faults: FaultSpec = field(default_factory=FaultSpec)
    rabbitmq: bool = False
    """The queues on a three-node RabbitMQ cluster of quorum queues started for the run
    (``faults.broker_kills`` kill the node leading a lane's queue); Redis keeps the state."""

    def drain_after_last_fault_s(self) -> float:
        return self.drain_s if self.drain_s is not None else self.visibility_timeout_s + 60.0


def chaos_config(
    config: Config,
    directory: Path,
    redis_url: str,
    settings: ChaosSettings,
    *,
    broker_url: str | None = None,
) -> tuple[Config, Path]:
    """``config`` on ``redis_url`` (the queues on ``broker_url`` when given), every lane
    simulated and unlimited, short timeouts and quick retries; written to
    ``directory/chaos-config.yaml``."""

    def change(data: dict[str, Any]) -> None:
        data["broker"] = {**data.get("broker", {}), "url": broker_url}
        data.update(redis_url=redis_url, redis_prefix="chaos",
                    visibility_timeout_s=settings.visibility_timeout_s,
                    janitor_interval_s=settings.janitor_interval_s,
                    janitor_quiet_s=settings.janitor_quiet_s)  # fmt: skip
        data["simulator"].update(mode=SimMode.ALWAYS.value, enforce_limits=False,
                                 latency_s=settings.latency_s, latency_jitter_s=0.0)  # fmt: skip
        data["retry"].update(attempts_per_step=2, backoff_base_s=0.1, backoff_max_s=0.5,
                             max_wait_s=10.0, wait_slice_s=1.0)  # fmt: skip
        data["worker"]["concurrency"] = settings.concurrency
        data["routing"]["cache_ttl_s"] = 0
        data["database_url"] = f"sqlite:///{(directory / 'ledger.db').resolve()}"
        data["cache"] = {**data.get("cache", {}), "enabled": False}
        for inst in data["instances"].values():
            inst.update(limits={}, model_limits={}, timeout_s=settings.call_timeout_s)

    return derived_config(config, directory / "chaos-config.yaml", change)


def run_chaos(config: Config, settings: ChaosSettings, progress: Progress) -> dict[str, Any]:
    """Run the whole chaos benchmark; the JSON-able report."""
    home = Path(config.state_dir) / "bench-chaos"
    log_dir = home / "logs"
    for stale in (home / "redis", log_dir):  # a fresh AOF and fresh logs for every run
        shutil.rmtree(stale, ignore_errors=True)
    (home / "ledger.db").unlink(missing_ok=True)  # and a fresh ledger
    with contextlib.ExitStack() as stack:
        server = EmbeddedRedis(home / "redis", appendfsync="always").start()
        stack.callback(server.stop)
        broker = stack.enter_context(rabbit_cluster()) if settings.rabbitmq else None
        cfg, path = chaos_config(config, home, server.url, settings,
                                 broker_url=broker.url if broker else None)  # fmt: skip
        env = {"REDIS_URL": server.url, "LANES_CONFIG": str(path.resolve())}
        sim_url = stack.enter_context(
            sim_process(path, latency_s=settings.latency_s, limits=False, log_dir=log_dir, env=env)
        )
        env["LANES_SIMULATOR__PORT"] = sim_url.rsplit(":", 1)[1]
        fleet = WorkerFleet(cfg, size=settings.workers, concurrency=settings.concurrency,
                            env=env, log_dir=log_dir)  # fmt: skip
        stack.callback(fleet.stop)
        fleet.start()
        lanes = stack.enter_context(Lanes(cfg, server.url))
        sim = stack.enter_context(SimControl(sim_url))
        queues = f", queues on RabbitMQ {broker.url}" if broker else ""
        progress(f"redis {server.url}{queues}, simulator {sim_url}, {settings.workers} workers;"
                 f" logs in {log_dir}")  # fmt: skip
        wait_for_queues(lanes.app, set(cfg.lanes()), check=lambda: _check_started(fleet))
        report = _run(settings, fleet, server, sim, lanes, progress, broker)
    return report


def _check_started(fleet: WorkerFleet) -> None:
    for proc in fleet.live:
        if proc.poll() is not None:
            raise InfrastructureError(f"a chaos worker exited with code {proc.returncode}")


def _run(
    settings: ChaosSettings,
    fleet: WorkerFleet,
    server: EmbeddedRedis,
    sim: SimControl,
    lanes: Lanes,
    progress: Progress,
    broker: RabbitCluster | None = None,
) -> dict[str, Any]:
    rng = random.Random(settings.seed)
    run_id = f"chaos-{uuid.uuid4().hex[:8]}"
    jobs = chaos_jobs(settings.jobs, run_id, settings.mix, rng)
    stop = threading.Event()
    submitter = Submitter(lanes, jobs, window_s=settings.submit_window_s, stop=stop,
                          progress=progress)  # fmt: skip
    watcher = Watcher(submitter, lanes.app)
    faults = FaultRunner(settings.faults, fleet, server, sim, rng, progress, broker=broker)
    sim.reset_stats()
    started = time.monotonic()
    submitter.start()
    watcher.start()
    try:
        faults.run(fault_plan(settings.faults, settings.submit_window_s), started, stop)
        _drain(settings, watcher, submitter, faults, stop, progress)
    except BaseException:
        # Interrupted: drop the handles while Redis still runs (each unsubscribes from its
        # result channel when collected, and would wait for a stopped Redis).
        stop_threads(stop, submitter, watcher)
        submitter.accepted.clear()
        raise
    stop_threads(stop, submitter, watcher)
    found = audit_run(submitter, watcher, lanes)
    report = _report(found, submitter, faults, sim, time.monotonic() - started)
    return {**report, **_spend(lanes, sim, progress)}


def _spend(lanes: Lanes, sim: SimControl, progress: Progress) -> dict[str, Any]:
    """The ledger's spend (every queued event drained first) against the simulator's bill."""
    with books(lanes.config, warn=progress) as ledger:
        return spend_report(lanes.config, ledger, sim.stats())


def stop_threads(stop: threading.Event, submitter: Submitter, watcher: Watcher) -> None:
    stop.set()
    watcher.done.set()
    submitter.join(timeout=_JOIN_S)
    watcher.join(timeout=_JOIN_S)


def audit_run(submitter: Submitter, watcher: Watcher, lanes: Lanes) -> Audit:
    """The audit of every job ``submitter`` had accepted (its error first, if it failed)."""
    if submitter.error is not None:
        raise submitter.error
    return audit(submitter.accepted, watcher.seen, lanes.stores.jobs,
                 lambda job_id: str(lanes.app.AsyncResult(job_id).state))  # fmt: skip


def outcome_counts(
    found: Audit, submitted: int, stats: dict[str, dict[str, int]]
) -> dict[str, int]:
    """The audit's figures every chaos report prints, with the simulator's ``stats``."""
    calls_ok = sum(s.get("ok", 0) for s in stats.values())
    return {
        "submitted": submitted,
        "completed": found.completed,
        "lost": submitted - found.completed,
        "duplicated_results": found.duplicated_results,
        "double_charged": found.double_charged,
        "failed": found.failed,
        "provider_calls": sum(s.get("requests", 0) for s in stats.values()),
        "provider_calls_ok": calls_ok,
        "repeated_ok_calls": calls_ok - (found.completed - found.failed),
    }


def _drain(
    settings: ChaosSettings,
    watcher: Watcher,
    submitter: Submitter,
    faults: FaultRunner,
    stop: threading.Event,
    progress: Progress,
) -> None:
    """After the last fault: wait for the submitter, then until every accepted job has a
    result or the drain time is over, replacing workers that die meanwhile."""
    next_note = time.monotonic() + _NOTE_EVERY_S
    deadline: float | None = None
    while deadline is None or time.monotonic() < deadline:
        if deadline is None and not submitter.is_alive():
            deadline = max(faults.last_fault_at + settings.drain_after_last_fault_s(),
                           time.monotonic() + _DRAIN_MIN_S)  # fmt: skip
            progress(f"all jobs submitted, faults over; waiting up to "
                     f"{deadline - time.monotonic():.0f}s for the results")  # fmt: skip
        if deadline is not None and watcher.settled(len(submitter.accepted)):
            return
        faults.tend_until(time.monotonic() + 1.0, stop)
        if time.monotonic() >= next_note:
            progress(f"{len(watcher.seen)} results, {watcher.pending} pending")
            next_note += _NOTE_EVERY_S


def _report(
    found: Audit, submitter: Submitter, faults: FaultRunner, sim: SimControl, duration_s: float
) -> dict[str, Any]:
    report: dict[str, Any] = {
        **outcome_counts(found, len(submitter.accepted), sim.stats()),
        "faults": faults.counts,
        "fallbacks": found.fallbacks,
        "submit_retries": submitter.submit_retries,
        "refused_no_route": submitter.no_route,
        "duration_s": round(duration_s, 1),
    }
    if found.caller_errors:
        report["caller_errors"] = dict(found.caller_errors)
    if found.lost_states:
        report["lost_states"] = dict(found.lost_states)
    if found.examples:
        report["examples"] = found.examples
    return report


def settings_with(**changes: Any) -> ChaosSettings:
    """Default settings with ``changes`` (``None`` values keep the default)."""
    return dataclasses.replace(
        ChaosSettings(), **{k: v for k, v in changes.items() if v is not None}
    )
