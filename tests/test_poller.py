"""The shared poller on a clock the test drives: deadlines, Retry-After, shared rounds, fleets.

The poller reads through a scripted reader (no HTTP) and keeps time by a
:class:`ManualClock`, so each test states what happens at which second, exactly, and
none of them waits for real time to pass.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from datetime import UTC, datetime

import attrs
import pytest
from manual_clock import ManualClock, settle

from asyncbackups import (
    Backup,
    BackupFailedError,
    BackupsError,
    BackupStatus,
    BackupType,
    NotFoundError,
    RateLimitError,
    ServerRef,
    WaitTimeoutError,
)
from asyncbackups._calls.pagination import Page
from asyncbackups._core.stats import Counters
from asyncbackups._waiting.poller import Poller
from asyncbackups._waiting.until_completed import wait_until_completed
from asyncbackups._waiting.waiters import Schedule, Waiter


def _backup(backup_id: int = 501, server_id: int = 12345) -> Backup:
    return Backup(
        id=backup_id,
        server=ServerRef(id=server_id, name=f"server-{server_id}"),
        backup_type=BackupType.MANUAL,
        status=BackupStatus.IN_PROGRESS,
        size_mb=None,
        created_at=datetime(2025, 1, 16, 3, 0, tzinfo=UTC),
    )


class ScriptedReader:
    """The server's backups as the test sets them; ``reads`` names every read made."""

    def __init__(self, *backups: Backup) -> None:
        self.backups = {backup.id: backup for backup in backups}
        self.reads: list[str] = []
        self.errors: list[BackupsError] = []  # raised by the next reads, in order
        self.held: asyncio.Event | None = None  # when set, reads wait for it

    def finish(self, backup_id: int, status: BackupStatus = BackupStatus.COMPLETED) -> None:
        self.backups[backup_id] = attrs.evolve(self.backups[backup_id], status=status, size_mb=10)

    async def pages(self, params: Mapping[str, str]) -> AsyncGenerator[Page]:
        self.reads.append("list " + "&".join(f"{k}={v}" for k, v in sorted(params.items())))
        await self._answer()
        server = params.get("server_id")
        backups = [
            backup
            for backup in self.backups.values()
            if server is None or backup.server_id == int(server)
        ]
        yield Page(backups, None, len(backups), {})

    async def read_backup(self, backup_id: int) -> Backup:
        self.reads.append(f"detail {backup_id}")
        await self._answer()
        if backup_id not in self.backups:
            raise NotFoundError("Not found.", status_code=404)
        return self.backups[backup_id]

    async def _answer(self) -> None:
        if self.held is not None:
            await self.held.wait()
        if self.errors:
            raise self.errors.pop(0)


def _schedule(
    poll_interval: float, max_poll_interval: float, *, timeout: float | None = None
) -> Schedule:
    return Schedule(
        poll_interval=poll_interval,
        max_poll_interval=max_poll_interval,
        max_retry_after=60.0,
        timeout=timeout,
    )


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def reader() -> ScriptedReader:
    return ScriptedReader(_backup(501), _backup(502))


@pytest.fixture
async def poller(reader: ScriptedReader, clock: ManualClock) -> AsyncIterator[Poller]:
    poller = Poller(reader, Counters(), clock=clock)
    yield poller
    await poller.aclose()


def _wait(
    poller: Poller, target: Backup | int, *, timeout: float | None = None, every: float = 1.0
) -> asyncio.Task[Backup]:
    return asyncio.create_task(
        wait_until_completed(
            poller, target, timeout=timeout, schedule=_schedule(every, every), on_update=None
        )
    )


# -- task waits -------------------------------------------------------------------------


async def test_a_wait_ends_at_its_deadline_not_before(
    poller: Poller, reader: ScriptedReader, clock: ManualClock
) -> None:
    waiting = _wait(poller, _backup(), timeout=10)

    await clock.advance(9.5)
    assert not waiting.done()
    # Polled once a second meanwhile (the backup had just been read when the wait began).
    assert len(reader.reads) == 9

    await clock.advance(0.5)
    with pytest.raises(WaitTimeoutError) as caught:
        await waiting
    assert caught.value.backup == _backup()


async def test_the_deadline_cuts_short_a_read_that_never_answers(
    poller: Poller, reader: ScriptedReader, clock: ManualClock
) -> None:
    reader.held = asyncio.Event()  # never set: the read hangs
    waiting = _wait(poller, 501, timeout=5)
    await settle()
    assert reader.reads == ["detail 501"]

    await clock.advance(5)

    with pytest.raises(WaitTimeoutError) as caught:
        await waiting
    assert caught.value.backup is None  # never read
    await settle()
    assert [t for t in asyncio.all_tasks() if t.get_name() == "asyncbackups-poller"] == []


async def test_a_bare_id_is_read_at_once_and_a_final_backup_ends_the_wait(
    poller: Poller, reader: ScriptedReader, clock: ManualClock
) -> None:
    reader.finish(501)
    done = await _wait(poller, 501)
    assert done.status is BackupStatus.COMPLETED
    assert reader.reads == ["detail 501"]
    assert clock.now == 1000.0  # no time had to pass


