"""The response cache as a layer: an identical request answered from Redis with no provider
call, and every fresh answer stored for the next one.

The key (:func:`lanes.router.cache_key.store_key`) leaves the model out, so an answer is only
given where the job could have gone itself: not a cheap lane's answer to vital work, not
below its ``min_quality``, and only from the lane and model it pins, if it pins them.
"""

from __future__ import annotations

import logging
import time

from lanes.broker.message import Envelope
from lanes.broker.result import Result
from lanes.kernel.config import Config
from lanes.kernel.errors import InfrastructureError
from lanes.layers.hooks import Call, CallLayer, DispatchLayer
from lanes.router.cache_key import store_key
from lanes.router.candidates import CHEAP_TAG
from lanes.router.decision import Decision
from lanes.router.job import Job
from lanes.stores.cache import CachedAnswer, ResponseCache

log = logging.getLogger("lanes.dispatcher")
worker_log = logging.getLogger("lanes.workers")


class CacheAtDispatch(DispatchLayer):
    """Gives the message its cache key; answers a job from the cache when it may be."""

    def __init__(self, config: Config, cache: ResponseCache) -> None:
        self._config = config
        self._cache = cache

    def after_decision(self, envelope: Envelope, decision: Decision) -> Envelope:
        """Where the job's answer goes in the cache, also for a job that opted out of being
        answered from it."""
        key = store_key(envelope.job, spec=self._config.cache)
        return envelope.model_copy(update={"cache_key": key})

    def short_circuit(self, envelope: Envelope, decision: Decision) -> Result | None:
        clf = decision.classification
        answer = self._cached(envelope.job, envelope.cache_key, clf.vital if clf else False)
        return None if answer is None else cache_result(envelope, answer)

    def _cached(self, job: Job, key: str | None, vital: bool) -> CachedAnswer | None:
        """A cached answer ``job`` may be given, unless it opted out; a Redis error is a
        miss."""
        if key is None or not job.cache:
            return None
        try:
            answer = self._cache.get(key)
        except InfrastructureError as exc:
            log.warning("job %s: response cache unreadable, calling the provider: %s",
                        job.id, exc)  # fmt: skip
            return None
        return answer if answer is not None and self._fits(job, answer, vital) else None

    def _fits(self, job: Job, answer: CachedAnswer, vital: bool) -> bool:
        config = self._config
        instance = config.instances.get(answer.instance)
        model = config.models.get(answer.model)
        if instance is None or model is None:
            return False  # written under another config
        if vital and CHEAP_TAG in instance.tags:
            return False
        if job.constraints.min_quality is not None and model.quality < job.constraints.min_quality:
            return False
        if job.model is not None and job.model != answer.model:
            return False
        return job.instance is None or answer.instance in config.members(job.instance)


class CacheAroundCall(CallLayer):
    """Stores each success under the key its message carries (a chain link's under the key
    of its fed prompt)."""

    def __init__(self, config: Config, cache: ResponseCache) -> None:
        self._spec = config.cache
        self._cache = cache

    def after_feed(self, env: Envelope) -> Envelope:
        """The fed job's own key: its answer serves the same fed prompt later."""
        return env.model_copy(update={"cache_key": store_key(env.job, spec=self._spec)})

    def after_success(self, call: Call, result: Result) -> None:
        key = call.env.cache_key
        if key is None:
            return
        try:
            self._cache.put(key, CachedAnswer.from_result(result), self._spec.ttl_s)
        except InfrastructureError as exc:
            worker_log.warning("job %s: response cache not filled: %s", call.env.job.id, exc)


def cache_result(env: Envelope, answer: CachedAnswer) -> Result:
    """The result of ``env``'s job answered with ``answer``: no call, nothing spent."""
    job = env.job
    return Result(
        job_id=job.id,
        status="ok",
        instance=answer.instance,
        model=answer.model,
        step=0,
        attempt=0,
        text=answer.text,
        stop_reason=answer.stop_reason,
        usage=dict(answer.usage),
        input_tokens=answer.input_tokens,
        output_tokens=answer.output_tokens,
        project=job.project,
        user=job.user,
        worker="cache",
        finished_at=time.time(),
        cached=True,
        cost_saved_usd=answer.cost_usd,
        simulated=answer.simulated,
    )
