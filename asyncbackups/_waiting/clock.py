"""The poller's time: the running event loop's, or a clock a test moves by hand."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

__all__ = ["Clock", "Timer"]


class Timer(Protocol):
    """A callback waiting on a :class:`Clock`; ``asyncio.TimerHandle`` is one."""

    def cancel(self) -> None:
        """Do not run the callback after all."""
        ...


class Clock(Protocol):
    """Monotonic seconds and timers on them: all the poller asks of time.

    The running event loop is one (``loop.time()``, ``loop.call_at()``) and the default.
    A test passes a clock it advances itself, so what happens at a deadline or after a
    ``Retry-After`` is shown without waiting for it, whatever the machine's load.
    """

    def time(self) -> float:
        """Now, in seconds; only differences between readings mean anything."""
        ...

    def call_at(self, when: float, callback: Callable[[], object], /) -> Timer:
        """Run ``callback()`` in the loop once the clock reads ``when`` (at once if past)."""
        ...
