"""Rate limits as pure values: what a server's headers say, and the budget a client keeps.

:func:`parse_rate_limit` reads every common way an API states its limit:

- ``RateLimit-Limit``/``RateLimit-Remaining``/``RateLimit-Reset`` and the same with the
  ``X-`` prefix, where ``Reset`` is a delay in seconds or, when far larger than any
  sane delay, a UNIX time (Hetzner, DigitalOcean, GitHub);
- the IETF draft's ``RateLimit`` (``limit=, remaining=, reset=`` in early drafts,
  ``"policy";r=;t=`` in later ones) and ``RateLimit-Policy`` (``q=`` a quota per
  ``w=`` seconds).

:class:`RateState` is the budget one client keeps, as a function of the time it is
given, so every decision is tested without a clock: a token bucket that mirrors the
server's when its headers say enough, and otherwise adapts by itself the way TCP and
botocore's adaptive mode do (cut the rate on each throttle, grow it back as a cubic
of the time since). The asyncio side that makes requests wait is
:mod:`asyncbackups._transport.governor`.
"""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import Mapping

import attrs

__all__ = ["RateLimitInfo", "RateState", "parse_rate_limit", "states_a_limit"]

# A Reset this large is a UNIX time, not a delay: no limit resets years from now.
_TIMESTAMP_ABOVE = 1e8
# Figures past these are nonsense from a broken or hostile server; they are ignored.
_MAX_LIMIT = 1e7
_MAX_RESET = 86_400.0 * 7
_NUMBER = re.compile(r"\s*([0-9]+(?:\.[0-9]*)?)\s*(?:[,;]|$)")
_PARAMETER = re.compile(r'([A-Za-z][A-Za-z0-9_-]*)\s*=\s*"?([0-9]+(?:\.[0-9]*)?)"?')

# The adaptive rate after a throttle: cut to BETA of what got through, then grown back
# along C * (t - K)^3 + peak, reaching the old peak after K seconds (botocore's adaptive
# mode uses the same curve; the constants are CUBIC's).
BETA = 0.7
CUBIC_C = 0.4
# Answers counted to measure the rate that got through, over this many seconds.
_WINDOW = 1.0
# The rate is cut only when throttles are at least this share of the last answers: a
# stray 429 from a busy server is paused for, not taken as a limit to slow down for.
CUT_SHARE = 0.06
_OUTCOMES_KEPT = 50
_SENT_KEPT = 4096
# A 429 that says neither when to come back nor what is left pauses every request for
# this long, doubled for each such 429 in a row, up to the most below.
_FIRST_BLIND_PAUSE = 0.05
_MAX_BLIND_PAUSE = 5.0
# Never slower than this, however often throttled: one request every ten seconds.
MIN_RATE = 0.1
# A learned rate grows to at most this multiple of what was actually sent lately, so a
# client idle for an hour does not come back believing in an enormous rate.
_GROWTH_CAP = 2.0
# Rate estimates from headers are kept this long; the highest recent one is used.
_ESTIMATES_KEPT = 32


@attrs.frozen
class RateLimitInfo:
    """What one answer's headers said about the limit; any part may be unknown.

    ``limit`` is the bucket's size (or the window's quota), ``remaining`` what is left
    after this request, ``reset`` seconds until the bucket is full again (or the window
    starts anew), ``quota_rate`` requests a second from an explicit policy.
    """

    limit: float | None = None
    remaining: float | None = None
    reset: float | None = None
    quota_rate: float | None = None

    @property
    def empty(self) -> bool:
        """Whether the headers said nothing usable."""
        return self.limit is None and self.remaining is None and self.quota_rate is None


def _number(value: str | None) -> float | None:
    """The leading number of a header value (``"100"``, ``"100, 100;w=60"``), or None."""
    if not isinstance(value, str):
        return None
    match = _NUMBER.match(value)
    if match is None:
        return None
    number = float(match.group(1))
    return number if math.isfinite(number) else None


