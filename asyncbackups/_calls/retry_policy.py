"""The retry policy: which failures are tried again, and which leave a write in doubt.

Pure decisions over the SDK's own exceptions, so the whole policy reads in one place:

========================  =======  ========  ========================  ==================
failure                   READ     DELETE    CREATE                    RESTORE
========================  =======  ========  ========================  ==================
could not connect         retry    retry     retry                     retry
dropped / timed out       retry    retry*    reconcile, then retry*    raise
429                       wait     wait      wait                      wait
503                       retry    retry     retry                     retry
500, 502, 504             retry    retry*    reconcile, then retry*    raise
malformed success body    retry    raise     reconcile (never resend)  raise
body past the size cap    raise    raise     reconcile (never resend)  raise
400, 401, 404, other      raise    raise     raise                     raise
========================  =======  ========  ========================  ==================

*wait*: a 429 is backpressure: the request waits for the client's rate governor and goes
again, spending no retry (see :mod:`asyncbackups._calls.call` for how long it may wait).
``*``: the attempt is *ambiguous* (the server may have acted on it). A delete that then
sees 404 has succeeded; a create reads the server's backups and adopts the one that
attempt made before it sends again; after a timeout or a 504, finding nothing, it gives
that request (which may still be at work) twice its timeout to land and reads again. A
``Retry-After`` longer than the client accepts is never waited out: the error is raised
with it.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tenacity import RetryCallState

from .._core.errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    BackupsError,
    RateLimitError,
    ResponseTooLargeError,
    ResponseValidationError,
    ServerError,
)

__all__ = [
    "RETRYABLE_STATUSES",
    "Safety",
    "is_ambiguous",
    "is_retryable",
    "may_still_be_running",
    "wait_for_retry",
]

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
# A 503 or 429 is an answer from a server that declined the work, so it did nothing.
_DECLINED_STATUSES = frozenset({429, 503})


class Safety(enum.Enum):
    """How safe it is to send a request again."""

    READ = "read"  # GET: sending twice changes nothing
    DELETE = "delete"  # idempotent in effect; a later 404 may be our own success
    CREATE = "create"  # POST that makes something: reconcile before resending
    RESTORE = "restore"  # POST with effects we cannot observe: resend only if unsent


def is_ambiguous(error: BaseException) -> bool:
    """Whether the failed attempt may have reached the server and acted."""
    if isinstance(error, APIConnectionError):
        return error.request_may_have_reached_server
    if isinstance(error, ServerError):
        return error.status_code not in _DECLINED_STATUSES
    return False


def may_still_be_running(error: BaseException) -> bool:
    """Whether an ambiguous attempt may still be at work on the server (not just done).

    A timeout, or a gateway's 504, says only that nobody waited for the answer; the
    request itself may finish later, so a reconcile must give it time to land.
    """
    if isinstance(error, APITimeoutError):
        return error.request_may_have_reached_server
    return isinstance(error, ServerError) and error.status_code == 504


def is_retryable(error: BaseException, safety: Safety, *, max_retry_after: float) -> bool:
    """The one retry predicate: may a call that failed with ``error`` be tried again?"""
    if not isinstance(error, BackupsError):
        return False
    retry_after = error.retry_after if isinstance(error, APIStatusError) else None
    if retry_after is not None and retry_after > max_retry_after:
        return False
    if isinstance(error, ResponseTooLargeError):
        # The same request would bring the same flood; for a create, the reconcile
        # (not a resend) still finds what the oversized answer described.
        return safety is Safety.CREATE
    if isinstance(error, ResponseValidationError):
        # A garbled body is a transport accident for a read; for a create it means the
        # backup exists, which the reconcile step (not a resend) recovers.
        return safety is Safety.READ or safety is Safety.CREATE
    if isinstance(error, APIConnectionError):
        return safety is not Safety.RESTORE or not error.request_may_have_reached_server
    if isinstance(error, RateLimitError):
        return True
    if isinstance(error, ServerError) and error.status_code in RETRYABLE_STATUSES:
        return safety is not Safety.RESTORE or error.status_code in _DECLINED_STATUSES
    return False


def wait_for_retry(*, multiplier: float, max: float) -> Callable[[RetryCallState], float]:
    """The pause before a retry, as a tenacity wait strategy: capped exponential backoff
    with full jitter, or the server's ``Retry-After`` when it gave one, never less.

    After a 429 there is no pause here: the client's rate governor holds the
    ``Retry-After`` for every request and paces the retry with the rest.

    A little jitter on top of a ``Retry-After`` keeps the callers it held back from all
    coming back in the same millisecond. tenacity is imported here, on the first retry,
    not with the SDK: a call that succeeds never needs it.
    """
    from tenacity import wait_random_exponential

    backoff = wait_random_exponential(multiplier=multiplier, max=max)

    def wait(retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None and outcome.failed else None
        if isinstance(error, RateLimitError):
            return 0.0
        retry_after = error.retry_after if isinstance(error, APIStatusError) else None
        if retry_after is None:
            return float(backoff(retry_state))
        return retry_after + random.uniform(0.0, min(1.0, 0.1 * retry_after))

    return wait
