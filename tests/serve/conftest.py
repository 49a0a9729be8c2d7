"""A front door in this process (uvicorn on a free port, its own thread) before the session's
lane stack: real workers, the simulator, the test Redis and a SQLite ledger with a key."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import uvicorn

from lanes.client import Lanes
from lanes.serve.app import build_app
from lanes.serve.door import Door
from lanes.stores.sql import open_ledger

from ..conftest import LaneStack


@dataclass
class FrontDoor:
    url: str
    key: str
    project: str
    stack: LaneStack


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def front_door(lane_stack: LaneStack) -> Iterator[FrontDoor]:
    config = lane_stack.config
    ledger = open_ledger(config)
    issued = ledger.create_key("door-tests", "ada", "tests", time.time())
    lanes = lane_stack.client()
    door = Door(config, lanes, ledger)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(build_app(door), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the front door did not start within 20 s"
        time.sleep(0.02)
    try:
        yield FrontDoor(f"http://127.0.0.1:{port}", issued.key, "door-tests", lane_stack)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        door.close()
        lanes.close()
        ledger.close()


@pytest.fixture(scope="module")
def door_client(front_door: FrontDoor) -> Iterator[Lanes]:
    with front_door.stack.client() as client:
        yield client