def _parameters(value: str | None) -> dict[str, float]:
    """``key=number`` pairs of a structured header, first one of each key kept."""
    found: dict[str, float] = {}
    if not isinstance(value, str) or len(value) > 1024:
        return found
    for key, number in _PARAMETER.findall(value):
        found.setdefault(key.lower(), float(number))
    return found


def _reset_delay(value: float | None, wall_now: float) -> float | None:
    """A Reset as seconds from now: a delay as is, a UNIX time relative to ``wall_now``."""
    if value is None:
        return None
    if value > _TIMESTAMP_ABOVE:
        value -= wall_now  # in the past means the bucket is full already
    value = max(0.0, value)
    return value if value <= _MAX_RESET else None


# Every header parse_rate_limit reads: an answer with none of them states no limit.
_SIGNS = (
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "RateLimit",
    "RateLimit-Policy",
)


def states_a_limit(headers: Mapping[str, str]) -> bool:
    """Whether the headers say anything of a limit: the cheap test every answer gets."""
    return any(name in headers for name in _SIGNS)


def parse_rate_limit(headers: Mapping[str, str], wall_now: float) -> RateLimitInfo | None:
    """The limit an answer's headers state, or ``None`` when they state none.

    ``wall_now`` is the UNIX time the answer is read at, to turn a UNIX-time Reset into
    a delay. Never raises: garbage, negative or absurd figures are ignored.
    """
    limit = remaining = reset = quota_rate = None
    for prefix in ("RateLimit-", "X-RateLimit-"):
        if limit is None:
            limit = _number(headers.get(prefix + "Limit"))
        if remaining is None:
            remaining = _number(headers.get(prefix + "Remaining"))
        if reset is None:
            reset = _number(headers.get(prefix + "Reset"))
    combined = _parameters(headers.get("RateLimit"))
    if combined:
        limit = limit if limit is not None else combined.get("limit")
        if remaining is None:
            remaining = combined.get("remaining", combined.get("r"))
        reset = reset if reset is not None else combined.get("reset", combined.get("t"))
    policy = headers.get("RateLimit-Policy")
    if isinstance(policy, str):
        window_parameters = _parameters(policy)
        quota = window_parameters.get("q", _number(policy))
        window = window_parameters.get("w")
        if quota is not None and window and 0 < quota <= _MAX_LIMIT and window <= _MAX_RESET:
            quota_rate = quota / window
            limit = limit if limit is not None else quota
    if limit is not None and not 0 < limit <= _MAX_LIMIT:
        limit = None
    if remaining is not None and remaining > _MAX_LIMIT:
        remaining = None
    info = RateLimitInfo(limit, remaining, _reset_delay(reset, wall_now), quota_rate)
    return None if info.empty else info


def _per_second(times: deque[float], now: float) -> float:
    """How many of ``times`` fall in the last second: a rate over it."""
    while times and times[0] < now - _WINDOW:
        times.popleft()
    return len(times) / _WINDOW


