"""A clock for the poller that moves only when a test advances it.

It has what the poller asks of time (``time()`` and ``call_at()``, as the event loop
has): a test starts waits, calls ``await clock.advance(seconds)``, and sees what the
poller did by then, however loaded the machine is and without sleeping.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

# Loop turns given to the tasks a timer woke: a poll round takes a few (the poller
# wakes, reads a scripted page, hands a wait its backup, the wait's task resumes).
_TURNS = 50


class ManualTimer:
    """One callback waiting on a :class:`ManualClock`."""

    def __init__(self, when: float, callback: Callable[[], object]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class ManualClock:
    """Seconds that pass only through :meth:`advance`; timers fire as it passes them."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self._timers: list[ManualTimer] = []

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Callable[[], object], /) -> ManualTimer:
        timer = ManualTimer(when, callback)
        if when <= self.now:
            asyncio.get_running_loop().call_soon(self._fire, timer)
        else:
            self._timers.append(timer)
        return timer

    @property
    def pending(self) -> list[float]:
        """When the timers not yet fired nor cancelled are due, soonest first."""
        return sorted(timer.when for timer in self._timers if not timer.cancelled)

    async def advance(self, seconds: float) -> None:
        """Move on by ``seconds``: each timer passed fires at its own time, in order, and
        the tasks it woke run before the clock moves further."""
        target = self.now + seconds
        await settle()
        while True:
            due = [t for t in self._timers if not t.cancelled and t.when <= target]
            if not due:
                break
            timer = min(due, key=lambda t: t.when)
            self._timers.remove(timer)
            self.now = max(self.now, timer.when)
            self._fire(timer)
            await settle()
        self.now = target
        await settle()

    @staticmethod
    def _fire(timer: ManualTimer) -> None:
        if not timer.cancelled:
            timer.callback()


async def settle() -> None:
    """Let every task that can run do so, for a few loop turns."""
    for _ in range(_TURNS):
        await asyncio.sleep(0)
