"""The corpus builder on real git repositories made in a temporary directory."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from lanes.bench.training import instructions
from lanes.bench.training.build import (
    MissingSource,
    build_corpus,
    evaluate_folds,
    heldout_sample,
    label_agreement,
    write_corpus,
)
from lanes.bench.training.fit import fit
from lanes.router.typemodel import OTHER, TypeModel

SUBJECTS = {
    "feat": [
        "add a {} option to the cli",
        "support {} in the config loader",
        "allow {} for plugins",
    ],
    "fix": [
        "handle null {} without crashing",
        "prevent a crash when {} is empty",
        "correct the {} offset bug",
    ],
    "docs": [
        "document the {} option in the readme",
        "clarify the {} guide wording",
        "fix typo in the {} docs",
    ],
    "test": [
        "add unit tests for {}",
        "cover {} edge cases in tests",
        "add a test for the {} parser",
    ],
    "refactor": [
        "extract {} into its own module",
        "simplify the {} helper",
        "rename {} internals for clarity",
    ],
    "perf": [
        "speed up {} lookups with a cache",
        "avoid repeated {} allocations",
        "make {} parsing faster",
    ],
}
WORDS = ["route", "queue", "token", "lane", "budget", "ledger", "worker", "limit"]


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def _repo(root: Path, name: str, messages: list[str], files: dict[str, str] | None = None) -> None:
    path = root / name.replace("/", "+")
    path.mkdir(parents=True)
    _git(path, "init", "-q")
    _git(path, "config", "user.email", "dev@example.invalid")
    _git(path, "config", "user.name", "dev")
    for i, message in enumerate(messages):
        (path / "f.txt").write_text(str(i))
        for fname, text in (files or {}).items():
            (path / fname).parent.mkdir(parents=True, exist_ok=True)
            (path / fname).write_text(text)
        _git(path, "add", "-A")
        _git(path, "commit", "-q", "-m", message)


@pytest.fixture
def mirrors(tmp_path: Path) -> Path:
    for r, offset in (("acme/one", 0), ("acme/two", 3), ("acme/three", 5)):
        messages = [
            f"{prefix}: {template.format(WORDS[(offset + i) % len(WORDS)])}"
            for prefix, templates in SUBJECTS.items()
            for i, template in enumerate(templates)
        ]
        _repo(tmp_path, r, [*messages, "chore: bump everything to the latest"])
    seeds = [
        {"instruction": t}
        for t in (
            "Suggest a name for a bakery",
            "Write a thank-you note to a neighbour",
            "Plan a three day trip to Lisbon",
        )
    ]
    seeds += [
        {"instruction": "Solve this LeetCode problem about arrays", "motivation_app": "Leetcode"}
    ]
    _repo(
        tmp_path,
        instructions.REPOSITORY,
        ["seed"],
        {path: "\n".join(json.dumps(s) for s in seeds) for path in instructions.FILES},
    )
    _repo(tmp_path, "golang/vulndb", ["reports"], GO_REPORTS)
    _repo(tmp_path, "rustsec/advisory-db", ["advisories"], RUST_ADVISORIES)
    return tmp_path


GO_REPORTS = {
    "data/reports/GO-2099-0001.yaml": "id: GO-2099-0001\nsummary: Authentication bypass in "
    "example.com/auth\ndescription: A crafted token skips the signature check.\n",
    "data/reports/GO-2099-0002.yaml": "id: GO-2099-0002\nsummary: Path traversal in "
    "example.com/files\n",
    "data/reports/GO-2099-0003.yaml": "id: GO-2099-0003\ndescription: no summary here\n",
    "README.md": "not a report",
}
RUST_ADVISORIES = {
    "crates/a/RUSTSEC-2099-0001.md": "```toml\n[advisory]\n```\n\n# Use-after-free in "
    "Buffer::drop\n\nDetails.\n",
    "crates/b/RUSTSEC-2099-0002.md": "```toml\n```\n\n# b is unmaintained\n\nNo fix.\n",
}


SOURCES = {"acme/one": "MIT", "acme/two": "Apache-2.0", "acme/three": "MIT"}


def test_build_reads_every_source_and_writes_a_manifest(mirrors: Path, tmp_path: Path) -> None:
    lines: list[str] = []
    rows, manifest = build_corpus(mirrors, lines.append, SOURCES)
    assert len([r for r in rows if r.source == "acme/one"]) == 18  # the chore bump is dropped
    general = [r.text for r in rows if r.prefix == OTHER]
    assert "Suggest a name for a bakery" in general
    assert not any("LeetCode" in text for text in general)  # about code: left out
    by_repo = {entry["repository"]: entry for entry in manifest}
    assert by_repo["acme/two"]["licence"] == "Apache-2.0"
    assert by_repo["acme/two"]["labels"] == {label: 3 for label in SUBJECTS}
    assert len(by_repo["acme/one"]["commit"]) == 40
    assert set(by_repo) == {*SOURCES, instructions.REPOSITORY}  # advisories: the vital model's
    assert any("[3/3] acme/three" in line for line in lines)
    write_corpus(tmp_path / "out", rows, manifest)
    written = [
        json.loads(line) for line in (tmp_path / "out" / "corpus.jsonl").read_text().splitlines()
    ]
    assert len(written) == len(rows)
    assert json.loads((tmp_path / "out" / "manifest.json").read_text()) == manifest


def test_a_missing_source_is_named_with_the_fix(mirrors: Path) -> None:
    with pytest.raises(MissingSource) as caught:
        build_corpus(mirrors, print, {**SOURCES, "acme/absent": "MIT"})
    assert "acme/absent" in str(caught.value)
    assert "git clone --bare" in str(caught.value)
    assert caught.value.exit_code == 2


def test_heldout_sample_caps_each_repository_and_label() -> None:
    from lanes.bench.training.commits import Row
    from lanes.kernel.taxonomy import TaskType

    rows = [Row(f"fix number {i} of many", TaskType.DEBUGGING, "fix", "a/b") for i in range(50)]
    assert len(heldout_sample(rows)) == 30


def test_model_learns_and_is_scored_with_repositories_held_out(
    mirrors: Path, tmp_path: Path
) -> None:
    rows, _ = build_corpus(mirrors, lambda _line: None, SOURCES)
    report = evaluate_folds(rows, lambda _line: None, [["acme/one"], ["acme/two"], ["acme/three"]])
    assert report["n"] == 54
    assert set(report["per_repository"]) == set(SOURCES)
    assert report["accuracy"] > 1 / 6  # better than chance on unseen repositories
    model = fit(rows)
    path = tmp_path / "m.npz"
    model.save(str(path))
    again = TypeModel.load(path)
    assert again.classes == model.classes
    text = "add unit tests for the router"
    assert again.logits(text) == pytest.approx(model.logits(text), abs=1e-2)


def test_label_agreement_counts_pairs_of_repositories_on_the_same_subject() -> None:
    from lanes.bench.training.commits import Row
    from lanes.kernel.taxonomy import TaskType

    fix, feat = TaskType.DEBUGGING, TaskType.CODE_GENERATION
    rows = [
        Row("Handle empty input", fix, "fix", "a/one"),
        Row("handle empty input", fix, "fix", "a/two"),
        Row("Handle empty input", feat, "feat", "a/three"),
        Row("Add a flag to the cli", feat, "feat", "a/one"),
        Row("Write a poem about rain", fix, instructions.OTHER, "x/general"),
        Row("Write a poem about rain", fix, instructions.OTHER, "y/general"),
    ]
    agreement = label_agreement(rows)
    assert agreement["subjects"] == 1  # the general instructions are not commit labels
    assert agreement["pairs"] == 3
    assert agreement["same_type"] == round(1 / 3, 4)
    assert agreement["commonest_type"] == round(2 / 3, 4)
    assert label_agreement(rows[3:4])["same_type"] is None
