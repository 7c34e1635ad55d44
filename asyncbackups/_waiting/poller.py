"""The poller that every wait on a client shares: one task, polling in rounds.

Each client has at most one poller task, alive while somebody waits. It runs in
rounds: a round reads the backup list once for every wait that is due - per server
when few servers are involved, across all servers when that takes fewer requests -
stops paging as soon as every wanted backup was seen, confirms any backup missing
from the list with a detail read, and hands each wait its backup page by page.
Waiting on N backups therefore costs a few requests a round, not N.

Two kinds of wait share it. ``wait_until_completed``
(:mod:`~asyncbackups._waiting.until_completed`) adds a waiter and sleeps in its caller's
task until the poller hands it news. A fleet's waits are *watches*
(:meth:`Poller.watch`): a small record each (:mod:`~asyncbackups._waiting.waiters`), with
no task at all, whose end (final status, failure, deadline) the poller reports through
a callback.

When each wait is polled, and how a round reads the list, is the plan of
:mod:`~asyncbackups._waiting.planner`; this module keeps the state it is computed from
(what was learned, what reading cost) and does the reading. Time is a
:class:`~asyncbackups._waiting.clock.Clock`: the event loop's, or a test's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncGenerator, Callable, Iterator, Mapping
from typing import Protocol

from .._calls.pagination import Page
from .._calls.retry_policy import (
    Safety,
    is_retryable,
)
from .._core.errors import (
    APIStatusError,
    BackupsError,
    NotFoundError,
    RateLimitError,
)
from .._core.models import (
    Backup,
    BackupStatus,
)
from .._core.stats import Counters
from . import planner
from .clock import Clock
from .waiters import (
    Schedule,
    TaskWaiter,
    Waiter,
    failed,
    timed_out,
)

__all__ = ["BackupReader", "Poller"]

logger = logging.getLogger("asyncbackups")


class BackupReader(Protocol):
    """What the poller reads through (the client's ``Reader``, in the poller's lane)."""

    def pages(self, params: Mapping[str, str]) -> AsyncGenerator[Page]:
        """Each page of the list route for ``params``, following ``next`` links."""
        ...

    async def read_backup(self, backup_id: int) -> Backup:
        """One backup from its detail route; ``NotFoundError`` when there is none."""
        ...


class Poller:
    """The shared poller of one client. Created by the client; one task at most.

    ``clock`` is the time it plans and sleeps by; the running loop's by default.
    """

    def __init__(
        self, reader: BackupReader, counters: Counters, *, clock: Clock | None = None
    ) -> None:
        self._reader = reader
        self._counters = counters
        self._given_clock = clock
        # One waiter per backup as a rule; more than one only when several waits follow
        # the same backup, which is rare enough to keep out of the common record.
        self._waiters: dict[int, Waiter] = {}
        self._more: dict[int, list[Waiter]] = {}
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        self._warned: set[str] = set()
        # What reading each way cost last time, in pages, to choose the cheaper one.
        self._across_pages: dict[str | None, int] = {}
        self._server_pages: dict[int, int] = {}
        # How long watched backups took to end (seconds from their watch), learned from
        # one watch polled closely (the probe); the others are polled in a few shared
        # rounds spread over when they are expected to end.
        self._took: float | None = None
        self._probe: Waiter | None = None
        # The probe's age when last seen running; a watch begins with its backup running.
        self._probe_age = 0.0
        self._watches = 0
        self._round_gate = 0.0
        self._sleeping_until = math.inf

    def clock(self) -> Clock:
        """The clock waits are planned by: the one given, else the running loop."""
        # Resolved at use: a client (and its poller) may be made outside any loop.
        return self._given_clock if self._given_clock is not None else asyncio.get_running_loop()

    def _now(self) -> float:
        return self.clock().time()

    # -- the waiting side -------------------------------------------------------------

    def watch(
        self,
        backup: Backup,
        *,
        schedule: Schedule,
        on_done: Callable[[Waiter], None],
    ) -> Waiter:
        """Follow ``backup`` without a task; ``on_done(waiter)`` runs once it is over.

        Then ``waiter.seen()`` is the last state seen and ``waiter.error`` why the wait
        failed (``BackupFailedError``, ``WaitTimeoutError``...), or ``None``. The wait
        gives up ``schedule.timeout`` seconds after it began.
        """
        now = self._now()
        due = planner.first_watch_due(
            now,
            poll_interval=schedule.poll_interval,
            max_poll_interval=schedule.max_poll_interval,
            took=self._took,
            probing=self._probe is not None,
            watches=self._watches,
        )
        waiter = Waiter(
            backup.id, backup, schedule, now=now, due=due, earliest=due, on_done=on_done
        )
        waiter.compact()
        if self._took is None and self._probe is None:
            self._probe = waiter
        self._watches += 1
        if self._watches == planner.LARGE_FLEET and self._took is None:
            # The fleet just became large: its first watches, planned like small
            # fleets', wait for the probe too.
            blind = planner.blind_due(now, max_poll_interval=schedule.max_poll_interval)
            for other in self._everyone():
                if other.on_done is not None and other is not self._probe and other.polls == 0:
                    other.next_due = other.earliest = max(other.next_due, blind)
        self.add(waiter)
        return waiter

    def forget_all(self, on_done: Callable[[Waiter], None]) -> None:
        """Stop following, without telling them, the watches ``on_done`` would hear of
        (their fleet ended early)."""
        for waiter in [w for w in self._everyone() if w.on_done is on_done]:
            waiter.on_done = None
            self.remove(waiter)

    def add(self, waiter: Waiter) -> None:
        """Follow ``waiter`` from now on (a task's wait; watches go through :meth:`watch`)."""
        held = self._waiters.setdefault(waiter.backup_id, waiter)
        if held is not waiter:
            self._more.setdefault(waiter.backup_id, []).append(waiter)
        if waiter.earliest < self._sleeping_until:
            # Woken only when this wait is due before the poller would look anyway: a
            # fleet adding a hundred thousand watches must not wake it each time.
            self._changed.set()
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="asyncbackups-poller")

    def remove(self, waiter: Waiter) -> None:
        """Stop following ``waiter``: it is never due again."""
        waiter.retire()
        backup_id = waiter.backup_id
        more = self._more.get(backup_id)
        if self._waiters.get(backup_id) is waiter:
            if more:
                self._waiters[backup_id] = more.pop(0)
                if not more:
                    del self._more[backup_id]
            else:
                del self._waiters[backup_id]
        elif more is not None:
            with contextlib.suppress(ValueError):
                more.remove(waiter)
            if not more:
                del self._more[backup_id]
        if not self._waiters and self._task is not None:
            # Nobody waits any more: stop now, even in the middle of a round's paging.
            task, self._task = self._task, None
            task.cancel()

    def _waiters_of(self, backup_id: int) -> list[Waiter]:
        first = self._waiters.get(backup_id)
        if first is None:
            return []
        return [first, *self._more.get(backup_id, ())]

    def _everyone(self) -> Iterator[Waiter]:
        yield from self._waiters.values()
        for more in self._more.values():
            yield from more

    async def aclose(self) -> None:
        """Stop polling; waits still registered fail with ``RuntimeError``."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for waiter in list(self._everyone()):
            self._fail(waiter, RuntimeError("the BackupsClient was closed during the wait"))

    # -- what a poll saw --------------------------------------------------------------

    def _deliver(self, waiter: Waiter, backup: Backup, now: float) -> None:
        waiter.last_error = None
        waiter.server_id = backup.server_id
        changed = not waiter.heard or backup != waiter.last
        waiter.heard = True
        if (
            waiter.on_done is None
            or backup.is_final
            or backup.status != waiter.status
            or backup.size_mb is not None
        ):
            # Held anew, unless a watch saw nothing that matters change: a fleet of a
            # hundred thousand must not hold a fresh copy of every backup per round.
            waiter.last, waiter.brief = backup, None
        if not backup.status.is_known and backup.status not in self._warned:
            self._warned.add(backup.status)
            logger.warning(
                "backup %d has status %r, which this SDK does not know; "
                "waiting on as if it were still in progress",
                backup.id,
                str(backup.status),
            )
        if waiter.on_done is not None:
            if backup.is_final:
                if self._took is None:
                    age = now - waiter.started
                    seen_running = self._probe_age if waiter is self._probe else None
                    self._learn(planner.learned_duration(age, last_seen_running=seen_running))
                self._finish(
                    waiter, failed(backup) if backup.status is BackupStatus.FAILED else None
                )
                return
        elif changed and isinstance(waiter, TaskWaiter):
            if waiter.updates is None:
                waiter.updates = []
            waiter.updates.append(backup)
            waiter.wake()
        self._plan_after_read(waiter, now)

    def _plan_after_read(self, waiter: Waiter, now: float) -> None:
        schedule = waiter.schedule
        if waiter is self._probe:
            self._probe_age = now - waiter.started
            due = planner.probe_due(
                now, started=waiter.started, max_poll_interval=schedule.max_poll_interval
            )
            waiter.polled(due, due)
        elif waiter.on_done is not None and waiter.earliest > now:
            pass  # a watch read in passing, not yet due: its plan stands
        elif waiter.on_done is not None and self._took is not None:
            # Past its expected end: look again soon.
            due = planner.overdue_due(
                now, took=self._took, max_poll_interval=schedule.max_poll_interval
            )
            waiter.polled(due, due)
        else:
            self._plan_next(waiter, now)

    def _plan_next(self, waiter: Waiter, now: float, *, at_least: float = 0.0) -> None:
        """Plan a wait's next poll on its growing interval, never before ``at_least``."""
        pause = planner.interval(
            waiter.polls,
            poll_interval=waiter.schedule.poll_interval,
            max_poll_interval=waiter.schedule.max_poll_interval,
            jitter=planner.jitter(),
        )
        waiter.polled(*planner.next_poll(now, pause, at_least=at_least))

    # -- ending a wait ----------------------------------------------------------------

    def _fail(self, waiter: Waiter, error: BaseException) -> None:
        if waiter.on_done is not None:
            self._finish(waiter, error)
        else:
            waiter.error = error
            if isinstance(waiter, TaskWaiter):
                waiter.wake()

    def _finish(self, waiter: Waiter, error: BaseException | None) -> None:
        waiter.error = error
        on_done, waiter.on_done = waiter.on_done, None
        if on_done is not None:
            self._watches -= 1
        if waiter is self._probe:
            self._probe = None
            if self._took is None:
                self._next_probe()
        self.remove(waiter)
        if on_done is not None:
            on_done(waiter)

    def _next_probe(self) -> None:
        """The probe ended without teaching anything (it timed out, say): the oldest
        watch left takes its place."""
        watches = [w for w in self._everyone() if w.on_done is not None]
        if watches:
            probe = min(watches, key=lambda waiter: waiter.started)
            probe.next_due = probe.earliest = self._now()
            self._probe = probe
            self._probe_age = 0.0

    def _learn(self, took: float) -> None:
        """How long a backup took: plan every watch still blind from it."""
        self._took = took
        for waiter in self._everyone():
            if waiter.on_done is not None and waiter.polls == 0:
                waiter.next_due = waiter.earliest = waiter.started + took

    # -- the polling side -------------------------------------------------------------

    async def _run(self) -> None:
        try:
            while self._waiters:
                now = self._now()
                self._expire(now)
                if not self._waiters:
                    break
                wake, due, urgent = self._due(now)
                if not due or (not urgent and now < self._round_gate):
                    await self._nap(min(wake, self._round_gate) if due else wake)
                    continue
                await self._round(due)
                if self._watches:
                    now = self._now()
                    self._round_gate = now + self._gap(now)
        except Exception as error:  # a bug here must not strand the waits
            logger.exception("the asyncbackups poller failed")
            for waiter in list(self._everyone()):
                self._fail(waiter, error)
        finally:
            if self._task is asyncio.current_task():
                self._task = None

    async def _nap(self, until: float) -> None:
        """Sleep until the clock reads ``until``, or until a wait due sooner arrives."""
        self._changed.clear()
        self._sleeping_until = until
        timer = self.clock().call_at(until, self._changed.set) if until < math.inf else None
        try:
            await self._changed.wait()
        finally:
            if timer is not None:
                timer.cancel()
            self._sleeping_until = -math.inf

    def _due(self, now: float) -> tuple[float, list[Waiter], bool]:
        """When to look next, who is due now, and whether one of them cannot wait.

        Task waits and the probe are served as soon as they are due; a fleet's other
        watches wait for the round gate, so that their rounds stay few.
        """
        wake = math.inf
        due: list[Waiter] = []
        urgent = False
        probe = self._probe
        for waiter in self._everyone():
            if waiter.earliest <= now:
                due.append(waiter)
                urgent = urgent or waiter.on_done is None or waiter is probe
            wake = min(wake, waiter.next_due)
            deadline = waiter.deadline
            if deadline is not None:
                wake = min(wake, deadline)
        return wake, due, urgent

    def _gap(self, now: float) -> float:
        """How long the next round of watches waits after this one (see the planner)."""
        latest = now
        cap = math.inf
        for waiter in self._everyone():
            if waiter.on_done is not None:
                latest = max(latest, waiter.next_due)
                cap = min(cap, waiter.schedule.max_poll_interval)
        return planner.round_gap(
            now,
            watches=self._watches,
            pages_across=max(self._across_pages.values(), default=0),
            latest_due=latest,
            max_poll_interval=cap,
            took=self._took,
        )

    def _expire(self, now: float) -> None:
        expired = []
        for waiter in self._everyone():
            deadline = waiter.deadline
            if deadline is not None and deadline <= now:
                expired.append(waiter)
        for waiter in expired:
            self._finish(waiter, timed_out(waiter, None))

    async def _round(self, due: list[Waiter]) -> None:
        """Read what the due waits need and hand it out."""
        self._counters.poll_rounds += 1
        started = self._now()
        known = [waiter for waiter in due if waiter.server_id is not None]
        failures: dict[int, BackupsError] = {}
        if known:
            await self._read_lists(known, started, failures)
        # Missing from a list that was read whole, or on a page that vanished: the
        # detail route says whether the backup itself is gone.
        missing = {
            waiter.backup_id
            for waiter in due
            if _unserved(waiter, started) and waiter.backup_id not in failures
        }
        if missing:
            await self._read_details(missing, failures)
        now = self._now()
        self._log_outages(failures)
        for backup_id, error in failures.items():
            for waiter in self._waiters_of(backup_id):
                self._after_failure(waiter, error, now)

    def _log_outages(self, failures: dict[int, BackupsError]) -> None:
        # One line per failed read, not per wait: a fleet's waits share their reads.
        by_error: dict[int, tuple[BackupsError, int]] = {}
        for error in failures.values():
            held = by_error.get(id(error))
            by_error[id(error)] = (error, 1 if held is None else held[1] + 1)
        for error, count in by_error.values():
            if isinstance(error, NotFoundError | RateLimitError):
                continue  # gone is news for the wait; throttled is only backpressure
            logger.warning(
                "polling %d backup%s failed after retries (%s); waits go on until their deadlines",
                count,
                "" if count == 1 else "s",
                error,
            )

    def _after_failure(self, waiter: Waiter, error: BackupsError, now: float) -> None:
        retry_after = error.retry_after if isinstance(error, APIStatusError) else None
        if isinstance(error, RateLimitError):
            # Throttled: backpressure, never a failure, unless the pause asked for runs
            # past the wait's deadline (or what the client accepts): then at once.
            deadline = waiter.deadline
            pause = retry_after or 0.0
            if pause > waiter.schedule.max_retry_after or (
                deadline is not None and now + pause > deadline
            ):
                left = "no time" if deadline is None else f"{max(0.0, deadline - now):.0f}s"
                error = RateLimitError(
                    f"{error.message}; the API asks to wait {pause:g}s, and this wait has "
                    f"{left} left",
                    status_code=error.status_code,
                    body=error.body,
                    method=error.method,
                    url=error.url,
                    retry_after=retry_after,
                    headers=error.headers,
                    request_id=error.request_id,
                )
                self._fail(waiter, error)
                return
            waiter.last_error = error
            self._plan_next(waiter, now, at_least=pause)
            return
        if (
            not waiter.heard
            or isinstance(error, NotFoundError)
            or not is_retryable(error, Safety.READ, max_retry_after=math.inf)
            or (retry_after is not None and retry_after > waiter.schedule.max_retry_after)
        ):
            # A wait that never read its backup fails at once (the API is unreachable
            # or refuses us: waiting out the deadline would only hide it), and so does
            # one told to pause longer than the client accepts.
            self._fail(waiter, error)
            return
        # A passing outage: ridden out until the deadline, never polled sooner than a
        # Retry-After, and reported on the WaitTimeoutError if it outlasts the wait.
        waiter.last_error = error
        self._plan_next(waiter, now, at_least=retry_after or 0.0)

    @staticmethod
    def _type_filter(waiters: list[Waiter]) -> str | None:
        kinds = {waiter.backup_type for waiter in waiters}
        if len(kinds) == 1 and None not in kinds:
            return str(next(iter(kinds)))
        return None

    async def _read_lists(
        self, known: list[Waiter], started: float, failures: dict[int, BackupsError]
    ) -> None:
        type_filter = self._type_filter(known)
        across = planner.across_cost(self._across_pages.get(type_filter), wanted=len(known))
        servers = (waiter.server_id for waiter in known if waiter.server_id is not None)
        if planner.reads_across(servers, across_cost=across, server_pages=self._server_pages):
            params = {} if type_filter is None else {"backup_type": type_filter}
            self._across_pages[type_filter] = await self._read(params, known, started, failures)
            return
        by_server: dict[int, list[Waiter]] = {}
        for waiter in known:
            if waiter.server_id is not None:
                by_server.setdefault(waiter.server_id, []).append(waiter)

        async def read_server(server_id: int, waiters: list[Waiter]) -> None:
            params = {"server_id": str(server_id)}
            kind = self._type_filter(waiters)
            if kind is not None:
                params["backup_type"] = kind
            self._server_pages[server_id] = await self._read(params, waiters, started, failures)

        await asyncio.gather(*(read_server(s, waiters) for s, waiters in by_server.items()))

    async def _read(
        self,
        params: dict[str, str],
        wanted: list[Waiter],
        started: float,
        failures: dict[int, BackupsError],
    ) -> int:
        """Page through one list until every wanted wait still going was served.

        Each page's backups are handed to their waits as the page arrives, so a round
        over a large fleet holds one page of backups, and no set of its IDs. A wait is
        served once its next poll lies past the round's start. Returns the pages read.
        A failed read hurts only the waits it was still serving; a 404 for a page
        (DRF's "Invalid page." when the list shrank while it was paged) leaves them to
        the detail route rather than failing their waits.
        """
        pages = 0
        unserved = sum(1 for waiter in wanted if _unserved(waiter, started))
        try:
            async with contextlib.aclosing(self._reader.pages(params)) as walk:
                async for page in walk:
                    pages += 1
                    now = self._now()
                    for backup in page.backups:
                        for waiter in self._waiters_of(backup.id):
                            if _unserved(waiter, started):
                                unserved -= 1
                            self._deliver(waiter, backup, now)
                    if unserved <= 0:
                        break
        except NotFoundError:
            pass  # the waits still unserved go to the detail route (see _round)
        except BackupsError as error:
            for waiter in wanted:
                if _unserved(waiter, started):
                    failures[waiter.backup_id] = error
        return max(pages, 1)

    async def _read_details(self, ids: set[int], failures: dict[int, BackupsError]) -> None:
        async def read_one(backup_id: int) -> None:
            try:
                backup = await self._reader.read_backup(backup_id)
            except BackupsError as error:
                failures[backup_id] = error
                return
            now = self._now()
            for waiter in self._waiters_of(backup_id):
                self._deliver(waiter, backup, now)

        await asyncio.gather(*(read_one(backup_id) for backup_id in ids))


def _unserved(waiter: Waiter, started: float) -> bool:
    """Whether a wait due in a round that began at ``started`` still needs its backup.

    Serving a wait plans its next poll (``earliest`` moves past the round's start); an
    ended or removed wait is never due again.
    """
    return waiter.earliest <= started
