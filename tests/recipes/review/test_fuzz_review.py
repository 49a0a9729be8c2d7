"""Property-based fuzzing of what ``lanes review`` reads: trees of files with links and odd
names, agent files with any front matter, any ``--git`` range. Each case ends in a report
(against the session's workers and simulator) or in one of lanes' errors with exit 2: never a
traceback, never a hang (each case has a deadline), never a byte from outside the given paths.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner, Result

from lanes.entry import app as cli_app
from lanes.kernel.config import Config
from lanes.kernel.errors import ConfigError, LanesError
from lanes.recipes.review.diffs import read_files
from lanes.recipes.review.reviewers import choose_reviewers

from ...conftest import LaneStack
from ...test_fuzz import FUZZ as SHARED_FUZZ

FUZZ = settings(
    SHARED_FUZZ,
    deadline=timedelta(seconds=10),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
SECRET = "sk-fuzz-outside-the-tree"
NAMES = st.text(
    st.characters(exclude_characters="/\x00", exclude_categories=("Cs",)),
    min_size=1, max_size=12,
).filter(lambda n: n not in (".", "..")) | st.sampled_from(
    ["-r", "--diff", ".git", "[bold]x", "a b.py", "new\nline", "é.py", "node_modules", "~"]
)  # fmt: skip
ENTRY = st.sampled_from(["text", "binary", "empty", "link-out", "link-in", "link-loop",
                         "link-dangling", "fifo", "dir"])  # fmt: skip


def _review(lane_stack: LaneStack, *args: str) -> Result:
    """``lanes review ARGS --json --yes`` in this process, on the session's deployment."""
    runner = CliRunner()
    env = {"LANES_CONFIG": str(lane_stack.config_path)}
    return runner.invoke(cli_app, ["review", *args, "--json", "--yes", "--timeout", "30"],
                         env=env)  # fmt: skip


def _report_or_refusal(result: Result) -> dict[str, Any] | None:
    """The JSON report, or None for a refusal that is a LanesError with exit 2."""
    exc = result.exception
    if exc is None:
        assert result.exit_code == 0, result.output
        data: dict[str, Any] = json.loads(result.stdout)
        assert data["reviewers"]
        event("a report")
        return data
    if isinstance(exc, SystemExit):
        assert result.exit_code in (0, 6), result.output  # 6: a reviewer failed
        event(f"exit {result.exit_code}")
        return None
    assert isinstance(exc, LanesError), repr(exc)
    assert exc.exit_code == 2, repr(exc)
    event(f"refused: {_gist(str(exc))}")
    return None


def _gist(message: str) -> str:
    """A refusal's kind, for the statistics: its words without what was quoted or named."""
    words = [w for w in message.split() if w.isalpha() and w.islower()]
    return " ".join(words[:5])


@contextlib.contextmanager
def _scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as name:
        root = Path(name)
        (root / "outside.env").write_text(f"API_KEY={SECRET}\n", encoding="utf-8")
        (root / "tree").mkdir()
        yield root


def _make(root: Path, name: str, kind: str, n: int) -> None:
    """One entry ``name`` of kind ``kind`` in ``root/tree`` (n makes names unique)."""
    path = root / "tree" / f"{n}{name}"
    makers = {
        "text": lambda: path.write_text(f"value_{n} = {n}\n", encoding="utf-8"),
        "binary": lambda: path.write_bytes(b"\x00\xff\xfe" * 8),
        "empty": lambda: path.write_bytes(b""),
        "link-out": lambda: path.symlink_to(root / "outside.env"),
        "link-in": lambda: path.symlink_to(root / "tree"),
        "link-loop": lambda: path.symlink_to(path),
        "link-dangling": lambda: path.symlink_to(root / "nowhere"),
        "fifo": lambda: os.mkfifo(path),
        "dir": lambda: (path.mkdir(), (path / "inner.py").write_text("y = 1\n", "utf-8")),
    }
    makers[kind]()


