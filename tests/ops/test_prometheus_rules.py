"""ops/prometheus.yml and ops/alerts.yml: parsed, and checked by promtool.

The exporter (`lanes metrics`) and the rules are written separately, so the rules may use only
the metric names the exporter promises (EXPORTED below); a renamed metric would leave an alert
silently never firing. With promtool on PATH the config and rules are checked by Prometheus's own
parser and every alert is run against synthetic series (`promtool test rules`): it must fire when
it should and stay quiet on the near misses. promtool is taken from PATH, or unpacked from
Debian's `prometheus` package (`apt-get download`: nothing installed, no server started); where
neither works those two tests skip, saying why, and fail under `$CI`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import yaml

from ..conftest import apt_retry, missing_tool

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "ops" / "prometheus.yml"
ALERTS = ROOT / "ops" / "alerts.yml"
TOOLS = ROOT / ".lanes" / "tools"
"""Where a promtool taken out of Debian's ``prometheus`` package is kept between runs."""

HISTOGRAMS = {"lanes_provider_latency_seconds"}
EXPORTED = {
    "lanes_jobs_total",
    "lanes_routing_decisions_total",
    "lanes_rate_limit_wait_seconds_total",
    "lanes_cooldowns_total",
    "lanes_fallbacks_total",
    "lanes_spend_usd_total",
    "lanes_queue_depth",
    "lanes_lane_cooling_down",
    "lanes_chain_available_lanes",
    "lanes_lane_consuming",
    "lanes_lane_workers",
    "lanes_budget_used_ratio",
} | {f"{h}_{suffix}" for h in HISTOGRAMS for suffix in ("bucket", "sum", "count")}
BUILTIN = {"up"}  # Prometheus's own series about each scrape
REQUIRED = {
    "LanesBudgetNearLimit": "lanes_budget_used_ratio > 0.9",
    "LanesChainCoolingDown": "lanes_chain_available_lanes == 0",
    "LanesWorkerNotConsuming": "lanes_lane_consuming == 0",
    "LanesQueueDepthGrowing": "deriv(lanes_queue_depth[10m]) > 0 and lanes_queue_depth > 100",
}
SEVERITIES = {"warning", "critical"}
DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")
PROMQL_KEYWORDS = {"and", "or", "unless", "bool", "offset", "group_left", "group_right"}


def _load(path: Path) -> dict[str, Any]:
    return dict(yaml.safe_load(path.read_text()))


def _rules() -> list[dict[str, Any]]:
    groups = _load(ALERTS)["groups"]
    assert groups, "alerts.yml has no group"
    return [rule for group in groups for rule in group["rules"]]


def promtool() -> str:
    """promtool: on PATH, or unpacked from Debian's ``prometheus`` package (``apt-get
    download``, nothing installed, no service started); skip (fail under ``$CI``) if neither."""
    unpacked = TOOLS / "usr" / "bin" / "promtool"
    found = shutil.which("promtool") or (str(unpacked) if unpacked.exists() else None)
    if found:
        return found
    with tempfile.TemporaryDirectory() as tmp:
        why = apt_retry(["download", "prometheus"], 300, cwd=Path(tmp))
        for deb in Path(tmp).glob("prometheus_*.deb"):
            subprocess.run(["dpkg-deb", "-x", str(deb), str(TOOLS)], check=False, timeout=120)
    if not unpacked.exists():
        missing_tool(f"promtool not found: {why or 'the prometheus package held none'}")
    return str(unpacked)


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *args], capture_output=True, text=True, timeout=120, check=False
    )


def _metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects: every identifier that is not a function, a
    keyword, a label name or a label value (good enough for rules; promtool does the real
    parse where it is installed)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # range and subquery durations
    text = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", text)  # label lists
    text = re.sub(r"\b(group_left|group_right)\s*\([^)]*\)", "", text)
    names = set()
    for match in re.finditer(r"(?<![\w:.])([A-Za-z_:][\w:]*)(\s*\()?", text):
        if not match.group(2) and match.group(1) not in PROMQL_KEYWORDS:
            names.add(match.group(1))
    return names


