"""``lanes review``: fan a change out to reviewers on their lanes, print one Markdown report."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.markdown import Markdown

from kernel.errors import JobError
from lanes.cli.app import app, console, err_console, print_json, read_text_file, state


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
    timeout_s: float | None = typer.Option(None, "--timeout", min=0.1),
    out: Path | None = typer.Option(None, "-o", "--out", help="Write the Markdown report."),
    as_json: bool = typer.Option(False, "--json", help="Print the structured result."),
) -> None:
    """Review a change with several reviewers in parallel, each on its lane; one report."""
    from lanes.client import Lanes
    from lanes.review import review as run_review
    from lanes.reviewers import select_reviewers

    diff, title = _read_change(paths or [], diff_file, git_range)
    config = state(ctx).config()
    chosen = select_reviewers(
        config, agents_dir=agents, use_all_agents=agents is not None, names=reviewer or ()
    )
    if not as_json:
        err_console.print(f"[dim]{len(chosen)} reviewers on {title}; waiting for them[/]")
    with Lanes.connect(config) as lanes:
        report = run_review(lanes, diff, reviewers=chosen, strategy=strategy, project=project,
                            timeout_s=timeout_s, title=title)  # fmt: skip
    text = report.markdown()
    if out is not None:
        out.write_text(text, encoding="utf-8")
    if as_json:
        print_json(report.to_json())
    elif out is None:
        console.print(Markdown(text) if sys.stdout.isatty() else text, markup=False)
    else:
        console.print(f"report written to {out}", highlight=False)
    if not report.ok:
        raise typer.Exit(6)


def _read_change(
    paths: list[Path], diff_file: Path | None, git_range: str | None
) -> tuple[str, str]:
    """The text to review and what to call it; exactly one source must be given."""
    from lanes.diffs import files_as_diff, git_diff

    given = sum(bool(x) for x in (paths, diff_file, git_range))
    if given != 1:
        raise JobError("give exactly one of PATH..., --diff FILE or --git RANGE")
    if diff_file is not None:
        text, title = read_text_file(diff_file, "diff file"), str(diff_file)
    elif git_range:
        text, title = git_diff(git_range), f"git diff {git_range}"
    else:
        text, title = files_as_diff(paths), ", ".join(str(p) for p in paths)
    if not text.strip():
        raise JobError(f"{title}: nothing to review (the change is empty)")
    return text, title
