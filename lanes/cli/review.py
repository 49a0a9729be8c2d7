"""``lanes review``: fan a change out to reviewers on their lanes, print one Markdown report."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markdown import Markdown
from rich.text import Text

from lanes.cli.app import app, console, err_console, print_json, state
from lanes.kernel.errors import JobError

if TYPE_CHECKING:
    from lanes.recipes.review.run import ReviewEstimate


@app.command()
def review(
    ctx: typer.Context,
    paths: list[Path] = typer.Argument(None, help="Files or directories to review."),
    diff_file: Path | None = typer.Option(None, "--diff", help="A unified diff ('-': stdin)."),
    git_range: str | None = typer.Option(
        None, "--git", help="Review `git diff RANGE`, e.g. main...HEAD or HEAD~1."
    ),
    reviewer: list[str] = typer.Option(
        None, "--reviewer", "-r", help="Only these reviewers (repeat the option)."
    ),
    agents: Path | None = typer.Option(
        None,
        "--agents",
        help="Every Claude Code agent file in DIR is a reviewer (default: review.agents_dir;"
        " there only files named like a configured reviewer count).",
    ),
    strategy: str | None = typer.Option(None, "--strategy", help="Route reviews by this."),
    project: str | None = typer.Option(None, "--project", help="Attribute the spend."),
    timeout_s: float | None = typer.Option(
        None, "--timeout", min=0.1, help="Seconds for the whole review (default review.timeout_s)."
    ),
    max_cost: float | None = typer.Option(
        None, "--max-cost", min=0.0, help="Send nothing if the estimate is above USD."
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask before sending."),
    out: Path | None = typer.Option(None, "-o", "--out", help="Write the Markdown report."),
    as_json: bool = typer.Option(False, "--json", help="Print the structured result."),
) -> None:
    """Review a change with several reviewers in parallel, each on its lane; one report."""
    from lanes.client import Lanes
    from lanes.recipes.review.reviewers import choose_reviewers
    from lanes.recipes.review.run import review as run_review

    started = time.monotonic()
    diff, title, notes = _read_change(paths or [], diff_file, git_range)
    if agents is not None and not agents.is_dir():
        raise JobError(f"--agents {agents}: no such directory of agent files")
    config = state(ctx).config()
    choice = choose_reviewers(
        config, agents_dir=agents, use_all_agents=agents is not None, names=reviewer or ()
    )
    notes += choice.notes()
    if out is not None and not out.parent.is_dir():
        raise JobError(f"-o {out}: no directory {out.parent} to write the report in")
    if not as_json:
        for note in notes:
            err_console.print(Text(f"note: {note}", style="yellow"))
        err_console.print(Text(f"{len(choice.reviewers)} reviewers on {title}", style="dim"))
    with Lanes.connect(config) as lanes:
        report = run_review(
            lanes, diff, reviewers=choice.reviewers, strategy=strategy, project=project,
            timeout_s=timeout_s, title=title, max_cost_usd=max_cost,
            on_estimate=_estimate_shown(as_json=as_json, yes=yes, max_cost=max_cost),
            started=started,
        )  # fmt: skip
    report.notes += notes
    _print(report.markdown(), report.to_json(), out, as_json)
    if not report.ok:
        raise typer.Exit(6)


def _estimate_shown(
    *, as_json: bool, yes: bool, max_cost: float | None
) -> Callable[[ReviewEstimate], None] | None:
    """What the operator sees of the estimate before anything is sent: on a terminal a
    question, unless --yes or --max-cost (then, as with --max-cost anywhere, the estimate as a
    line on stderr); nothing with --json (its output is the result only) or when piped."""
    on_terminal = sys.stdin.isatty() and sys.stdout.isatty() and not as_json
    if on_terminal and not yes and max_cost is None:
        return _ask
    if as_json or max_cost is None:
        return None
    return lambda estimate: err_console.print(Text(estimate.line(), style="dim"))


def _ask(estimate: ReviewEstimate) -> None:
    err_console.print(Text(estimate.line()), highlight=False)
    if not typer.confirm("Send the review?", default=False, err=True):
        err_console.print("nothing sent")
        raise typer.Exit(1)
    err_console.print(Text("sending; waiting for the reviewers", style="dim"))


def _print(markdown: str, data: dict[str, object], out: Path | None, as_json: bool) -> None:
    """The report on stdout (Markdown, or JSON with --json), or written to ``out``; if ``out``
    cannot be written, printed anyway and then the error."""
    failed = ""
    if out is not None:
        try:
            out.write_text(markdown, encoding="utf-8")
        except OSError as exc:
            failed = f"cannot write the report to {out}: {exc.strerror} (printed instead)"
    if as_json:
        print_json(data)
    elif out is None or failed:
        console.print(Markdown(markdown) if sys.stdout.isatty() else markdown, markup=False)
    else:
        console.print(Text(f"report written to {out}"), highlight=False)
    if failed:
        raise JobError(failed)


def _read_change(
    paths: list[Path], diff_file: Path | None, git_range: str | None
) -> tuple[str, str, list[str]]:
    """The text to review, what to call it and what the report should note about reading it
    (files skipped); exactly one source must be given."""
    from lanes.recipes.review.diffs import read_diff, read_files
    from lanes.recipes.review.git_range import git_diff

    given = sum(x is not None and x != [] for x in (paths, diff_file, git_range))
    if given != 1:
        raise JobError("give exactly one of PATH..., --diff FILE or --git RANGE")
    notes: list[str] = []
    if diff_file is not None:
        text, title = read_diff(diff_file), str(diff_file)
    elif git_range is not None:
        text, title = git_diff(git_range), f"git diff {git_range}"
    else:
        read = read_files(paths)
        text, title = read.diff, ", ".join(str(p) for p in paths)
        if read.skipped:
            notes.append(
                "skipped (links are never followed, special files never opened):"
                f" {_listed(read.skipped)}"
            )
    if not text.strip():
        raise JobError(f"{title}: nothing to review (the change is empty)")
    return text, title, notes


def _listed(items: list[str], most: int = 10) -> str:
    more = f" and {len(items) - most} more" if len(items) > most else ""
    return ", ".join(items[:most]) + more
