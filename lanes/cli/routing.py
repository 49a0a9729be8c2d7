"""``lanes classify``, ``lanes route`` and ``lanes config``: the routing brain, explained.

``classify`` and ``route`` take one TEXT, or ``--jsonl FILE`` with one ``{"text": ...}``
object per line (other keys: any Job field, plus ``max_cost_usd`` / ``min_quality`` /
``max_latency_s``). A bad line prints ``{"line": n, "error": ...}`` in its place and the
command exits 2 at the end.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import typer
import yaml
from rich.markup import escape
from rich.table import Table

from lanes.cli.app import app, console, print_json, state
from lanes.kernel.config import EXAMPLE_CONFIG, Config, load_config
from lanes.kernel.config.models import Weights
from lanes.kernel.errors import ConfigError, JobError, LanesError
from lanes.kernel.files import (
    MAX_INPUT_BYTES,
    bounded_lines,
    json_limit_text,
    open_regular,
    size_text,
)
from lanes.kernel.redact import mask_url_secrets
from lanes.kernel.taxonomy import Classification, Priority
from lanes.router.decision import Decision
from lanes.router.engine import Router, vital_text
from lanes.router.job import Job, parse_job

CONSTRAINT_KEYS = ("max_cost_usd", "min_quality", "max_latency_s")


def job_from_fields(fields: dict[str, Any]) -> Job:
    """A Job from ``{"text": ..., other Job fields...}``; JobError saying what is wrong."""
    data = {k: v for k, v in fields.items() if v is not None}
    text = data.pop("text", None)
    if not isinstance(text, str) or not text.strip():
        raise JobError("'text' must be a non-empty string")
    limits = {k: data.pop(k) for k in CONSTRAINT_KEYS if k in data}
    if limits:
        data["constraints"] = {**data.get("constraints", {}), **limits}
    return parse_job({"prompt": text, **data})


def run_jsonl(path: Path, handle: Callable[[dict[str, Any]], dict[str, Any]]) -> int:
    """Print one JSON object per line of ``path`` ('-': stdin); return the exit code. A line
    that cannot be read (too long, not UTF-8, not a JSON object) or handled prints
    ``{"line": n, "error": ...}`` in its place; the others go on."""
    failed = False
    for number, line in _numbered_lines(path):
        try:
            print_json({"line": number, **handle(_line_object(line))})
        except LanesError as exc:
            failed = True
            print_json({"line": number, "error": f"{type(exc).__name__}: {exc}"})
    return JobError.exit_code if failed else 0


def _numbered_lines(path: Path) -> Iterator[tuple[int, bytes | None]]:
    """The non-blank lines of ``path`` ('-': stdin), read one at a time; None for a line
    over :data:`lanes.kernel.files.MAX_INPUT_BYTES` (skipped, never held)."""
    what = "--jsonl file"
    with contextlib.ExitStack() as stack:
        if str(path) == "-":
            file: BinaryIO = sys.stdin.buffer
        else:
            file = stack.enter_context(open_regular(path, what))
        try:
            for number, line in enumerate(bounded_lines(file, MAX_INPUT_BYTES), start=1):
                if line.data is None or line.data.strip():
                    yield number, line.data
        except OSError as exc:
            raise JobError(f"cannot read {what} {path}: {exc.strerror}") from None


def _line_object(line: bytes | None) -> dict[str, Any]:
    """A line of ``--jsonl`` as a JSON object; a JobError saying what is wrong."""
    if line is None:
        raise JobError(f"line longer than {size_text(MAX_INPUT_BYTES)}; skipped")
    try:
        fields = json.loads(line.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise JobError(f"not UTF-8 text (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise JobError(f"not JSON: {exc.msg} (column {exc.colno})") from None
    except (ValueError, RecursionError) as exc:
        raise JobError(f"not JSON lanes can read: {json_limit_text(exc)}") from None
    if not isinstance(fields, dict):
        raise JobError("each line must be a JSON object")
    return fields


TEXT_ARG = typer.Argument(None, help="The task text (omit with --jsonl).")
JSON_OPT = typer.Option(False, "--json", help="Print one JSON object.")
JSONL_OPT = typer.Option(None, "--jsonl", help="Read {'text': ...} objects, one a line.")
VITAL_OPT = typer.Option(
    None,
    "--vital/--not-vital",
    help="Treat the job as vital (never a cheap lane), or accept cheap lanes for it "
    "(default: the classifier decides).",
)


@app.command("classify")
def classify_command(
    ctx: typer.Context,
    text: str | None = TEXT_ARG,
    max_tokens: int | None = typer.Option(None, "--max-tokens", min=1),
    vital: bool | None = VITAL_OPT,
    as_json: bool = JSON_OPT,
    jsonl: Path | None = JSONL_OPT,
) -> None:
    """Classify a task: type, complexity, difficulty, tokens, vital or not and why."""
    router = Router(state(ctx).config())
    defaults = {"max_tokens": max_tokens, "vital": vital}

    def handle(fields: dict[str, Any]) -> dict[str, Any]:
        job = job_from_fields({**defaults, **fields})
        return router.classify(job).model_dump(mode="json")

    if jsonl is not None:
        raise typer.Exit(run_jsonl(jsonl, handle))
    clf = router.classify(job_from_fields({**defaults, "text": _need_text(text)}))
    if as_json:
        print_json(clf.model_dump(mode="json"))
    else:
        _show_classification(clf)


@app.command("route")
def route_command(
    ctx: typer.Context,
    text: str | None = TEXT_ARG,
    strategy: str | None = typer.Option(None, "--strategy", help="Override routing.strategy."),
    max_tokens: int | None = typer.Option(None, "--max-tokens", min=1),
    instance: str | None = typer.Option(None, "--instance", help="Pin a lane (instance or pool)."),
    model: str | None = typer.Option(None, "--model", help="Pin a model."),
    max_cost: float | None = typer.Option(None, "--max-cost", help="Budget per job, USD."),
    min_quality: int | None = typer.Option(None, "--min-quality", min=0, max=100),
    vital: bool | None = VITAL_OPT,
    deadline_s: float | None = typer.Option(
        None, "--deadline", min=0.1, help="Seconds within which the job should end."
    ),
    priority: Priority = typer.Option(
        Priority.INTERACTIVE, "--priority", help="batch: cost first, waits still minded."
    ),
    live: bool = typer.Option(
        False,
        "--live",
        help="Decide on the running deployment's lane state: cooldowns, health and each "
        "lane's backlog (estimated waits); default: every lane healthy and idle.",
    ),
    as_json: bool = JSON_OPT,
    jsonl: Path | None = JSONL_OPT,
) -> None:
    """Decide where a task goes, and say why (no job is run)."""
    with contextlib.ExitStack() as stack:
        router = _router(ctx, stack, live=live)
        _route(router, text, strategy, as_json, jsonl, {
            "max_tokens": max_tokens,
            "instance": instance,
            "model": model,
            "max_cost_usd": max_cost,
            "min_quality": min_quality,
            "vital": vital,
            "deadline_s": deadline_s,
            "priority": priority.value,
        })  # fmt: skip


def _router(ctx: typer.Context, stack: contextlib.ExitStack, *, live: bool) -> Router:
    """A router on the config alone, or (``live``) the one of a connection to the deployment."""
    if not live:
        return Router(state(ctx).config())
    from lanes.client import Lanes

    return stack.enter_context(Lanes.connect(state(ctx).config())).router


def _route(
    router: Router,
    text: str | None,
    strategy: str | None,
    as_json: bool,
    jsonl: Path | None,
    defaults: dict[str, Any],
) -> None:
    def handle(fields: dict[str, Any]) -> dict[str, Any]:
        job = job_from_fields({**defaults, **fields})
        return router.decide(job, strategy=strategy).model_dump(mode="json")

    if jsonl is not None:
        raise typer.Exit(run_jsonl(jsonl, handle))
    job = job_from_fields({**defaults, "text": _need_text(text)})
    decision = router.decide(job, strategy=strategy)
    if as_json:
        print_json(decision.model_dump(mode="json"))
    else:
        _show_decision(decision)


def _need_text(text: str | None) -> str:
    if text is None:
        raise JobError("give the task TEXT, or --jsonl FILE")
    return text


def _table(title: str, columns: tuple[str, ...], rows: Iterable[Iterable[str]]) -> Table:
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(escape(cell) for cell in row))
    return table


def classification_line(clf: Classification) -> str:
    """'code-review, medium, difficulty 0.50; vital (security: 'injection')'."""
    return (
        f"{clf.type.value}, {clf.complexity.value}, difficulty {clf.difficulty:.2f}; "
        f"{vital_text(clf)}"
    )


def _show_classification(clf: Classification) -> None:
    console.print(escape(classification_line(clf)))
    rows = [(key, str(value)) for key, value in clf.model_dump(mode="json").items()]
    console.print(_table("classification", ("field", "value"), rows))


def _show_decision(d: Decision) -> None:
    pool = f" (pool {d.pool})" if d.pool else ""
    console.print(
        f"[bold green]{escape(d.instance)}{pool} / {escape(d.model)}[/]  "
        f"strategy {d.strategy}, confidence {d.confidence:.0f}/100"
    )
    if d.classification is not None:
        console.print(escape(classification_line(d.classification)))
    waits = f" (of which {d.estimated_wait_s:.1f}s waiting)" if d.estimated_wait_s else ""
    console.print(
        f"estimated cost ${d.estimated_cost_usd:.4f}, latency {d.estimated_latency_s:.1f}s{waits}"
    )
    for reason in d.reasons:
        console.print(f"  • {escape(reason)}")
    if d.alternatives:
        rows = [(a.instance, a.model, f"{a.score:.1f}", f"{a.wait_s:.1f}s") for a in d.alternatives]
        console.print(_table("alternatives", ("lane", "model", "score", "wait"), rows))
    if d.rejections:
        console.print(_table("rejected", ("candidate", "why"), d.rejections.items()))
    chain = " → ".join(f"{s.instance}/{s.model}" for s in d.chain)
    console.print(f"chain: {escape(chain)}")


@app.command("config")
def config_command(
    ctx: typer.Context,
    as_json: bool = JSON_OPT,
    weight: tuple[str, str] | None = typer.Option(
        None, "--set-weight", metavar="NAME VALUE", help="Write routing.weights.NAME to the file."
    ),
    example: bool = typer.Option(
        False, "--example", help="Print the example config shipped with lanes, to start from."
    ),
) -> None:
    """Show the effective config (never a secret) and the file it came from, or set one
    routing weight in the file, or print the shipped example."""
    cli = state(ctx)
    if example:
        sys.stdout.write(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
        return
    if weight is not None:
        path = cli.config_file()
        value = set_weight(path, weight[0], weight[1], explicit=cli.config_path is not None)
        console.print(f"routing.weights.{weight[0]} = {value:g} in {escape(str(path))}")
        return
    config = cli.config()
    if as_json:
        print_json({**config_origin(config), **public_config(config)})
    else:
        if config.source is not None:
            console.print(f"config: {escape(config.source.describe())}", highlight=False)
        _show_config(config)


def config_origin(config: Config) -> dict[str, str]:
    """``config_file`` (absolute path) and ``config_origin`` (how it was chosen: ``--config``,
    ``$LANES_CONFIG``, found in the current directory...), when the config came from a file."""
    source = config.source
    if source is None:
        return {}
    return {"config_file": str(source.path.absolute()), "config_origin": source.origin.value}


def public_config(config: Config) -> dict[str, Any]:
    """The config as JSON data without secrets: URL passwords masked, and for each instance
    only whether its API key variable is set."""
    data = config.model_dump(mode="json")
    for name, spec in config.instances.items():
        data["instances"][name]["api_key_set"] = spec.api_key() is not None
    masked: dict[str, Any] = _masked(data)
    return masked


def _masked(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    if isinstance(value, str):
        return mask_url_secrets(value)
    return value


def _show_config(config: Config) -> None:
    instances = [
        (
            name,
            spec.provider.value,
            "\n".join(spec.models),
            ", ".join(spec.tags),
            "yes" if spec.enabled else "no",
            "set" if spec.api_key() is not None else f"unset ({spec.api_key_env or 'none'})",
        )
        for name, spec in config.instances.items()
    ]
    columns = ("name", "provider", "models", "tags", "enabled", "api key")
    console.print(_table("instances (lanes)", columns, instances))
    models = [
        (
            name,
            f"{m.price.input_per_mtok:g}",
            f"{m.price.output_per_mtok:g}",
            f"{m.context_window:,}",
            str(m.quality),
            f"{m.latency_s:g}",
        )
        for name, m in config.models.items()
    ]
    columns = ("model", "$/Mtok in", "$/Mtok out", "context", "quality", "latency s")
    console.print(_table("models", columns, models))
    for pool, members in config.pools.items():
        console.print(f"pool [bold]{pool}[/]: {', '.join(members)}")
    for chain, steps in config.fallback_chains.items():
        text = " → ".join(f"{s.instance}/{s.model or '(best)'}" for s in steps)
        console.print(f"chain [bold]{chain}[/]: {escape(text)}")
    routing = config.routing
    weights = ", ".join(f"{k} {v:g}" for k, v in routing.weights.model_dump().items())
    console.print(
        f"routing: strategy {routing.strategy}; weights {weights}; "
        f"cache_ttl_s {routing.cache_ttl_s:g}; custom rules {len(routing.custom_rules)}; "
        f"hook {routing.hook or 'none'}; default chain {routing.default_chain or 'none'}"
    )


# -- lanes config --set-weight ---------------------------------------------------------------
_ROUTING = re.compile(r"^routing:[ \t]*(#.*)?$")
_WEIGHTS = re.compile(r"^([ \t]+)weights:[ \t]*(.*?)[ \t]*$")


def set_weight(path: Path, name: str, raw_value: str, *, explicit: bool) -> float:
    """Write ``routing.weights.NAME = value`` into ``path``, keeping the rest of the text.

    The edited text must load as a valid config before it atomically replaces the file.
    The shipped example is only edited when named explicitly (``explicit``).
    """
    key = f"routing.weights.{name}"
    if name not in Weights.model_fields:
        choices = ", ".join(Weights.model_fields)
        raise ConfigError(f"unknown weight; choose one of {choices}", source=str(path), key=key)
    try:
        value = float(raw_value)
    except ValueError:
        raise ConfigError(f"{raw_value!r} is not a number", source=str(path), key=key) from None
    if not (math.isfinite(value) and value >= 0):
        raise ConfigError(
            f"must be a finite number, 0 or more, got {raw_value}", source=str(path), key=key
        )
    if path.resolve() == EXAMPLE_CONFIG.resolve() and not explicit:
        raise ConfigError(
            "refusing to edit the shipped example config",
            source=str(path),
            fix="write it to ./lanes.yaml (lanes config --example > lanes.yaml) and edit that,"
            " or pass --config to edit it anyway",
        )
    text = path.read_text(encoding="utf-8")
    expected = _with_weight(yaml.safe_load(text) or {}, name, value)
    edited = _edit_weight_text(text, name, value)
    if edited is None or yaml.safe_load(edited) != expected:
        edited = yaml.safe_dump(expected, sort_keys=False)
    _replace_checked(path, edited, key)
    return value


def _with_weight(data: dict[str, Any], name: str, value: float) -> dict[str, Any]:
    routing = dict(data.get("routing") or {})
    routing["weights"] = {**(routing.get("weights") or {}), name: value}
    return {**data, "routing": routing}


def _edit_weight_text(text: str, name: str, value: float) -> str | None:
    """``text`` with the weight set by editing lines, or None when the layout is unusual."""
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if _ROUTING.match(line)), None)
    if start is None:
        if re.search(r"^routing\s*:", text, re.MULTILINE):
            return None
        tail = "" if text.endswith("\n") or not text else "\n"
        return f"{text}{tail}routing:\n  weights: {{{name}: {value:g}}}\n"
    end = next((i for i in range(start + 1, len(lines)) if _top_level(lines[i])), len(lines))
    found = next(
        ((i, m) for i in range(start + 1, end) if (m := _WEIGHTS.match(lines[i].rstrip("\n")))),
        None,
    )
    if found is None:
        lines.insert(
            start + 1, f"{_child_indent(lines, start, end)}weights: {{{name}: {value:g}}}\n"
        )
        return "".join(lines)
    index, match = found
    rest = match.group(2)
    if rest.startswith("{") and "}" in rest:
        lines[index] = _edit_flow(lines[index], name, value)
    elif rest in ("",) or rest.startswith("#"):
        _edit_block(lines, index, len(match.group(1)), end, name, value)
    else:
        return None
    return "".join(lines)


def _top_level(line: str) -> bool:
    return bool(line.strip()) and not line[0].isspace() and not line.startswith("#")


def _child_indent(lines: list[str], start: int, end: int) -> str:
    for line in lines[start + 1 : end]:
        if line.strip() and not line.lstrip().startswith("#"):
            return line[: len(line) - len(line.lstrip())]
    return "  "


def _edit_flow(line: str, name: str, value: float) -> str:
    head, _, tail = line.partition("{")
    inner, _, after = tail.partition("}")
    entry = re.compile(rf"(\b{re.escape(name)}\s*:\s*)[^,]*")
    if entry.search(inner):
        inner = entry.sub(lambda m: f"{m.group(1)}{value:g}", inner, count=1)
    else:
        inner = f"{inner.rstrip()}, {name}: {value:g}" if inner.strip() else f"{name}: {value:g}"
    return f"{head}{{{inner}}}{after}"


def _edit_block(
    lines: list[str], index: int, indent: int, end: int, name: str, value: float
) -> None:
    """Set ``name`` in the block mapping opened at ``lines[index]``; append it if missing."""
    entry = re.compile(rf"^(\s+{re.escape(name)}\s*:\s*)([^#\n]*?)(\s*#.*)?$")
    child, last = " " * (indent + 2), index
    for i in range(index + 1, end):
        line = lines[i]
        depth = len(line) - len(line.lstrip())
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if depth <= indent:
            break
        child, last = line[:depth], i
        if m := entry.match(line.rstrip("\n")):
            lines[i] = f"{m.group(1)}{value:g}{m.group(3) or ''}\n"
            return
    lines.insert(last + 1, f"{child}{name}: {value:g}\n")


def _replace_checked(path: Path, text: str, key: str) -> None:
    """Write ``text`` next to ``path``, load it as a config, then move it over ``path``."""
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temp.write_text(text, encoding="utf-8")
    try:
        shutil.copymode(path, temp)
        load_config(temp)
    except ConfigError as exc:
        temp.unlink(missing_ok=True)
        raise ConfigError(
            f"the edited file would not load: {exc}", source=str(path), key=key
        ) from exc
    os.replace(temp, path)
