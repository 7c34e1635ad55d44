"""Fleets: one backup per server, streamed as each lands, resumable after a crash.

:func:`stream_fleet` reads the server IDs lazily, creates with bounded concurrency,
hands each backup to the shared poller as a *watch* (a small record, no task), and
yields one :class:`BackupOutcome` per server as it lands. Memory is bounded by what is
in flight, not by the fleet. ``create_many`` is a thin layer that restores input order.

With ``resume``, the API is the journal: a server that already has a manual backup
with the run's description, not failed, is adopted instead of backed up again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
)
from typing import Any

import attrs

from .._core.callbacks import call_back
from .._core.checks import check_id
from .._core.models import (
    Backup,
    BackupStatus,
)
from .poller import Poller
from .waiters import (
    Schedule,
    Waiter,
    failed,
)

__all__ = ["BackupOutcome", "FleetResult", "ServerIds", "StopRun", "stream_fleet"]

ServerIds = Iterable[int] | AsyncIterable[int]
# A fleet starts with this many creates in flight and adds one as each ends (doubling
# every round trip) up to its concurrency, as TCP's slow start does: the first answers
# may state a rate limit, and 64 creates sent blind into an empty bucket would each
# come back throttled.
_SLOW_START = 2


@attrs.frozen
class BackupOutcome:
    """What became of one server in a fleet run.

    ``backup`` is the last state seen for the server's backup (also when its wait
    failed), ``None`` if none was made; ``error`` is why the server failed, ``None``
    when it succeeded; ``adopted`` is true when a resumed run found the server's backup
    already made by an earlier run and took it instead of making another.
    """

    server_id: int
    backup: Backup | None = None
    error: BaseException | None = attrs.field(default=None, eq=False)
    adopted: bool = False

    @property
    def ok(self) -> bool:
        """Whether the backup was made (and, when waited for, completed)."""
        return self.error is None and self.backup is not None


@attrs.frozen
class FleetResult:
    """Every server's outcome, in the order the servers were given."""

    outcomes: list[BackupOutcome]

    @property
    def succeeded(self) -> list[BackupOutcome]:
        """The outcomes that are ``ok``, in input order."""
        return [outcome for outcome in self.outcomes if outcome.ok]

    @property
    def failed(self) -> list[BackupOutcome]:
        """The outcomes that are not ``ok``, in input order."""
        return [outcome for outcome in self.outcomes if not outcome.ok]

    @property
    def ok(self) -> bool:
        """Whether every server succeeded (true for an empty fleet)."""
        return all(outcome.ok for outcome in self.outcomes)

    @property
    def backups(self) -> list[Backup]:
        """The backups of the servers that succeeded, in input order."""
        return [outcome.backup for outcome in self.succeeded if outcome.backup is not None]

    def raise_for_failures(self) -> None:
        """Raise one ``ExceptionGroup`` holding every failure; do nothing if none.

        Each exception carries a note naming its server.
        """
        errors: list[Exception] = []
        for outcome in self.failed:
            error = outcome.error
            if not isinstance(error, Exception):
                error = RuntimeError(f"server {outcome.server_id}: no backup was made")
            note = f"server {outcome.server_id}"
            if note not in getattr(error, "__notes__", ()):
                error.add_note(note)
            errors.append(error)
        if errors:
            raise ExceptionGroup(
                f"{len(errors)} of {len(self.outcomes)} server backups failed", errors
            )


async def _each_id(server_ids: ServerIds) -> AsyncIterator[int]:
    """The IDs one by one, checked as they arrive; repeats are refused."""
    if isinstance(server_ids, str | bytes):
        raise TypeError("server_ids must be an iterable of ints, not a string")
    seen = _SeenIds()
    if isinstance(server_ids, AsyncIterable):
        async for server_id in server_ids:
            yield _checked(server_id, seen)
    elif isinstance(server_ids, Iterable):
        for server_id in server_ids:
            yield _checked(server_id, seen)
    else:
        raise TypeError(f"server_ids must be an iterable of ints, not {type(server_ids).__name__}")


def _checked(server_id: object, seen: _SeenIds) -> int:
    checked = check_id(server_id, "server_id")
    if not seen.add(checked):
        raise ValueError(f"server_ids repeats [{checked}]; each server is backed up once")
    return checked


class _SeenIds:
    """The IDs a run has read, to refuse repeats: a bit per ID up to a few million,
    a set beyond.

    A set of a hundred thousand ints costs some 6 MB; server IDs are small positive
    ints, for which a bitmap costs an eighth of a byte each.
    """

    __slots__ = ("_bits", "_large")

    _BITMAP_LIMIT = 1 << 25  # 4 MiB of bits at most

    def __init__(self) -> None:
        self._bits = bytearray()
        self._large: set[int] = set()

    def add(self, value: int) -> bool:
        """Record ``value``; ``False`` if it was already there."""
        if value >= self._BITMAP_LIMIT:
            if value in self._large:
                return False
            self._large.add(value)
            return True
        index, bit = divmod(value, 8)
        if index >= len(self._bits):
            self._bits.extend(bytes(max(index + 1 - len(self._bits), len(self._bits))))
        mask = 1 << bit
        if self._bits[index] & mask:
            return False
        self._bits[index] |= mask
        return True


