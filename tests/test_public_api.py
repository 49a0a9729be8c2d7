"""What ``import lanes`` offers a program: exactly this, and every name resolves."""

from __future__ import annotations

import lanes

PUBLIC = {
    "AuthFailed",
    "BatchSummary",
    "BudgetExceeded",
    "Classification",
    "Comparison",
    "Complexity",
    "Config",
    "ConfigError",
    "Decision",
    "InfrastructureError",
    "Job",
    "JobError",
    "JobFailed",
    "JobHandle",
    "JobTimeout",
    "Lanes",
    "LanesError",
    "NoRoute",
    "NoWorker",
    "Overloaded",
    "Pipeline",
    "PipelineRun",
    "ProviderError",
    "ProviderTimeout",
    "RateLimited",
    "Result",
    "ReviewReport",
    "Reviewer",
    "Step",
    "TaskType",
    "load_config",
    "load_pipeline",
}


def test_public_api_all_is_exactly_the_documented_surface() -> None:
    assert set(lanes.__all__) == PUBLIC
    assert len(lanes.__all__) == len(PUBLIC)  # no name listed twice


def test_public_api_every_name_resolves_on_the_package() -> None:
    missing = [name for name in lanes.__all__ if not hasattr(lanes, name)]
    assert missing == []


def test_public_api_errors_share_one_root() -> None:
    errors = [getattr(lanes, n) for n in PUBLIC if n.endswith(("Error", "Failed", "Timeout"))]
    errors += [lanes.NoRoute, lanes.BudgetExceeded, lanes.RateLimited, lanes.Overloaded]
    assert all(issubclass(e, lanes.LanesError) for e in errors)


def test_public_api_result_is_typed_and_carries_its_fields() -> None:
    result = lanes.Result(job_id="j", status="ok", instance="zai", model="glm-4.6", step=0,
                          attempt=0, text="hi", cost_usd=0.001)  # fmt: skip
    assert result.ok and result.text == "hi"
    assert lanes.Result.model_validate(result.to_wire()) == result
