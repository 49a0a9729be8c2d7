"""The points where a feature meets a job's path: the base classes of every layer.

A layer overrides the hooks it needs; the others do nothing. On the dispatcher's side, in the
order a submit meets them::

    before_routing    -> Pressure     how the job is routed (strategy, models kept out)
    after_decision    -> Envelope     what the message carries besides the routing
    short_circuit     -> Result|None  an answer that replaces the send (first one wins)
    at_admit                          may refuse the job (BudgetExceeded): nothing is sent
    after_send | after_answer         the job is on its way, or was answered without a send
    after_abandon                     a failed submit is undone
    after_cancel                      the caller gave up on jobs

Around each provider call of a worker::

    after_feed        -> Envelope     a chain link took the previous answer into its prompt
    numbered_event    -> CallEvent    handed off with the call's number, in its round trip
    before_call                       may refuse the call (BudgetExceeded); after_skip then
    after_failure | success_events + after_success
    after_job_failed                  the job ended failed (no call, or after the last)

A hook refuses with a :class:`~lanes.kernel.errors.LanesError` that is no
:class:`~lanes.kernel.errors.InfrastructureError` (the budgets' BudgetExceeded); an
InfrastructureError is Redis away, which the path meets like any outage. Hooks that hand
events to the ledger on a round trip the path makes anyway return them (``numbered_event``,
``success_events``) instead of making a round trip of their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lanes.broker.message import Envelope
from lanes.broker.result import Result
from lanes.kernel.errors import ProviderError
from lanes.router.decision import Decision
from lanes.router.job import Job
from lanes.stores.jobs import Cancelled
from lanes.stores.ledger import CallEvent, LedgerEvent


@dataclass(frozen=True)
class Pressure:
    """How the layers bend the routing of one job right now."""

    strategy: str | None = None
    """The strategy to route with instead of the caller's (None: the caller's)."""
    blocked_models: frozenset[str] = frozenset()

    def __or__(self, other: Pressure) -> Pressure:
        return Pressure(self.strategy or other.strategy, self.blocked_models | other.blocked_models)


@dataclass(frozen=True)
class Call:
    """One numbered provider call of a job's step (numbered by the job store, 1 up)."""

    env: Envelope
    number: int

    @property
    def key(self) -> str:
        """``step:attempt:number``: unique within the job."""
        return f"{self.env.step}:{self.env.attempt}:{self.number}"

    def ids(self) -> dict[str, object]:
        """The identity every ledger event of this call carries."""
        env = self.env
        return {
            "job_id": env.job.id,
            "project": env.job.project,
            "user": env.job.user,
            "instance": env.instance,
            "model": env.model,
            "step": env.step,
            "attempt": env.attempt,
            "call": self.number,
            "task_type": env.task_type,
        }


class DispatchLayer:
    """A feature on the dispatcher's path. A hook that raises stops the submit (the dispatcher
    undoes what it claimed); one that must not stop it catches its own errors."""

    def before_routing(self, job: Job) -> Pressure:
        return Pressure()

    def after_decision(self, envelope: Envelope, decision: Decision) -> Envelope:
        return envelope

    def short_circuit(self, envelope: Envelope, decision: Decision) -> Result | None:
        """A result to record at once instead of sending the job (None: send it)."""
        return None

    def at_admit(self, envelope: Envelope) -> None:
        """The job is about to be sent; raise to refuse it."""

    def after_send(self, envelope: Envelope, decision: Decision) -> None:
        """The job is on its way (best effort: the caller already has it)."""

    def after_answer(self, envelope: Envelope, decision: Decision, result: Result) -> None:
        """The job was answered by :meth:`short_circuit` and its result recorded."""

    def after_abandon(self, job: Job) -> None:
        """A submit failed after :meth:`at_admit`, or was refused there: undo what it held."""

    def after_cancel(self, cancelled: Sequence[Cancelled]) -> None:
        """The caller gave up on these jobs (:meth:`lanes.stores.jobs.JobStore.cancel`)."""


class CallLayer:
    """A feature around each provider call of a worker."""

    def after_feed(self, env: Envelope) -> Envelope:
        """``env``'s job was fed the previous step's answer (a chain link): what the message
        carries for a layer is derived from the fed job again."""
        return env

    def numbered_event(self, env: Envelope) -> CallEvent | None:
        """The event handed off with the call's number, in the same round trip (its ``call``
        is set to the number). The step frame carries one: the first layer's that has one."""
        return None

    def before_call(self, call: Call) -> None:
        """The call is numbered and about to start; raise BudgetExceeded to refuse it."""

    def after_skip(self, call: Call) -> None:
        """The call was numbered but will not run: a layer refused it."""

    def after_failure(self, call: Call, exc: ProviderError, cooldown_s: float | None) -> None:
        """The call ended in ``exc`` (``cooldown_s``: how long its lane now cools down)."""

    def success_events(self, call: Call, result: Result) -> Sequence[LedgerEvent]:
        """Events recorded with the success, in the round trip that records its result."""
        return ()

    def after_success(self, call: Call, result: Result) -> None:
        """The success is recorded (best effort: the result stands whatever happens here)."""

    def after_job_failed(self, env: Envelope, result: Result) -> None:
        """The job ended failed with ``result`` (the one that stands)."""
