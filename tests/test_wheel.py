"""The package as a user installs it: the wheel built from this tree, installed into a fresh
virtualenv, used from a project directory that has ``router/``, ``workers/``, ``broker/`` and
``kernel/`` packages of its own (common in web and Celery projects). The wheel must bring
everything it reads at run time and add nothing to ``site-packages`` but ``lanes``.

Building and installing take about a minute: once for the module."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
import venv
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from .conftest import ROOT

DECOYS = ("router", "workers", "broker", "kernel")
"""A project's own packages with the names lanes' folders have in the source tree."""


@dataclass(frozen=True)
class Installed:
    wheel: Path
    bin: Path
    project: Path
    """A project directory holding the decoy packages: every command runs from it."""

    def run(
        self, *args: str, timeout_s: float = 120, **env: str
    ) -> subprocess.CompletedProcess[str]:
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("LANES_", "VIRTUAL_ENV"))}
        return subprocess.run([str(self.bin / args[0]), *args[1:]], cwd=self.project,
                              env={**clean, **env}, capture_output=True, text=True,
                              timeout=timeout_s)  # fmt: skip


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    tmp = tmp_path_factory.mktemp("wheel")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps",
                            "--quiet", "--wheel-dir", str(tmp / "dist")],
                           capture_output=True, text=True, timeout=600)  # fmt: skip
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = (tmp / "dist").glob("lanes-*.whl")
    venv.create(tmp / "venv", with_pip=True)
    bin_dir = tmp / "venv" / "bin"
    install = subprocess.run([str(bin_dir / "pip"), "install", "--quiet", str(wheel)],
                             capture_output=True, text=True, timeout=900)  # fmt: skip
    assert install.returncode == 0, install.stderr[-3000:]
    project = tmp / "project"
    for name in DECOYS:
        (project / name).mkdir(parents=True)
        (project / name / "__init__.py").write_text(
            f"raise RuntimeError('the project\\'s own {name} package was imported')\n"
        )
    yield Installed(wheel, bin_dir, project)


def test_wheel_holds_lanes_alone_with_its_data(installed: Installed) -> None:
    names = zipfile.ZipFile(installed.wheel).namelist()
    assert {name.split("/")[0] for name in names} == {"lanes", "lanes-0.1.0.dist-info"}
    assert not [name for name in names if name.startswith("lanes/bench/")]
    for data in ("lanes/data/lanes.yaml", "lanes/stores/lua/acquire.lua",
                 "lanes/router/data/typemodel.npz", "lanes/data/sample.diff",
                 "lanes/stores/sql/migrations/env.py"):  # fmt: skip
        assert data in names, data


def test_wheel_installs_nothing_beside_lanes(installed: Installed) -> None:
    (site,) = (installed.bin.parent / "lib").glob("python3*/site-packages")
    ours = {p.name for p in site.iterdir()} - _distributions_of_dependencies(site)
    assert ours == {"lanes", "lanes-0.1.0.dist-info"}


def _distributions_of_dependencies(site: Path) -> set[str]:
    """Everything in ``site`` that another distribution than lanes installed."""
    found: set[str] = set()
    for record in site.glob("*.dist-info/RECORD"):
        if record.parent.name.startswith("lanes-"):
            continue
        for line in record.read_text().splitlines():
            found.add(line.split("/")[0].split(",")[0])
    return found


def test_installed_lanes_imports_and_configures_from_a_project_of_its_own(
    installed: Installed,
) -> None:
    imported = installed.run("python", "-c", "import lanes; from lanes import Lanes, Result")
    assert imported.returncode == 0, imported.stderr
    shown = installed.run("lanes", "config", "--json")
    assert shown.returncode == 0, shown.stderr
    config = json.loads(shown.stdout)
    assert config["config_origin"] == "the shipped example"
    assert "site-packages/lanes/data/lanes.yaml" in config["config_file"]
    example = installed.run("lanes", "config", "--example")
    assert example.returncode == 0 and "instances:" in example.stdout


def test_installed_lanes_routes_from_a_project_of_its_own(installed: Installed) -> None:
    routed = installed.run("lanes", "route", "fix the sql injection in login", "--json")
    assert routed.returncode == 0, routed.stderr
    decision = json.loads(routed.stdout)
    assert decision["classification"]["vital"] is True
    assert all(step["instance"] not in ("zai", "koala") for step in decision["chain"])


def test_installed_lanes_says_where_the_measurement_commands_are(installed: Installed) -> None:
    for command in (["bench", "throughput", "--json"], ["train", "--mirrors", "x"]):
        done = installed.run("lanes", *command)
        assert done.returncode == 2
        assert "ship with lanes' source" in " ".join(done.stderr.split()), done.stderr


def test_installed_lanes_runs_the_demo_from_a_project_of_its_own(
    installed: Installed, isolated_redis_url: str
) -> None:
    done = installed.run(
        "lanes", "demo", "--json", timeout_s=300, REDIS_URL=isolated_redis_url,
        LANES_STATE_DIR=str(installed.project / ".lanes"), LANES_SIMULATOR__PORT="0",
        LANES_REDIS_PREFIX=f"wheel-{uuid.uuid4().hex[:8]}",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    jobs = json.loads(done.stdout)["jobs"]
    assert len(jobs) == 4 and all(job["status"] == "ok" for job in jobs)


def test_installed_lanes_serves_mcp_as_claude_code_starts_it(installed: Installed) -> None:
    """The README's snippet: command ``lanes``, args ``["mcp"]``, no config named."""

    async def tools() -> list[str]:
        params = StdioServerParameters(
            command=str(installed.bin / "lanes"),
            args=["mcp"],
            cwd=installed.project,
            env={"PATH": os.environ["PATH"]},
        )
        with anyio.fail_after(60):
            async with stdio_client(params) as (read, write), ClientSession(read, write) as client:
                await client.initialize()
                listed = await client.list_tools()
                return sorted(tool.name for tool in listed.tools)

    assert anyio.run(tools) == sorted(["ask_local_model", "ask_coding_model", "list_models",
                                       "route", "submit", "result", "review"])  # fmt: skip
