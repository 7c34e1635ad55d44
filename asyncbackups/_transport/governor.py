"""The rate governor: one per client, and no request leaves while it says wait.

Every request of a client, its ``with_options`` copies, its poller and its fleets asks
the governor before it leaves (:meth:`Governor.acquire`) and tells it what came back
(:meth:`Governor.answered`, :meth:`Governor.failed`). The decisions are
:class:`~asyncbackups._core.rate_limits.RateState`'s, a pure function of time; this module
only makes requests wait their turn.

Two lanes share the budget. A caller's own requests (a call, a fleet's creates) go
first; the poller's reads take a bounded share (:data:`POLL_SHARE`) whenever both are
waiting, so a fleet's creates are never starved by its own polls, and polls never
starve either.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Mapping

from .._core.rate_limits import (
    RateLimitInfo,
    RateState,
    parse_rate_limit,
    states_a_limit,
)

__all__ = ["POLL_SHARE", "Governor", "Lane", "Pacer"]

logger = logging.getLogger("asyncbackups")

POLL_SHARE = 0.25
"""The share of the budget polls get when creates are waiting too."""


class Lane(enum.Enum):
    """Whose request it is: the caller's own, or the shared poller's."""

    CALL = "call"
    POLL = "poll"


class Governor:
    """Makes requests wait for the client's rate budget; see the module docstring.

    ``clock`` is monotonic seconds (the running loop's clock by default); ``wall`` is
    the UNIX time, for servers that state their reset as one.
    """

    def __init__(
        self,
        *,
        rate_limit: float | None = None,
        clock: Callable[[], float] | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.state = RateState(rate_limit=rate_limit)
        # The loop's own clock is time.monotonic(), so timers and decisions agree.
        self._now = clock or time.monotonic
        self._wall = wall
        # The requests waiting for a turn, one queue per lane.
        self._calls: deque[asyncio.Future[None]] = deque()
        self._polls: deque[asyncio.Future[None]] = deque()
        self._poll_credit = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._was_paced = False

    @property
    def rate(self) -> float | None:
        """Requests a second the governor allows now, ``None`` when it does not pace."""
        rate = self.state.rate(self._now())
        return None if rate is None else round(rate, 3)

    @property
    def throttles(self) -> int:
        """429 answers met."""
        return self.state.throttles

    def wait_estimate(self) -> float:
        """Seconds a request asking now would wait, queued ones counted."""
        now = self._now()
        queued = len(self._calls) + len(self._polls)
        delay = self.state.delay(now)
        if math.isinf(delay):
            delay = 0.0
        rate = self.state.rate(now)
        return delay + (queued / rate if rate else 0.0)

    async def acquire(self, lane: Lane = Lane.CALL) -> None:
        """Wait until a request may leave, and count it as sent.

        Cancelled while waiting, it leaves the queue; cancelled just as it was let
        through, the turn passes on. Either way nothing is counted as sent.
        """
        state = self.state
        if not (self._calls or self._polls):
            now = self._now()
            if state.free and now >= state.paused_until:
                state.take(now)  # no limit known and no pause: nothing to pace
                return
            if state.delay(now) <= 0.0:
                state.grant(now)
                return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue(lane).append(turn)
        self._dispatch()
        try:
            await turn
        except BaseException:
            if turn.done() and not turn.cancelled():
                state.give_back()  # let through just as we were cancelled: pass it on
            else:
                with contextlib.suppress(ValueError):
                    self._queue(lane).remove(turn)
            self._dispatch()
            raise

    async def hold_while_paused(self) -> None:
        """Wait out a pause that began after this request was let through (it then
        queued for a connection slot): a 429 holds back every request not yet sent."""
        while True:
            delay = self.state.paused_until - self._now()
            if delay <= 0.0:
                return
            await asyncio.sleep(delay)

    def answered(
        self, status: int, headers: Mapping[str, str], retry_after: float | None
    ) -> RateLimitInfo | None:
        """Learn from an answer; ``retry_after`` is the pause to honour (already capped)."""
        info = parse_rate_limit(headers, self._wall()) if states_a_limit(headers) else None
        throttled = status == 429
        now = self._now()
        if info is None and not throttled and self.state.free:
            # The usual answer from an API that states no limit: only counted.
            self.state.observe(now, throttled=False, info=None, retry_after=retry_after)
            self._dispatch()
            return None
        before = self.state.rate(now)
        self.state.observe(now, throttled=throttled, info=info, retry_after=retry_after)
        if throttled:
            after = self.state.rate(self._now())
            logger.info(
                "rate limited by the API: %s; pacing at %s",
                f"pausing every request for {retry_after:.2f}s"
                if retry_after is not None
                else "no Retry-After",
                "no limit" if after is None else f"{after:.2f} requests/s",
            )
        elif before is None and self.state.rate(self._now()) is not None and not self._was_paced:
            self._was_paced = True
            logger.info(
                "the API states a rate limit: pacing at %.2f requests/s",
                self.state.rate(self._now()),
            )
        self._dispatch()
        return info

    def unused(self) -> None:
        """A request let through did not leave after all: its turn goes back."""
        self.state.give_back()
        self._dispatch()

    def failed(self) -> None:
        """A request left and no answer came."""
        self.state.failed()
        self._dispatch()

    def _queue(self, lane: Lane) -> deque[asyncio.Future[None]]:
        return self._polls if lane is Lane.POLL else self._calls

    def _next_turn(self) -> asyncio.Future[None] | None:
        calls, polls = self._calls, self._polls
        for queue in (calls, polls):
            while queue and queue[0].done():
                queue.popleft()
        if polls and (not calls or self._poll_credit >= 1.0):
            self._poll_credit = max(0.0, self._poll_credit - 1.0)
            return polls.popleft()
        if calls:
            if polls:
                self._poll_credit = min(2.0, self._poll_credit + POLL_SHARE)
            return calls.popleft()
        return None

    def _dispatch(self) -> None:
        """Let through every waiter the budget allows now; wake again when it allows more."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not (self._calls or self._polls):
            return
        state = self.state
        loop = asyncio.get_running_loop()
        while True:
            now = self._now()
            delay = state.delay(now)
            if delay > 0.0:
                if not math.isinf(delay) and (self._calls or self._polls):
                    self._timer = loop.call_later(delay, self._dispatch)
                return
            turn = self._next_turn()
            if turn is None:
                return
            state.grant(now)
            turn.set_result(None)


class Pacer:
    """A fixed rate of its own, for a ``with_options(rate_limit=...)`` copy's calls.

    Those calls wait for this pacer first and then for the client's governor, so the
    copy never goes faster than either allows.
    """

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._next = -math.inf
        self._lock: asyncio.Lock | None = None

    async def wait(self) -> None:
        """Wait for this pacer's next turn."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            loop = asyncio.get_running_loop()
            now = loop.time()
            if self._next > now:
                await asyncio.sleep(self._next - now)
                now = loop.time()
            self._next = max(now, self._next) + 1.0 / self.rate
