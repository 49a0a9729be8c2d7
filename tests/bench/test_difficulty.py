from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lanes.bench.difficulty import auc, gap_recovered, measure, parse_rows
from lanes.cli.app import app
from lanes.kernel.errors import JobError


def test_auc_is_one_for_a_perfect_order_and_half_for_ties() -> None:
    assert auc([0.1, 0.2, 0.9, 0.8], [0, 0, 1, 1]) == 1.0
    assert auc([0.9, 0.8, 0.1, 0.2], [0, 0, 1, 1]) == 0.0
    assert auc([0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1]) == 0.5


def test_gap_recovered_rewards_sending_the_right_prompts_first() -> None:
    strong = [1.0, 1.0, 1.0, 1.0]
    weak = [0.0, 1.0, 1.0, 1.0]  # only the first prompt needs the strong model
    assert gap_recovered([4, 1, 2, 3], strong, weak) == 1.0
    assert gap_recovered([1, 4, 3, 2], strong, weak) == 0.25
    assert gap_recovered([1, 1, 1, 1], [1, 1], [1, 1]) == 0.5  # no gap: nothing to recover


def test_measure_compares_difficulty_with_length_and_random() -> None:
    rows = [
        ("Prove that sqrt(2) is irrational and derive the bound rigorously.", 1.0, 0.0),
        ("Write a haiku about spring rain please, with lots of feeling and imagery", 1.0, 1.0),
        ("How many primes are below 100? Compute it exactly.", 1.0, 0.0),
        ("Say hello to my friend, she is having a wonderful and happy birthday today", 1.0, 1.0),
    ]
    report = measure(rows)
    assert report["prompts"] == 4
    assert report["difficulty"]["auc"] == 1.0
    assert report["length"]["auc"] < report["difficulty"]["auc"]
    assert set(report) >= {"difficulty", "length", "random", "strong_ok", "weak_ok"}


def test_bad_rows_are_named() -> None:
    with pytest.raises(ValueError, match="row 2 weak_ok"):
        parse_rows(
            [
                {"prompt": "a", "strong_ok": True, "weak_ok": False},
                {"prompt": "b", "strong_ok": True, "weak_ok": 3},
            ],
            "f",
        )
    with pytest.raises(ValueError, match="row 1: 'prompt'"):
        parse_rows([{"strong_ok": True, "weak_ok": True}], "f")


def test_cli_prints_json_and_refuses_bad_files(tmp_path: Path) -> None:
    good = tmp_path / "good.jsonl"
    good.write_text(
        "\n".join(
            json.dumps({"prompt": p, "strong_ok": s, "weak_ok": w})
            for p, s, w in [("Solve x^2 = 4 for x", True, False), ("Say hi", True, True)]
        )
    )
    runner = CliRunner()
    result = runner.invoke(app, ["bench", "difficulty", str(good), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["good"]["prompts"] == 2
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"prompt": "\xff"}\n')
    result = runner.invoke(app, ["bench", "difficulty", str(bad)])
    assert isinstance(result.exception, JobError)  # main() turns it into exit code 2
    assert "not UTF-8" in str(result.exception)
