"""The fake's rate limit: a token bucket shared by every client, and what it answers.

``TokenBucket`` is the arithmetic alone, on plain numbers: ``rate`` tokens a second flow
into a bucket holding at most ``burst``; each request takes one, and finds it empty or
not. ``RateLimiter`` puts a bucket on the fake's ``Clock`` (so ``advance`` refills it)
and turns each decision into what a rate-limited provider sends, Hetzner's way:

``RateLimit-Limit``
    The bucket's capacity in whole requests (``burst`` rounded down).
``RateLimit-Remaining``
    Whole tokens left after this request (rounded down; 0 on a refusal).
``RateLimit-Reset``
    The UNIX time, in whole seconds rounded up, when the bucket is full again.
``Retry-After`` (refusals only)
    Whole seconds until one token is there, rounded up, at least 1.

A refusal is a 429 with DRF's body, ``{"detail": "Request was throttled. Expected
available in 2 seconds."}``.
"""

from __future__ import annotations

import calendar
import json
import math
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from ._clock import Clock
from ._views import Reply

__all__ = ["Admission", "RateLimiter", "Take", "TokenBucket"]

# Refill is rate * elapsed in floating point: 20/s for 0.05 s may come out a hair under
# one token. Amounts this close to a whole number count as that number.
_EPSILON: Final = 1e-9


def _check_rate(rate: float) -> float:
    rate = float(rate)
    if not (rate > 0 and math.isfinite(rate)):
        raise ValueError(f"rate_limit must be a positive number of requests a second, got {rate}")
    return rate


def _check_burst(burst: float) -> float:
    burst = float(burst)
    # A bucket that never holds one whole token would refuse every request.
    if not (burst >= 1 and math.isfinite(burst)):
        raise ValueError(f"burst must be at least 1 request, got {burst}")
    return burst


@dataclass(frozen=True, slots=True)
class Take:
    """What one request found in the bucket.

    ``allowed``: it got a token. ``remaining``: whole tokens left after it.
    ``retry_after``: seconds until a whole token is there (0.0 while one is left).
    ``full_after``: seconds until the bucket is full again.
    """

    allowed: bool
    remaining: int
    retry_after: float
    full_after: float


class TokenBucket:
    """``rate`` tokens a second into a bucket of ``burst``; each request takes one.

    ``burst`` defaults to ``max(1, rate)``, one second's worth. The bucket starts full.
    Time is whatever scale of seconds the caller passes to ``take``; a reading earlier
    than the last one refills nothing, and refilling resumes from it. Raises
    ``ValueError`` for a rate that is not positive and finite, or a burst below 1.
    Safe to share between threads.
    """

    def __init__(self, rate: float, burst: float | None = None) -> None:
        """A full bucket refilled at ``rate`` a second, holding at most ``burst``."""
        self._rate = _check_rate(rate)
        self._burst = _check_burst(max(1.0, self._rate) if burst is None else burst)
        self._tokens = self._burst
        # A full bucket stays full however long it waits: time counts from the first take.
        self._updated: float | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<TokenBucket rate={self._rate:g}/s burst={self._burst:g}>"

    @property
    def rate(self) -> float:
        """Tokens added per second."""
        return self._rate

    @property
    def burst(self) -> float:
        """The bucket's capacity, in tokens."""
        return self._burst

    @property
    def limit(self) -> int:
        """The most requests served at once from a full bucket: ``burst`` rounded down."""
        return math.floor(self._burst + _EPSILON)

    def take(self, now: float) -> Take:
        """Take one token at time ``now`` (seconds) if there is one; say what was found."""
        with self._lock:
            if self._updated is not None:
                elapsed = max(0.0, now - self._updated)
                self._tokens = min(self._burst, self._tokens + elapsed * self._rate)
            self._updated = now
            allowed = self._tokens + _EPSILON >= 1.0
            if allowed:
                self._tokens = max(0.0, self._tokens - 1.0)
            tokens = self._tokens
        whole = math.floor(tokens + _EPSILON)
        return Take(
            allowed=allowed,
            remaining=whole,
            retry_after=0.0 if whole >= 1 else (1.0 - tokens) / self._rate,
            full_after=max(0.0, self._burst - tokens) / self._rate,
        )


