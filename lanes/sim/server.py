"""The HTTP server: many simulated instances behind one port, each under ``/{instance}``.

A thread serves each connection (keep-alive, HTTP/1.1), so a slow simulated call only
holds its own connection. Responses are written in a single send with TCP_NODELAY set,
which keeps a zero-latency round trip well under a millisecond of server time.

A streamed answer (:class:`~lanes.sim.wire.EventStream`) goes out with chunked transfer
encoding, so the connection stays open for the next request; its events are written as
they fall due and a stop of the server hangs up mid-stream. The call stays in flight in
the instance's stats until its stream ends.

Besides the completion endpoints each instance serves both providers' batch APIs
(:mod:`lanes.sim.anthropic_batches`, :mod:`lanes.sim.openai_batches` over
:mod:`lanes.sim.openai_files`), whose state lives in a :class:`~lanes.sim.batches.BatchBook`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

from lanes.sim import anthropic_batches, openai_batches, openai_files
from lanes.sim.anthropic_api import ANTHROPIC
from lanes.sim.batches import BatchBook, Exchange
from lanes.sim.control import PREFIX, handle_control
from lanes.sim.engine import Dialect, Runtime, serve
from lanes.sim.instances import InstanceState, Registry
from lanes.sim.openai_api import OPENAI
from lanes.sim.validate import InvalidRequest
from lanes.sim.wire import EventStream, Reply

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 32 * 1024 * 1024
"""The Messages API's request size limit; larger bodies get 413 unread."""
_ENDPOINT_DIALECTS: dict[str, Dialect] = {"/v1/messages": ANTHROPIC, "/v1/chat/completions": OPENAI}
_BATCH_APIS: tuple[tuple[str, Callable[[Exchange], Reply]], ...] = (
    (anthropic_batches.PREFIX, anthropic_batches.handle),
    (openai_batches.PREFIX, openai_batches.handle),
    (openai_files.PREFIX, openai_files.handle),
)
"""Batch and file endpoints: path prefix -> handler of every path under it."""
_BODY_LIMITS = {
    anthropic_batches.PREFIX: anthropic_batches.MAX_BODY_BYTES,
    openai_files.PREFIX: openai_files.MAX_BODY_BYTES,
}
"""Endpoints that take larger bodies than :data:`MAX_BODY_BYTES`."""