def _balanced(expr: str) -> bool:
    pairs = {")": "(", "]": "[", "}": "{"}
    stack: list[str] = []
    for char in re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr):
        if char in "([{":
            stack.append(char)
        elif char in pairs and (not stack or stack.pop() != pairs[char]):
            return False
    return not stack


def test_metric_name_extraction() -> None:
    """The helper the metric-name check relies on finds names and only names."""
    expr = (
        'sum by (lane) (rate(lanes_jobs_total{status="failed",lane=~"a|b"}[10m])) '
        "/ on (lane) group_left (model) lanes_lane_workers > 0.2 and up == 1e3"
    )
    assert _metric_names(expr) == {"lanes_jobs_total", "lanes_lane_workers", "up"}
    assert _metric_names("deriv(lanes_queue_depth[10m]) > 0") == {"lanes_queue_depth"}
    assert not _balanced("rate(x[5m]") and _balanced('a{b="(("}')


def test_scrape_config_scrapes_the_exporter() -> None:
    config = _load(CONFIG)
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    targets = [t for group in jobs["lanes"]["static_configs"] for t in group["targets"]]
    assert targets == ["metrics:9464"]  # the compose service `metrics`, `lanes metrics --port`
    assert DURATION.match(config["global"]["scrape_interval"])
    assert config["rule_files"] == ["alerts.yml"]
    for rule_file in config["rule_files"]:
        assert (CONFIG.parent / rule_file).is_file()  # resolved relative to the config file


def test_every_rule_is_a_complete_alert() -> None:
    """Each alert says how bad (severity) and what to do (summary, description)."""
    rules = _rules()
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names)), "duplicate alert names"
    for rule in rules:
        name = rule["alert"]
        assert set(rule) == {"alert", "expr", "for", "labels", "annotations"}, name
        assert DURATION.match(str(rule["for"])), name
        assert rule["labels"]["severity"] in SEVERITIES, name
        assert rule["annotations"]["summary"].strip(), name
        assert len(rule["annotations"]["description"].split()) >= 10, name
        assert _balanced(rule["expr"]), name


def test_rules_use_only_exported_metrics() -> None:
    for rule in _rules():
        names = _metric_names(rule["expr"])
        assert names, rule["alert"]
        assert names <= EXPORTED | BUILTIN, (rule["alert"], names - EXPORTED - BUILTIN)


def test_the_required_alerts_exist_with_their_thresholds() -> None:
    rules = {rule["alert"]: rule for rule in _rules()}
    for name, expr in REQUIRED.items():
        assert " ".join(rules[name]["expr"].split()) == expr, name
    assert rules["LanesChainCoolingDown"]["for"] == "1m"
    assert rules["LanesWorkerNotConsuming"]["for"] == "1m"
    assert rules["LanesQueueDepthGrowing"]["for"] == "10m"


def test_promtool_accepts_the_config_and_the_rules() -> None:
    for args in (("check", "config", str(CONFIG)), ("check", "rules", str(ALERTS))):
        result = _promtool(*args)
        assert result.returncode == 0, result.stdout + result.stderr


def _firing(alert: str, *series_labels: dict[str, str], severity: str) -> list[dict[str, Any]]:
    samples = []
    for labels in series_labels:
        every = {"alertname": alert, "alertstate": "firing", "severity": severity, **labels}
        inner = ",".join(f'{key}="{value}"' for key, value in sorted(every.items()))
        samples.append({"labels": f"ALERTS{{{inner}}}", "value": 1})
    return samples


