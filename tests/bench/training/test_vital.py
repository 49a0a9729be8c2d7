"""The vital model's corpus and fit, on real git repositories made in a temporary directory
(the fixture of ``test_build``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lanes.bench.training.advisories import go_texts, rust_texts
from lanes.bench.training.build import build_corpus
from lanes.bench.training.commits import described, git_dir
from lanes.bench.training.vital import (
    CATEGORIES,
    VitalRow,
    advisory_rows,
    commit_rows,
    described_rows,
    fit_vital,
)
from lanes.router.encoder import shipped_encoder
from lanes.router.vital import VitalModel

from .test_build import SOURCES, _repo


def test_advisories_give_their_titles_and_skip_what_is_no_flaw(mirrors: Path) -> None:
    go = git_dir(mirrors, "golang/vulndb")
    rust = git_dir(mirrors, "rustsec/advisory-db")
    assert go is not None and rust is not None
    assert sorted(go_texts(go)) == [
        "Authentication bypass in example.com/auth",
        "Path traversal in example.com/files",
    ]
    assert list(rust_texts(rust)) == ["Use-after-free in Buffer::drop"]
    rows, manifest = advisory_rows(mirrors)
    assert len(rows) == 3 and all(r.vital for r in rows)
    licences = {m["repository"]: m["licence"] for m in manifest}
    assert licences == {"golang/vulndb": "CC-BY-4.0", "rustsec/advisory-db": "CC0-1.0"}


def test_commits_are_labelled_by_the_cue_tables(mirrors: Path) -> None:
    rows, _ = build_corpus(mirrors, lambda _line: None, SOURCES)
    labelled = commit_rows(rows)
    by_text = {r.text: r.vital for r in labelled}
    assert by_text["Suggest a name for a bakery"] is False
    assert by_text["Add a ledger option to the cli"] is True  # money
    assert by_text["Add a route option to the cli"] is False


def test_described_commits_join_subject_and_body_without_trailers_or_links(
    tmp_path: Path,
) -> None:
    _repo(
        tmp_path,
        "acme/told",
        [
            "fix: close an authentication bypass\n\nThe refresh path reused the old token and "
            "logged users out.\n\nSigned-off-by: someone",
            "docs: fix typo in the guide\n\nSee https://example.com for the page that had it.",
            "feat: add a short thing\n\ntoo short",
        ],
    )
    gitdir = git_dir(tmp_path, "acme/told")
    assert gitdir is not None
    assert list(described(gitdir)) == [
        "Close an authentication bypass. The refresh path reused the old token and logged "
        "users out."
    ]
    rows = described_rows(tmp_path, ["acme/told"])
    assert [r.vital for r in rows] == [True]  # security: 'authentication'


def test_fit_learns_vital_text_and_reports_held_out_figures() -> None:
    vital = [f"Fix {w} vulnerability in the login handler" for w in ("xss", "csrf", "sql")]
    vital += [f"Refund the {w} charge twice on the invoice" for w in ("card", "bank", "wallet")]
    plain = [f"Change the {w} button colour in the sidebar" for w in ("red", "blue", "green")]
    plain += [f"Fix a typo in the {w} section of the docs" for w in ("intro", "usage", "faq")]
    rows = [VitalRow(t, True, f"s{i % 4}") for i, t in enumerate(vital)]
    rows += [VitalRow(t, False, f"s{i % 4}") for i, t in enumerate(plain)]
    lines: list[str] = []
    model, report = fit_vital(rows, shipped_encoder(), lines.append)
    assert report["rows"] == 12 and report["vital_rows"] == 6
    assert len(report["heldout_by_source"]["per_fold"]) == 4 and len(lines) == 4
    assert model.categories == tuple(CATEGORIES)
    risky = model.judge_vector(shipped_encoder().encode("Fix the csrf hole in the login form"))
    plainer = model.judge_vector(shipped_encoder().encode("Change the sidebar button colour"))
    assert risky.p_vital > plainer.p_vital


def test_a_model_survives_save_and_load(tmp_path: Path) -> None:
    enc = shipped_encoder()
    model = VitalModel(
        np.ones(enc.dims, dtype=np.float32) / enc.dims,
        -0.5,
        ("a", "b"),
        np.eye(2, enc.dims, dtype=np.float32),
        (1.0, 2.0, -1.0),
    )
    model.save(str(tmp_path / "v.npz"))
    loaded = VitalModel.load(str(tmp_path / "v.npz"))
    vec = enc.encode("rotate the signing keys")
    assert loaded.judge_vector(vec).p_vital == model.judge_vector(vec).p_vital
    assert loaded.categories == ("a", "b") and loaded.link == (1.0, 2.0, -1.0)
