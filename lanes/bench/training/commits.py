"""Labelled task text from Conventional Commits subjects (``type(scope)!: description``).

The label is the type prefix the commit's author wrote; nobody relabels anything. The
filters follow the ones that built the dev evaluation set, so training and evaluation rows
look alike:

- merges, reverts and anything mentioning a revert are dropped;
- release and version bookkeeping (an exact ``x.y.z``, release notes, changelogs) and
  dependency bumps are dropped;
- subjects shorter than 15 or longer than 140 characters are dropped, and so is anything
  that may name a person (e-mail addresses, ``@handle``, thanks/credit/co-authored);
- descriptions starting with another ``type:`` prefix, or truncated ("..."), are dropped;
- PR and issue references, ``[skip ci]`` and trailing punctuation are removed; the first
  letter is capitalised; the result must keep 15 characters and 3 words.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from lanes.kernel.taxonomy import TaskType

PREFIX_TYPES: dict[str, TaskType] = {
    "feat": TaskType.CODE_GENERATION,
    "fix": TaskType.DEBUGGING,
    "docs": TaskType.DOCUMENTATION,
    "doc": TaskType.DOCUMENTATION,
    "test": TaskType.TESTING,
    "tests": TaskType.TESTING,
    "refactor": TaskType.REFACTORING,
    "ref": TaskType.REFACTORING,
    "perf": TaskType.REFACTORING,
    "enh": TaskType.CODE_GENERATION,
    "bug": TaskType.DEBUGGING,
    "tst": TaskType.TESTING,
}
"""Commit prefix -> task type. ``perf`` is refactoring (the taxonomy counts optimisation as
refactoring); ``ref`` is how some projects spell refactor; ``ENH``/``BUG``/``TST``/``DOC``
are the NumPy-style tags of the scientific Python projects."""

_SUBJECT_RE = re.compile(r"^(?P<type>[a-zA-Z]+)(?:\((?P<scope>[^)]*)\))?!?:\s*(?P<desc>.+)$")
_VERSION_RE = re.compile(r"\bv?\d+\.\d+\.\d+")
_DROP_RE = re.compile(
    r"revert|\bbump\b|update dependenc|update to latest|\brelease[sd]?\b|changelog"
    r"|(?:update|upgrade)\b.*\bto\s+v?\d|co-authored|\bthanks?\b|\bcredits?\b"
    r"|[\w.+-]+@[\w-]+\.[\w.]+|(?:^|\s)@[A-Za-z0-9_-]+",
    re.IGNORECASE,
)
_DEP_SCOPES = frozenset({"deps", "deps-dev", "dependencies", "dep", "release"})
_REF_RE = re.compile(
    r"\s*\((?:#\d+(?:,\s*)?)+\)|\s*\[skip ci\]|\b(?:fix(?:es|ed)?|close[sd]?|resolve[sd]?)\s+#\d+"
    r"|\s*#\d+\b",
    re.IGNORECASE,
)
_LEADING_TYPE_RE = re.compile(r"^[a-z]+(?:\([^)]*\))?!?:", re.IGNORECASE)
MIN_CHARS = 15
MAX_CHARS = 140


@dataclass(frozen=True)
class Row:
    text: str
    type: TaskType
    prefix: str
    source: str


def clean_subject(subject: str) -> tuple[str, str] | None:
    """``(prefix, description)`` of a usable Conventional Commits subject, else None."""
    subject = subject.strip()
    if not MIN_CHARS <= len(subject) <= MAX_CHARS:
        return None
    match = _SUBJECT_RE.match(subject)
    if match is None:
        return None
    prefix = match["type"].lower()
    scope = (match["scope"] or "").lower()
    if prefix not in PREFIX_TYPES or scope in _DEP_SCOPES:
        return None
    desc = match["desc"].strip()
    if _VERSION_RE.search(desc) or _DROP_RE.search(subject) or _LEADING_TYPE_RE.match(desc):
        return None
    if desc.endswith(("...", "\u2026")):
        return None
    desc = _REF_RE.sub("", desc).strip().rstrip(".,;:!").strip()
    if len(desc) < MIN_CHARS or len(desc.split()) < 3:
        return None
    return prefix, desc[0].upper() + desc[1:]


def rows_from_subjects(subjects: Iterable[str], source: str) -> Iterator[Row]:
    """Usable rows of one repository's subjects, without case-insensitive repeats."""
    seen: set[str] = set()
    for subject in subjects:
        cleaned = clean_subject(subject)
        if cleaned is None:
            continue
        prefix, text = cleaned
        key = text.lower()
        if key in seen:
            continue
        seen.add(key)
        yield Row(text, PREFIX_TYPES[prefix], prefix, source)


def git_dir(mirrors: Path, repo: str) -> Path | None:
    """Where ``owner/name`` is under ``mirrors``: ``owner+name/repo``, ``owner+name``,
    ``owner+name.git`` or ``owner/name``; None if absent."""
    flat = repo.replace("/", "+")
    for candidate in (
        mirrors / flat / "repo",
        mirrors / flat,
        mirrors / f"{flat}.git",
        mirrors / repo,
    ):
        if candidate.is_dir():
            return candidate
    return None


def head_commit(gitdir: Path) -> str:
    return run_git(gitdir, "rev-parse", "HEAD").strip()


def subjects(gitdir: Path) -> list[str]:
    """Subjects of every non-merge commit reachable from HEAD, newest first."""
    return run_git(gitdir, "log", "--no-merges", "--format=%s", "HEAD").splitlines()


def run_git(gitdir: Path, *args: str) -> str:
    """What ``git -C gitdir ARGS`` prints (undecodable bytes replaced); raises if it fails."""
    done = subprocess.run(
        ["git", "-C", str(gitdir), *args],
        capture_output=True,
        text=True,
        errors="replace",
        check=True,
    )
    return done.stdout


_TRAILER_RE = re.compile(
    r"^\s*(?:signed-off-by|co-authored|fixes|closes|refs?|see|pr-url|reviewed-by|change-id)\b",
    re.IGNORECASE,
)
_LINK_RE = re.compile(r"@|https?://")
MIN_BODY_CHARS = 40
MAX_DESCRIBED_CHARS = 700


def described(gitdir: Path) -> Iterator[str]:
    """Commits told in full: the cleaned subject and the first paragraph of the message body,
    for commits whose body has one (trailers dropped; none with an address or a link, which
    may name a person), at most ``MAX_DESCRIBED_CHARS``. Longer text, as requests are."""
    log = run_git(gitdir, "log", "--no-merges", "--format=%s%x1f%b%x1e", "HEAD")
    seen: set[str] = set()
    for record in log.split("\x1e"):
        subject, sep, body = record.partition("\x1f")
        cleaned = clean_subject(subject) if sep else None
        if cleaned is None or cleaned[1].lower() in seen:
            continue
        seen.add(cleaned[1].lower())
        lines = body.strip().split("\n\n")[0].splitlines()
        paragraph = " ".join(" ".join(ln for ln in lines if not _TRAILER_RE.match(ln)).split())
        if len(paragraph) >= MIN_BODY_CHARS and not _LINK_RE.search(paragraph):
            yield f"{cleaned[1]}. {paragraph}"[:MAX_DESCRIBED_CHARS]