async def stream_fleet(
    server_ids: ServerIds,
    *,
    create: Callable[[int], Awaitable[Backup]],
    adopt: Callable[[int], Awaitable[Backup | None]] | None,
    poller: Poller | None,
    schedule: Schedule,
    concurrency: int,
    on_created: Callable[[BackupOutcome], Any] | None = None,
) -> AsyncGenerator[BackupOutcome]:
    """Yield one outcome per server, in completion order; see ``stream_many``.

    ``adopt(server_id)`` gives an existing backup to take instead of creating one (a
    resumed run). With a ``poller``, each backup not yet final is watched until it
    ends; without, the outcome is the created backup. What ``adopt`` or ``create``
    raises fails that server, except :class:`StopRun`, whose ``error`` stops the run and
    reaches the caller, as does what ``on_created`` raises.
    """
    landed: asyncio.Queue[BackupOutcome | BaseException] = asyncio.Queue()
    slots = asyncio.Semaphore(min(_SLOW_START, concurrency))
    opened = min(_SLOW_START, concurrency)
    tasks: set[asyncio.Task[None]] = set()
    # Outcomes waiting to be taken are bounded too: a slow consumer holds back the
    # launcher instead of the queue growing with the fleet.
    room = asyncio.Event()
    room.set()
    limit = max(concurrency * 4, 256)
    launched = 0  # servers launched so far

    # One callback for every watch of the run, and a set of the few adopted ones: a
    # closure per server would cost a fleet of 100,000 some 25 MB.
    adopted_waiting: set[int] = set()

    def watched(waiter: Waiter) -> None:
        server_id = waiter.server_id if waiter.server_id is not None else 0
        adopted = server_id in adopted_waiting
        adopted_waiting.discard(server_id)
        land(BackupOutcome(server_id, waiter.seen(), waiter.error, adopted=adopted))

    shared: dict[str, str] = {}

    def slim(backup: Backup) -> Backup:
        # What a watch holds until its backup is polled again: without the create's
        # one-off message (a poll would not carry it either), and with the fleet's one
        # description shared rather than one copy per server.
        description = backup.description
        if description is not None and len(shared) < 64:
            description = shared.setdefault(description, description)
        if backup.message is None and description is backup.description:
            return backup
        return attrs.evolve(backup, message=None, description=description)

    def land(outcome: BackupOutcome | BaseException) -> None:
        landed.put_nowait(outcome)
        if landed.qsize() >= limit:
            room.clear()

    async def one(server_id: int) -> None:
        nonlocal opened
        backup: Backup | None = None
        adopted = False
        try:
            try:
                if adopt is not None:
                    backup = await adopt(server_id)
                    adopted = backup is not None
                if backup is None:
                    backup = await create(server_id)
            finally:
                slots.release()
                if opened < concurrency:
                    opened += 1
                    slots.release()
        except StopRun as stop:
            land(stop.error)
            return
        except Exception as error:  # every server gets an outcome, whatever went wrong
            land(BackupOutcome(server_id, backup, error, adopted=adopted))
            return
        try:
            await call_back(on_created, BackupOutcome(server_id, backup, adopted=adopted))
        except Exception as error:  # the caller's callback: it stops the run
            land(error)
            return
        if poller is None or backup.is_final:
            ended = None
            if poller is not None and backup.status is BackupStatus.FAILED:
                ended = failed(backup)
            land(BackupOutcome(server_id, backup, ended, adopted=adopted))
            return
        if adopted:
            adopted_waiting.add(server_id)
        poller.watch(slim(backup), schedule=schedule, on_done=watched)

    async def launch() -> None:
        nonlocal launched
        try:
            async for server_id in _each_id(server_ids):
                await room.wait()
                await slots.acquire()
                launched += 1
                task = asyncio.create_task(one(server_id))
                tasks.add(task)
                task.add_done_callback(tasks.discard)

        except Exception as error:  # a bad ID or a failing iterable: the caller's
            land(_Stopped(error))
        finally:
            land(_LAUNCHED)

    launcher = asyncio.create_task(launch())
    try:
        finished = 0
        launched_all = False
        stopped: _Stopped | None = None
        while not launched_all or finished < launched:
            item = await landed.get()
            if landed.qsize() < limit:
                room.set()
            if item is _LAUNCHED:
                launched_all = True
                continue
            if isinstance(item, _Stopped):
                # The input went bad: nothing more is launched, but every server already
                # launched still gets its outcome before the error is raised.
                stopped = item
                continue
            if isinstance(item, BaseException):
                raise item
            finished += 1
            yield item
        if stopped is not None:
            raise stopped.error
    finally:
        # Done, broken out of, cancelled, or a callback raised: take it all down.
        pending = [launcher, *tasks]
        for task in pending:
            task.cancel()
        if poller is not None:
            poller.forget_all(watched)
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*pending, return_exceptions=True)


class StopRun(Exception):
    """Raised by ``adopt`` or ``create`` to stop the whole run with ``error``, rather than
    fail one server: what the caller's callback raised, or a read the run depends on."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


class _Stopped(Exception):
    """Carries, in the queue of outcomes, why the input stopped being read."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


class _Launched(Exception):
    """Marks, in the queue of outcomes, that every ID was launched."""


_LAUNCHED = _Launched()
