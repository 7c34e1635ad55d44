"""A soak: many minutes of mixed traffic against a misbehaving API, compressed into seconds.

One fake API (200 servers, backups that take 30 s of its clock, ten backups a page) with
about 10% of its requests meeting a fault of every kind (drops before and after the work,
429/503 before it, 500/502/504 after it, delays past the client's timeout, truncated and
HTML bodies), served from a background thread. Against it, one client runs 1,500
operations from a pool of workers: creates (single, with a shared description, and
fleets with ``create_many(wait=True)``), gets, lists and page-by-page iterations, deletes
of backups it made, waits, restores; while a driver task moves the fake's clock on in
small steps so that backups finish.

Then the promises are checked:

a. no call raises ``NotFoundError`` for a backup (or a server) that exists: the fake is
   asked right after the error, and only our own delete, started before the error, may
   explain one;
b. no create made more than one backup, no two calls were handed the same backup, and a
   successful create's backup is the one on the fake; the fake honours
   ``Idempotency-Key`` in one variant and ignores it in the other, where only the SDK's
   reconciling stands between an ambiguous outcome and a duplicate;
c. nothing leaks once the client is closed: file descriptors and tasks come back to where
   they were, and traced memory grows by less than 20 MB from the end of a warm-up;
d. nothing warns (pytest turns warnings into errors), and no "Unclosed" is logged.

The fake's clock is first moved an hour ahead. It then runs about a hundred times faster
than ours, which no real server's clock does; a create in doubt opens its search window
by the server's ``Date`` only when that clock agrees with ours, so a clock that keeps
jumping while it agrees would make a reconcile miss its own backup. An hour off, the SDK
falls back to its own clock, as it must for any server whose clock is off.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import random
import time
import tracemalloc
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from asyncbackups import (
    Backup,
    BackupFailedError,
    BackupsClient,
    BackupsError,
    NotFoundError,
    ResponseValidationError,
    WaitTimeoutError,
)
from asyncbackups.testing import FakeBackupsAPI, UnknownBackupError

FLEET = 200
FAILING = frozenset({25, 75, 125, 175})  # backups of these servers end FAILED
SHARED_SERVERS = range(1, 9)  # creates without a description land on these
OPS = 1_500
WARMUP = 700
WORKERS = 64
CHAOS_RATE = 0.1
TIMEOUT = 0.25  # the client's per-attempt timeout
DELAY = 0.3  # an injected delay: past the timeout, so the client gives up first
MAX_GROWTH = 20 * 1024 * 1024  # traced memory, from the warm-up's end to the end
FD_SLACK = 3
WAIT = {"timeout": 10.0, "poll_interval": 0.02, "max_poll_interval": 0.1}

# How often each operation is drawn.
MIX = {
    "create": 24,
    "create_shared": 4,
    "create_many": 3,
    "get": 20,
    "list": 8,
    "iter": 3,
    "delete": 10,
    "wait": 15,
    "restore": 2,
    "cancelled": 4,
}


@dataclass
class Create:
    """One create as the caller saw it (a create_many contributes one per server)."""

    server_id: int
    description: str | None
    backup: Backup | None = None
    error: BaseException | None = None
    cancelled: bool = False  # by the caller, mid-call


@dataclass
class Soak:
    """What the soak did and saw; ``problems`` are broken promises, reported together."""

    api: FakeBackupsAPI
    client: BackupsClient
    rng: random.Random
    fleet_backups: dict[int, int]  # server id -> its completed automatic backup
    creates: list[Create] = field(default_factory=list)
    keep: list[int] = field(default_factory=list)  # made by us, never deleted
    doomed: list[int] = field(default_factory=list)  # made by us, to delete
    delete_started: dict[int, float] = field(default_factory=dict)  # id -> monotonic
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    page_404s: int = 0
    done: int = 0
    numbers: Iterator[int] = field(default_factory=lambda: iter(range(1, 10**9)))

    # -- bookkeeping -------------------------------------------------------------------

    def exists(self, backup_id: int) -> bool:
        try:
            self.api.backup(backup_id)
        except UnknownBackupError:
            return False
        return True

    def check_not_found(self, op: str, backup_id: int, error: NotFoundError) -> None:
        """A 404 about ``backup_id`` is true only if it is gone, by a delete sent earlier.

        Called right after the error, with no await in between: the fake is asked about
        the backup as it is at that moment.
        """
        if self.exists(backup_id):
            self.problems.append(f"{op}({backup_id}): NotFoundError, yet it exists: {error}")
            return
        if backup_id not in self.delete_started:
            self.problems.append(
                f"{op}({backup_id}): NotFoundError though nothing deleted it before: {error}"
            )

    def unexpected(self, op: str, error: BaseException) -> None:
        if not isinstance(error, BackupsError):
            self.problems.append(
                f"{op}: {type(error).__module__}.{type(error).__name__} escaped: {error!r}"
            )

    def note(self, op: str, error: BaseException | None) -> None:
        self.outcomes[op, "ok" if error is None else type(error).__name__] += 1
        if isinstance(error, ResponseValidationError) and error.path == "$.next":
            # The fake's links are all honest: same origin, one page on, never a loop.
            # Refusing one means giving up on a list that grew while it was paged.
            self.problems.append(f"{op}: refused an honest next-page link: {error}")

    def pick_backup(self) -> int:
        """A backup that exists for good: ours to keep, or a fleet server's own."""
        if self.keep and self.rng.random() < 0.6:
            return self.rng.choice(self.keep)
        return self.rng.choice(list(self.fleet_backups.values()))

    def pick_server(self) -> int:
        return self.rng.randint(1, FLEET)

    # -- the operations ----------------------------------------------------------------

    async def run(self, op: str) -> None:
        try:
            await getattr(self, f"op_{op}")()
        except Exception as error:
            self.unexpected(op, error)
            raise

    async def op_create(self) -> None:
        record = Create(self.pick_server(), f"soak-{next(self.numbers)}")
        self.creates.append(record)
        try:
            record.backup = await self.client.backups.create(
                record.server_id, description=record.description
            )
        except asyncio.CancelledError:
            record.cancelled = True
            raise
        except BackupsError as error:
            record.error = error
            if isinstance(error, NotFoundError):
                self.problems.append(f"create({record.server_id}): NotFoundError: {error}")
        else:
            pool = self.doomed if self.rng.random() < 0.4 else self.keep
            pool.append(record.backup.id)
        self.note("create", record.error)

    async def op_create_shared(self) -> None:
        record = Create(self.rng.choice(SHARED_SERVERS), None)
        self.creates.append(record)
        try:
            record.backup = await self.client.backups.create(record.server_id)
        except BackupsError as error:
            record.error = error
            if isinstance(error, NotFoundError):
                self.problems.append(f"create({record.server_id}): NotFoundError: {error}")
        else:
            self.keep.append(record.backup.id)
        self.note("create_shared", record.error)

    async def op_create_many(self) -> None:
        servers = self.rng.sample(range(1, FLEET + 1), self.rng.randint(4, 8))
        description = f"wave-{next(self.numbers)}"
        result = await self.client.backups.create_many(
            servers,
            description=description,
            wait=True,
            wait_timeout=WAIT["timeout"],
            poll_interval=WAIT["poll_interval"],
            max_poll_interval=WAIT["max_poll_interval"],
        )
        if [outcome.server_id for outcome in result.outcomes] != servers:
            self.problems.append(f"create_many: outcomes not in input order: {result}")
        for outcome in result.outcomes:
            error = outcome.error
            self.creates.append(Create(outcome.server_id, description, outcome.backup, error))
            if error is not None:
                self.unexpected("create_many outcome", error)
            if isinstance(error, NotFoundError):
                self.problems.append(f"create_many({outcome.server_id}): NotFoundError: {error}")
            expected_failure = outcome.server_id in FAILING and isinstance(error, BackupFailedError)
            if outcome.backup is not None and (error is None or expected_failure):
                self.keep.append(outcome.backup.id)
            self.note("create_many[server]", error)
        self.note("create_many", None)

    async def op_get(self) -> None:
        backup_id = self.pick_backup()
        if self.doomed and self.rng.random() < 0.2:
            backup_id = self.rng.choice(self.doomed)  # may race with its delete
        error: BaseException | None = None
        try:
            backup = await self.client.backups.get(backup_id)
        except NotFoundError as exc:
            self.check_not_found("get", backup_id, exc)
            error = exc
        except BackupsError as exc:
            error = exc
        else:
            if backup.id != backup_id:
                self.problems.append(f"get({backup_id}) returned backup {backup.id}")
        self.note("get", error)

    def list_filters(self) -> dict[str, Any]:
        roll = self.rng.random()
        if roll < 0.93:
            return {"server_id": self.rng.choice([*SHARED_SERVERS, self.pick_server()])}
        if roll < 0.98:
            return {"backup_type": "manual"}
        return {}  # every backup: 40 to 120 pages

    async def op_list(self) -> None:
        error: BaseException | None = None
        try:
            await self.client.backups.list(**self.list_filters())
        except BackupsError as exc:
            error = exc
            if isinstance(exc, NotFoundError):
                self.page_404s += 1  # a page that vanished as deletes shrank the list
        self.note("list", error)

    async def op_iter(self) -> None:
        error: BaseException | None = None
        try:
            async for _ in self.client.backups.iter(**self.list_filters()):
                pass
        except BackupsError as exc:
            error = exc
            if isinstance(exc, NotFoundError):
                self.page_404s += 1
        self.note("iter", error)

    async def op_delete(self) -> None:
        if not self.doomed:
            await self.op_get()
            return
        backup_id = self.doomed.pop(self.rng.randrange(len(self.doomed)))
        self.delete_started[backup_id] = time.monotonic()
        error: BaseException | None = None
        try:
            await self.client.backups.delete(backup_id)
        except BackupsError as exc:
            error = exc
            if isinstance(exc, NotFoundError):
                # Each backup is deleted once, and existed when the call began: a 404
                # can only follow an attempt of this very call, which is success.
                self.problems.append(f"delete({backup_id}): NotFoundError: {exc}")
        else:
            if self.exists(backup_id):
                self.problems.append(f"delete({backup_id}) succeeded, yet it still exists")
        self.note("delete", error)

    async def op_wait(self) -> None:
        backup_id = self.pick_backup()
        error: BaseException | None = None
        try:
            backup = await self.client.backups.wait_until_completed(backup_id, **WAIT)
        except NotFoundError as exc:
            self.check_not_found("wait", backup_id, exc)
            error = exc
        except (BackupFailedError, WaitTimeoutError) as exc:
            error = exc
            if isinstance(exc, WaitTimeoutError):
                self.problems.append(f"wait({backup_id}) timed out: {exc}")
        except BackupsError as exc:
            error = exc
        else:
            if backup.id != backup_id:
                self.problems.append(f"wait({backup_id}) returned backup {backup.id}")
        self.note("wait", error)

    async def op_restore(self) -> None:
        server_id = self.pick_server()
        error: BaseException | None = None
        try:
            await self.client.servers.restore(server_id, self.fleet_backups[server_id])
        except BackupsError as exc:
            error = exc
            if isinstance(exc, NotFoundError):
                self.problems.append(f"restore({server_id}): NotFoundError: {exc}")
        self.note("restore", error)

    async def op_cancelled(self) -> None:
        """Another operation, cancelled after a few milliseconds (if still running)."""
        op = self.rng.choice(["create", "get", "list", "delete", "wait"])
        try:
            async with asyncio.timeout(self.rng.uniform(0.001, 0.05)) as deadline:
                await getattr(self, f"op_{op}")()
        except TimeoutError:
            if not deadline.expired():
                raise  # not the deadline's: it came out of the SDK
        self.outcomes["cancelled", f"{op} cut short" if deadline.expired() else op] += 1

    # -- the end ---------------------------------------------------------------------------

    def check_creates(self) -> Counter[str]:
        """Each create made at most one backup, and the one it reported."""
        tally: Counter[str] = Counter()
        on_fake: dict[tuple[int, str | None], list[int]] = defaultdict(list)
        for backup in self.api.backups(backup_type="manual"):
            on_fake[backup.server_id, backup.description or None].append(backup.id)
        handed_out = Counter(r.backup.id for r in self.creates if r.backup is not None)
        for backup_id, times in handed_out.items():
            if times > 1:
                self.problems.append(f"backup {backup_id} was handed to {times} creates")
        deleted = {i for i in self.delete_started if not self.exists(i)}
        calls: dict[tuple[int, str | None], list[Create]] = defaultdict(list)
        for record in self.creates:
            calls[record.server_id, record.description].append(record)
        for key, records in calls.items():
            made = set(on_fake.get(key, ()))
            made |= {r.backup.id for r in records if r.backup is not None} & deleted
            reported = {r.backup.id for r in records if r.backup is not None}
            if len(made) > len(records):
                self.problems.append(
                    f"{len(records)} create(s) of {key} made {len(made)} backups: "
                    f"{sorted(made)}; reported {sorted(reported)}"
                )
            if not reported <= made:
                self.problems.append(f"creates of {key} reported {reported - made}, not made")
            left = max(0, len(made) - len(reported))
            cut_short = any(r.cancelled for r in records)
            tally["left by cancelled creates" if cut_short else "left by failed creates"] += left
            tally["made"] += len(made)
        return tally


