"""The ``lanes.run`` message: its one argument (:class:`Envelope`) and the one way it is built.

Every message that runs a job step is built from :func:`message_options`: the dispatcher's
submit (:func:`publish`), a canvas signature (:func:`signature`), the janitor's re-send
(:func:`publish`) and a worker's retry, wait or fallback (:func:`hand_over`, which takes the
running task's place). So the rules of the message hold everywhere: plain JSON (no pickle),
the job id as the task id, the lane as the queue, and monitoring (Flower, ``celery inspect``)
shows :meth:`Envelope.label`, never the envelope: the prompt stays out of sight and no secret
is ever in it (API keys stay in the worker's environment).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

from amqp.exceptions import MessageNacked
from celery import Celery, Task
from celery.canvas import Signature
from celery.exceptions import Ignore
from celery.result import AsyncResult
from kombu.exceptions import OperationalError
from pydantic import BaseModel, ConfigDict, Field

from lanes.broker.amqp import batch_queue, delayed_route
from lanes.broker.app import BATCH_PRIORITY
from lanes.kernel.taxonomy import Priority
from lanes.router.decision import Step
from lanes.router.job import Job

T = TypeVar("T")
NACK_RETRIES = 6
"""Sends of a message the broker nacked (about 8 s in all)."""
RUN_TASK = "lanes.run"
"""The one task lanes runs: one step of one job on one lane."""


class FallbackEvent(BaseModel):
    model_config = ConfigDict(frozen=True)

    from_instance: str
    from_model: str
    to_step: int
    reason: str


class Envelope(BaseModel):
    model_config = ConfigDict(frozen=True)

    job: Job
    chain: list[Step] = Field(min_length=1)
    step: int = Field(default=0, ge=0)
    attempt: int = Field(default=0, ge=0)
    instance: str
    """The concrete instance of this step (a pool already expanded to one member)."""
    input_tokens: int = Field(default=0, ge=0)
    """Estimated input tokens, from the dispatcher's classification (for fit and limits)."""
    fallbacks: list[FallbackEvent] = Field(default_factory=list)
    waited_s: float = Field(default=0.0, ge=0)
    """Time spent re-queued waiting for capacity or a cooldown, bounded by retry.max_wait_s."""
    hop: int = Field(default=0, ge=0)
    """Messages this job went through before this one: every retry, wait, move or fallback
    publishes the next message with ``hop + 1``, so a redelivered older message is stale."""
    task_type: str = ""
    """The task type the dispatcher classified (what the ledger learns per)."""
    reserved_usd: float = Field(default=0.0, ge=0)
    """What the job's budgets hold for it: the most one call on its first step may cost
    (:func:`lanes.layers.reservation.reservation_usd`)."""
    cache_key: str | None = None
    """Where the answer goes in the response cache (None: caching is off for this job)."""
    batch: bool = False
    """This step goes through its instance's batch API instead of a call."""
    due_at: float | None = None
    """The job's deadline as a Unix time (set for a batched job: when to take it out)."""

    @property
    def model(self) -> str:
        return self.chain[self.step].model

    def label(self) -> str:
        """What monitoring shows instead of the arguments: the lane and the hop first (Flower's
        tasks page cuts long arguments), the job id last."""
        return (
            f"lane={self.instance} hop={self.hop} step={self.step} attempt={self.attempt}"
            f" job={self.job.id}"
        )

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_defaults=False)

    def retried(self) -> Envelope:
        return self.model_copy(update={"attempt": self.attempt + 1, "hop": self.hop + 1})

    def waiting(self, countdown_s: float) -> Envelope:
        return self.model_copy(
            update={"waited_s": self.waited_s + countdown_s, "hop": self.hop + 1}
        )

    def unbatched(self) -> Envelope:
        """The same step as a call, no longer through the batch API."""
        return self.model_copy(update={"batch": False, "attempt": self.attempt + 1,
                                       "hop": self.hop + 1})  # fmt: skip

    def moved(self, instance: str) -> Envelope:
        """Same step on another member of the step's pool."""
        return self.model_copy(update={"instance": instance, "attempt": 0, "hop": self.hop + 1})

    def advanced(self, instance: str, reason: str) -> Envelope:
        event = FallbackEvent(
            from_instance=self.instance, from_model=self.model, to_step=self.step + 1, reason=reason
        )
        return self.model_copy(
            update={
                "step": self.step + 1,
                "attempt": 0,
                "instance": instance,
                "fallbacks": [*self.fallbacks, event],
                "hop": self.hop + 1,
                "batch": False,
            }
        )


REDELIVERED = "redelivered"
"""Message header set on a copy of a message that may already have run: kombu's Redis
transport sets it on every message it restores, and the janitor on every copy it re-sends.
A worker checks such a message for a recorded result or a later hop before calling."""


