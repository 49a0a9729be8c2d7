"""The figures of ``lanes bench load`` (the bench itself runs real processes: not here)."""

from __future__ import annotations

import pytest

from lanes.bench.load import VITAL_EVERY, Arm, batch_jobs, ceiling
from lanes.broker.result import Result
from lanes.kernel.config import Config
from lanes.router.classifier import classify_text


def result(lane: str, *, cost: float = 0.0, latency: float = 0.4, deliveries: int = 1,
           out: int = 100) -> Result:  # fmt: skip
    return Result(job_id=f"j-{lane}-{cost}-{deliveries}", status="ok", instance=lane,
                  model="m", step=0, attempt=0, cost_usd=cost, latency_s=latency,
                  deliveries=deliveries, input_tokens=20, output_tokens=out)  # fmt: skip


def test_the_batch_mixes_vital_work_with_work_a_cheap_lane_may_take() -> None:
    jobs = batch_jobs(40, "default")
    vital = [job for job in jobs if job["vital"]]
    assert len(vital) == 40 // VITAL_EVERY
    assert all(classify_text(job["prompt"]).vital for job in vital)  # the text reads vital too
    assert {job["max_tokens"] for job in jobs} == {100, 200, 400, 800}
    assert not {j["prompt"] for j in jobs} & {j["prompt"] for j in batch_jobs(40, "round_robin")}


def test_an_arm_reports_rate_cost_deliveries_and_interactive_waits() -> None:
    arm = Arm("default", batch=[result("zai", cost=0.01), result("koala", deliveries=3)],
              elapsed_s=4.0)  # fmt: skip
    arm.interactive = [(1.4, result("koala")), (0.9, result("zai")), (3.4, result("zai"))]
    figures = arm.figures()
    assert figures["jobs_per_s"] == 0.5
    assert figures["cost_usd"] == 0.01
    assert figures["deliveries_per_job"] == pytest.approx(7 / 5, abs=1e-3)
    assert (figures["interactive_p50_wait_s"], figures["interactive_p95_wait_s"]) == (1.0, 3.0)
    assert figures["lanes"] == {"zai": 1, "koala": 1}


def test_the_ceiling_keeps_vital_work_off_the_cheap_lanes(example_config: Config) -> None:
    observed = [result("zai", out=100)] * 4
    # claude1-3: 1000 requests/min and 90k output tokens/min each: 15 jobs/s of 100 tokens;
    # zai: 600/min, 200k output/min -> 10; koala: 120/min -> 2 (4 at once over 0.4 s: 10)
    every = 3 * 15.0 + 10.0 + 2.0
    assert ceiling(example_config, observed, 0.4) == pytest.approx(min(every, 45.0 * VITAL_EVERY))
    big = [result("zai", out=3000)] * 4  # 30 jobs/min of 3,000 tokens on a Claude lane
    slow = ceiling(example_config, big, 0.4)
    assert slow == pytest.approx(min(3 * 0.5 + 200_000 / 60 / 3000 + 2.0, 1.5 * VITAL_EVERY))
    assert ceiling(example_config, [], 0.4) == 0.0
