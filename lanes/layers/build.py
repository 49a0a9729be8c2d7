"""The list of layers, built once from the config: a feature switched off is not in it.

- the ledger (:mod:`lanes.layers.ledger`), with ``ledger.enabled``;
- the budgets (:mod:`lanes.layers.budgets.layer`), when the process holds budgets: given the
  dispatcher's gate or the worker's side, as every deployment is;
- the response cache (:mod:`lanes.layers.cache`), with ``cache.enabled``.

Layers run in that order at every hook. :class:`DispatchLayers` and :class:`CallLayers` are
themselves a layer: what the dispatcher and the runner hold.
"""

from __future__ import annotations

from collections.abc import Sequence

from lanes.broker.message import Envelope
from lanes.broker.result import Result
from lanes.kernel.config import Config
from lanes.kernel.errors import ProviderError
from lanes.layers.budgets.gate import BudgetGate
from lanes.layers.budgets.layer import BudgetsAroundCall, BudgetsAtDispatch
from lanes.layers.budgets.worker import WorkerBudget
from lanes.layers.cache import CacheAroundCall, CacheAtDispatch
from lanes.layers.hooks import Call, CallLayer, DispatchLayer, Pressure
from lanes.layers.ledger import LedgerAroundCall, LedgerAtDispatch
from lanes.router.decision import Decision
from lanes.router.job import Job
from lanes.stores import Stores
from lanes.stores.jobs import Cancelled
from lanes.stores.ledger import CallEvent, LedgerEvent


def dispatch_layers(
    config: Config, stores: Stores, *, budget: BudgetGate | None = None
) -> DispatchLayers:
    """The dispatcher's layers; ``budget``: the gate to hold jobs to (None: no budgets)."""
    layers: list[DispatchLayer] = []
    if config.ledger.enabled:
        layers.append(LedgerAtDispatch(config, stores.ledger))
    if budget is not None:
        layers.append(BudgetsAtDispatch(config, budget))
    if config.cache.enabled:
        layers.append(CacheAtDispatch(config, stores.cache))
    return DispatchLayers(layers)


def call_layers(
    config: Config, stores: Stores, *, budget: WorkerBudget | None = None
) -> CallLayers:
    """The layers around a worker's calls; ``budget``: the worker's side of the budgets
    (None: no budgets)."""
    layers: list[CallLayer] = []
    if config.ledger.enabled:
        layers.append(LedgerAroundCall(config, stores.ledger))
    if budget is not None:
        layers.append(BudgetsAroundCall(config, budget))
    if config.cache.enabled:
        layers.append(CacheAroundCall(config, stores.cache))
    return CallLayers(layers)


class DispatchLayers(DispatchLayer):
    """Every dispatcher layer, called in order: pressures add up, the first short circuit
    wins, each envelope passes through every layer."""

    def __init__(self, layers: Sequence[DispatchLayer] = ()) -> None:
        self.layers = tuple(layers)

    def before_routing(self, job: Job) -> Pressure:
        pressure = Pressure()
        for layer in self.layers:
            pressure = pressure | layer.before_routing(job)
        return pressure

    def after_decision(self, envelope: Envelope, decision: Decision) -> Envelope:
        for layer in self.layers:
            envelope = layer.after_decision(envelope, decision)
        return envelope

    def short_circuit(self, envelope: Envelope, decision: Decision) -> Result | None:
        for layer in self.layers:
            found = layer.short_circuit(envelope, decision)
            if found is not None:
                return found
        return None

    def at_admit(self, envelope: Envelope) -> None:
        for layer in self.layers:
            layer.at_admit(envelope)

    def after_send(self, envelope: Envelope, decision: Decision) -> None:
        for layer in self.layers:
            layer.after_send(envelope, decision)

    def after_answer(self, envelope: Envelope, decision: Decision, result: Result) -> None:
        for layer in self.layers:
            layer.after_answer(envelope, decision, result)

    def after_abandon(self, job: Job) -> None:
        for layer in self.layers:
            layer.after_abandon(job)

    def after_cancel(self, cancelled: Sequence[Cancelled]) -> None:
        for layer in self.layers:
            layer.after_cancel(cancelled)


class CallLayers(CallLayer):
    """Every layer around a call, called in order; the events they contribute add up."""

    def __init__(self, layers: Sequence[CallLayer] = ()) -> None:
        self.layers = tuple(layers)

    def after_feed(self, env: Envelope) -> Envelope:
        for layer in self.layers:
            env = layer.after_feed(env)
        return env

    def numbered_event(self, env: Envelope) -> CallEvent | None:
        for layer in self.layers:
            found = layer.numbered_event(env)
            if found is not None:
                return found
        return None

    def before_call(self, call: Call) -> None:
        for layer in self.layers:
            layer.before_call(call)

    def after_skip(self, call: Call) -> None:
        for layer in self.layers:
            layer.after_skip(call)

    def after_failure(self, call: Call, exc: ProviderError, cooldown_s: float | None) -> None:
        for layer in self.layers:
            layer.after_failure(call, exc, cooldown_s)

    def success_events(self, call: Call, result: Result) -> Sequence[LedgerEvent]:
        return [event for layer in self.layers for event in layer.success_events(call, result)]

    def after_success(self, call: Call, result: Result) -> None:
        for layer in self.layers:
            layer.after_success(call, result)

    def after_job_failed(self, env: Envelope, result: Result) -> None:
        for layer in self.layers:
            layer.after_job_failed(env, result)
