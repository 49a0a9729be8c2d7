from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from lanes.entry import app, main
from lanes.kernel.config import Config, load_config

from ..conftest import EXAMPLE

runner = CliRunner()


def invoke(*args: str, env: dict[str, str] | None = None) -> Any:
    return runner.invoke(app, ["--config", str(EXAMPLE), *args], env=env)


def run_main(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    """Run the real entry point; return its exit code."""
    monkeypatch.setattr(sys, "argv", ["lanes", *args])
    with pytest.raises(SystemExit) as caught:
        main()
    code = caught.value.code
    return code if isinstance(code, int) else 1


def json_lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


@pytest.fixture
def config_copy(tmp_path: Path) -> Path:
    path = tmp_path / "lanes.yaml"
    shutil.copyfile(EXAMPLE, path)
    return path


def test_cli_routing_classify_json_has_the_core_fields() -> None:
    result = invoke("classify", "Write unit tests for the date parser", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert {"type", "complexity", "pattern", "input_tokens", "output_tokens"} <= set(data)
    assert data["input_tokens"] > 0


def test_cli_routing_route_json_has_the_decision_fields() -> None:
    result = invoke("route", "Summarise this paragraph", "--json", "--max-tokens", "300")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert {"instance", "model", "estimated_cost_usd", "confidence", "chain"} <= set(data)
    assert data["chain"][0] == {"instance": data["instance"], "model": data["model"]}


def test_cli_routing_route_pins_and_strategy_options() -> None:
    result = invoke("route", "x", "--json", "--instance", "zai", "--model", "glm-4.6")
    assert (json.loads(result.output)["instance"], json.loads(result.output)["model"]) == (
        "zai",
        "glm-4.6",
    )
    result = invoke("route", "Review this design", "--json", "--strategy", "cost_optimized")
    assert json.loads(result.output)["strategy"] == "cost_optimized"


def test_cli_routing_route_explains_in_rich_text() -> None:
    result = invoke("route", "Review this diff for security holes")
    assert result.exit_code == 0, result.output
    assert "vital" in result.output
    assert "zai rejected: vital work never goes to a cheap lane" in result.output
    assert "chain:" in result.output and "alternatives" in result.output


def test_cli_routing_route_jsonl_keeps_order_and_flags_bad_lines(tmp_path: Path) -> None:
    lines = [
        json.dumps({"text": "What is the capital of France?"}),
        "{not json",
        json.dumps({"text": "Write a parser", "max_tokens": 500, "task_type": "testing"}),
        json.dumps({"text": "x", "colour": "red"}),
        json.dumps({"text": "Plan the migration", "strategy": "cost_optimized"}),
    ]
    path = tmp_path / "jobs.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = invoke("route", "--jsonl", str(path))
    assert result.exit_code == 2
    out = json_lines(result.output)
    assert [o["line"] for o in out] == [1, 2, 3, 4, 5]
    assert "error" in out[1] and "error" in out[3] and "colour" in out[3]["error"]
    assert out[2]["classification"]["type"] == "testing"
    assert out[4]["strategy"] == "cost_optimized"
    assert all("instance" in out[i] for i in (0, 2, 4))


def test_cli_routing_classify_jsonl_all_good_exits_0(tmp_path: Path) -> None:
    path = tmp_path / "jobs.jsonl"
    rows = [{"text": "Fix the crash", "task_type": "debugging"}, {"text": "Write a poem"}]
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    result = invoke("classify", "--jsonl", str(path))
    assert result.exit_code == 0, result.output
    out = json_lines(result.output)
    assert [o["line"] for o in out] == [1, 2]
    assert out[0]["type"] == "debugging" and out[0]["confidence"] == 1.0


def test_cli_routing_config_json_never_prints_secrets() -> None:
    env = {"ANTHROPIC_API_KEY_1": "sk-ant-very-secret", "REDIS_URL": "redis://:hunter2@db:6379/0"}
    result = invoke("config", "--json", env=env)
    assert result.exit_code == 0, result.output
    assert "sk-ant-very-secret" not in result.output and "hunter2" not in result.output
    data = json.loads(result.output)
    assert data["instances"]["claude1"]["api_key_set"] is True
    assert data["instances"]["zai"]["api_key_set"] is False
    assert data["redis_url"] == "redis://***@db:6379/0"


def test_cli_routing_config_summary_lists_lanes_and_pools() -> None:
    result = invoke("config")
    assert result.exit_code == 0, result.output
    assert "koala" in result.output and "pool vital" in result.output


def test_cli_routing_config_says_which_file_it_loaded() -> None:
    shown = invoke("config")
    assert shown.exit_code == 0, shown.output
    assert shown.stdout.splitlines()[0] == f"config: {EXAMPLE} (--config)"
    data = json.loads(invoke("config", "--json").stdout)
    assert data["config_file"] == str(EXAMPLE) and data["config_origin"] == "--config"


def test_cli_routing_set_weight_round_trip(
    monkeypatch: pytest.MonkeyPatch, config_copy: Path
) -> None:
    before = config_copy.read_text(encoding="utf-8").splitlines()
    code = run_main(
        monkeypatch, "--config", str(config_copy), "config", "--set-weight", "cost", "0.3"
    )
    assert code == 0
    assert load_config(config_copy, env={}).routing.weights.cost == pytest.approx(0.3)
    after = config_copy.read_text(encoding="utf-8").splitlines()
    changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert len(changed) == 1 and "cost: 0.3" in changed[0][1]


@pytest.mark.parametrize(
    ("name", "value"),
    [("speed", "0.5"), ("cost", "-1"), ("cost", "lots"), ("cost", "1e309"), ("cost", "nan")],
)
def test_cli_routing_set_weight_rejects_bad_input(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    config_copy: Path,
    name: str,
    value: str,
) -> None:
    before = config_copy.read_text(encoding="utf-8")
    code = run_main(
        monkeypatch, "--config", str(config_copy), "config", "--set-weight", name, value
    )
    assert code == 2
    assert f"routing.weights.{name}" in capsys.readouterr().err
    assert config_copy.read_text(encoding="utf-8") == before


def test_cli_routing_set_weight_refuses_the_implicit_example(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("LANES_CONFIG", raising=False)
    before = EXAMPLE.read_text(encoding="utf-8")
    assert run_main(monkeypatch, "config", "--set-weight", "cost", "0.3") == 2
    assert "shipped example" in capsys.readouterr().err
    assert EXAMPLE.read_text(encoding="utf-8") == before


def test_cli_routing_exit_codes_for_bad_job_and_no_route(monkeypatch: pytest.MonkeyPatch) -> None:
    base = ["--config", str(EXAMPLE), "route", "Review the design"]
    assert run_main(monkeypatch, *base, "--strategy", "fastest") == 2
    assert run_main(monkeypatch, *base, "--instance", "nowhere") == 2
    assert run_main(monkeypatch, *base, "--max-cost", "0.0000001", "--min-quality", "95") == 3


def test_cli_routing_bench_route_json() -> None:
    result = invoke("bench", "route", "--json", "--size", "60", "--warmup", "10", "--passes", "2")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["decisions"] == 60
    assert 0 < data["p50_ms"] <= data["p99_ms"]
    assert 0 < data["routed_cost_usd"] < data["all_premium_cost_usd"]
    assert data["savings"] == pytest.approx(
        1 - data["routed_cost_usd"] / data["all_premium_cost_usd"], abs=1e-3
    )
    assert data["vital_jobs"] > 0
    assert data["vital_on_cheap_lane"] == 0


def test_cli_routing_bench_route_over_a_file_of_requests(tmp_path: Path) -> None:
    rows = ["Rotate the production database password and update every service that uses it",
            "Write a haiku about autumn", "Add a docstring to the parse_date helper"]  # fmt: skip
    path = tmp_path / "requests.jsonl"
    path.write_text("".join(json.dumps({"text": row}) + "\n" for row in rows), encoding="utf-8")
    result = invoke("bench", "route", "--json", "--requests", str(path), "--warmup", "1",
                    "--passes", "1")  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["decisions"] == 3 and data["vital_jobs"] == 1
    assert data["vital_on_cheap_lane"] == 0
    path.write_text('{"prompt": "no text field"}\n', encoding="utf-8")
    missing = invoke("bench", "route", "--json", "--requests", str(path))
    assert missing.exit_code != 0 and "needs a 'text'" in str(missing.exception)


def test_bench_route_says_where_rows_labelled_vital_went(tmp_path: Path) -> None:
    rows = [
        ("Rotate the production database password and update every service that uses it", True),
        ("Write a haiku about autumn", True),
        ("Add a docstring to parse_date", False),
    ]
    path = tmp_path / "labelled.jsonl"
    path.write_text("".join(json.dumps({"text": t, "vital": v}) + "\n" for t, v in rows))
    result = invoke("bench", "route", "--json", "--requests", str(path), "--warmup", "1",
                    "--passes", "1")  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    # the haiku, labelled vital here, is not vital to the router: it keeps its cheap lanes
    assert data["labelled_vital"] == 2 and data["labelled_vital_touching_cheap"] == 1
    assert sum(data["labelled_vital_first_model"].values()) == 2


def test_bench_route_counts_a_decision_naming_a_cheap_lane(example_config: Config) -> None:
    from lanes.bench.route import touches
    from lanes.router.candidates import build_candidates
    from lanes.router.decision import Decision

    cheap = build_candidates(example_config).cheap_targets()
    assert {"zai", "koala"} <= cheap and "vital" not in cheap
    safe = Decision(instance="vital", model="m", strategy="s", confidence=1.0,
                    estimated_cost_usd=0.0, estimated_latency_s=1.0,
                    chain=[{"instance": "claude1", "model": "m"}])  # fmt: skip
    assert not touches(safe, cheap)
    alternative = {"instance": "zai", "model": "m", "score": 1}
    leaky = Decision.model_validate({**safe.model_dump(), "alternatives": [alternative]})
    assert touches(leaky, cheap)


def test_cli_routing_config_json_masks_url_passwords(example_config: Config) -> None:
    from lanes.cli.routing import public_config

    for url in ("redis://:pw-9f8e7d@host:6379/0", "redis://host:6379/0?password=pw-9f8e7d"):
        shown = json.dumps(public_config(example_config.model_copy(update={"redis_url": url})))
        assert "pw-9f8e7d" not in shown and "***" in shown


def test_cli_routing_route_json_says_if_vital_and_why() -> None:
    result = invoke("route", "Write a haiku about autumn", "--json", "--vital")
    assert result.exit_code == 0, result.output
    clf = json.loads(result.output)["classification"]
    assert clf["vital"] is True and clf["vital_reason"]
    assert 0 <= clf["difficulty"] <= 1
    plain = json.loads(invoke("route", "Write a haiku", "--json", "--not-vital").output)
    assert (plain["classification"]["vital"], plain["classification"]["vital_reason"]) == (
        False,
        None,
    )


def test_cli_routing_route_and_classify_print_vital_reason_and_difficulty() -> None:
    for command in ("route", "classify"):
        result = invoke(command, "Write a haiku about autumn", "--vital")
        assert result.exit_code == 0, result.output
        assert "difficulty 0." in result.output or "difficulty 1." in result.output
        clf = json.loads(
            invoke("classify", "Write a haiku about autumn", "--vital", "--json").output
        )
        assert f"vital ({clf['vital_reason']})" in result.output


def test_cli_routing_route_refuses_vital_work_pinned_to_a_cheap_lane(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--config", str(EXAMPLE), "route", "Write a haiku about autumn", "--instance", "zai"]
    assert run_main(monkeypatch, *base, "--vital") == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "error: the job pins cheap lane zai, but the job is vital" in err
    assert "pin a lane without the 'cheap' tag" in err and '"vital": false' in err
    assert run_main(monkeypatch, *base, "--not-vital", "--json") == 0
    assert json.loads(capsys.readouterr().out)["instance"] == "zai"


def test_cli_routing_route_jsonl_flags_vital_work_pinned_to_a_cheap_lane(tmp_path: Path) -> None:
    rows = [
        {"text": "Write a haiku", "instance": "koala", "vital": True},
        {"text": "Write a haiku", "instance": "koala", "vital": False},
    ]
    path = tmp_path / "jobs.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    result = invoke("route", "--jsonl", str(path))
    assert result.exit_code == 2
    out = json_lines(result.output)
    assert out[0]["error"].startswith("JobError: the job pins cheap lane koala")
    assert out[1]["instance"] == "koala"
