"""lanes' errors in each API's error shape, with the status its clients expect.

============================  ======  ==========================  =======================
error                         status  Anthropic ``error.type``    OpenAI ``error.type``
============================  ======  ==========================  =======================
bad request, refused pin      400     invalid_request_error       invalid_request_error
no or bad key                 401     authentication_error        invalid_request_error
unknown model                 404     not_found_error             invalid_request_error
budget spent                  429     rate_limit_error            insufficient_quota
the job failed on every step  502     api_error                   api_error
no worker, Redis away         503     overloaded_error            api_error
the job did not end in time   504     api_error                   api_error
============================  ======  ==========================  =======================

A spent budget's message and ``code`` (``budget_exceeded``) name the budget.
"""

from __future__ import annotations

from typing import Literal

from starlette.responses import JSONResponse

from lanes.kernel.errors import (
    BudgetExceeded,
    InfrastructureError,
    JobError,
    JobFailed,
    JobTimeout,
    LanesError,
    NoRoute,
    NoWorker,
)
from lanes.serve.door import Unauthorized, UnknownModel

Dialect = Literal["anthropic", "openai"]
_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    502: "api_error",
    503: "overloaded_error",
    504: "api_error",
}
_OPENAI_TYPES = {429: "insufficient_quota", 502: "api_error", 503: "api_error", 504: "api_error"}


def status_of(exc: LanesError) -> int:
    if isinstance(exc, Unauthorized):
        return 401
    if isinstance(exc, UnknownModel):
        return 404
    if isinstance(exc, BudgetExceeded):
        return 429
    if isinstance(exc, NoWorker | InfrastructureError):
        return 503
    if isinstance(exc, JobTimeout):
        return 504
    if isinstance(exc, JobFailed):
        return 502
    if isinstance(exc, JobError | NoRoute):
        return 400
    return 500


def error_response(dialect: Dialect, exc: LanesError) -> JSONResponse:
    status = status_of(exc)
    return error_reply(dialect, status, str(exc), code=_code(exc))


def error_reply(
    dialect: Dialect, status: int, message: str, code: str | None = None
) -> JSONResponse:
    if dialect == "anthropic":
        kind = _ANTHROPIC_TYPES.get(status, "api_error")
        return JSONResponse({"type": "error", "error": {"type": kind, "message": message}}, status)
    kind = _OPENAI_TYPES.get(status, "invalid_request_error")
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return JSONResponse(body, status)


def _code(exc: LanesError) -> str | None:
    if isinstance(exc, BudgetExceeded):
        return "budget_exceeded"
    if isinstance(exc, Unauthorized):
        return "invalid_api_key"
    if isinstance(exc, UnknownModel):
        return "model_not_found"
    return None
