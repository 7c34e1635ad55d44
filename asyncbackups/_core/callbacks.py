"""Calling what the caller handed us: plain or async callbacks alike, and what they hear.

:class:`RetryEvent` is what a client's ``on_retry`` hears before each retry of a call.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import attrs

from .errors import BackupsError

__all__ = ["RetryEvent", "call_back"]


async def call_back(callback: Callable[[Any], Any] | None, value: Any) -> None:
    """Call a plain or async callback; what it raises propagates."""
    if callback is None:
        return
    result = callback(value)
    if inspect.isawaitable(result):
        await result


@attrs.frozen(kw_only=True)
class RetryEvent:
    """A call is about to be tried again: what ``BackupsClient(on_retry=...)`` hears.

    ``attempt`` is the number of the attempt about to be made (2 for the first retry)
    out of ``max_attempts`` (``max_retries + 1``); it is made after ``delay`` seconds.
    ``elapsed`` is the seconds since the call's first attempt began, ``error`` what the
    last attempt ended with (an ``APITimeoutError``, an ``APIConnectionError``, a 5xx
    ``ServerError``...). ``method`` and ``url`` name the request (the URL never holds the
    token). A 429 is no retry: the call waits for the rate limit without this event.
    """

    method: str
    url: str
    attempt: int
    max_attempts: int
    delay: float
    elapsed: float
    error: BackupsError
