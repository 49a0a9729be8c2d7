"""The typer application and what every command shares: config loading, output, exit codes.

Exit codes: 0 ok; 1 failure; 2 bad input (config, job, arguments); 3 no route;
4 budget exceeded; 5 infrastructure (Redis, broker) unavailable; 6 a job failed.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.status import Status
from rich.text import Text

from lanes.kernel import files as inputs
from lanes.kernel.config import Config, find_config, load_config
from lanes.kernel.errors import ConfigError, JobError

app = typer.Typer(
    name="lanes",
    help="Route LLM jobs to the right model on the right account, through Celery lanes.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# Piped or captured output gets 120 columns (rich would assume 80 and crop the tables).
_WIDTH = None if sys.stdout.isatty() or "COLUMNS" in os.environ else 120
console = Console(width=_WIDTH)
err_console = Console(stderr=True, width=_WIDTH)


@dataclass
class CliState:
    config_path: Path | None = None
    _config: Config | None = field(default=None, repr=False)

    def config(self) -> Config:
        """The config, loaded once per command. A ``./lanes.yaml`` found by searching the
        current directory is announced on stderr: it may come from a checkout nobody vetted."""
        if self._config is None:
            self._config = load_config(self.config_path)
            source = self._config.source
            if source is not None and source.from_current_directory:
                note = f"note: config {source.describe()}; --config or LANES_CONFIG names another"
                err_console.print(Text(note, style="dim"), soft_wrap=True)
        return self._config

    def config_file(self) -> Path:
        return find_config(self.config_path)

    def lanes(self, names: list[str] | None) -> list[str]:
        """``names`` checked against the config (all lanes when empty); ConfigError if unknown."""
        config = self.config()
        if not names:
            return config.lanes()
        unknown = [name for name in names if name not in config.instances]
        if unknown:
            raise ConfigError(
                f"unknown lane(s) {', '.join(unknown)}",
                source=str(self.config_file()),
                key="instances",
                fix=f"use one of {', '.join(config.lanes())}",
            )
        return list(names)


@app.callback()
def _root(
    ctx: typer.Context,
    config: Path | None = typer.Option(
        None,
        "--config",
        "-c",
        help="Config file (else $LANES_CONFIG, ./lanes.yaml, ~/.config/lanes/lanes.yaml, the"
        " shipped example).",
    ),
) -> None:
    ctx.obj = CliState(config_path=config)


def flow_help(typer_app: typer.Typer) -> None:
    """Give every command of ``typer_app`` (and of its sub-apps) without a ``short_help`` one
    made of its help's first paragraph on one line: the command list keeps the line breaks of
    a docstring, which wrap mid-sentence at any terminal width. Call it once every command is
    registered."""
    for command in typer_app.registered_commands:
        text = command.help or inspect.getdoc(command.callback) or ""
        if command.short_help is None and text:
            command.short_help = _first_paragraph(text)
    for group in typer_app.registered_groups:
        if group.short_help is None and isinstance(group.help, str) and group.help:
            group.short_help = _first_paragraph(group.help)
        if group.typer_instance is not None:
            flow_help(group.typer_instance)


def _first_paragraph(text: str) -> str:
    return " ".join(inspect.cleandoc(text).split("\n\n")[0].split())


def state(ctx: typer.Context) -> CliState:
    obj = ctx.find_root().obj
    assert isinstance(obj, CliState)
    return obj


def read_text_file(path: Path, what: str) -> str:
    """The UTF-8 text of ``path`` (``-``: stdin); a :class:`JobError` (exit 2) naming the file
    and the problem otherwise: not a regular file (a FIFO, a device), larger than
    :data:`lanes.kernel.files.MAX_INPUT_BYTES`, not UTF-8."""
    limit = inputs.MAX_INPUT_BYTES
    try:
        if str(path) == "-":
            data = _read_stdin(limit)
        else:
            with inputs.open_regular(path, what) as file:
                data = inputs.read_bounded(file, limit)
        if data is None:
            raise JobError(
                f"{what} {path} is larger than {inputs.size_text(limit)}, the most lanes reads"
                " from a file; give a smaller one"
            )
        return data.decode("utf-8")
    except OSError as exc:
        raise JobError(f"cannot read {what} {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise JobError(
            f"{what} {path} is not UTF-8 text (byte {exc.start}); save it as UTF-8"
        ) from None


def _read_stdin(limit: int) -> bytes | None:
    """At most ``limit`` bytes of stdin (None if there is more)."""
    binary = getattr(sys.stdin, "buffer", None)
    if binary is not None:
        return inputs.read_bounded(binary, limit)
    text = sys.stdin.read(limit + 1)  # a text-only stdin (an embedding program's)
    data = text.encode("utf-8", "surrogateescape")
    return None if len(data) > limit else data


def read_json_object(path: Path, what: str) -> dict[str, Any]:
    """The one JSON object in ``path``; a :class:`JobError` (exit 2) saying what is wrong."""
    text = read_text_file(path, what)
    if not text.strip():
        raise JobError(f"{what} {path} is empty; write one JSON object")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise JobError(
            f"{what} {path} is not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    except (ValueError, RecursionError) as exc:  # a number too long, nesting too deep
        raise JobError(
            f"{what} {path} is not JSON lanes can read: {inputs.json_limit_text(exc)}"
        ) from None
    if not isinstance(data, dict):
        raise JobError(f"{what} {path} must hold one JSON object, not {type(data).__name__}")
    return data


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def foreign(text: object, style: str = "") -> Text:
    """Text lanes did not write (a model's reply, a provider's error, a disabled reason) as
    rich shows it: never read as markup (``[/INST]`` is a llama token, not a closing tag), and
    without control characters (a raw escape sequence could rewrite the operator's terminal):
    each one becomes U+FFFD."""
    return Text(_CONTROL.sub("\ufffd", str(text)), style=style)


class Progress:
    """The log of a command that waits: a spinner on a terminal, plain lines or nothing
    otherwise.

    Call it with a message. Inside :meth:`waiting` on a terminal the message becomes the
    spinner's text (the lines would scroll the summary away); anywhere else it is printed as a
    dim line, which is what the log file of a long-running ``lanes up`` wants, unless ``quiet``
    (a command whose output is its result, piped or ``--json``).
    """

    def __init__(self, out: Console, *, spinner: bool, quiet: bool = False) -> None:
        self.out = out
        self.spinner = spinner
        self.quiet = quiet
        self._status: Status | None = None

    def __call__(self, message: str) -> None:
        if self._status is not None:
            self._status.update(Text(message))
        elif not self.quiet:
            self.out.print(Text(message, style="dim"))

    @contextlib.contextmanager
    def waiting(self, title: str) -> Iterator[None]:
        """Show a spinner titled ``title`` for the duration (on a terminal only)."""
        if not self.spinner:
            yield
            return
        with self.out.status(Text(title)) as status:
            self._status = status
            try:
                yield
            finally:
                self._status = None


@contextmanager
def progress(as_json: bool) -> Iterator[Progress]:
    """What a command that waits shows while it works: on a terminal, a spinner with the
    current step; nothing with ``--json`` or when stdout is not a terminal (piped output
    carries results only)."""
    on_terminal = sys.stdout.isatty() and not as_json
    show = Progress(console, spinner=on_terminal, quiet=not on_terminal)
    with show.waiting("starting"):
        yield show


def print_result(result: dict[str, Any], as_json: bool) -> None:
    """A flat result: one JSON object, or ``key: value`` lines."""
    if as_json:
        print_json(result)
        return
    width = max(len(key) for key in result)
    for key, value in result.items():
        console.print(f"{key:>{width}}: {value}", highlight=False)


def print_json(data: Any) -> None:
    """One JSON document on stdout, nothing else."""
    sys.stdout.write(json.dumps(data, default=str) + "\n")
    sys.stdout.flush()