def _check(at: str, alert: str, samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Exactly these series of `alert` fire at `at`: a near miss that fired would fail too."""
    expr = f'ALERTS{{alertname="{alert}",alertstate="firing"}}'
    return {"expr": expr, "eval_time": at, "exp_samples": samples}


def _unit_tests() -> dict[str, Any]:
    """Synthetic series, one minute apart, and which alerts must fire when."""
    series = {
        # Budgets: one crosses 90%, one stays under it, one is spent.
        'lanes_budget_used_ratio{budget="global/daily"}': "0.5 0.95x10",
        'lanes_budget_used_ratio{budget="project/research"}': "0.85x10",
        'lanes_budget_used_ratio{budget="user/alice"}': "1.2x10",
        # Chains: vital loses its last lane at 1m, cheap keeps one.
        'lanes_chain_available_lanes{chain="vital"}': "1 0x10",
        'lanes_chain_available_lanes{chain="cheap"}': "1x10",
        # Canary: claude1 stuck, zai fine, koala blips for less than the alert's `for`.
        'lanes_lane_consuming{lane="claude1"}': "0x10",
        'lanes_lane_consuming{lane="zai"}': "1x10",
        'lanes_lane_consuming{lane="koala"}': "1 1 0 1 1 1 1 1 1 1 1",
        # Queues: claude2 grows past the floor, zai is deep but flat, koala grows but stays low.
        'lanes_queue_depth{lane="claude2"}': "0+10x40",
        'lanes_queue_depth{lane="zai"}': "500x40",
        'lanes_queue_depth{lane="koala"}': "0+2x40",
        # Jobs: zai fails 30%, claude3 10%, koala fails everything but ends too few jobs.
        'lanes_jobs_total{lane="zai",model="glm-4.6",status="failed"}': "0+3x30",
        'lanes_jobs_total{lane="zai",model="glm-4.6",status="ok"}': "0+7x30",
        'lanes_jobs_total{lane="claude3",model="claude-sonnet-4-5",status="failed"}': "0+1x30",
        'lanes_jobs_total{lane="claude3",model="claude-sonnet-4-5",status="ok"}': "0+9x30",
        'lanes_jobs_total{lane="koala",model="llama3.1:8b",status="failed"}': "0+0.5x30",
        # Scrapes: the exporter is down; another job's target does not count.
        'up{job="lanes",instance="metrics:9464"}': "0x10",
        'up{job="node",instance="host:9100"}': "0x10",
    }
    checks = [
        _check(
            "5m",
            "LanesBudgetNearLimit",
            _firing(
                "LanesBudgetNearLimit",
                {"budget": "global/daily"},
                {"budget": "user/alice"},
                severity="warning",
            ),
        ),
        _check(
            "5m",
            "LanesBudgetExhausted",
            _firing("LanesBudgetExhausted", {"budget": "user/alice"}, severity="critical"),
        ),
        _check("1m", "LanesChainCoolingDown", []),  # pending: not yet for 1m
        _check(
            "5m",
            "LanesChainCoolingDown",
            _firing("LanesChainCoolingDown", {"chain": "vital"}, severity="critical"),
        ),
        _check(
            "5m",
            "LanesWorkerNotConsuming",
            _firing("LanesWorkerNotConsuming", {"lane": "claude1"}, severity="critical"),
        ),
        _check("15m", "LanesQueueDepthGrowing", []),  # above 100 since 11m: pending
        _check(
            "25m",
            "LanesQueueDepthGrowing",
            _firing("LanesQueueDepthGrowing", {"lane": "claude2"}, severity="warning"),
        ),
        _check(
            "25m",
            "LanesJobsFailing",
            _firing("LanesJobsFailing", {"lane": "zai"}, severity="warning"),
        ),
        _check(
            "5m",
            "LanesMetricsDown",
            _firing(
                "LanesMetricsDown",
                {"job": "lanes", "instance": "metrics:9464"},
                severity="critical",
            ),
        ),
    ]
    return {
        "rule_files": [str(ALERTS)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [{"series": s, "values": v} for s, v in series.items()],
                "promql_expr_test": checks,
            }
        ],
    }


def test_every_alert_is_exercised_by_the_unit_tests() -> None:
    tested = {
        check["expr"].split('"')[1] for check in _unit_tests()["tests"][0]["promql_expr_test"]
    }
    assert tested == {rule["alert"] for rule in _rules()}


def test_alerts_fire_on_synthetic_series(tmp_path: Path) -> None:
    tests = tmp_path / "alerts_test.yml"
    tests.write_text(yaml.safe_dump(_unit_tests(), sort_keys=False))
    result = _promtool("test", "rules", str(tests))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