class _BodyError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class SimServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        registry: Registry,
        runtime: Runtime,
        batches: BatchBook | None = None,
    ) -> None:
        self.registry = registry
        self.runtime = runtime
        self.batches = batches if batches is not None else BatchBook()
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def track(self, connection: socket.socket, *, open_: bool) -> None:
        with self._connections_lock:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def close_connections(self) -> None:
        """Hang up on every open connection so idle keep-alive threads end too."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            # The handler thread may have closed it in the meantime; that is the goal anyway.
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: object, client_address: object) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError):
            return  # the client hung up first; nothing to report
        logger.exception("simulator failed serving %s", client_address)


def _split(path: str) -> tuple[str, str]:
    """``/claude1/v1/messages`` -> ``("claude1", "/v1/messages")``."""
    instance, _, rest = path.lstrip("/").partition("/")
    return instance, "/" + rest.rstrip("/")


def _dialect_for(path: str, headers: Mapping[str, str]) -> Dialect:
    """The API a request speaks: by endpoint, else Anthropic if it sends Anthropic headers."""
    dialect = _ENDPOINT_DIALECTS.get(_split(path)[1])
    if dialect is not None:
        return dialect
    return ANTHROPIC if "anthropic-version" in headers or "x-api-key" in headers else OPENAI


def _answer(
    dialect: Dialect,
    state: InstanceState,
    headers: Mapping[str, str],
    body: bytes,
    runtime: Runtime,
) -> Reply:
    refused = dialect.check_headers(headers, state.profile)
    if refused is not None:
        return refused
    try:
        call = dialect.parse(body)
    except InvalidRequest as exc:
        return dialect.error(400, str(exc))
    return dialect.render(serve(state, call, runtime), call)


def _complete(
    dialect: Dialect,
    state: InstanceState,
    headers: Mapping[str, str],
    body: bytes,
    runtime: Runtime,
) -> Reply:
    """One completion call, counted in the instance's stats whatever happens; a streamed
    one only once its stream is over (a stream cut short counts as dropped)."""
    state.begin()
    status: int | None = 500  # an exception below reaches the caller as a 500
    streaming = False
    try:
        reply = _answer(dialect, state, headers, body, runtime)
        status = None if reply.drop else reply.status
        if reply.stream is not None:
            streaming = True
            code = reply.status

            def finished(whole: bool) -> None:
                state.end(code if whole else None)

            return dataclasses.replace(reply, finished=finished)
        return reply
    finally:
        if not streaming:
            state.end(status)


def _under(endpoint: str, prefix: str) -> tuple[str, ...] | None:
    """The path segments of ``endpoint`` after ``prefix``; None when not under it."""
    if endpoint == prefix:
        return ()
    if endpoint.startswith(prefix + "/"):
        return tuple(endpoint[len(prefix) + 1 :].split("/"))
    return None


def _batch_route(
    server: SimServer,
    state: InstanceState,
    method: str,
    endpoint: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes,
) -> Reply | None:
    """The answer of a batch or file endpoint; None when ``endpoint`` is none of them."""
    for prefix, handle in _BATCH_APIS:
        parts = _under(endpoint, prefix)
        if parts is not None:
            host = headers.get("host") or "{}:{}".format(*server.server_address[:2])
            exchange = Exchange(
                method=method,
                parts=parts,
                query={name: values[-1] for name, values in parse_qs(query).items()},
                headers=headers,
                body=body,
                store=server.batches.store(state, server.runtime.rng),
                base_url=f"http://{host}/{state.name}",
            )
            return handle(exchange)
    return None


def route(
    server: SimServer,
    method: str,
    path: str,
    headers: Mapping[str, str],
    body: bytes,
    query: str = "",
) -> Reply:
    """Answer one request; ``path`` has no query string (that is ``query``) and
    ``headers`` lowercase names."""
    if path.startswith(PREFIX):
        return handle_control(server.registry, method, path, body)
    instance, endpoint = _split(path)
    dialect = _dialect_for(path, headers)
    state = server.registry.get(instance) if instance else None
    if state is None:
        return dialect.error(404, f"unknown instance {instance!r}")
    if method == "POST" and endpoint in _ENDPOINT_DIALECTS:
        return _complete(dialect, state, headers, body, server.runtime)
    batch_reply = _batch_route(server, state, method, endpoint, query, headers, body)
    if batch_reply is not None:
        return batch_reply
    if method == "GET" and endpoint == "/v1/models":
        return dialect.check_headers(headers, state.profile) or dialect.models(state.profile)
    return dialect.error(404, f"no route {method} {path}")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: SimServer

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection, open_=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, open_=False)

    def log_message(self, format: str, *args: object) -> None:
        """Silent: a benchmark's thousands of calls would flood stderr."""

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def _handle(self) -> None:
        path, _, query = self.path.partition("?")
        headers = {name.lower(): value for name, value in self.headers.items()}
        try:
            body = self._read_body(_BODY_LIMITS.get(_split(path)[1], MAX_BODY_BYTES))
            reply = route(self.server, self.command, path, headers, body, query)
        except _BodyError as exc:
            reply = _dialect_for(path, headers).error(exc.status, str(exc))
        except Exception:
            logger.exception("simulator failed on %s %s", self.command, path)
            reply = _dialect_for(path, headers).error(500, "internal error in the simulator")
        self._send(reply)

    def _read_body(self, limit: int) -> bytes:
        if self.headers.get("Transfer-Encoding", "identity").lower() != "identity":
            self.close_connection = True
            raise _BodyError(411, "send the body with a Content-Length, not chunked")
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.close_connection = True
            raise _BodyError(400, "Content-Length is not a number") from None
        if length > limit:
            # Leave the body unread and hang up after answering, as the real API does.
            self.close_connection = True
            raise _BodyError(413, f"request exceeds the maximum size of {limit} bytes")
        return self.rfile.read(length) if length > 0 else b""

    def _head(self, reply: Reply, length_line: str) -> bytes:
        lines = [
            f"HTTP/1.1 {reply.status} {reply.reason}",
            f"content-type: {reply.content_type}",
            length_line,
            f"date: {self.date_time_string()}",
            "server: lanes-sim",
        ]
        lines.extend(f"{name}: {value}" for name, value in reply.headers.items())
        if self.close_connection:
            lines.append("connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _send(self, reply: Reply) -> None:
        if reply.drop:
            self.close_connection = True
            return
        if reply.stream is not None:
            self._send_stream(reply, reply.stream)
            return
        head = self._head(reply, f"content-length: {len(reply.body)}")
        try:
            self.wfile.write(head + reply.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _send_stream(self, reply: Reply, events: EventStream) -> None:
        whole = False
        try:
            head = self._head(reply, "transfer-encoding: chunked")
            self.wfile.write(head + _chunk(events.head))
            whole = not events.cut and self._paced(events)
            if whole:
                self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            whole = False
        finally:
            if not whole:
                self.close_connection = True
            if reply.finished is not None:
                reply.finished(whole)

    def _paced(self, events: EventStream) -> bool:
        """Write the deltas as they fall due, then the tail; False if the server stopped."""
        stopping = self.server.runtime.stopping
        start = time.monotonic()
        due = [*events.schedule(), events.last_s]
        parts = [*events.deltas, events.tail]
        buffered = b""
        for at, part in zip(due, parts, strict=True):
            wait_s = at - (time.monotonic() - start)
            if wait_s > 0:
                if buffered:
                    self.wfile.write(_chunk(buffered))
                    buffered = b""
                if stopping.wait(wait_s):
                    return False
            buffered += part
        self.wfile.write(_chunk(buffered))
        return True


def _chunk(data: bytes) -> bytes:
    """One chunk of a chunked body (an empty one would end the body, so none is sent)."""
    return f"{len(data):x}\r\n".encode() + data + b"\r\n" if data else b""
