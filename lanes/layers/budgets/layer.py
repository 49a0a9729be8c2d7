"""The budgets as layers: alert actions bend routing, a submit reserves the job's spend, each
call is named and settled, and what a job will not spend is given back.

Present whenever a deployment holds budgets at all: limits come from the config *and* from
``lanes budget --set-*`` at run time, so the gate and the worker's side find out themselves
whether any budget exists (reading the overrides at most once a second) and do nothing
else when none does.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from lanes.broker.message import Envelope
from lanes.broker.result import Result
from lanes.kernel.config import BudgetAction, Config
from lanes.kernel.errors import InfrastructureError, ProviderError
from lanes.kernel.taxonomy import StrategyName
from lanes.layers.budgets.gate import BudgetGate
from lanes.layers.budgets.worker import WorkerBudget
from lanes.layers.hooks import Call, CallLayer, DispatchLayer, Pressure
from lanes.layers.reservation import reservation_usd
from lanes.router.job import Job
from lanes.stores.jobs import Cancelled

log = logging.getLogger("lanes.dispatcher")
worker_log = logging.getLogger("lanes.workers")


class BudgetsAtDispatch(DispatchLayer):
    def __init__(self, config: Config, gate: BudgetGate) -> None:
        self._config = config
        self.gate = gate

    def before_routing(self, job: Job) -> Pressure:
        """``switch_to_cheaper``: route with ``cost_optimized`` (unless the job names its own
        strategy); ``block_expensive_models``: refuse models at or above
        ``budgets.expensive_output_per_mtok``."""
        try:
            actions = self.gate.pressure(job)
        except InfrastructureError as exc:  # routing goes on; the submit meets Redis again
            log.warning("job %s: budget pressure unknown: %s", job.id, exc)
            return Pressure()
        strategy = None
        if BudgetAction.SWITCH_TO_CHEAPER in actions and job.strategy is None:
            strategy = StrategyName.COST_OPTIMIZED.value
        blocked: frozenset[str] = frozenset()
        if BudgetAction.BLOCK_EXPENSIVE_MODELS in actions:
            bar = self._config.budgets.expensive_output_per_mtok
            blocked = frozenset(
                name for name, spec in self._config.models.items()
                if spec.price.output_per_mtok >= bar
            )  # fmt: skip
        return Pressure(strategy, blocked)

    def at_admit(self, envelope: Envelope) -> None:
        """Reserve the job's spend on its budgets; BudgetExceeded if one cannot take it."""
        self.gate.admit(envelope.job, envelope.instance, envelope.reserved_usd)

    def after_abandon(self, job: Job) -> None:
        self.gate.cancel(job.id)

    def after_cancel(self, cancelled: Sequence[Cancelled]) -> None:
        """Jobs that never started a call give their reservations back at once; a call
        already running settles its own."""
        for item in cancelled:
            if item.ended and item.calls == 0:
                self.gate.cancel(item.job_id)


class BudgetsAroundCall(CallLayer):
    def __init__(self, config: Config, budget: WorkerBudget) -> None:
        self._config = config
        self.budget = budget

    def before_call(self, call: Call) -> None:
        """Hold the call's reservation (the dearer of the job's and this step's);
        BudgetExceeded for a job no dispatcher admitted while one of its budgets is spent."""
        env = call.env
        reserved = reservation_usd(self._config, env.instance, env.model, env.input_tokens,
                                   env.job.max_tokens, batch=env.batch)  # fmt: skip
        self.budget.start_call(env, call.key, max(env.reserved_usd, reserved))

    def after_failure(self, call: Call, exc: ProviderError, cooldown_s: float | None) -> None:
        env = call.env
        cost = self._config.price_usd(env.instance, env.model, exc.usage, batch=env.batch)
        self.budget.settle(env, call.key, cost, final=False)

    def after_success(self, call: Call, result: Result) -> None:
        try:
            self.budget.settle(call.env, call.key, result.cost_usd, final=True)
        except InfrastructureError as exc:
            worker_log.warning("job %s: budget not settled: %s", call.env.job.id, exc)

    def after_job_failed(self, env: Envelope, result: Result) -> None:
        """Free the reservation of a job that ended without a call to settle."""
        self.budget.release(env.job.id)
