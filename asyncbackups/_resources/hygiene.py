"""Backup hygiene's reads and deletes: prune plans, prunes and coverage reports.

The rules are :mod:`asyncbackups._core.retention`'s; this module reads what they need
and deletes what a plan names.

*Reading.* A plan or a report reads list pages, never one request per server unless
that is cheaper: the first page across the account states the list's ``count``, so it
tells how many pages the rest of the list takes. When fewer servers were asked about
than that (each server's own list assumed to fit on one page), each server's list is
read instead, ``max_concurrency`` at a time. A coverage report may also stop early: on
a list that comes newest first, once a page is wholly older than the window (less some
minutes for clocks), no later page can cover anyone. "Now" is the API's clock, read
from the ``Date`` header of the first answer (this machine's clock when there is
none), since the API stamps ``created_at`` by the same clock.

*Deleting.* A prune deletes exactly the plan's backups, ``concurrency`` at a time
(starting with two and adding one as each ends, as fleets do, so that a rate limit
the first answers state is learned before many requests are in flight), through the
client's rate governor; a throttled delete waits its turn rather than fail. Reads and
deletes both run *patient*: throttling is waited out, however long.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from .._calls.pagination import Page, Reader
from .._core.errors import BackupsError, NotFoundError
from .._core.models import Backup, BackupType
from .._core.protocol import server_date
from .._core.resume import ReadWindow
from .._core.retention import (
    CoverageReport,
    CoverageTally,
    PrunePlan,
    PruneResult,
    check_prune_rules,
    check_server_ids,
    check_within,
    plan_prune,
)

__all__ = ["Hygiene"]

T = TypeVar("T")

# Requests in flight at first; one more is allowed as each ends (see the module).
_SLOW_START = 2
_MANUAL = {"backup_type": BackupType.MANUAL.value}


class Hygiene:
    """What ``plan_prune``, ``prune`` and ``coverage`` do, over one client's reads and
    deletes.

    ``reader`` reads list pages (patiently); ``delete`` deletes one backup by ID,
    raising :class:`NotFoundError` when it is not there; ``check_open`` raises
    ``RuntimeError`` for a closed client; ``concurrency`` bounds the requests in flight.
    """

    __slots__ = ("_check_open", "_concurrency", "_delete", "_reader")

    def __init__(
        self,
        reader: Reader,
        delete: Callable[[int], Awaitable[None]],
        *,
        check_open: Callable[[], None],
        concurrency: int,
    ) -> None:
        self._reader = reader
        self._delete = delete
        self._check_open = check_open
        self._concurrency = concurrency

    # -- the three calls ------------------------------------------------------------------

    async def plan_prune(
        self,
        *,
        keep_last: int | None,
        older_than: timedelta | None,
        server_ids: Iterable[int] | None,
        keep_none: bool,
    ) -> PrunePlan:
        """Read the manual backups the rules need and plan; nothing is deleted."""
        check_prune_rules(keep_last, older_than, keep_none)
        ids = None if server_ids is None else check_server_ids(server_ids)
        self._check_open()
        chosen = None if ids is None else frozenset(ids)
        found: dict[int, Backup] = {}

        def take(backups: list[Backup]) -> None:
            for backup in backups:
                # The filter is the server's; a server that ignores it costs memory only.
                if backup.backup_type is BackupType.MANUAL and (
                    chosen is None or backup.server_id in chosen
                ):
                    found[backup.id] = backup

        as_of = await self._read(_MANUAL, ids, take) if ids != () else datetime.now(UTC)
        return plan_prune(
            found.values(),
            keep_last=keep_last,
            older_than=older_than,
            keep_none=keep_none,
            as_of=as_of,
            server_ids=ids,
        )

    async def prune(self, plan: PrunePlan, *, concurrency: int | None) -> PruneResult:
        """Delete every backup of ``plan``; each ends deleted, already gone, or failed.

        Raises only for a bad plan (before any request), a closed client, or
        cancellation; what was deleted before then stays deleted, and planning again
        plans only what is left.
        """
        if not isinstance(plan, PrunePlan):
            raise TypeError(f"plan must be a PrunePlan, not {type(plan).__name__}")
        if concurrency is None:
            concurrency = self._concurrency
        elif type(concurrency) is not int:
            raise TypeError(f"concurrency must be an int, not {type(concurrency).__name__}")
        elif concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        order = _plan_ids(plan)
        self._check_open()
        deleted: set[int] = set()
        gone: set[int] = set()
        failed: dict[int, BackupsError] = {}

        async def one(backup_id: int) -> None:
            try:
                await self._delete(backup_id)
            except NotFoundError:
                gone.add(backup_id)  # someone else deleted it first: what was wanted
            except BackupsError as error:
                failed[backup_id] = error
            else:
                deleted.add(backup_id)

        await _each(order, one, concurrency)
        return PruneResult(
            deleted=[backup_id for backup_id in order if backup_id in deleted],
            already_gone=[backup_id for backup_id in order if backup_id in gone],
            failed=[(backup_id, failed[backup_id]) for backup_id in order if backup_id in failed],
        )

    async def coverage(
        self, server_ids: Iterable[int] | None, *, within: timedelta
    ) -> CoverageReport:
        """Read what tells each server's newest completed backup, and report."""
        ids = None if server_ids is None else check_server_ids(server_ids)
        within = check_within(within)
        self._check_open()
        tally = CoverageTally(ids)
        if ids == ():
            return tally.report(within=within, as_of=datetime.now(UTC))
        # Every server seen must be read whole; a known set may stop at the window.
        window = None if ids is None else within
        as_of = await self._read({}, ids, tally.add, window=window)
        return tally.report(within=within, as_of=as_of)

    # -- reading --------------------------------------------------------------------------

    async def _read(
        self,
        params: dict[str, str],
        servers: tuple[int, ...] | None,
        take: Callable[[list[Backup]], None],
        *,
        window: timedelta | None = None,
    ) -> datetime:
        """Hand every page of ``params`` to ``take`` and return the API's time.

        With ``servers``, the pages may be each server's own instead (see the module);
        ``take`` then also gets the first page across, and with a ``window`` the pages
        read across before the change: it must not mind a backup twice. With a
        ``window``, a newest-first list is read down to ``now - window`` only.
        """
        as_of: datetime | None = None
        horizon: datetime | None = None
        stop: ReadWindow | None = None
        budget: int | None = None  # pages to read across before reading per server
        per_server = False
        pages_read = 0
        async with contextlib.aclosing(self._reader.pages(params)) as walk:
            async for page in walk:
                pages_read += 1
                if as_of is None:
                    as_of = _api_time(page)
                    horizon = None if window is None else _before(as_of, window)
                    stop = None if horizon is None else ReadWindow(horizon)
                    if servers is not None and _cheaper_per_server(page, len(servers)):
                        if stop is None:
                            per_server = True
                            break
                        # A window may end the read across sooner than its count says:
                        # go on until it has cost what reading per server would.
                        budget = len(servers) + 1
                take(page.backups)
                if stop is not None and stop.passed(page.backups):
                    break
                if budget is not None and pages_read >= budget:
                    per_server = True
                    break
        if as_of is None:  # pragma: no cover - the pages always yield the first one
            as_of = datetime.now(UTC)
        if per_server:
            assert servers is not None

            async def read_server(server_id: int) -> None:
                own = {**params, "server_id": str(server_id)}
                await self._read_into(own, take, horizon)

            await _each(servers, read_server, self._concurrency)
        return as_of

    async def _read_into(
        self,
        params: dict[str, str],
        take: Callable[[list[Backup]], None],
        horizon: datetime | None,
    ) -> None:
        stop = None if horizon is None else ReadWindow(horizon)
        async with contextlib.aclosing(self._reader.pages(params)) as walk:
            async for page in walk:
                take(page.backups)
                if stop is not None and stop.passed(page.backups):
                    break