@contextlib.contextmanager
def unclosed_logs() -> Iterator[list[str]]:
    """Records that mention "Unclosed", from any logger, while the block runs."""
    lines: list[str] = []

    class Catch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            message = record.getMessage()
            if "Unclosed" in message or "unclosed" in message:
                lines.append(f"{record.name}: {message}")

    handler = Catch(logging.DEBUG)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield lines
    finally:
        root.removeHandler(handler)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def settle(predicate: Any, seconds: float = 1.0) -> None:
    """Give the loop (and the fake's thread) up to ``seconds`` for ``predicate`` to hold."""
    for _ in range(int(seconds / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)


async def drive_clock(api: FakeBackupsAPI, stop: asyncio.Event) -> None:
    """Move the fake's clock on in small steps: about 30 s of it per 0.1 s of ours."""
    while not stop.is_set():
        api.advance(3.0)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.01):
                await stop.wait()


async def run_ops(soak: Soak, count: int) -> None:
    """``count`` operations, drawn by the soak's seeded generator, from a worker pool."""
    kinds, weights = zip(*MIX.items(), strict=True)
    plan = iter(soak.rng.choices(kinds, weights, k=count))

    async def worker() -> None:
        for op in plan:
            await soak.run(op)
            soak.done += 1

    async with asyncio.TaskGroup() as group:
        for _ in range(WORKERS):
            group.create_task(worker())


