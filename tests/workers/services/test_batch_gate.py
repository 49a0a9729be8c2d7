"""The batch gate's decisions, with a recording control channel (the gate on a real cluster:
tests.broker.test_rabbitmq)."""

from __future__ import annotations

from lanes.workers.services.batch_gate import BatchGate


class _Control:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, list[str]]] = []

    def cancel_consumer(self, queue: str, destination: list[str]) -> None:
        self.calls.append(("cancel", queue, destination))

    def add_consumer(self, queue: str, destination: list[str]) -> None:
        self.calls.append(("add", queue, destination))


class _App:
    def __init__(self) -> None:
        self.control = _Control()


def test_the_gate_closes_a_batch_queue_while_interactive_work_waits_and_opens_it_after() -> None:
    app = _App()
    waiting = {"claude1": 0, "zai": 0}
    gate = BatchGate(app, "w1@host", ["claude1", "zai"], lambda lanes: dict(waiting))  # type: ignore[arg-type]
    gate.step()
    assert app.control.calls == []  # nothing waits: nothing to say
    waiting["claude1"] = 3
    gate.step()
    gate.step()  # still waiting: said once
    assert app.control.calls == [("cancel", "claude1.batch", ["w1@host"])]
    assert gate.closed == {"claude1"}
    waiting["claude1"] = 0
    gate.step()
    assert app.control.calls[-1] == ("add", "claude1.batch", ["w1@host"])
    assert gate.closed == set()