@pytest.mark.timeout(900)
@FUZZ
@given(st.lists(st.tuples(NAMES, ENTRY), min_size=1, max_size=6), st.booleans())
def test_fuzz_review_paths_end_in_a_report_or_a_refusal_and_never_leave_the_tree(
    lane_stack: LaneStack, entries: list[tuple[str, str]], name_each: bool
) -> None:
    with _scratch() as root:
        for n, (name, kind) in enumerate(entries):
            _make(root, name, kind, n)
        tree = root / "tree"
        paths = sorted(tree.iterdir()) if name_each else [tree]
        try:
            assert SECRET not in read_files(paths).diff
        except LanesError as exc:
            assert exc.exit_code == 2
        data = _report_or_refusal(_review(lane_stack, *map(str, paths), "-r", "type-safety"))
        if data is not None:
            assert SECRET not in json.dumps(data)


FRONT_VALUES = st.none() | st.booleans() | st.integers() | st.text(max_size=20) | st.sampled_from(
    ["security", "type-safety", "haiku", "sonnet", "inherit", "zai", "vital", "claude1", "opus"]
) | st.lists(st.text(max_size=5), max_size=3)  # fmt: skip
AGENT_NAMES = st.sampled_from(["security", "type-safety", "test-writer", "performance-reviewer"])
FRONT = st.fixed_dictionaries(
    # FRONT_VALUES as one branch (a map is not flattened): most files have a string name
    {"name": AGENT_NAMES | st.text(min_size=1, max_size=16) | FRONT_VALUES.map(lambda v: v)},
    optional={key: FRONT_VALUES for key in ("description", "model", "instance", "tools")},
)


@pytest.mark.timeout(900)
@FUZZ
@given(FRONT | st.text(max_size=80).map(lambda text: {"raw": text}), st.text(max_size=60))
def test_fuzz_review_agent_files_end_in_a_report_or_a_config_error(
    lane_stack: LaneStack, example_config: Config, front: dict[str, Any], body: str
) -> None:
    with _scratch() as root:
        agents = root / "agents"
        agents.mkdir()
        head = front["raw"] if set(front) == {"raw"} else yaml.safe_dump(front)
        (agents / "agent.md").write_text(f"---\n{head}\n---\n{body}\n", encoding="utf-8")
        try:
            choice = choose_reviewers(example_config, agents_dir=agents, use_all_agents=True)
        except ConfigError as exc:
            assert str(agents / "agent.md") in str(exc)
            event(f"agent file refused: {_gist(exc.message)}")
            return
        named = [r.name for r in choice.reviewers if r.source.endswith("agent.md")]
        result = _review(lane_stack, "--diff", str(_SAMPLE), "--agents", str(agents),
                         f"--reviewer={(named or ['type-safety'])[0]}")  # fmt: skip
        _report_or_refusal(result)


_SAMPLE = Path(__file__).resolve().parents[2] / "lanes" / "data" / "sample.diff"
REVISIONS = st.sampled_from(["HEAD", "HEAD~1", "HEAD~2", "@", "HEAD^", ":/one", "main", ""])
RANGES = (
    st.text(max_size=24)
    | st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=24)
    | st.tuples(REVISIONS, st.sampled_from(["..", "...", "^!", " ", "~1..", ""]), REVISIONS)
    .map("".join)
    | st.sampled_from(["--output=OUT", "-p", "--no-index", "HEAD -- a.py", "^HEAD", "HEAD~9"])
)  # fmt: skip


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git repository with three commits of one file."""
    root = tmp_path_factory.mktemp("repo")
    for n, message in enumerate(["one", "two", "three"]):
        (root / "a.py").write_text(f"x = {n}\n", encoding="utf-8")
        for args in (["init", "-q"] if n == 0 else [], ["add", "a.py"], ["commit", "-qm", message]):
            if args:
                subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", *args],
                               cwd=root, check=True, capture_output=True)  # fmt: skip
    return root


@pytest.mark.timeout(900)
@FUZZ
@given(RANGES)
def test_fuzz_review_git_ranges_end_in_a_report_or_a_refusal(
    lane_stack: LaneStack, repo: Path, revision_range: str
) -> None:
    out = repo.parent / "OUT"
    out.write_text("kept\n", encoding="utf-8")
    with contextlib.chdir(repo):
        result = _review(lane_stack, f"--git={revision_range.replace('OUT', str(out))}",
                         "-r", "type-safety")  # fmt: skip
    _report_or_refusal(result)
    assert out.read_text(encoding="utf-8") == "kept\n"
