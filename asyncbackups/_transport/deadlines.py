"""Time limits for many attempts at once, on a handful of timers.

Each attempt of a request must end within the client's ``timeout``. aiohttp can enforce
that itself (``ClientTimeout(total=...)``), but at a price paid on every request: a timer
handle pushed onto the event loop's heap and cancelled again, and a timer context
entered around each read. Measured on the static responder of
``benchmarks/bench_throughput.py``, that is about 8 us of the ~80 us of CPU a kept-alive
GET costs; this module does the same job for well under one.

Deadlines are grouped in short slices of time: one timer per slice, however many
attempts end in it, so a deadline fires a little late (1-2% of the timeout). An attempt
still running when its slice's timer fires has its task cancelled, exactly as
:func:`asyncio.timeout` does it: the attempt learns the cancellation was the deadline's
with :meth:`Deadline.expired_here`, which also takes the cancellation back, so that a
cancellation from anyone else is never mistaken for a time-out, nor swallowed.
"""

from __future__ import annotations

import asyncio
import math

__all__ = ["Deadline", "Deadlines"]

# Deadlines share a timer per slice of this share of their time, and fire one to two
# slices late: a 30 s timeout after 30.3-30.6 s, a 0.2 s one after 202-204 ms. (aiohttp
# itself rounds a timeout past 5 s up to the next whole second.)
_LATENESS = 0.01


_Slice = tuple[float, int]


class Deadline:
    """One attempt's deadline: the task it limits, its slice, and whether it fired."""

    __slots__ = ("_cancelling", "_ended", "_expired", "_slice", "_task", "fired")

    def __init__(self, task: asyncio.Task[object], where: _Slice) -> None:
        self._task = task
        self._slice = where
        # Cancellations already asked of the task: those are not ours to take back.
        self._cancelling = task.cancelling()
        self._ended = False
        self._expired: bool | None = None
        self.fired = False

    def _fire(self) -> None:
        if not self._ended:
            self.fired = True
            self._task.cancel()

    def expired_here(self) -> bool:
        """Whether the deadline fired and nobody else cancelled the task meanwhile.

        Once the attempt ended: the first call after the deadline fired takes its
        cancellation back (the attempt then reports a time-out); later calls give the
        same answer. ``False`` after it fired means another cancellation is pending as
        well, and must be let through.
        """
        if not self.fired:
            return False
        if self._expired is None:
            self._expired = self._task.uncancel() <= self._cancelling
        return self._expired


class Deadlines:
    """The deadlines of one client's attempts in flight; see the module docstring.

    Deadlines are grouped in slices a hundredth of their time long: every attempt
    ending in one slice shares its one timer, which fires at the end of the next. A
    slice lives until its timer fires, even once empty, so that a steady flow of
    requests reuses it rather than making a timer each (at 10,000 requests a second
    and a 30 s timeout, about a hundred slices).
    """

    __slots__ = ("_loop", "_slices")

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._slices: dict[_Slice, tuple[asyncio.TimerHandle, set[Deadline]]] = {}

    def start(self, seconds: float) -> Deadline:
        """A deadline ``seconds`` from now for the running task; :meth:`finish` it when
        the attempt ends."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self.close()  # a borrowed session moved to another loop: start afresh there
            self._loop = loop
        task = asyncio.current_task(loop)
        if task is None:
            raise RuntimeError("a request must run inside an asyncio task")
        width = seconds * _LATENESS
        # The slice after the one the deadline falls in, so that it never fires early.
        key = (width, math.ceil((loop.time() + seconds) / width) + 1)
        entry = self._slices.get(key)
        if entry is None:
            timer = loop.call_at(key[1] * width, self._expire, key)
            entry = self._slices[key] = (timer, set())
        deadline = Deadline(task, key)
        entry[1].add(deadline)
        return deadline

    def finish(self, deadline: Deadline) -> None:
        """The attempt ended: its deadline no longer applies. Safe to call twice."""
        deadline._ended = True
        entry = self._slices.get(deadline._slice)
        if entry is not None:
            entry[1].discard(deadline)

    def _expire(self, key: _Slice) -> None:
        entry = self._slices.pop(key, None)
        if entry is not None and entry[1]:
            assert self._loop is not None
            # Fired on the loop's next pass, not from within this timer: a loop running
            # late runs every timer due in one pass, and aiohttp's limit on opening a
            # connection, due just before, must be seen first, so that a connection
            # not opened in time is still reported as never sent. An answer that
            # arrived in that pass is likewise kept rather than cut off.
            self._loop.call_soon(_fire_all, entry[1])

    def close(self) -> None:
        """Cancel every timer; deadlines still in flight will never fire."""
        for timer, _ in self._slices.values():
            timer.cancel()
        self._slices.clear()


def _fire_all(deadlines: set[Deadline]) -> None:
    for deadline in deadlines:
        deadline._fire()
