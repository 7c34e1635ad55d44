"""The records of the waits the poller follows: how each polls, what it saw, how it ends.

A :class:`Waiter` is one wait as the poller sees it. ``wait_until_completed`` has a
:class:`TaskWaiter`, with the updates its task has yet to hear; a fleet's servers have
plain waiters (*watches*) that report their end through ``on_done``. A fleet may hold a
hundred thousand, so a waiter is small: ``__slots__``, one :class:`Schedule` shared by
the fleet, and a brief tuple in place of a backup while nothing that matters changes.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from datetime import datetime
from typing import Any

from .._core.errors import (
    BackupFailedError,
    BackupsError,
    WaitTimeoutError,
)
from .._core.models import (
    Backup,
    BackupStatus,
    BackupType,
    ServerRef,
)

__all__ = ["Schedule", "TaskWaiter", "Waiter", "failed", "timed_out"]


class Schedule:
    """How one wait (or one fleet's waits) polls; shared by its waiters to save memory."""

    __slots__ = ("max_poll_interval", "max_retry_after", "poll_interval", "timeout")

    def __init__(
        self,
        *,
        poll_interval: float,
        max_poll_interval: float,
        max_retry_after: float,
        timeout: float | None = None,
    ) -> None:
        self.poll_interval = poll_interval
        self.max_poll_interval = max(max_poll_interval, poll_interval)
        self.max_retry_after = max_retry_after
        self.timeout = timeout  # a watch's deadline, from its start


class Waiter:
    """One wait's state as the poller sees it; kept small, a fleet has one per server.

    ``next_due`` is when it should be polled; ``earliest`` when a round may serve it
    already (waits due close together share one round). Both are times of the poller's
    clock, planned by :mod:`asyncbackups._waiting.planner`.
    """

    __slots__ = (
        "backup_id",
        "brief",
        "earliest",
        "error",
        "heard",
        "last",
        "last_error",
        "next_due",
        "on_done",
        "polls",
        "schedule",
        "server_id",
        "started",
    )

    def __init__(
        self,
        backup_id: int,
        last: Backup | None,
        schedule: Schedule,
        *,
        now: float,
        due: float,
        earliest: float,
        on_done: Callable[[Waiter], None] | None = None,
    ) -> None:
        self.backup_id = backup_id
        self.last = last
        self.server_id = last.server_id if last is not None else None
        self.schedule = schedule
        self.polls = 0
        self.started = now
        self.next_due = due
        self.earliest = earliest
        self.heard = False  # a poll has read this backup at least once
        self.error: BaseException | None = None
        self.last_error: BackupsError | None = None  # the latest failed poll, if unhealed
        self.on_done = on_done  # watches only: told once the wait is over
        # A watch holds what it saw as a small tuple rather than a Backup with its
        # ServerRef: name, created_at, status and description (see seen()).
        self.brief: tuple[str | None, datetime, BackupStatus, str | None] | None = None

    @property
    def backup_type(self) -> BackupType | None:
        if self.last is not None:
            return self.last.backup_type
        return BackupType.MANUAL if self.brief is not None else None

    def compact(self) -> None:
        """Hold the last backup seen as a brief (a watch of a manual backup only)."""
        last = self.last
        if last is not None and last.backup_type is BackupType.MANUAL and not last.message:
            self.brief = (last.server.name, last.created_at, last.status, last.description)
            self.last = None

    def seen(self) -> Backup | None:
        """The last state seen of the backup, ``None`` if none was ever read."""
        if self.last is not None or self.brief is None or self.server_id is None:
            return self.last
        name, created_at, status, description = self.brief
        return Backup(
            id=self.backup_id,
            server=ServerRef(id=self.server_id, name=name),
            backup_type=BackupType.MANUAL,
            status=status,
            size_mb=None,
            created_at=created_at,
            expires_at=None,
            description=description,
        )

    @property
    def status(self) -> BackupStatus | None:
        if self.last is not None:
            return self.last.status
        return self.brief[2] if self.brief is not None else None

    @property
    def deadline(self) -> float | None:
        """When a watch gives up (a task's wait has its own timeout instead)."""
        timeout = self.schedule.timeout if self.on_done is not None else None
        return None if timeout is None else self.started + timeout

    def polled(self, due: float, earliest: float) -> None:
        """Count a poll and plan the next one."""
        self.polls += 1
        self.next_due = due
        self.earliest = earliest

    def retire(self) -> None:
        """Never due again, in any round (the wait ended or left)."""
        self.earliest = self.next_due = math.inf


class TaskWaiter(Waiter):
    """A ``wait_until_completed`` call's waiter: the updates its task has yet to hear,
    and the future it sleeps on (a fleet's watches have neither)."""

    __slots__ = ("updates", "woken")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.updates: list[Backup] | None = None
        self.woken: asyncio.Future[None] | None = None

    async def news(self) -> None:
        """Return once there is an update or an error to handle."""
        if self.updates or self.error is not None:
            return
        self.woken = asyncio.get_running_loop().create_future()
        try:
            await self.woken
        finally:
            self.woken = None

    def wake(self) -> None:
        """Wake the task sleeping in :meth:`news`, if it sleeps."""
        woken = self.woken
        if woken is not None and not woken.done():
            woken.set_result(None)


def failed(backup: Backup) -> BackupFailedError:
    """The error a wait (a task's or a fleet's) ends with when its backup ``FAILED``."""
    return BackupFailedError(
        f"backup {backup.id} of server {backup.server_id} failed", backup=backup
    )


def timed_out(waiter: Waiter, timeout: float | None) -> WaitTimeoutError:
    """The error a wait ends with at its deadline, carrying the last backup seen."""
    last_error = waiter.last_error
    failing = f"; polls failing: {last_error}" if last_error is not None else ""
    within = f" within {timeout}s" if timeout is not None else " before its deadline"
    seen = waiter.seen()
    status = "never read" if seen is None else str(seen.status)
    return WaitTimeoutError(
        f"backup {waiter.backup_id} did not finish{within} (last status: {status}{failing})",
        backup=seen,
        last_error=last_error,
    )
