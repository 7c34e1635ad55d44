"""``wait_until_completed`` and the poller that every wait on a client shares.

Each client has at most one poller task, alive while somebody waits. It runs in
rounds: a round reads the backup list once for every wait that is due - per server
when few servers are involved, across all servers when that takes fewer requests -
stops paging as soon as every wanted backup was seen, confirms any backup missing
from the list with a detail read, and hands each wait its backup. Waiting on N
backups therefore costs a few requests a round, not N.

A wait's own task only sleeps on its updates: callbacks run there, cancelling it
touches nothing else, and its deadline is wall-clock time, requests included.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
from collections.abc import Callable, Iterable
from typing import Any

from ._callbacks import call_back
from ._errors import (
    APIStatusError,
    BackupFailedError,
    BackupsError,
    NotFoundError,
    WaitTimeoutError,
)
from ._models import Backup, BackupStatus, BackupType
from ._reading import Reader
from ._retry_policy import Safety, is_retryable
from ._stats import Counters

__all__ = ["Poller"]

logger = logging.getLogger("asyncbackups")

# Intervals grow by this factor per poll, and vary by this fraction either way so that
# waits started together drift apart instead of polling in lockstep.
_GROWTH = 1.5
_JITTER = 0.15
# A wait is served by a round once half its interval has passed, so waits with close
# due times share one round instead of each triggering its own.
_EARLY_FRACTION = 0.5
_DEFAULT_PAGE_LENGTH = 100


class _Waiter:
    """One wait's state as the poller sees it."""

    __slots__ = (
        "backup_id",
        "backup_type",
        "earliest",
        "error",
        "heard",
        "last",
        "last_error",
        "max_poll_interval",
        "max_retry_after",
        "next_due",
        "poll_interval",
        "polls",
        "server_id",
        "updates",
        "woken",
    )

    def __init__(
        self,
        backup_id: int,
        last: Backup | None,
        *,
        poll_interval: float,
        max_poll_interval: float,
        max_retry_after: float,
        first_due: float,
    ) -> None:
        self.backup_id = backup_id
        self.last = last
        self.server_id = last.server_id if last is not None else None
        self.backup_type = last.backup_type if last is not None else None
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval
        self.max_retry_after = max_retry_after
        self.polls = 0
        self.next_due = first_due
        # Waits begun close together (a fleet's, say) share their first round.
        self.earliest = first_due - poll_interval * _EARLY_FRACTION
        self.heard = False  # a poll has read this backup at least once
        self.error: BaseException | None = None
        self.last_error: BackupsError | None = None  # the latest failed poll, if unhealed
        # A plain list and a future made only while the wait sleeps: ten thousand waits
        # each holding an Event and a deque would cost about 1.5 KB apiece more.
        self.updates: list[Backup] = []
        self.woken: asyncio.Future[None] | None = None

    def interval(self) -> float:
        """The pause before the next poll: growing, jittered, within the wait's bounds."""
        grown = self.poll_interval * _GROWTH ** min(self.polls, 64)
        jittered = grown * random.uniform(1 - _JITTER, 1 + _JITTER)
        return min(max(jittered, self.poll_interval), self.max_poll_interval)

    def schedule(self, now: float, *, at_least: float = 0.0) -> None:
        interval = max(self.interval(), at_least)
        self.polls += 1
        self.next_due = now + interval
        self.earliest = now + interval * _EARLY_FRACTION if not at_least else self.next_due

    def deliver(self, backup: Backup, now: float) -> None:
        self.last_error = None
        self.server_id = backup.server_id
        self.backup_type = backup.backup_type
        if not self.heard or backup != self.last:
            self.heard = True
            self.last = backup
            self.updates.append(backup)
            self.wake()
        self.schedule(now)

    def fail(self, error: BaseException) -> None:
        self.error = error
        self.wake()

    def wake(self) -> None:
        if self.woken is not None and not self.woken.done():
            self.woken.set_result(None)

    async def sleep(self) -> None:
        """Return once there is an update or an error to handle."""
        if self.updates or self.error is not None:
            return
        self.woken = asyncio.get_running_loop().create_future()
        try:
            await self.woken
        finally:
            self.woken = None


class _ServerWants:
    """What one round wants from one server's list."""

    __slots__ = ("ids", "types")

    def __init__(self) -> None:
        self.ids: set[int] = set()
        self.types: set[BackupType | None] = set()