def _api_time(page: Page) -> datetime:
    """Now by the API's clock (its ``Date`` header), else by this machine's."""
    return server_date(page.headers) or datetime.now(UTC)


def _before(moment: datetime, span: timedelta) -> datetime | None:
    try:
        return moment - span
    except OverflowError:
        return None  # a window reaching before year 1: nothing ends it


def _cheaper_per_server(first: Page, servers: int) -> bool:
    """Whether reading ``servers`` lists of their own costs fewer requests than the rest
    of the list across, as the first page's ``count`` tells it."""
    if not first.backups or not first.count or first.next_link is None:
        return False
    rest = math.ceil(first.count / len(first.backups)) - 1
    return servers < rest


def _plan_ids(plan: PrunePlan) -> list[int]:
    """The IDs of a plan's backups, in its order; a hand-made plan's mistakes refused."""
    to_delete = plan.to_delete
    if isinstance(to_delete, str | bytes) or not isinstance(to_delete, Iterable):
        raise TypeError("plan.to_delete must be a list of Backup")
    ids: list[int] = []
    seen: set[int] = set()
    for backup in to_delete:
        if not isinstance(backup, Backup):
            raise TypeError(f"plan.to_delete holds a {type(backup).__name__}, not a Backup")
        if backup.id in seen:
            raise ValueError(f"plan.to_delete repeats backup {backup.id}")
        seen.add(backup.id)
        ids.append(backup.id)
    return ids


async def _each(items: Iterable[T], work: Callable[[T], Awaitable[None]], concurrency: int) -> None:
    """``await work(item)`` for every item, at most ``concurrency`` at once.

    Starts with :data:`_SLOW_START` in flight and allows one more as each ends. What a
    ``work`` raises cancels the others (awaited before returning) and is raised as is;
    so is the caller's cancellation.
    """
    pending = iter(items)
    running: set[asyncio.Task[None]] = set()
    limit = min(_SLOW_START, concurrency)
    exhausted = False
    try:
        while True:
            while not exhausted and len(running) < limit:
                try:
                    item = next(pending)
                except StopIteration:
                    exhausted = True
                    break
                running.add(asyncio.ensure_future(work(item)))
            if not running:
                return
            done, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            errors = [error for task in done if (error := task.exception()) is not None]
            if errors:
                raise errors[0]
            limit = min(concurrency, limit + len(done))
    finally:
        for task in running:
            task.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)
