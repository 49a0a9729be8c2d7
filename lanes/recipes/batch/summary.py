"""What a batch reports: the OUT line of each finished job, progress, the summary by lane."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from lanes.kernel.errors import BudgetExceeded, JobFailed, JobTimeout, NoWorker

if TYPE_CHECKING:
    from lanes.recipes.rows import Row

STOP_EXIT_CODES = {
    "interrupted": 130,
    "terminated": 143,
    "budget": BudgetExceeded.exit_code,
    "no worker": NoWorker.exit_code,
}
"""The exit code of a batch stopped early, by ``stopped_reason`` (``"error"``: the error's)."""


@dataclass(frozen=True)
class BatchProgress:
    """A snapshot for a progress bar. ``total`` is the lines to run (not already in OUT);
    ``done`` counts those that are written, reported bad or timed out."""

    total: int
    done: int
    ok: int
    failed: int
    bad_lines: int
    timed_out: int
    in_flight: int
    cost_usd: float
    elapsed_s: float


@dataclass
class LaneSummary:
    """The finished jobs of one lane (the instance that answered, or last tried).

    ``cached``: answers from the response cache (no provider call, nothing paid; they cost
    ``cost_saved_usd`` when bought). ``simulated``: answers from the provider simulator,
    not the real provider."""

    lane: str
    jobs: int = 0
    ok: int = 0
    failed: int = 0
    cached: int = 0
    simulated: int = 0
    cost_usd: float = 0.0
    cost_saved_usd: float = 0.0
    latency_total_s: float = 0.0
    waited_total_s: float = 0.0
    deliveries: int = 0

    @property
    def mean_latency_s(self) -> float:
        return self.latency_total_s / self.jobs if self.jobs else 0.0

    @property
    def mean_waited_s(self) -> float:
        """Time re-queued for capacity or a cooldown, per job (apart from the latency)."""
        return self.waited_total_s / self.jobs if self.jobs else 0.0

    @property
    def deliveries_per_job(self) -> float:
        return self.deliveries / self.jobs if self.jobs else 0.0

    def count(self, line: dict[str, Any]) -> None:
        """Add one OUT line."""
        ok = line["status"] == "ok"
        self.jobs += 1
        self.ok += ok
        self.failed += not ok
        self.cached += bool(line.get("cached"))
        self.simulated += bool(line.get("simulated"))
        self.cost_usd += line["cost_usd"]
        self.cost_saved_usd += line.get("cost_saved_usd", 0.0)
        self.latency_total_s += line["latency_s"]
        self.waited_total_s += line.get("waited_s", 0.0)
        self.deliveries += line.get("deliveries", 1)

    def to_json(self) -> dict[str, Any]:
        return {
            "lane": self.lane,
            "jobs": self.jobs,
            "ok": self.ok,
            "failed": self.failed,
            "cached": self.cached,
            "simulated": self.simulated,
            "cost_usd": round(self.cost_usd, 6),
            "cost_saved_usd": round(self.cost_saved_usd, 6),
            "mean_latency_s": round(self.mean_latency_s, 3),
            "mean_waited_s": round(self.mean_waited_s, 3),
            "deliveries_per_job": round(self.deliveries_per_job, 3),
        }


@dataclass
class BatchSummary:
    """What one run did. ``lines``: non-blank lines of IN; ``skipped_done``: their ids were
    already in OUT; ``not_run``: lines left unsubmitted because the run stopped early;
    ``unfinished``: submitted, not written (timed out, or in flight when the run was
    stopped); ``cached`` / ``simulated``: written answers from the response cache / the
    provider simulator; ``stopped_reason``: None, ``"budget"``, ``"interrupted"`` (Ctrl-C, or
    ``stop`` set), ``"terminated"`` (SIGTERM), ``"no worker"`` (jobs wait on a lane no worker
    consumes) or ``"error"``."""

    in_path: str
    out_path: str
    lines: int = 0
    skipped_done: int = 0
    bad_lines: int = 0
    submitted: int = 0
    ok: int = 0
    failed: int = 0
    timed_out: int = 0
    unfinished: int = 0
    not_run: int = 0
    cached: int = 0
    simulated: int = 0
    cost_usd: float = 0.0
    cost_saved_usd: float = 0.0
    elapsed_s: float = 0.0
    stopped_reason: str | None = None
    stop_message: str = ""
    error_code: int = 0
    dropped_partial_line: bool = False
    lanes: dict[str, LaneSummary] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """The command's exit code: 130 interrupted, 143 terminated, 4 budget, the error's
        code, 6 a job failed, 7 a job timed out, else 0 (bad lines alone do not fail a
        batch)."""
        if self.stopped_reason == "error":
            return self.error_code or 1
        if self.stopped_reason is not None:
            return STOP_EXIT_CODES[self.stopped_reason]
        if self.failed:
            return JobFailed.exit_code
        if self.timed_out:
            return JobTimeout.exit_code
        return 0

    def count(self, line: dict[str, Any]) -> None:
        """Add one OUT line to the totals and to its lane's summary."""
        ok = line["status"] == "ok"
        self.ok += ok
        self.failed += not ok
        self.cached += bool(line.get("cached"))
        self.simulated += bool(line.get("simulated"))
        self.cost_usd += line["cost_usd"]
        self.cost_saved_usd += line.get("cost_saved_usd", 0.0)
        self.lanes.setdefault(line["lane"], LaneSummary(line["lane"])).count(line)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["cost_usd"] = round(self.cost_usd, 6)
        data["cost_saved_usd"] = round(self.cost_saved_usd, 6)
        data["elapsed_s"] = round(self.elapsed_s, 3)
        data["lanes"] = [row.to_json() for row in self.sorted_lanes()]
        data["exit_code"] = self.exit_code
        return data

    def sorted_lanes(self) -> list[LaneSummary]:
        return sorted(self.lanes.values(), key=lambda lane: (-lane.jobs, lane.lane))


def out_line(line_id: str | int, row: Row) -> dict[str, Any]:
    """The OUT line of a job: the IN line's ``id``, then the job's row
    (:mod:`lanes.recipes.rows`) with its ``text`` named ``output``, the file's name for it."""
    return {"id": line_id, **{("output" if key == "text" else key): v for key, v in row.items()}}
