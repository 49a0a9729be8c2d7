"""``lanes keys create``, ``list`` and ``revoke`` through the real entry point, on a ledger in
the test's own state dir (SQLite)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lanes.kernel.config import Config
from lanes.stores.sql import open_ledger

from ..conftest import write_config
from .test_routing import run_main

Setup = tuple[Config, Path]


@pytest.fixture
def setup(tmp_path: Path, example_config: Config) -> Setup:
    return write_config(example_config, tmp_path, state_dir=str(tmp_path / "state"))


def lanes(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], path: Path,
          *args: str) -> tuple[int, str, str]:  # fmt: skip
    """Run ``lanes --config PATH keys ARGS...``: its exit code, stdout and stderr."""
    capsys.readouterr()
    code = run_main(monkeypatch, "--config", str(path), "keys", *args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_keys_create_prints_the_key_alone_on_its_last_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], setup: Setup
) -> None:
    config, path = setup
    code, out, _ = lanes(monkeypatch, capsys, path, "create", "--project", "acme", "--user",
                         "ann", "--name", "ci")  # fmt: skip
    assert code == 0
    *said, key = out.splitlines()
    assert said and "shown only this once" in " ".join(said)
    ledger = open_ledger(config)
    owner = ledger.key_owner(key)
    [row] = ledger.keys()
    ledger.close()
    assert owner is not None and (owner.project, owner.user) == ("acme", "ann")
    assert owner.key_id == row.key_id and owner.key_id in " ".join(said)
    assert row.name == "ci"


def test_cli_keys_create_piped_through_tail_yields_the_key(setup: Setup) -> None:
    config, path = setup
    env = {**os.environ, "COLUMNS": "40"}  # a narrow terminal wraps nothing onto the key's line
    done = subprocess.run(
        f"'{sys.executable}' -m lanes --config '{path}' keys create --project p | tail -1",
        shell=True, capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    key = done.stdout.strip()
    ledger = open_ledger(config)
    owner = ledger.key_owner(key)
    ledger.close()
    assert owner is not None and (owner.project, owner.user) == ("p", None)


def test_cli_keys_list_shows_ids_and_last_four_never_the_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], setup: Setup
) -> None:
    _, path = setup
    code, out, _ = lanes(monkeypatch, capsys, path, "list")
    assert code == 0 and "no keys" in out
    _, created, _ = lanes(monkeypatch, capsys, path, "create", "--project", "acme")
    key = created.splitlines()[-1]
    code, table, _ = lanes(monkeypatch, capsys, path, "list")
    assert code == 0
    assert f"\u2026{key[-4:]}" in table and "acme" in table
    code, listed, _ = lanes(monkeypatch, capsys, path, "list", "--json")
    assert code == 0
    [row] = json.loads(listed)["keys"]
    assert row["project"] == "acme" and row["user"] is None and row["name"] is None
    assert row["last4"] == key[-4:] and row["revoked_at"] is None
    assert row["created_at"].endswith("+00:00")
    assert key not in table + listed and key[6:20] not in table + listed


def test_cli_keys_revoke_ends_a_key_and_says_when_there_is_none(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], setup: Setup
) -> None:
    config, path = setup
    _, created, _ = lanes(monkeypatch, capsys, path, "create", "--project", "acme")
    key = created.splitlines()[-1]
    [key_id] = [word for word in created.split() if word.startswith("key_")]
    code, out, _ = lanes(monkeypatch, capsys, path, "revoke", key_id)
    assert code == 0 and f"revoked {key_id}" in out
    ledger = open_ledger(config)
    assert ledger.key_owner(key) is None
    ledger.close()
    _, listed, _ = lanes(monkeypatch, capsys, path, "list", "--json")
    assert json.loads(listed)["keys"][0]["revoked_at"] is not None
    code, _, err = lanes(monkeypatch, capsys, path, "revoke", "key_0123456789ab")
    assert code == 1 and "no key key_0123456789ab" in err and "lanes keys list" in err


def test_cli_keys_revoke_refuses_what_is_no_key_id_without_echoing_a_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], setup: Setup
) -> None:
    _, path = setup
    _, created, _ = lanes(monkeypatch, capsys, path, "create", "--project", "acme")
    key = created.splitlines()[-1]
    code, out, err = lanes(monkeypatch, capsys, path, "revoke", key)
    assert code == 2 and "that is a key, not its id" in err
    assert key not in out + err
    code, _, err = lanes(monkeypatch, capsys, path, "revoke", "nope")
    assert code == 2 and "'nope' is not a key id" in err


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--project", ""), "project may not be empty"),
        (("--project", "a" * 129), "give at most 128"),
        (("--project", "acme", "--user", "ann\x1b[2J"), "holds control characters"),
        (("--project", "acme", "--name", "x\x07"), "holds control characters"),
    ],
)
def test_cli_keys_create_refuses_bad_names_before_opening_the_ledger(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    setup: Setup,
    args: tuple[str, ...],
    says: str,
) -> None:
    config, path = setup
    code, out, err = lanes(monkeypatch, capsys, path, "create", *args)
    assert code == 2 and says in err and not out
    assert not (Path(config.state_dir) / "ledger.db").exists()


def test_cli_keys_create_needs_a_project(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], setup: Setup
) -> None:
    _, path = setup
    code, _, err = lanes(monkeypatch, capsys, path, "create")
    assert code == 2 and "--project" in err


@pytest.mark.parametrize("args", [("create", "--project", "acme"), ("list",),
                                  ("revoke", "key_0123456789ab")])  # fmt: skip
def test_cli_keys_an_unreachable_database_exits_5_naming_it_without_its_password(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    example_config: Config,
    args: tuple[str, ...],
) -> None:
    dead = "postgresql://lanes:pw-hidden@127.0.0.1:1/ledger"
    _, path = write_config(example_config, tmp_path, database_url=dead)
    monkeypatch.delenv("LANES_DATABASE_URL", raising=False)
    code, out, err = lanes(monkeypatch, capsys, path, *args)
    assert code == 5, err
    assert "ledger database postgresql+psycopg://***@127.0.0.1:1/ledger is unusable" in err
    assert "pw-hidden" not in out + err and "Traceback" not in err