@dataclass(frozen=True, slots=True)
class Admission:
    """The rate limit's word on one request.

    ``refusal`` is the 429 to answer instead of doing the work (``None``: go ahead);
    ``headers`` are the ``RateLimit-*`` headers for the answer (empty when they are off;
    a refusal carries them already).
    """

    refusal: Reply | None
    headers: tuple[tuple[str, str], ...]


def _whole_seconds_up(seconds: float) -> int:
    return max(1, math.ceil(seconds - _EPSILON))


def _unix_time_up(moment: datetime) -> int:
    # Exact: a float timestamp near 1.7e9 would blur the microseconds that decide rounding.
    return calendar.timegm(moment.utctimetuple()) + (1 if moment.microsecond else 0)


def _throttled_body(wait: int) -> bytes:
    unit = "second" if wait == 1 else "seconds"
    detail = f"Request was throttled. Expected available in {wait} {unit}."
    return json.dumps({"detail": detail}, separators=(",", ":")).encode()


class RateLimiter:
    """The fake's rate limit: one ``TokenBucket`` for every client, on the fake's clock.

    ``rate=None`` means no limit: ``admit`` answers ``None`` at once. ``headers`` says
    whether answers carry ``RateLimit-Limit``, ``-Remaining`` and ``-Reset`` (a refusal
    always carries ``Retry-After``). ``configure`` swaps in a new, full bucket at any
    time, from any thread. ``throttled`` counts the refusals.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        rate: float | None = None,
        burst: float | None = None,
        headers: bool = True,
    ) -> None:
        """A limit of ``rate`` requests a second (bursts of ``burst``) on ``clock``."""
        self._clock = clock
        self._lock = threading.Lock()
        self._bucket: TokenBucket | None = None
        self._origin = clock.now()
        self._throttled = 0
        self.headers = headers
        self.configure(rate, burst)

    def configure(self, rate: float | None, burst: float | None = None) -> None:
        """Limit to ``rate`` a second from now, with a full bucket; ``None``: no limit.

        ``burst`` defaults to ``max(1, rate)``. Raises ``ValueError`` for a rate that is
        not positive or a burst below 1 (and for a burst without a rate).
        """
        if rate is None:
            if burst is not None:
                raise ValueError("burst needs a rate_limit")
            bucket = None
        else:
            bucket = TokenBucket(rate, burst)
        with self._lock:
            self._bucket = bucket

    @property
    def bucket(self) -> TokenBucket | None:
        """The bucket in use; ``None`` when there is no limit."""
        return self._bucket

    @property
    def throttled(self) -> int:
        """Requests refused so far (since the last ``reset_throttled``)."""
        with self._lock:
            return self._throttled

    def reset_throttled(self) -> int:
        """Zero the refusal counter; return it as it stood, in one step."""
        with self._lock:
            count, self._throttled = self._throttled, 0
            return count

    def config(self) -> dict[str, Any] | None:
        """``{"rate": r, "burst": b}`` as configured now, or ``None`` without a limit."""
        bucket = self._bucket
        return None if bucket is None else {"rate": bucket.rate, "burst": bucket.burst}

    def admit(self) -> Admission | None:
        """Take a token for one API request; ``None`` when there is no limit."""
        bucket = self._bucket
        if bucket is None:
            return None
        now = self._clock.now()
        # Seconds since a fixed instant: small numbers keep the refill arithmetic exact.
        taken = bucket.take((now - self._origin).total_seconds())
        headers: tuple[tuple[str, str], ...] = ()
        if self.headers:
            reset = _unix_time_up(now + timedelta(seconds=taken.full_after))
            headers = (
                ("RateLimit-Limit", str(bucket.limit)),
                ("RateLimit-Remaining", str(taken.remaining)),
                ("RateLimit-Reset", str(reset)),
            )
        if taken.allowed:
            return Admission(None, headers)
        with self._lock:
            self._throttled += 1
        wait = _whole_seconds_up(taken.retry_after)
        refusal = Reply(429, _throttled_body(wait), (("Retry-After", str(wait)), *headers))
        return Admission(refusal, headers)
