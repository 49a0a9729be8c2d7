"""``lanes pipeline``: steps across lanes as one Celery chain, each routed like any job."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from lanes.cli.app import app, console, err_console, foreign, print_json, read_text_file, state
from lanes.cli.compare import in_flight_note, marks


@app.command()
def pipeline(
    ctx: typer.Context,
    file: Path | None = typer.Argument(
        None, help="A pipeline YAML file (default: the shipped extract-synthesise example)."
    ),
    input_file: Path | None = typer.Option(
        None, "--input", "-i", help="The input document ('-': stdin; default: a sample)."
    ),
    project: str | None = typer.Option(None, "--project"),
    strategy: str | None = typer.Option(None, "--strategy"),
    timeout_s: float = typer.Option(600.0, "--timeout", min=0.1),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Run a pipeline: each step on its lane, fed the answer of the step before."""
    from lanes.client import Lanes
    from lanes.recipes.pipeline import EXAMPLE, EXAMPLE_INPUT, load_pipeline, run_pipeline

    spec = load_pipeline(file or EXAMPLE)
    text = read_text_file(input_file or EXAMPLE_INPUT, "input")

    def sent() -> None:
        if not as_json:
            steps = " -> ".join(str(s["name"]) for s in spec.steps)
            err_console.print(foreign(f"pipeline {spec.name}: {steps}; waiting for it", "dim"))

    with Lanes.connect(state(ctx).config()) as lanes:
        run = run_pipeline(lanes, spec, text, project=project, strategy=strategy,
                           timeout_s=timeout_s, on_sent=sent)  # fmt: skip
    data = run.to_json()
    if as_json:
        print_json(data)
    else:
        console.print(_table(data))
        console.print(foreign(run.output or "(no output)"))
    if not run.ok:
        raise typer.Exit(7 if any(s["status"] == "timeout" for s in data["steps"]) else 6)


def _table(data: dict[str, object]) -> Table:
    table = Table(title=f"pipeline {data['pipeline']}")
    for col in ("step", "lane", "model", "status", "in tok", "out tok", "cost (USD)", "latency"):
        table.add_column(col, no_wrap=True)
    table.add_column("error", ratio=1)
    steps = data["steps"]
    assert isinstance(steps, list)
    for step in steps:
        table.add_row(
            foreign(step["step"]), step["lane"], step["model"], step["status"] + marks(step),
            str(step["input_tokens"]), str(step["output_tokens"]), f"{step['cost_usd']:.6f}",
            f"{step['latency_s']:.2f}s", foreign(step["error"] or ""),
        )  # fmt: skip
    table.caption = f"total cost ${data['total_cost_usd']:.6f}, wall time {data['elapsed_s']:.2f}s"
    if data.get("calls_in_flight"):
        table.caption += "; " + in_flight_note(int(str(data["calls_in_flight"])))
    return table
