"""The list of layers: built once from the config, a feature switched off is not in it, and
the list calls its layers in order at every hook."""

from __future__ import annotations

from typing import Any

from lanes.broker.message import Envelope
from lanes.broker.result import Result
from lanes.kernel.config import Config
from lanes.layers.budgets.gate import BudgetGate
from lanes.layers.budgets.layer import BudgetsAroundCall, BudgetsAtDispatch
from lanes.layers.budgets.worker import WorkerBudget
from lanes.layers.build import CallLayers, DispatchLayers, call_layers, dispatch_layers
from lanes.layers.cache import CacheAroundCall, CacheAtDispatch
from lanes.layers.hooks import Call, CallLayer, DispatchLayer, Pressure
from lanes.layers.ledger import LedgerAroundCall, LedgerAtDispatch
from lanes.router.decision import Decision, Step
from lanes.router.job import Job
from lanes.stores.ledger import CallEvent, CostEvent, LedgerEvent
from lanes.stores.memory import memory_stores


def switched(config: Config, *, ledger: bool, cache: bool) -> Config:
    return config.model_copy(update={
        "ledger": config.ledger.model_copy(update={"enabled": ledger}),
        "cache": config.cache.model_copy(update={"enabled": cache}),
    })  # fmt: skip


def kinds(layers: DispatchLayers | CallLayers) -> list[type[Any]]:
    return [type(layer) for layer in layers.layers]


def envelope(job_id: str = "j1") -> Envelope:
    job = Job(id=job_id, prompt="hello", max_tokens=16)
    return Envelope(job=job, chain=[Step(instance="zai", model="glm-4.6")], instance="zai")


def test_build_puts_in_the_list_what_the_config_switches_on(example_config: Config) -> None:
    stores = memory_stores()
    everything = switched(example_config, ledger=True, cache=True)
    gate = BudgetGate(everything, stores.budget, lambda _hold: 0.0)
    assert kinds(dispatch_layers(everything, stores, budget=gate)) == [
        LedgerAtDispatch, BudgetsAtDispatch, CacheAtDispatch
    ]  # fmt: skip
    worker = WorkerBudget(everything, stores.budget)
    assert kinds(call_layers(everything, stores, budget=worker)) == [
        LedgerAroundCall, BudgetsAroundCall, CacheAroundCall
    ]  # fmt: skip
    assert kinds(dispatch_layers(everything, stores)) == [LedgerAtDispatch, CacheAtDispatch]
    nothing = switched(example_config, ledger=False, cache=False)
    assert kinds(dispatch_layers(nothing, stores)) == []
    assert kinds(call_layers(nothing, stores)) == []
    assert kinds(call_layers(switched(example_config, ledger=False, cache=True), stores)) == [
        CacheAroundCall
    ]  # fmt: skip


class Recorder(DispatchLayer, CallLayer):
    """A layer on both sides that notes every hook it heard, under its name."""

    def __init__(self, name: str, heard: list[str], pressure: Pressure = Pressure()) -> None:
        self.name = name
        self.heard = heard
        self.pressure = pressure

    def before_routing(self, job: Job) -> Pressure:
        self.heard.append(f"{self.name}.before_routing")
        return self.pressure

    def after_decision(self, envelope: Envelope, decision: Decision) -> Envelope:
        self.heard.append(f"{self.name}.after_decision")
        metadata = {**envelope.job.metadata, self.name: "seen"}
        return envelope.model_copy(update={"job": envelope.job.model_copy(
            update={"metadata": metadata})})  # fmt: skip

    def numbered_event(self, env: Envelope) -> CallEvent | None:
        self.heard.append(f"{self.name}.numbered_event")
        return CallEvent(**{**Call(env, 1).ids(), "project": self.name}, reserved_usd=0.0)

    def success_events(self, call: Call, result: Result) -> list[LedgerEvent]:
        return [CostEvent(**{**call.ids(), "project": self.name}, cost_usd=0.0)]


def test_the_list_calls_every_layer_in_order_and_adds_up_what_they_give() -> None:
    heard: list[str] = []
    first = Recorder("first", heard, Pressure(strategy="cost_optimized"))
    second = Recorder("second", heard, Pressure("manual", frozenset({"claude-opus-4-5"})))
    dispatch = DispatchLayers([first, second])
    pressure = dispatch.before_routing(Job(prompt="hello"))
    assert pressure == Pressure("cost_optimized", frozenset({"claude-opus-4-5"}))
    shaped = dispatch.after_decision(envelope(), Decision.model_construct())
    assert shaped.job.metadata == {"first": "seen", "second": "seen"}
    around = CallLayers([first, second])
    event = around.numbered_event(envelope())
    assert event is not None and event.project == "first"  # the frame carries one: the first
    call = Call(envelope(), 1)
    assert [e.project for e in around.success_events(call, Result.model_construct())] == [
        "first", "second"
    ]  # fmt: skip
    assert heard == [
        "first.before_routing", "second.before_routing",
        "first.after_decision", "second.after_decision",
        "first.numbered_event",
    ]  # fmt: skip


def test_an_empty_list_changes_nothing() -> None:
    env = envelope()
    assert DispatchLayers().after_decision(env, Decision.model_construct()) is env
    assert DispatchLayers().short_circuit(env, Decision.model_construct()) is None
    assert DispatchLayers().before_routing(env.job) == Pressure()
    assert CallLayers().numbered_event(env) is None
    assert CallLayers().after_feed(env) is env
