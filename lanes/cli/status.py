"""``lanes status``."""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from lanes.cli.app import app, console, print_json, state


@app.command()
def status(
    ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="One JSON object.")
) -> None:
    """Per lane: limits, capacity available now, cooldown, health, queue depth, workers."""
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
        console.print(_table(rows))


def _table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="lanes status")
    for col in ("lane", "RPM", "requests left", "cooldown", "health", "queued", "workers"):
        table.add_column(col, no_wrap=True)
    for row in rows:
        left = row["available_now"]["requests"]
        state_text = (
            f"[red]disabled: {row['disabled']}[/]" if row["disabled"]
            else f"[yellow]{row['cooldown_s']:.1f}s[/]" if row["cooldown_s"] > 0
            else "-"
        )  # fmt: skip
        table.add_row(
            row["lane"],
            str(row["limits"]["requests_per_min"] or "∞"),
            "∞" if left is None else f"{left:.0f}",
            state_text,
            f"{row['health']:.2f}",
            str(row["queue_depth"]),
            ", ".join(row["workers"]) or "[red]none[/]",
        )
    return table


@app.command()
def reset(
    ctx: typer.Context,
    lanes: list[str] = typer.Argument(None, help="Lanes to reset (default: all)."),
) -> None:
    """Clear cooldowns, disabled flags and health history of lanes (after fixing a key)."""
    import redis

    from broker.connection import require_redis_url
    from broker.keys import Keys
    from broker.lane_state import RedisLaneState

    st = state(ctx)
    config = st.config()
    chosen = st.lanes(lanes)
    client = redis.Redis.from_url(require_redis_url(config), decode_responses=True)
    store = RedisLaneState(client, Keys(config.redis_prefix))
    for lane in chosen:
        store.clear(lane)
    client.close()
    console.print(f"reset: {', '.join(chosen)}")