# Tracing every allocation makes the calls about three times slower: memory is traced in
# one variant only (the other keeps every other check), from the warm-up's end.
@pytest.mark.parametrize(
    ("honor_idempotency_keys", "trace_memory"),
    [(True, True), (False, False)],
    ids=["keys-honoured", "keys-ignored"],
)
async def test_1500_mixed_calls_under_10pct_chaos_no_false_404_no_duplicate_no_leak(
    honor_idempotency_keys: bool, trace_memory: bool
) -> None:
    started = time.monotonic()
    started_tracing = False
    baseline: int | None = None
    growth = 0
    api = FakeBackupsAPI(
        backup_seconds=30,
        page_size=10,
        honor_idempotency_keys=honor_idempotency_keys,
        seed=7,
        sample_data=False,
    )
    api.add_fleet(FLEET)
    for server_id in FAILING:
        api.set_failing(server_id)
    api.advance(3600)  # see the module's docstring
    api.start_in_thread()
    try:
        api.faults.chaos(CHAOS_RATE, retry_after=0.01, delay=DELAY)
        fleet_backups = {backup.server_id: backup.id for backup in api.backups()}
        tasks_before = asyncio.all_tasks()
        fds_before = open_fds()
        with unclosed_logs() as unclosed:
            client = BackupsClient(
                api.token,
                base_url=api.base_url,
                timeout=TIMEOUT,
                retry_backoff=0,
                max_retry_backoff=0,
            )
            soak = Soak(api, client, random.Random(1), fleet_backups)
            stop = asyncio.Event()
            clock = asyncio.create_task(drive_clock(api, stop))
            try:
                async with asyncio.timeout(60):  # a hang fails the case, not the suite
                    await run_ops(soak, WARMUP)
                    gc.collect()
                    if trace_memory:
                        if not tracemalloc.is_tracing():
                            tracemalloc.start()
                            started_tracing = True
                        baseline = tracemalloc.get_traced_memory()[0]
                    await run_ops(soak, OPS - WARMUP)
            finally:
                stop.set()
                await clock
                await client.aclose()
            gc.collect()
            await settle(lambda: asyncio.all_tasks() == tasks_before)
            tasks_left = asyncio.all_tasks() - tasks_before
            await settle(lambda: open_fds() <= fds_before + FD_SLACK)
            fds_after = open_fds()
            gc.collect()
            if baseline is not None:
                growth = tracemalloc.get_traced_memory()[0] - baseline
        tally = soak.check_creates()
        faults = {str(kind): count for kind, count in sorted(api.faults.injected.items())}
        requests = sum(api.requests.values())
    finally:
        api.stop_in_thread()
        if started_tracing:
            tracemalloc.stop()

    elapsed = time.monotonic() - started
    print(
        f"\nsoak ({'keys honoured' if honor_idempotency_keys else 'keys ignored'}): "
        f"{soak.done} operations, {requests} requests in {elapsed:.1f} s; "
        f"faults {faults}; creates made {tally['made']} backups, "
        f"{tally['left by failed creates']} left by failed creates and "
        f"{tally['left by cancelled creates']} by cancelled ones; {soak.page_404s} list(s) met a "
        f"vanished page; traced memory "
        f"{f'+{growth / 1e6:.1f} MB' if baseline is not None else 'not traced'} after the warm-up; "
        f"fds {fds_before} -> {fds_after}"
    )
    for (op, outcome), count in sorted(soak.outcomes.items()):
        print(f"  {op:<20} {outcome:<26} {count}")

    assert soak.done == OPS
    assert sum(faults.values()) > OPS * CHAOS_RATE / 2, faults  # the chaos did strike
    assert not soak.problems, "\n".join(soak.problems[:30])
    assert not tasks_left, f"tasks left running after the client closed: {tasks_left}"
    assert fds_after <= fds_before + FD_SLACK, f"file descriptors {fds_before} -> {fds_after}"
    assert growth < MAX_GROWTH, f"traced memory grew {growth / 1e6:.1f} MB after the warm-up"
    assert not unclosed, unclosed