def message_options(
    app: Celery,
    env: Envelope,
    *,
    wire: dict[str, Any] | None = None,
    countdown_s: float | None = None,
    redelivered: bool = False,
) -> dict[str, Any]:
    """The ``lanes.run`` message for ``env`` (``wire``: its JSON, when already built): the one
    place that says what a message carries and what monitoring may see of it. A batch job's
    message has the batch priority on Redis, its lane's batch queue on RabbitMQ."""
    batch = env.job.priority is Priority.BATCH
    separate = bool(app.conf.get("lanes_batch_queues"))
    options: dict[str, Any] = {
        "args": [env.to_wire() if wire is None else wire],
        "task_id": env.job.id,
        "queue": batch_queue(env.instance) if batch and separate else env.instance,
        "argsrepr": env.label(),
        "kwargsrepr": "{}",
    }
    if countdown_s:
        options["countdown"] = countdown_s
    if redelivered:
        options["headers"] = {REDELIVERED: True}
    if batch and not separate:
        options["priority"] = BATCH_PRIORITY
    return options


def signature(
    app: Celery,
    env: Envelope,
    *,
    wire: dict[str, Any] | None = None,
    countdown_s: float | None = None,
) -> Signature:
    """``env`` as a Celery signature (for a canvas, or to replace a running task)."""
    return app.signature(RUN_TASK, **message_options(app, env, wire=wire, countdown_s=countdown_s))


def publish(
    app: Celery,
    env: Envelope,
    *,
    wire: dict[str, Any] | None = None,
    redelivered: bool = False,
) -> AsyncResult:
    """Send ``env`` to its lane's queue: a submit, or (``redelivered``) the janitor re-sending
    a message that may have run after all.

    Sent by name, so a process that also registers ``lanes.run`` (a worker submitting jobs)
    still gets a handle that waits for the result instead of one marked as ignored."""
    options = message_options(app, env, wire=wire, redelivered=redelivered)
    return confirmed(lambda: app.send_task(RUN_TASK, **options))


def hand_over(task: Task, env: Envelope, *, countdown_s: float | None = None) -> NoReturn:
    """From inside a running ``lanes.run``: send ``env`` (a retry, a wait, a move to another
    pool member or a fallback step) in place of ``task``, keeping the task id and any canvas
    links (chain, chord, group, callbacks), then end ``task`` (raises ``Ignore``).

    Built as Celery's ``Task.replace`` builds a replacement, with two differences monitoring
    shows: the message's ``retries`` is ``env.hop`` (Flower's "Retries" column counts the
    job's messages), and its parent is the running task's parent, not the running task
    itself (same id: ``Task.replace`` makes every re-queued job its own parent and child).
    """
    request = task.request
    app = task.app
    options = message_options(app, env, countdown_s=countdown_s)
    message = app.amqp.create_task_message(
        options["task_id"], RUN_TASK, options["args"], {},
        countdown=options.get("countdown"), retries=env.hop,
        group_id=request.group, group_index=request.group_index, chord=request.chord,
        callbacks=request.callbacks, errbacks=request.errbacks, chain=request.chain,
        root_id=request.root_id, parent_id=request.parent_id, reply_to=request.reply_to,
        replaced_task_nesting=(request.replaced_task_nesting or 0) + 1,
        argsrepr=options["argsrepr"], kwargsrepr=options["kwargsrepr"], ignore_result=True,
        create_sent_event=app.conf.task_send_sent_event,
    )  # fmt: skip
    send_message(app, RUN_TASK, options["queue"], message, priority=options.get("priority"),
                 countdown_s=countdown_s)  # fmt: skip
    raise Ignore(f"handed over to hop {env.hop}")


def send_message(
    app: Celery,
    name: str,
    queue: str,
    message: Any,
    *,
    priority: int | None = None,
    countdown_s: float | None = None,
) -> None:
    """Publish ``message`` (built by ``app.amqp.create_task_message``) to ``queue``, as
    ``send_task`` does once it has built one: for the messages whose headers lanes sets itself
    (a hand-over's parent and retries, a canary's absent ``task-sent`` event). On quorum
    queues a countdown goes through native delayed delivery, as ``send_task`` sends it."""
    extra: dict[str, Any] = {} if priority is None else {"priority": priority}
    if countdown_s and app.conf.get("lanes_native_delay"):
        extra |= delayed_route(countdown_s, app.amqp.queues[queue])
    else:
        extra["queue"] = queue

    def send() -> None:
        with app.producer_or_acquire() as producer:
            app.amqp.send_task_message(producer, name, message, **extra)

    confirmed(send)


def confirmed(send: Callable[[], T]) -> T:
    """``send()``, again while the broker refuses to store the message: a quorum queue whose
    leader was lost nacks publishes until a new leader is elected (a second or two). A nacked
    message was not stored, so sending it again cannot make a second copy."""
    for attempt in range(NACK_RETRIES + 1):
        try:
            return send()
        except OperationalError as exc:
            if attempt == NACK_RETRIES or not isinstance(exc.__cause__, MessageNacked):
                raise
            time.sleep(min(2.0, 0.25 * 2**attempt))
    raise AssertionError("unreachable")
