from __future__ import annotations

from pathlib import Path

import pytest

from lanes.bench.training.advisories import READERS
from lanes.bench.training.sources import SOURCES

from ..cli.test_routing import run_main


def test_train_names_every_missing_source_and_exits_2(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "model.npz"
    code = run_main(monkeypatch, "train", "--mirrors", str(tmp_path), "--out", str(out))
    assert code == 2
    err = " ".join(capsys.readouterr().err.split())
    total = len(SOURCES) + 1 + len(READERS)  # the general instructions, the advisories
    assert f"{total} of {total} sources missing" in err and "angular/angular-cli" in err
    assert f"and {total - 8} more" in err and "git clone --bare" in err
    assert not out.exists()


def test_train_refuses_a_mirrors_path_that_is_not_a_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert run_main(monkeypatch, "train", "--mirrors", str(tmp_path / "absent")) == 2
