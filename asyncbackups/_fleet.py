"""``create_many``: one backup per server across a fleet, and what became of each."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import attrs

from ._callbacks import call_back
from ._errors import BackupFailedError, WaitTimeoutError
from ._models import Backup

__all__ = ["BackupOutcome", "FleetResult", "run_fleet"]


@attrs.frozen
class BackupOutcome:
    """What became of one server in a fleet run.

    ``backup`` is the last state seen for the server's backup (also when its wait
    failed), ``None`` if none was made; ``error`` is why the server failed, ``None``
    when it succeeded.
    """

    server_id: int
    backup: Backup | None = None
    error: BaseException | None = attrs.field(default=None, eq=False)

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


async def run_fleet(
    server_ids: Sequence[int],
    *,
    create: Callable[[int], Awaitable[Backup]],
    wait: Callable[[Backup, Callable[[Backup], None]], Awaitable[Backup]] | None,
    concurrency: int,
    on_progress: Callable[[BackupOutcome], Any] | None,
) -> FleetResult:
    """Create (and optionally wait for) one backup per server; never raise per server.

    At most ``concurrency`` creates are in flight; waits do not hold a slot, since the
    shared poller serves them all for a few requests a round. ``on_progress`` hears
    each outcome as it lands; what it raises cancels the run and reaches the caller.
    """
    outcomes: list[BackupOutcome | None] = [None] * len(server_ids)
    landed: asyncio.Queue[int] = asyncio.Queue()
    slots = asyncio.Semaphore(concurrency)
    tasks: set[asyncio.Task[None]] = set()

    async def one(index: int, server_id: int) -> None:
        last: Backup | None = None

        def seen(backup: Backup) -> None:
            nonlocal last
            last = backup

        try:
            try:
                last = await create(server_id)
            finally:
                slots.release()
            if wait is not None:
                last = await wait(last, seen)
            outcomes[index] = BackupOutcome(server_id, last)
        except (BackupFailedError, WaitTimeoutError) as error:
            outcomes[index] = BackupOutcome(server_id, error.backup or last, error)
        except Exception as error:  # every server gets an outcome, whatever went wrong
            outcomes[index] = BackupOutcome(server_id, last, error)
        landed.put_nowait(index)

    async def launch() -> None:
        for index, server_id in enumerate(server_ids):
            await slots.acquire()
            task = asyncio.create_task(one(index, server_id))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    launcher = asyncio.create_task(launch())
    try:
        for _ in server_ids:
            outcome = outcomes[await landed.get()]
            await call_back(on_progress, outcome)
        await launcher
    finally:
        # Cancelled, or a callback raised: take every task down before leaving.
        pending = [launcher, *tasks]
        for task in pending:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*pending, return_exceptions=True)
    return FleetResult([outcome for outcome in outcomes if outcome is not None])
