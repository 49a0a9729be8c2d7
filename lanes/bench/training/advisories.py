"""Vital text from public security advisory databases: each advisory's one-line title, as
short as the commit subjects it is trained beside (longer descriptions would teach the model
that prose is vital).

- ``golang/vulndb``: ``data/reports/*.yaml``, ``summary`` (CC-BY-4.0);
- ``rustsec/advisory-db``: ``crates/*/RUSTSEC-*.md``, the title (CC0-1.0), less the
  "unmaintained" notices, which are no flaw.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import yaml

from lanes.bench.training.commits import run_git

LICENCES: dict[str, str] = {
    "golang/vulndb": "CC-BY-4.0",
    "rustsec/advisory-db": "CC0-1.0",
}
_TITLE = re.compile(r"^# (.+)$", re.MULTILINE)


def _files(gitdir: Path, pattern: str) -> list[str]:
    names = run_git(gitdir, "ls-tree", "-r", "--name-only", "HEAD").splitlines()
    found = re.compile(pattern)
    return [n for n in names if found.search(n)]


def _bodies(gitdir: Path, paths: list[str]) -> Iterator[str]:
    """Each file's text at HEAD, read in one ``git cat-file --batch``."""
    done = subprocess.run(
        ["git", "-C", str(gitdir), "cat-file", "--batch"],
        input="".join(f"HEAD:{p}\n" for p in paths).encode(),
        capture_output=True,
        check=True,
    )
    out, at = done.stdout, 0
    while at < len(out):
        header_end = out.index(b"\n", at)
        size = int(out[at:header_end].split()[2])
        yield out[header_end + 1 : header_end + 1 + size].decode("utf-8", "replace")
        at = header_end + 1 + size + 1


def _yaml(body: str) -> dict[str, object]:
    try:
        data = yaml.safe_load(body)
    except yaml.YAMLError:
        return {}
    return data if isinstance(data, dict) else {}


def go_texts(gitdir: Path) -> Iterator[str]:
    for body in _bodies(gitdir, _files(gitdir, r"^data/reports/.*\.yaml$")):
        data = _yaml(body)
        summary = str(data.get("summary") or "").strip()
        if summary:
            yield summary


def rust_texts(gitdir: Path) -> Iterator[str]:
    for body in _bodies(gitdir, _files(gitdir, r"RUSTSEC-[\d-]+\.md$")):
        title = _TITLE.search(body)
        if title is None or "unmaintained" in title.group(1).lower():
            continue
        yield title.group(1).strip()


READERS = {
    "golang/vulndb": go_texts,
    "rustsec/advisory-db": rust_texts,
}
