"""Flower, the Celery monitor, as lanes runs it: one address, basic auth, no secret in argv.

``lanes up`` (through :class:`lanes.ops.stack.Stack`) and ``lanes flower`` both start Flower from
here, as :mod:`lanes.ops.flower_server` (read-only unless ``flower.control``). Basic auth comes
from ``$FLOWER_BASIC_AUTH`` (``user:password``, or several, comma separated, as Flower reads
it); without it lanes generates a password for the run and hands it back so the caller prints
it once. A production config (``production: true``) never gets an open Flower, nor one with a
password nobody chose. The secrets reach Flower through its environment, which only its owner
may read, never through its command line, which ``ps`` shows to everyone.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from lanes.kernel.config import Config
from lanes.kernel.errors import ConfigError, InfrastructureError

AUTH_ENV = "FLOWER_BASIC_AUTH"
COOKIE_ENV = "FLOWER_COOKIE_SECRET"
GENERATED_USER = "lanes"

TASK_COLUMNS = "name,uuid,state,args,result,received,runtime,worker"
"""The tasks page's columns. ``args`` is each message's label (``lane=... hop=... step=...
attempt=... job=...``, see ``lanes.broker.message``), ``result`` the summary ``lanes.run`` returns:
neither holds a prompt, a reply or a key, so both can be shown."""

_WILDCARDS = {"", "0.0.0.0", "::"}


@dataclass(frozen=True)
class FlowerAuth:
    """Basic-auth credentials for Flower, as Flower reads them (``user:pw[,user:pw]``)."""

    basic_auth: str
    generated: bool

    @property
    def users(self) -> list[str]:
        return [entry.partition(":")[0] for entry in self.basic_auth.split(",")]

    @property
    def password(self) -> str:
        """The first user's password: to print once when lanes generated it, never otherwise."""
        return self.basic_auth.split(",")[0].partition(":")[2]


def resolve_auth(config: Config, environ: Mapping[str, str] | None = None) -> FlowerAuth:
    """Flower's credentials: ``$FLOWER_BASIC_AUTH``, else a generated password for this run.

    A production config refuses to go on without ``$FLOWER_BASIC_AUTH``: Flower shows every
    job's label and every worker (and, with ``flower.control``, lets its users act on them),
    and a generated password lives only in one terminal's scrollback, so nobody else can log
    in.
    """
    env = os.environ if environ is None else environ
    value = env.get(AUTH_ENV, "").strip()
    if value:
        check_basic_auth(value)
        return FlowerAuth(value, generated=False)
    if config.production:
        raise ConfigError(
            f"production needs {AUTH_ENV} for Flower: lanes starts no Flower without auth, "
            "nor one with a generated password, in production",
            key="production",
            fix=f"export {AUTH_ENV}=user:password (several: user1:pw1,user2:pw2), "
            "or start without Flower (`lanes up --no-flower`)",
        )
    password = secrets.token_urlsafe(18)
    return FlowerAuth(f"{GENERATED_USER}:{password}", generated=True)


def check_basic_auth(value: str) -> None:
    """Raise ConfigError unless every comma-separated entry is ``user:password``, both set.

    Flower compares whole ``user:password`` strings, so a malformed entry would lock everyone
    out without a word. The message never repeats the value: it holds passwords.
    """
    for number, entry in enumerate(value.split(","), start=1):
        user, colon, password = entry.partition(":")
        if not (user and colon and password):
            raise ConfigError(
                f"entry {number} is not user:password",
                source=f"${AUTH_ENV}",
                fix="write user:password, several separated by commas (no spaces)",
            )


def cookie_secret(environ: Mapping[str, str] | None = None) -> str:
    """``$FLOWER_COOKIE_SECRET``, else a fresh one (sessions then last as long as the run)."""
    env = os.environ if environ is None else environ
    return env.get(COOKIE_ENV, "").strip() or secrets.token_urlsafe(64)


def flower_env(base: Mapping[str, str], auth: FlowerAuth, secret: str) -> dict[str, str]:
    """The environment of the Flower process: ``base`` plus its secrets.

    ``PROMETHEUS_MULTIPROC_DIR`` is left out: Flower keeps Prometheus metrics of its own, and
    with that variable set they would land among the workers' files and be exported as lanes'.
    """
    env = {key: value for key, value in base.items() if key != "PROMETHEUS_MULTIPROC_DIR"}
    env[AUTH_ENV] = auth.basic_auth
    env[COOKIE_ENV] = secret
    return env


def flower_command(
    config: Config, *, host: str | None = None, port: int | None = None
) -> list[str]:
    """Flower as lanes serves it (:mod:`lanes.ops.flower_server`, which reads ``$LANES_CONFIG`` and
    ``$REDIS_URL``), at ``host``/``port`` (default: ``flower.host``/``flower.port``; resolve a
    port of 0 with :func:`pick_port` first, or nobody learns where Flower went).

    No secret here: the command line is public.
    """
    spec = config.flower
    return [
        sys.executable, "-m", "lanes.ops.flower_server",
        f"--address={spec.host if host is None else host}",
        f"--port={spec.port if port is None else port}",
    ]  # fmt: skip


def pick_port(host: str, port: int) -> int:
    """``port``, or a free one on ``host`` when it is 0 (the config's "any port")."""
    if port:
        return port
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        free: int = sock.getsockname()[1]
        return free


def flower_url(host: str, port: int) -> str:
    """Where a browser on this machine finds Flower (a wildcard address means localhost)."""
    shown = "127.0.0.1" if host in _WILDCARDS else host
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


def access_lines(url: str, auth: FlowerAuth) -> list[str]:
    """What to tell the operator: the URL, the user and, only if lanes made it, the password."""
    if auth.generated:
        return [
            f"flower: {url}  user {auth.users[0]}  password {auth.password}",
            f"        (password generated for this run; set your own: {AUTH_ENV}=user:password)",
        ]
    return [f"flower: {url}  user {', '.join(auth.users)} (password from ${AUTH_ENV})"]


def wait_answering(
    url: str, proc: subprocess.Popen[bytes], log_file: Path, timeout_s: float = 60.0
) -> None:
    """Block until Flower answers HTTP at ``url`` (any status: 401 is an answer).

    Raise InfrastructureError if the process exits first or time runs out, naming its log.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            raise InfrastructureError(f"flower exited with code {proc.returncode}; see {log_file}")
        try:
            httpx.get(f"{url}/healthcheck", timeout=1.0)
            return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise InfrastructureError(f"flower not answering at {url} after {timeout_s}s")
        time.sleep(0.2)
