"""``wait_until_completed`` and the poller that every wait on a client shares.

Each client has at most one poller task, alive while somebody waits. It runs in
rounds: a round reads the backup list once for every wait that is due - per server
when few servers are involved, across all servers when that takes fewer requests -
stops paging as soon as every wanted backup was seen, confirms any backup missing
from the list with a detail read, and hands each wait its backup page by page.
Waiting on N backups therefore costs a few requests a round, not N.

Two kinds of wait share it. ``wait_until_completed`` has a task of its own that only
sleeps on its updates: callbacks run there, cancelling it touches nothing else, and its
deadline is wall-clock time, requests included. A fleet's waits are *watches*: a small
record each, with no task at all, whose end (final status, failure, deadline) the
poller reports through a callback, so that a hundred thousand waiting servers cost
a few hundred bytes apiece.

The poller also learns how long backups take: once one it watched completes, later
watches are first polled just after that time rather than on a blind growing schedule.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from .._calls.pagination import Reader
from .._calls.retry_policy import (
    Safety,
    is_retryable,
)
from .._core.callbacks import call_back
from .._core.errors import (
    APIStatusError,
    BackupFailedError,
    BackupsError,
    NotFoundError,
    RateLimitError,
    WaitTimeoutError,
)
from .._core.models import (
    Backup,
    BackupStatus,
    BackupType,
    ServerRef,
)
from .._core.stats import Counters

__all__ = ["Poller", "Schedule", "Waiter"]

logger = logging.getLogger("asyncbackups")

# Intervals grow by this factor per poll, and vary by this fraction either way so that
# waits started together drift apart instead of polling in lockstep.
_GROWTH = 1.5
_JITTER = 0.15
# A wait is served by a round once half its interval has passed, so waits with close
# due times share one round instead of each triggering its own.
_EARLY_FRACTION = 0.5
_DEFAULT_PAGE_LENGTH = 100
# A watch is first polled this much later than the backups seen so far took, and waits
# begun within this fraction of that time share their rounds.
# Watches planned blind (nothing learned yet, the probe still running) are first
# polled this late, as a safety net.
_BLIND_FACTOR = 4
# From this many watches on, a round across the list costs several pages.
_LARGE_FLEET = 2 * _DEFAULT_PAGE_LENGTH
# The probe is first polled after this many seconds, then every tenth of its age.
_PROBE_START = 0.5
_PROBE_STEP = 0.1
# The share of a fleet's requests its polls may take: a round across the whole list
# costs its pages, so the rounds are spaced to stay within it.
_POLL_BUDGET = 0.025


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
    """One wait's state as the poller sees it; kept small, a fleet has one per server."""

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
        first_due: float,
        on_done: Callable[[Waiter], None] | None = None,
    ) -> None:
        self.backup_id = backup_id
        self.last = last
        self.server_id = last.server_id if last is not None else None
        self.schedule = schedule
        self.polls = 0
        self.started = now
        self.next_due = first_due
        # Waits begun close together (a fleet's, say) share their first round.
        self.earliest = first_due - schedule.poll_interval * _EARLY_FRACTION
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

    def interval(self) -> float:
        """The pause before the next poll: growing, jittered, within the wait's bounds."""
        schedule = self.schedule
        grown = schedule.poll_interval * _GROWTH ** min(self.polls, 64)
        jittered = grown * random.uniform(1 - _JITTER, 1 + _JITTER)
        return min(max(jittered, schedule.poll_interval), schedule.max_poll_interval)

    def plan(self, now: float, *, at_least: float = 0.0) -> None:
        interval = max(self.interval(), at_least)
        self.polls += 1
        self.next_due = now + interval
        self.earliest = now + interval * _EARLY_FRACTION if not at_least else self.next_due


class TaskWaiter(Waiter):
    """A ``wait_until_completed`` call's waiter: the updates its task has yet to hear,
    and the future it sleeps on (a fleet's watches have neither)."""

    __slots__ = ("updates", "woken")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.updates: list[Backup] | None = None
        self.woken: asyncio.Future[None] | None = None