async def test_a_list_that_grows_while_it_is_paged_is_read_to_its_end() -> None:
    """A busy account: 4 backups are made while each page of 10 is read (newest first).

    Every page the API gives is honest; the list just grows, as DRF's page-number
    pagination shows it, and ends after 16 pages where its first page's count implied 10.
    """
    async with (
        FakeBackupsAPI(page_size=10, sample_data=False, fleet=100) as api,
        BackupsClient(api.token, base_url=api.base_url, retry_backoff=0) as client,
    ):
        first = {backup.id for backup in api.backups()}
        seen: set[int] = set()
        read = 0
        async for backup in client.backups.iter():
            seen.add(backup.id)
            read += 1
            if read % 10 == 0:
                for _ in range(4):
                    api.state.create_backup(1, description="made while listing")
        assert first <= seen
        assert api.requests[("GET", "backups/")] == 16


async def test_a_list_that_shrinks_while_it_is_paged_ends_without_not_found() -> None:
    """Retention deletes 15 old backups while a 10-page list is read, 10 a page.

    The last page then no longer exists and DRF answers it 404 "Invalid page."; the
    backups that were on it moved onto pages already read. The list exists and so does
    every backup still in it: a ``NotFoundError`` out of a list names nothing missing.
    """
    async with (
        FakeBackupsAPI(page_size=10, sample_data=False, fleet=100) as api,
        BackupsClient(api.token, base_url=api.base_url, retry_backoff=0) as client,
    ):
        read: list[int] = []
        async for backup in client.backups.iter():
            read.append(backup.id)
            if len(read) == 90:
                for oldest in api.backups()[-15:]:
                    api.state.delete_backup(oldest.id)
        assert set(read) >= {backup.id for backup in api.backups()}  # all 85 left
