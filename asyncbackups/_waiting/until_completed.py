"""``wait_until_completed``: one backup, followed in the caller's own task.

The wait registers a :class:`~asyncbackups._waiting.waiters.TaskWaiter` with the client's
shared :class:`~asyncbackups._waiting.poller.Poller` and sleeps until the poller hands
it news. Callbacks run here, in the caller's task, so what they raise reaches the
caller; cancelling the wait cancels only the wait. Its deadline runs on the poller's
clock and covers everything, requests and callbacks included.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from .._core.callbacks import call_back
from .._core.models import Backup, BackupStatus
from . import planner
from .poller import Poller
from .waiters import Schedule, TaskWaiter, failed, timed_out

__all__ = ["wait_until_completed"]


async def wait_until_completed(
    poller: Poller,
    target: Backup | int,
    *,
    timeout: float | None,
    schedule: Schedule,
    on_update: Callable[[Backup], Any] | None,
) -> Backup:
    """Wait for ``target`` to finish; see ``BackupsAPI.wait_until_completed``."""
    clock = poller.clock()
    now = clock.time()
    last, backup_id = (target, target.id) if isinstance(target, Backup) else (None, target)
    if last is not None and last.is_final:
        await call_back(on_update, last)
        return _settle(last)
    # A Backup was just read, so its first poll can wait; a bare ID is read at once.
    plan = planner.next_poll(now, schedule.poll_interval if last is not None else 0.0)
    waiter = TaskWaiter(backup_id, last, schedule, now=now, due=plan.due, earliest=plan.earliest)
    poller.add(waiter)
    # The deadline is a timer on the clock that ends this scope, whatever it awaits; a
    # TimeoutError the callback raises itself is not the deadline's.
    deadline = asyncio.timeout(None)
    try:
        async with deadline:
            timer = None
            if timeout is not None:
                timer = clock.call_at(now + timeout, lambda: _expire(deadline))
            try:
                return await _follow(waiter, on_update)
            finally:
                if timer is not None:
                    timer.cancel()
    except TimeoutError:
        if not deadline.expired():
            raise
    finally:
        poller.remove(waiter)
    # Raised outside the handler: the deadline's own TimeoutError is no context.
    raise timed_out(waiter, timeout)


async def _follow(waiter: TaskWaiter, on_update: Callable[[Backup], Any] | None) -> Backup:
    while True:
        await waiter.news()
        updates, waiter.updates = waiter.updates or [], None
        for backup in updates:
            await call_back(on_update, backup)
            if backup.is_final:
                return _settle(backup)
        if waiter.error is not None:
            raise waiter.error


def _expire(deadline: asyncio.Timeout) -> None:
    deadline.reschedule(asyncio.get_running_loop().time())


def _settle(backup: Backup) -> Backup:
    if backup.status is BackupStatus.FAILED:
        raise failed(backup)
    return backup