class Poller:
    """The shared poller of one client. Created by the client; one task at most."""

    def __init__(self, reader: Reader, counters: Counters) -> None:
        self._reader = reader
        self._counters = counters
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
        self._probe_age = 0.0  # how long the probe had run when last seen running
        self._watches = 0
        self._round_gate = 0.0
        self._sleeping_until = math.inf

    # -- the waiting side -------------------------------------------------------------

    async def wait(
        self,
        target: Backup | int,
        *,
        timeout: float | None,
        schedule: Schedule,
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
        waiter = TaskWaiter(
            backup_id,
            last,
            schedule,
            now=now,
            first_due=now + (schedule.poll_interval if last is not None else 0.0),
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
        raise _timed_out(waiter, timeout)

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
        now = asyncio.get_running_loop().time()
        if self._took is not None:
            first_due = now + self._took
        elif self._probe is None:
            # Nothing learned yet: this watch is polled closely, so that how long
            # backups take is known early; the others wait for that.
            first_due = now + min(schedule.poll_interval, _PROBE_START)
        elif self._watches < _LARGE_FLEET:
            # A round over a small fleet costs a page or two: poll as a wait would.
            first_due = now + schedule.poll_interval
        else:
            # Planned once the probe ends; polled blind only if that takes very long
            # (a probe stuck in progress must not leave every other watch unpolled).
            first_due = now + _BLIND_FACTOR * schedule.max_poll_interval
        waiter = Waiter(backup.id, backup, schedule, now=now, first_due=first_due, on_done=on_done)
        waiter.compact()
        waiter.earliest = first_due
        if self._took is None and self._probe is None:
            self._probe = waiter
        self._watches += 1
        if self._watches == _LARGE_FLEET and self._took is None:
            # The fleet just became large: its first watches, planned like small
            # fleets', wait for the probe too.
            blind = now + _BLIND_FACTOR * schedule.max_poll_interval
            for other in self._everyone():
                if other.on_done is not None and other is not self._probe and other.polls == 0:
                    other.next_due = other.earliest = max(other.next_due, blind)
        self._add(waiter)
        return waiter

    def forget_all(self, on_done: Callable[[Waiter], None]) -> None:
        """Stop following, without telling them, the watches ``on_done`` would hear of
        (their fleet ended early)."""
        for waiter in [w for w in self._everyone() if w.on_done is on_done]:
            waiter.on_done = None
            self._remove(waiter)

    async def _follow(
        self, waiter: TaskWaiter, on_update: Callable[[Backup], Any] | None
    ) -> Backup:
        while True:
            await self._sleep(waiter)
            updates, waiter.updates = waiter.updates or [], None
            for backup in updates:
                await call_back(on_update, backup)
                if backup.is_final:
                    return _settle(backup)
            if waiter.error is not None:
                raise waiter.error

    @staticmethod
    async def _sleep(waiter: TaskWaiter) -> None:
        """Return once there is an update or an error to handle."""
        if waiter.updates or waiter.error is not None:
            return
        waiter.woken = asyncio.get_running_loop().create_future()
        try:
            await waiter.woken
        finally:
            waiter.woken = None

    def _add(self, waiter: Waiter) -> None:
        held = self._waiters.setdefault(waiter.backup_id, waiter)
        if held is not waiter:
            self._more.setdefault(waiter.backup_id, []).append(waiter)
        if waiter.earliest < self._sleeping_until:
            # Woken only when this wait is due before the poller would look anyway: a
            # fleet adding a hundred thousand watches must not wake it each time.
            self._changed.set()
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="asyncbackups-poller")

    def _remove(self, waiter: Waiter) -> None:
        waiter.earliest = waiter.next_due = math.inf  # never due again, in any round
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

    # -- ending a wait ----------------------------------------------------------------

    def _deliver(self, waiter: Waiter, backup: Backup, now: float) -> None:
        waiter.last_error = None
        waiter.server_id = backup.server_id
        changed = not waiter.heard or backup != waiter.last
        waiter.heard = True
        if (
            waiter.on_done is not None
            and not backup.is_final
            and backup.status == waiter.status
            and backup.size_mb is None
        ):
            # A watch keeps what it holds while nothing that matters changed: a fleet
            # of a hundred thousand must not hold a fresh copy of every backup per round.
            pass
        else:
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
                    # It ended between the last poll that saw it running and this one.
                    before = self._probe_age if waiter is self._probe else age
                    self._learn((before + age) / 2 if before < age else age)
                error = None
                if backup.status is BackupStatus.FAILED:
                    error = BackupFailedError(
                        f"backup {backup.id} of server {backup.server_id} failed",
                        backup=backup,
                    )
                self._finish(waiter, error)
                return
        elif changed and isinstance(waiter, TaskWaiter):
            if waiter.updates is None:
                waiter.updates = []
            waiter.updates.append(backup)
            _wake(waiter)
        if waiter is self._probe:
            self._probe_age = now - waiter.started
            self._plan_probe(waiter, now)
        elif waiter.on_done is not None and waiter.earliest > now:
            pass  # a watch read in passing, not yet due: its plan stands
        elif waiter.on_done is not None and self._took is not None:
            # Past its expected end: look again soon, in proportion to the backups' time.
            step = min(
                max(self._took * _PROBE_STEP, _PROBE_START / 2), waiter.schedule.max_poll_interval
            )
            waiter.polls += 1
            waiter.next_due = waiter.earliest = now + step
        else:
            waiter.plan(now)

    def _fail(self, waiter: Waiter, error: BaseException) -> None:
        if waiter.on_done is not None:
            self._finish(waiter, error)
        else:
            waiter.error = error
            _wake(waiter)

    def _finish(self, waiter: Waiter, error: BaseException | None) -> None:
        waiter.error = error
        on_done, waiter.on_done = waiter.on_done, None
        if on_done is not None:
            self._watches -= 1
        if waiter is self._probe:
            self._probe = None
            if self._took is None:
                self._next_probe()
        self._remove(waiter)
        if on_done is not None:
            on_done(waiter)

    def _next_probe(self) -> None:
        """The probe ended without teaching anything (it timed out, say): the oldest
        watch left takes its place."""
        watches = [w for w in self._everyone() if w.on_done is not None]
        if watches:
            probe = min(watches, key=lambda waiter: waiter.started)
            probe.next_due = probe.earliest = asyncio.get_running_loop().time()
            self._probe = probe

    def _learn(self, took: float) -> None:
        """How long a backup took: plan every watch still blind from it."""
        self._took = took
        for waiter in self._everyone():
            if waiter.on_done is not None and waiter.polls == 0:
                waiter.next_due = waiter.earliest = waiter.started + self._took

    def _plan_probe(self, waiter: Waiter, now: float) -> None:
        # Closely, but in proportion to how long it has run: a tenth of a long backup's
        # time is as good an estimate, for few requests.
        step = max(_PROBE_START, (now - waiter.started) * _PROBE_STEP)
        waiter.polls += 1
        waiter.next_due = waiter.earliest = now + min(step, waiter.schedule.max_poll_interval)

    # -- the polling side -------------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._waiters:
                now = loop.time()
                self._expire(now)
                if not self._waiters:
                    break
                wake, due, urgent = self._due(now)
                if not due or (not urgent and now < self._round_gate):
                    if due:
                        wake = min(wake, self._round_gate)
                    self._changed.clear()
                    self._sleeping_until = wake
                    try:
                        with contextlib.suppress(TimeoutError):
                            async with asyncio.timeout(max(wake - now, 0.0)):
                                await self._changed.wait()
                    finally:
                        self._sleeping_until = -math.inf
                    continue
                await self._round(due)
                if self._watches:
                    self._round_gate = loop.time() + self._gap(loop.time())
        except Exception as error:  # a bug here must not strand the waits
            logger.exception("the asyncbackups poller failed")
            for waiter in list(self._everyone()):
                self._fail(waiter, error)
        finally:
            if self._task is asyncio.current_task():
                self._task = None

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
        """How long the next round of watches waits after this one.

        A round across the list costs about a request per page, whoever it serves; the
        watches' polls get a small share of the fleet's requests, so the rounds left
        are spread over the time the watches are expected to end in - but never so far
        apart that a wait is reported much later than a poll of its own would see it.
        """
        pages = max(self._across_pages.values(), default=0) or max(
            1, math.ceil(self._watches / _DEFAULT_PAGE_LENGTH)
        )
        rounds = max(1, int(_POLL_BUDGET * self._watches / pages))
        latest = now
        cap = math.inf
        for waiter in self._everyone():
            if waiter.on_done is not None:
                latest = max(latest, waiter.next_due)
                cap = min(cap, waiter.schedule.max_poll_interval)
        if self._took is not None:
            cap = min(cap, self._took * 0.25)
        return min((latest - now) / rounds, cap)

    def _expire(self, now: float) -> None:
        expired = []
        for waiter in self._everyone():
            deadline = waiter.deadline
            if deadline is not None and deadline <= now:
                expired.append(waiter)
        for waiter in expired:
            self._finish(waiter, _timed_out(waiter, None))

    async def _round(self, due: list[Waiter]) -> None:
        """Read what the due waits need and hand it out."""
        self._counters.poll_rounds += 1
        started = asyncio.get_running_loop().time()
        known = [waiter for waiter in due if waiter.server_id is not None]
        failures: dict[int, BackupsError] = {}
        unsure: set[int] = set()
        if known:
            await self._read_lists(known, started, failures, unsure)
        # Missing from a list that was read whole, or on a page that vanished: the
        # detail route says whether the backup itself is gone.
        missing = {
            waiter.backup_id
            for waiter in due
            if _unserved(waiter, started) and waiter.backup_id not in failures
        }
        if missing:
            await self._read_details(missing, failures)
        now = asyncio.get_running_loop().time()
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
            waiter.plan(now, at_least=pause)
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
        waiter.plan(now, at_least=retry_after or 0.0)

    @staticmethod
    def _type_filter(waiters: list[Waiter]) -> str | None:
        kinds = {waiter.backup_type for waiter in waiters}
        if len(kinds) == 1 and None not in kinds:
            return str(next(iter(kinds)))
        return None

    async def _read_lists(
        self,
        known: list[Waiter],
        started: float,
        failures: dict[int, BackupsError],
        unsure: set[int],
    ) -> None:
        type_filter = self._type_filter(known)
        across_cost = self._across_pages.get(
            type_filter, max(1, math.ceil(len(known) / _DEFAULT_PAGE_LENGTH))
        )
        # Counting the distinct servers stops as soon as reading them one by one would
        # cost more than reading across: a fleet's round never builds a set of them all.
        servers: set[int] = set()
        per_server_cost = 0
        for waiter in known:
            server = waiter.server_id
            if server is not None and server not in servers:
                servers.add(server)
                per_server_cost += self._server_pages.get(server, 1)
                if per_server_cost > across_cost and len(servers) > 1:
                    break
        if len(servers) > 1 and across_cost < per_server_cost:
            params = {} if type_filter is None else {"backup_type": type_filter}
            self._across_pages[type_filter] = await self._read(
                params, known, started, failures, unsure
            )
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
            self._server_pages[server_id] = await self._read(
                params, waiters, started, failures, unsure
            )

        await asyncio.gather(*(read_server(s, waiters) for s, waiters in by_server.items()))

    async def _read(
        self,
        params: dict[str, str],
        wanted: list[Waiter],
        started: float,
        failures: dict[int, BackupsError],
        unsure: set[int],
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
        loop = asyncio.get_running_loop()
        unserved = sum(1 for waiter in wanted if _unserved(waiter, started))
        try:
            async with contextlib.aclosing(self._reader.pages(params)) as walk:
                async for page in walk:
                    pages += 1
                    now = loop.time()
                    for backup in page.backups:
                        for waiter in self._waiters_of(backup.id):
                            if _unserved(waiter, started):
                                unserved -= 1
                            self._deliver(waiter, backup, now)
                    if unserved <= 0:
                        break
        except NotFoundError:
            unsure.update(w.backup_id for w in wanted if _unserved(w, started))
        except BackupsError as error:
            for waiter in wanted:
                if _unserved(waiter, started):
                    failures[waiter.backup_id] = error
        return max(pages, 1)

    async def _read_details(self, ids: set[int], failures: dict[int, BackupsError]) -> None:
        loop = asyncio.get_running_loop()

        async def read_one(backup_id: int) -> None:
            try:
                backup = await self._reader.read_backup(backup_id)
            except BackupsError as error:
                failures[backup_id] = error
                return
            now = loop.time()
            for waiter in self._waiters_of(backup_id):
                self._deliver(waiter, backup, now)

        await asyncio.gather(*(read_one(backup_id) for backup_id in ids))


def _unserved(waiter: Waiter, started: float) -> bool:
    """Whether a wait due in a round that began at ``started`` still needs its backup.

    Serving a wait plans its next poll (``earliest`` moves past the round's start); an
    ended or removed wait is never due again.
    """
    return waiter.earliest <= started


def _wake(waiter: Waiter) -> None:
    if not isinstance(waiter, TaskWaiter):
        return
    woken = waiter.woken
    if woken is not None and not woken.done():
        woken.set_result(None)


def _timed_out(waiter: Waiter, timeout: float | None) -> WaitTimeoutError:
    last_error = waiter.last_error
    failing = f"; polls failing: {last_error}" if last_error is not None else ""
    within = f" within {timeout}s" if timeout is not None else " before its deadline"
    return WaitTimeoutError(
        f"backup {waiter.backup_id} did not finish{within} "
        f"(last status: {_status_of(waiter.seen())}{failing})",
        backup=waiter.seen(),
        last_error=last_error,
    )


def _status_of(backup: Backup | None) -> str:
    return "never read" if backup is None else str(backup.status)


def _settle(backup: Backup) -> Backup:
    if backup.status is BackupStatus.FAILED:
        raise BackupFailedError(
            f"backup {backup.id} of server {backup.server_id} failed", backup=backup
        )
    return backup
