"""Deterministic stand-ins shared by tests."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeClock:
    """A clock that only moves when told to (seconds)."""

    def __init__(self, start_s: float = 1_000.0) -> None:
        self.now_s = start_s

    def __call__(self) -> float:
        return self.now_s

    def advance(self, seconds: float) -> None:
        self.now_s += seconds


class _EchoKey(BaseHTTPRequestHandler):
    """Answers every POST with a 401 whose body quotes the key it was sent, bare and as the
    Authorization header, the way some LiteLLM proxies do."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        sent = self.headers.get("x-api-key") or self.headers.get("authorization", "")
        key = sent.split()[-1] if sent else ""
        body = {"type": "error", "error": {"type": "authentication_error",
                "message": f"invalid key {key!r} (Authorization: {sent})"}}  # fmt: skip
        data = json.dumps(body).encode()
        self.send_response(401)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_: object) -> None:
        pass


@contextmanager
def key_echoing_provider() -> Iterator[str]:
    """A provider on loopback that answers 401 quoting the API key; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EchoKey)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _Receiver(BaseHTTPRequestHandler):
    """Keeps the body of every POST (a budget alert webhook) and answers 204."""

    received: list[str]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        self.received.append(body.decode("utf-8", "replace"))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


@contextmanager
def webhook_receiver() -> Iterator[tuple[str, list[str]]]:
    """A webhook endpoint on loopback; yields its URL and the bodies it has received."""
    received: list[str] = []
    handler = type("Receiver", (_Receiver,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/alerts", received
    finally:
        server.shutdown()
        server.server_close()