async def test_an_already_final_backup_returns_without_a_read(
    poller: Poller, reader: ScriptedReader, clock: ManualClock
) -> None:
    completed = attrs.evolve(_backup(), status=BackupStatus.COMPLETED)
    assert await _wait(poller, completed) is completed
    failed = attrs.evolve(_backup(), status=BackupStatus.FAILED)
    with pytest.raises(BackupFailedError):
        await _wait(poller, failed)
    assert reader.reads == []


async def test_a_retry_after_while_polling_is_never_undercut(
    poller: Poller, reader: ScriptedReader, clock: ManualClock
) -> None:
    reader.errors.append(RateLimitError("slow down", status_code=429, retry_after=5.0))
    waiting = _wait(poller, _backup(), every=0.5)

    await clock.advance(0.5)  # the first poll: throttled
    assert len(reader.reads) == 1
    reader.finish(501)
    await clock.advance(4.75)  # polling every 0.5 s would have read 9 more times
    assert len(reader.reads) == 1

    await clock.advance(0.25)
    assert (await waiting).status is BackupStatus.COMPLETED
    assert len(reader.reads) == 2


async def test_waits_due_together_share_one_read(
    poller: Poller, reader: ScriptedReader, clock: ManualClock
) -> None:
    waits = [_wait(poller, _backup(501)), _wait(poller, _backup(502))]

    await clock.advance(1)
    assert reader.reads == ["list backup_type=manual&server_id=12345"]

    reader.finish(501)
    reader.finish(502)
    await clock.advance(1)
    assert [backup.status for backup in await asyncio.gather(*waits)] == [
        BackupStatus.COMPLETED
    ] * 2
    assert len(reader.reads) == 2


# -- a fleet's watches --------------------------------------------------------------------


async def test_watches_are_first_polled_when_the_probe_says_backups_end(clock: ManualClock) -> None:
    reader = ScriptedReader(_backup(1, server_id=1), _backup(2, server_id=2))
    poller = Poller(reader, Counters(), clock=clock)
    schedule = _schedule(2.0, 30.0, timeout=3600)
    ended: list[Waiter] = []
    poller.watch(_backup(1, server_id=1), schedule=schedule, on_done=ended.append)

    # The probe is polled closely; its backup ends after 60 s.
    await clock.advance(60)
    reader.finish(1)
    while not ended:
        await clock.advance(1)
    assert ended[0].error is None
    probe_reads = len(reader.reads)
    assert 5 < probe_reads < 40

    # Learned: backups take about a minute. A new watch is first polled about then.
    poller.watch(_backup(2, server_id=2), schedule=schedule, on_done=ended.append)
    await clock.advance(50)
    assert len(reader.reads) == probe_reads
    reader.finish(2)
    await clock.advance(20)
    assert [waiter.backup_id for waiter in ended] == [1, 2]
    assert reader.reads[probe_reads:] == ["list backup_type=manual&server_id=2"]
    await poller.aclose()


async def test_a_large_fleet_waits_for_the_probe_then_reads_across_servers(
    clock: ManualClock,
) -> None:
    servers = range(1, 301)
    reader = ScriptedReader(*(_backup(server, server_id=server) for server in servers))
    poller = Poller(reader, Counters(), clock=clock)
    schedule = _schedule(2.0, 30.0, timeout=3600)
    ended: list[Waiter] = []
    for server in servers:
        poller.watch(_backup(server, server_id=server), schedule=schedule, on_done=ended.append)

    await clock.advance(59)
    # Only the probe's server was read on its own: the others wait for what it teaches
    # (all but the 200th, planned as a small fleet's last watch before the fleet counted
    # as large, whose few polls read across).
    assert {read for read in reader.reads if "server_id" in read} == {
        "list backup_type=manual&server_id=1"
    }
    across_before = len([read for read in reader.reads if "server_id" not in read])
    assert across_before < 10

    for server in servers:
        reader.finish(server)
    await clock.advance(30)

    assert sorted(waiter.backup_id for waiter in ended) == list(servers)
    assert all(waiter.error is None for waiter in ended)
    # The rest were served by reads across every server, not 299 reads of one each.
    assert {read for read in reader.reads if "server_id" in read} == {
        "list backup_type=manual&server_id=1"
    }
    across = [read for read in reader.reads if "server_id" not in read]
    assert len(across) <= across_before + 2
    await poller.aclose()


async def test_a_failed_backup_ends_its_watch_with_backup_failed_error(
    poller: Poller, reader: ScriptedReader, clock: ManualClock
) -> None:
    ended: list[Waiter] = []
    poller.watch(_backup(501), schedule=_schedule(1.0, 1.0, timeout=60), on_done=ended.append)
    reader.finish(501, BackupStatus.FAILED)

    await clock.advance(1)

    (waiter,) = ended
    assert isinstance(waiter.error, BackupFailedError)
    assert waiter.error.backup.status is BackupStatus.FAILED
    assert waiter.seen() == waiter.error.backup


async def test_a_watch_ends_at_its_deadline_with_the_last_backup_seen(
    poller: Poller, reader: ScriptedReader, clock: ManualClock
) -> None:
    ended: list[Waiter] = []
    poller.watch(_backup(501), schedule=_schedule(1.0, 1.0, timeout=30), on_done=ended.append)

    await clock.advance(29.5)
    assert ended == []
    await clock.advance(0.5)

    (waiter,) = ended
    assert isinstance(waiter.error, WaitTimeoutError)
    assert waiter.error.backup == _backup(501)
