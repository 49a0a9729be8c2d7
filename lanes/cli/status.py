"""``lanes status``."""

from __future__ import annotations

from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from lanes.cli.app import app, console, foreign, print_json, state


@app.command()
def status(
    ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="One JSON object.")
) -> None:
    """Per lane: limits (also per model), capacity available now, cooldown, health, queue
    depth, workers."""
    import redis

    from broker.app import create_app
    from broker.connection import require_redis_url
    from lanes.status import lane_status

    config = state(ctx).config()
    url = require_redis_url(config)
    client = redis.Redis.from_url(url, decode_responses=True)
    celery_app = create_app(config, url)
    try:
        rows = lane_status(config, client, celery_app)
    finally:
        celery_app.close()
        client.close()
    if as_json:
        print_json({"lanes": rows})
    else:
        console.print(status_table(rows))


def status_table(rows: list[dict[str, Any]]) -> Table:
    """The rows of :func:`lanes.status.lane_status` as a table: one line per lane, then one
    dimmed line per model with limits of its own (its limits and what its buckets hold)."""
    table = Table(title="lanes status")
    columns = ("lane", "RPM", "tokens/min in/out", "requests left", "cooldown", "health")
    for col in (*columns, "queued", "workers"):
        table.add_column(col, no_wrap=True)
    for row in rows:
        state_text = (
            foreign(f"disabled: {row['disabled']}", "red") if row["disabled"]
            else foreign(f"{row['cooldown_s']:.1f}s", "yellow") if row["cooldown_s"] > 0
            else "-"
        )  # fmt: skip
        table.add_row(
            row["lane"],
            *_limit_cells(row["limits"], row["available_now"]),
            state_text,
            f"{row['health']:.2f}",
            str(row["queue_depth"]),
            foreign(", ".join(row["workers"])) if row["workers"] else "[red]none[/]",
        )
        for model, model_row in row.get("model_limits", {}).items():
            cells = _limit_cells(model_row["limits"], model_row["available_now"])
            table.add_row(f"  └ {escape(model)}", *cells, "", "", "", "", style="dim")
    return table


def _limit_cells(limits: dict[str, int], available_now: dict[str, Any]) -> tuple[str, str, str]:
    """RPM, input/output tokens per minute and requests left, ``∞`` where unlimited."""
    left = available_now["requests"]
    input_per_min = _per_min(limits["input_tokens_per_min"])
    output_per_min = _per_min(limits["output_tokens_per_min"])
    requests_left = "∞" if left is None else f"{left:.0f}"
    return _per_min(limits["requests_per_min"]), f"{input_per_min}/{output_per_min}", requests_left


def _per_min(value: int) -> str:
    """A per-minute limit, short: ``∞`` for 0 (unlimited), ``450k``, ``1.5M``."""
    if not value:
        return "∞"
    if value >= 1_000_000:
        return f"{value / 1_000_000:g}M"
    if value >= 10_000:
        return f"{value / 1000:g}k"
    return str(value)


@app.command()
def reset(
    ctx: typer.Context,
    lanes: list[str] = typer.Argument(None, help="Lanes to reset (default: all)."),
) -> None:
    """Clear cooldowns, disabled flags and health history of lanes (after fixing a key)."""
    import redis

    from broker.connection import require_redis_url
    from broker.keys import Keys
    from broker.stores.redis.lane_state import RedisLaneState

    st = state(ctx)
    config = st.config()
    chosen = st.lanes(lanes)
    client = redis.Redis.from_url(require_redis_url(config), decode_responses=True)
    store = RedisLaneState(client, Keys(config.redis_prefix))
    for lane in chosen:
        store.clear(lane)
    client.close()
    console.print(f"reset: {', '.join(chosen)}")
