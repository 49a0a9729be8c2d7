from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from lanes.cli.app import app

runner = CliRunner()


def test_bench_classify_reports_accuracy_and_confusion(tmp_path: Path) -> None:
    rows = [
        {"text": "Write unit tests for the invoice parser", "type": "testing"},
        {"text": "Fix crash when the config file is empty", "type": "debugging"},
        {"text": "Document the retry options in the README", "type": "documentation"},
        {"text": "Write unit tests for the tokenizer", "type": "documentation"},
    ]
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    result = runner.invoke(app, ["bench", "classify", str(path), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["total"] == 4 and report["correct"] == 3
    assert report["confusion"]["documentation"]["testing"] == 1
    assert "misses" not in report


def test_bench_classify_missing_file_is_bad_input(tmp_path: Path) -> None:
    result = runner.invoke(app, ["bench", "classify", str(tmp_path / "none.jsonl")])
    assert result.exit_code != 0
    assert "no such file" in str(result.exception)