class RateState:
    """One client's request budget, decided from the times it is handed.

    The rate it keeps is the least of those it knows: the caller's ``rate_limit``, what
    the server's headers imply, and what throttles taught it. With none known it does
    not pace at all. Tokens refill at that rate up to a burst; the server's ``Remaining``, when it
    states one and proves truthful, caps them. A throttle empties the bucket and pauses
    every request for the ``Retry-After`` it carried.
    """

    def __init__(self, *, rate_limit: float | None = None) -> None:
        self.explicit = rate_limit
        self.learned: float | None = None  # from headers: a lower bound of the real rate
        self.adaptive: float | None = None  # after throttles
        self.capacity = max(1.0, rate_limit) if rate_limit is not None else 1.0
        self.tokens = self.capacity
        self.stamp: float | None = None
        self.paused_until = -math.inf
        self.in_flight = 0
        self.throttles = 0
        self.remaining_trusted = True
        self._peak = 0.0  # the rate when last throttled
        self._throttled_at = 0.0
        self._estimates: deque[float] = deque(maxlen=_ESTIMATES_KEPT)
        # When requests left, enough for the last second at any rate a fleet reaches
        # (bounded, so an unpaced client holds no more).
        self._sent: deque[float] = deque(maxlen=_SENT_KEPT)
        self._passed: deque[float] = deque(maxlen=_SENT_KEPT)  # answers not throttled
        self._last_remaining: float | None = None
        self._outcomes: deque[bool] = deque(maxlen=_OUTCOMES_KEPT)  # True: throttled
        self._unbroken = 0  # throttles since the last answer that got through

    # -- what it allows ---------------------------------------------------------------

    @property
    def free(self) -> bool:
        """Whether nothing at all holds requests back (no limit known, none met)."""
        return self.explicit is None and self.learned is None and self.adaptive is None

    def rate(self, now: float) -> float | None:
        """Requests a second it allows now; ``None`` for no pacing at all."""
        known = [
            rate for rate in (self.explicit, self.learned, self._adaptive(now)) if rate is not None
        ]
        return max(MIN_RATE, min(known)) if known else None

    def delay(self, now: float) -> float:
        """Seconds until a request may leave (``0.0``: now)."""
        if now < self.paused_until:
            return self.paused_until - now
        rate = self.rate(now)
        if rate is None:
            return 0.0
        tokens = self._refilled(now, rate)
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / rate

    def grant(self, now: float) -> None:
        """A request leaves now (the caller checked :meth:`delay`)."""
        rate = self.rate(now)
        if rate is not None:
            self.tokens = self._refilled(now, rate) - 1.0
            self.stamp = now
        self.take(now)

    def take(self, now: float) -> None:
        """Count a request that leaves now, with nothing to pace."""
        self.in_flight += 1
        self._sent.append(now)

    def give_back(self) -> None:
        """A granted request did not leave after all (its caller was cancelled)."""
        self.in_flight = max(0, self.in_flight - 1)
        self.tokens = min(self.capacity, self.tokens + 1.0)

    def _refilled(self, now: float, rate: float) -> float:
        if self.stamp is None:
            return self.tokens
        return min(self.capacity, self.tokens + (now - self.stamp) * rate)

    def _adaptive(self, now: float) -> float | None:
        if self.adaptive is None:
            return None
        since = max(0.0, now - self._throttled_at)
        k = math.cbrt(self._peak * (1.0 - BETA) / CUBIC_C)
        offset = since - k
        grown = CUBIC_C * offset * offset * offset + self._peak
        # Growth past the old peak is capped by what this client really sends: a fleet
        # that went quiet does not return with a rate it never tried.
        ceiling = max(self._peak, _GROWTH_CAP * self.sent_rate(now))
        return max(self.adaptive, min(grown, ceiling))

    def sent_rate(self, now: float) -> float:
        """Requests sent per second, over the last second."""
        return _per_second(self._sent, now)

    def passed_rate(self, now: float) -> float:
        """Answers that were not throttled, per second, over the last second."""
        return _per_second(self._passed, now)

    # -- what it learns ---------------------------------------------------------------

    def passed(self, now: float) -> None:
        """An answer got through and said nothing of a limit, while none is known."""
        self.in_flight = max(0, self.in_flight - 1)
        self._passed.append(now)
        self._outcomes.append(False)
        self._unbroken = 0

    def failed(self) -> None:
        """A request left but no answer came (a dropped connection, a timeout)."""
        self.in_flight = max(0, self.in_flight - 1)

    def observe(
        self,
        now: float,
        *,
        throttled: bool,
        info: RateLimitInfo | None,
        retry_after: float | None,
    ) -> None:
        """Learn from one answer: ``throttled`` is a 429; ``retry_after`` is already
        capped by the caller (a longer one is never waited out, so it pauses nobody)."""
        self.in_flight = max(0, self.in_flight - 1)
        self._outcomes.append(throttled)
        if throttled:
            self._throttle(now, info, retry_after)
        else:
            self._passed.append(now)
            self._unbroken = 0
        if info is not None:
            self._learn(now, info, throttled=throttled)

    def _throttle(self, now: float, info: RateLimitInfo | None, retry_after: float | None) -> None:
        self.throttles += 1
        if self._last_remaining is not None and self.remaining_trusted:
            # Mirroring the server's Remaining did not keep us from a throttle: others
            # spend the same bucket (or it is plainly wrong). From here the rate adapts
            # under the headers' rate as a ceiling, as clients sharing a limit must.
            self.remaining_trusted = False
        rate = self.rate(now)
        sent = self.sent_rate(now)
        self._unbroken += 1
        # Cut the rate when throttles are a real share of the answers (a stray 429 is
        # paused for, not taken as a limit), from what this client was sending, as
        # botocore's adaptive mode does: clients sharing a limit that send alike are cut
        # alike, and so converge on shares of it. A client sending a request or two a
        # second is limited by itself, not by the server. Several answers of one burst
        # come back throttled together: the cut is made once per such burst.
        share = sum(self._outcomes) / len(self._outcomes)
        if sent * _WINDOW >= 3 and share >= CUT_SHARE:
            # The first cut cannot go by what was sent: the first burst into an empty
            # bucket is no rate at all. What got through then is the bucket's measure.
            base = max(self.passed_rate(now), MIN_RATE) if rate is None else min(rate, sent)
            if self.adaptive is None or now - self._throttled_at > 1.0 / base:
                self._peak = max(base, MIN_RATE)
                self.adaptive = max(MIN_RATE, self._peak * BETA)
                self._throttled_at = now
        self.tokens = 0.0
        self.stamp = now
        self.capacity = max(1.0, self.rate(now) or 1.0)
        pause = retry_after
        if pause is None and info is not None and info.reset is not None and info.remaining == 0:
            pause = min(info.reset, 1.0 / max(self.rate(now) or 1.0, MIN_RATE))
        if pause is None:
            # Told nothing: back off, doubling with each throttle in a row.
            pause = min(_MAX_BLIND_PAUSE, _FIRST_BLIND_PAUSE * 2.0 ** min(self._unbroken - 1, 16))
        self.paused_until = max(self.paused_until, now + pause)

    def _learn(self, now: float, info: RateLimitInfo, *, throttled: bool) -> None:
        estimate = info.quota_rate
        if (
            estimate is None
            and info.limit is not None
            and info.remaining is not None
            and info.reset is not None
            and info.reset > 0
            and info.limit > info.remaining
        ):
            # The time a bucket takes to fill again is rounded up to whole seconds by
            # most servers, so each estimate is a lower bound; the highest recent one is
            # the closest to the truth.
            estimate = (info.limit - info.remaining) / info.reset
        if estimate is not None and estimate > 0:
            self._estimates.append(estimate)
            self.learned = max(self._estimates)
        if info.limit is not None and self.remaining_trusted:
            self.capacity = max(1.0, info.limit)
        if info.remaining is not None:
            self._last_remaining = info.remaining
            if self.remaining_trusted:
                # What the server has left, less what is already on its way to it.
                left = max(0.0, info.remaining - self.in_flight)
                rate = self.rate(now)
                if rate is not None:
                    self.tokens = min(self.capacity, left)
                    self.stamp = now
                elif left < 1.0:
                    self.tokens, self.stamp = 0.0, now
                    self.learned = self.learned or (
                        info.limit / info.reset if info.limit and info.reset else None
                    )
            if (
                info.remaining < 1
                and info.reset is not None
                and not throttled
                and self.rate(now) is None
            ):
                self.paused_until = max(self.paused_until, now + info.reset)