class Poller:
    """The shared poller of one client. Created by the client; one task at most."""

    def __init__(self, reader: Reader, counters: Counters) -> None:
        self._reader = reader
        self._counters = counters
        self._waiters: dict[int, list[_Waiter]] = {}
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        self._warned: set[str] = set()
        # What reading each way cost last time, in pages, to choose the cheaper one.
        self._across_pages: dict[str | None, int] = {}
        self._server_pages: dict[int, int] = {}

    # -- the waiting side -------------------------------------------------------------

    async def wait(
        self,
        target: Backup | int,
        *,
        timeout: float | None,
        poll_interval: float,
        max_poll_interval: float,
        max_retry_after: float,
        on_update: Callable[[Backup], Any] | None,
    ) -> Backup:
        """Wait for ``target`` to finish; see ``BackupsAPI.wait_until_completed``."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        last, backup_id = (target, target.id) if isinstance(target, Backup) else (None, target)
        if last is not None and last.is_final:
            await call_back(on_update, last)
            return _settle(last)
        # A Backup was just read, so its first poll can wait; a bare ID is read at once.
        waiter = _Waiter(
            backup_id,
            last,
            poll_interval=poll_interval,
            max_poll_interval=max_poll_interval,
            max_retry_after=max_retry_after,
            first_due=now + (poll_interval if last is not None else 0.0),
        )
        deadline = None if timeout is None else now + timeout
        self._add(waiter)
        try:
            async with asyncio.timeout_at(deadline):
                return await self._follow(waiter, on_update)
        except TimeoutError:
            if deadline is None or loop.time() < deadline:
                raise  # the callback's own TimeoutError, not our deadline
        finally:
            self._remove(waiter)
        # Raised outside the handler: the deadline's own TimeoutError is no context.
        last_error = waiter.last_error
        failing = f"; polls failing: {last_error}" if last_error is not None else ""
        raise WaitTimeoutError(
            f"backup {waiter.backup_id} did not finish within {timeout}s "
            f"(last status: {_status_of(waiter.last)}{failing})",
            backup=waiter.last,
            last_error=last_error,
        )

    async def _follow(self, waiter: _Waiter, on_update: Callable[[Backup], Any] | None) -> Backup:
        while True:
            await waiter.sleep()
            updates, waiter.updates = waiter.updates, []
            for backup in updates:
                await call_back(on_update, backup)
                if backup.is_final:
                    return _settle(backup)
                if not backup.status.is_known and backup.status not in self._warned:
                    self._warned.add(backup.status)
                    logger.warning(
                        "backup %d has status %r, which this SDK does not know; "
                        "waiting on as if it were still in progress",
                        backup.id,
                        str(backup.status),
                    )
            if waiter.error is not None:
                raise waiter.error

    def _add(self, waiter: _Waiter) -> None:
        self._waiters.setdefault(waiter.backup_id, []).append(waiter)
        self._changed.set()
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="asyncbackups-poller")

    def _remove(self, waiter: _Waiter) -> None:
        waiters = self._waiters.get(waiter.backup_id)
        if waiters is not None:
            with contextlib.suppress(ValueError):
                waiters.remove(waiter)
            if not waiters:
                del self._waiters[waiter.backup_id]
        if not self._waiters and self._task is not None:
            # Nobody waits any more: stop now, even in the middle of a round's paging.
            task, self._task = self._task, None
            task.cancel()

    async def aclose(self) -> None:
        """Stop polling; waits still registered fail with ``RuntimeError``."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for waiters in list(self._waiters.values()):
            for waiter in waiters:
                waiter.fail(RuntimeError("the BackupsClient was closed during the wait"))

    # -- the polling side -------------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._waiters:
                everyone = [w for waiters in self._waiters.values() for w in waiters]
                now = loop.time()
                delay = min(w.next_due for w in everyone) - now
                if delay > 0:
                    self._changed.clear()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(delay):
                            await self._changed.wait()
                    continue
                await self._round([w for w in everyone if w.earliest <= now])
        except Exception as error:  # a bug here must not strand the waits
            logger.exception("the asyncbackups poller failed")
            for waiters in list(self._waiters.values()):
                for waiter in waiters:
                    waiter.fail(error)
        finally:
            if self._task is asyncio.current_task():
                self._task = None

    async def _round(self, due: list[_Waiter]) -> None:
        self._counters.poll_rounds += 1
        by_server: dict[int, _ServerWants] = {}
        blind: set[int] = set()
        for waiter in due:
            if waiter.server_id is None:
                blind.add(waiter.backup_id)
            else:
                wants = by_server.setdefault(waiter.server_id, _ServerWants())
                wants.ids.add(waiter.backup_id)
                wants.types.add(waiter.backup_type)
        seen: dict[int, Backup] = {}
        failures: dict[int, BackupsError] = {}
        unsure: set[int] = set()
        if by_server:
            await self._read_lists(by_server, seen, failures, unsure)
        wanted = {backup_id for wants in by_server.values() for backup_id in wants.ids}
        # Missing from a list that was read whole, or on a page that vanished: the
        # detail route says whether the backup itself is gone.
        missing = (wanted - seen.keys() - failures.keys()) | blind | unsure
        missing &= self._waiters.keys()
        if missing:
            await self._read_details(missing, seen, failures)
        now = asyncio.get_running_loop().time()
        for backup_id, backup in seen.items():
            for waiter in self._waiters.get(backup_id, ()):
                waiter.deliver(backup, now)
        self._log_outages(failures)
        for backup_id, error in failures.items():
            for waiter in self._waiters.get(backup_id, ()):
                self._after_failure(waiter, error, now)

    def _log_outages(self, failures: dict[int, BackupsError]) -> None:
        # One line per failed read, not per wait: a fleet's waits share their reads.
        by_error: dict[int, tuple[BackupsError, int]] = {}
        for error in failures.values():
            held = by_error.get(id(error))
            by_error[id(error)] = (error, 1 if held is None else held[1] + 1)
        for error, count in by_error.values():
            if isinstance(error, NotFoundError):
                continue
            logger.warning(
                "polling %d backup%s failed after retries (%s); waits go on until their deadlines",
                count,
                "" if count == 1 else "s",
                error,
            )

    def _after_failure(self, waiter: _Waiter, error: BackupsError, now: float) -> None:
        retry_after = error.retry_after if isinstance(error, APIStatusError) else None
        if (
            not waiter.heard
            or isinstance(error, NotFoundError)
            or not is_retryable(error, Safety.READ, max_retry_after=math.inf)
            or (retry_after is not None and retry_after > waiter.max_retry_after)
        ):
            # A wait that never read its backup fails at once (the API is unreachable
            # or refuses us: waiting out the deadline would only hide it), and so does
            # one told to pause longer than the client accepts.
            waiter.fail(error)
            return
        # A passing outage: ridden out until the deadline, never polled sooner than a
        # Retry-After, and reported on the WaitTimeoutError if it outlasts the wait.
        waiter.last_error = error
        waiter.schedule(now, at_least=retry_after or 0.0)

    @staticmethod
    def _type_filter(types: Iterable[BackupType | None]) -> str | None:
        kinds = set(types)
        if len(kinds) == 1 and None not in kinds:
            return str(next(iter(kinds)))
        return None

    async def _read_lists(
        self,
        by_server: dict[int, _ServerWants],
        seen: dict[int, Backup],
        failures: dict[int, BackupsError],
        unsure: set[int],
    ) -> None:
        type_filter = self._type_filter(t for wants in by_server.values() for t in wants.types)
        wanted = {backup_id for wants in by_server.values() for backup_id in wants.ids}
        per_server_cost = sum(self._server_pages.get(server, 1) for server in by_server)
        across_cost = self._across_pages.get(
            type_filter, max(1, math.ceil(len(wanted) / _DEFAULT_PAGE_LENGTH))
        )
        if len(by_server) > 1 and across_cost < per_server_cost:
            params = {} if type_filter is None else {"backup_type": type_filter}
            self._across_pages[type_filter] = await self._read(
                params, wanted, seen, failures, unsure
            )
            return

        async def read_server(server_id: int, wants: _ServerWants) -> None:
            params = {"server_id": str(server_id)}
            kind = self._type_filter(wants.types)
            if kind is not None:
                params["backup_type"] = kind
            self._server_pages[server_id] = await self._read(
                params, wants.ids, seen, failures, unsure
            )

        await asyncio.gather(*(read_server(s, wants) for s, wants in by_server.items()))

    async def _read(
        self,
        params: dict[str, str],
        wanted: set[int],
        seen: dict[int, Backup],
        failures: dict[int, BackupsError],
        unsure: set[int],
    ) -> int:
        """Page through one list until every wanted backup still waited for was seen.

        Returns the pages read. A failed read hurts only the backups it was still
        looking for; a 404 for a page (DRF's "Invalid page." when the list shrank while
        it was paged) leaves them to the detail route rather than failing their waits.
        """
        waiters = self._waiters
        remaining = set(wanted)
        pages = 0
        try:
            async with contextlib.aclosing(self._reader.pages(params)) as walk:
                async for page in walk:
                    pages += 1
                    for backup in page.backups:
                        if backup.id in waiters:
                            seen[backup.id] = backup
                            remaining.discard(backup.id)
                    remaining &= waiters.keys()  # waits that left need no more pages
                    if not remaining:
                        break
        except NotFoundError:
            unsure |= remaining
        except BackupsError as error:
            for backup_id in remaining:
                failures[backup_id] = error
        return max(pages, 1)

    async def _read_details(
        self, ids: set[int], seen: dict[int, Backup], failures: dict[int, BackupsError]
    ) -> None:
        async def read_one(backup_id: int) -> None:
            try:
                seen[backup_id] = await self._reader.read_backup(backup_id)
            except BackupsError as error:
                failures[backup_id] = error

        await asyncio.gather(*(read_one(backup_id) for backup_id in ids))


def _status_of(backup: Backup | None) -> str:
    return "never read" if backup is None else str(backup.status)


def _settle(backup: Backup) -> Backup:
    if backup.status is BackupStatus.FAILED:
        raise BackupFailedError(
            f"backup {backup.id} of server {backup.server_id} failed", backup=backup
        )
    return backup
