"""The one exception tree of lanes.

::

    LanesError
    ├── ConfigError            bad config file or override: names file, key and fix
    ├── JobError               a job refused at submit (bad field, unknown lane, oversize)
    ├── NoRoute                no candidate survives the filters; carries every rejection
    ├── BudgetExceeded         a budget is spent; names the budget
    ├── InfrastructureError    Redis or the broker cannot be reached or started
    ├── JobFailed              the caller's job ended in failure after its whole chain
    ├── JobTimeout             the caller stopped waiting; the job may still finish
    └── ProviderError          a provider call failed; ``retryable`` says if another try may work
        ├── RateLimited        429; ``retry_after_s`` from the provider when it said one
        ├── Overloaded         529 or 503
        ├── ServerError        other 5xx
        ├── ProviderTimeout    the call exceeded its time limit
        ├── ConnectionFailed   connection refused, reset or dropped
        ├── AuthFailed         401/402/403: the instance is disabled
        ├── BadRequest         400/404/422 and other non-retryable client errors
        ├── RequestTooLarge    413, or a prompt over the model's context window
        └── BadAnswer          an answer that is not what was asked (JSON off its schema)

Vendor exceptions (anthropic, httpx, redis) are translated at the boundary with
``raise ... from exc``; nothing above the boundary catches a vendor type.
"""

from __future__ import annotations

import copy
from typing import Self


class LanesError(Exception):
    """Root of every error lanes raises on purpose."""

    exit_code = 1

    def within(self, where: str) -> Self:
        """This error, its message led by ``where`` (e.g. the pipeline step it came from);
        same class, same attributes."""
        found = copy.copy(self)
        found.args = (f"{where}: {self}",)
        return found


class ConfigError(LanesError):
    """A config file or override is invalid. ``str()`` names the file, the key and the fix."""

    exit_code = 2

    def __init__(self, message: str, *, source: str = "", key: str = "", fix: str = "") -> None:
        self.message = message
        self.source = source
        self.key = key
        self.fix = fix
        parts = [p for p in (source, key) if p]
        where = ": ".join(parts)
        text = f"{where}: {message}" if where else message
        if fix:
            text = f"{text} (fix: {fix})"
        super().__init__(text)


class JobError(LanesError):
    """A job was refused at submit; nothing was enqueued."""

    exit_code = 2


class NoRoute(LanesError):
    """No (instance, model) candidate survived the filters.

    ``rejections`` maps ``"instance/model"`` to the reason it was rejected.
    """

    exit_code = 3

    def __init__(self, message: str, rejections: dict[str, str] | None = None) -> None:
        self.rejections = dict(rejections or {})
        lines = [message] + [f"  - {cand}: {why}" for cand, why in self.rejections.items()]
        super().__init__("\n".join(lines))


class BudgetExceeded(LanesError):
    """A budget is fully spent. ``budget`` names it."""

    exit_code = 4

    def __init__(self, budget: str, message: str = "") -> None:
        self.budget = budget
        super().__init__(message or f"budget {budget!r} is exceeded")


class InfrastructureError(LanesError):
    """Redis, the broker or a helper process cannot be reached or started."""

    exit_code = 5


class JobFailed(LanesError):
    """A job ended in failure after its whole fallback chain. ``result`` holds its
    :class:`lanes.broker.result.Result` (None when there is none to show)."""

    exit_code = 6

    def __init__(self, message: str, result: object | None = None) -> None:
        self.result = result
        super().__init__(message)


class JobTimeout(LanesError):
    """The job did not finish within the caller's timeout. It may still finish later."""

    exit_code = 7


class NoWorker(JobTimeout):
    """Jobs wait on lanes that no worker consumes: waiting longer cannot help. ``lanes``
    names them, ``jobs`` counts the jobs waiting there."""

    def __init__(self, lanes: list[str], jobs: int, note: str = "") -> None:
        self.lanes = list(lanes)
        self.jobs = jobs
        which = ", ".join(self.lanes)
        waits = "job waits" if jobs == 1 else f"{jobs} jobs wait"
        super().__init__(
            f"{waits} on lane {which}, which no worker consumes: start one with"
            f" `lanes worker {' '.join(self.lanes)}` (or `lanes up`){note}"
        )

    def noting(self, note: str) -> NoWorker:
        """The same error with ``note`` added (what became of the jobs)."""
        return NoWorker(self.lanes, self.jobs, note)


class ProviderError(LanesError):
    """A provider call failed. Subclasses say why; ``retryable`` says if trying again may work."""

    retryable = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        headers: dict[str, str] | None = None,
        usage: dict[str, int] | None = None,
    ) -> None:
        self.status = status
        self.headers = dict(headers or {})
        """The provider's rate-limit headers sent with the error (lower-case names)."""
        self.usage = dict(usage or {})
        """What the provider billed for the call (tokens by kind): empty but for an answer
        that came back and was refused."""
        super().__init__(message)


class RateLimited(ProviderError):
    """HTTP 429. ``retry_after_s`` is what the provider asked for, if anything."""

    retryable = True

    def __init__(
        self,
        message: str,
        *,
        status: int | None = 429,
        retry_after_s: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(message, status=status, headers=headers)


class Overloaded(ProviderError):
    """HTTP 529 (Anthropic overloaded) or 503."""

    retryable = True


class ServerError(ProviderError):
    """Any other HTTP 5xx."""

    retryable = True


class ProviderTimeout(ProviderError):
    """The call took longer than its instance's ``timeout_s``."""

    retryable = True


class ConnectionFailed(ProviderError):
    """The connection was refused, reset or dropped before a full answer."""

    retryable = True


class AuthFailed(ProviderError):
    """HTTP 401/402/403: the key is wrong, unpaid or not allowed. The instance gets disabled."""


class BadRequest(ProviderError):
    """HTTP 400/404/422: the request itself is wrong; retrying cannot help."""


class RequestTooLarge(ProviderError):
    """HTTP 413, or a prompt that cannot fit the model's context window."""


class BadAnswer(ProviderError):
    """The provider answered, and was billed, but not with what was asked: JSON that does
    not match the job's schema, tool arguments that are no JSON object. Another try, or
    another model, may do better; ``usage`` holds what this one cost."""

    retryable = True
