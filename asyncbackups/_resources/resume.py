"""A resumed fleet run's reads: what it adopts, when it settles, which key each create sends.

The rules are :mod:`asyncbackups._core.resume`'s; :class:`Resume` reads and waits by
them for ``create_many``/``stream_many`` with ``resume=True``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import (
    AsyncIterable,
    Callable,
    Collection,
    Iterable,
)
from datetime import datetime
from typing import Any

from .._calls.pagination import (
    Reader,
)
from .._core.callbacks import call_back
from .._core.checks import (
    check_number,
)
from .._core.errors import BackupsError
from .._core.models import (
    Backup,
    BackupType,
)
from .._core.resume import (
    ReadWindow,
    RunBackups,
    run_idempotency_key,
)
from .._waiting.fleet import (
    StopRun,
)

__all__ = ["Resume", "check_resume_options"]

logger = logging.getLogger("asyncbackups")


class Resume:
    """One resumed run's reads: what it adopts, when it settles, which key each create sends.

    The rules are :mod:`asyncbackups._core.resume`'s; this is their reading and waiting.
    """

    __slots__ = (
        "_concurrency",
        "_errors",
        "_found",
        "_keys",
        "_lock",
        "_must_settle",
        "_on_settle",
        "_per_server",
        "_reader",
        "_reread",
        "_servers",
        "_since",
        "_waited",
        "description",
        "earlier_attempt",
        "settle_timeout",
    )

    def __init__(
        self,
        reader: Reader,
        description: str,
        *,
        since: datetime | None,
        settle_timeout: float,
        earlier_attempt: bool,
        on_settle: Callable[[float], Any] | None,
        concurrency: int,
    ) -> None:
        self._reader = reader
        self.description = description
        self._since = since
        self.settle_timeout = settle_timeout
        self.earlier_attempt = earlier_attempt
        self._on_settle = on_settle
        self._concurrency = concurrency
        self._servers: frozenset[int] | None = None
        self._found = RunBackups(description)
        self._errors: dict[int, BackupsError] = {}
        self._keys: dict[int, str] = {}
        self._per_server = False
        self._must_settle = False
        self._waited = False
        self._reread = False
        self._lock = asyncio.Lock()

    # -- the first read -------------------------------------------------------------------

    async def read(
        self, server_ids: Iterable[int] | AsyncIterable[int], *, in_doubt_at: float | None
    ) -> None:
        """Read what earlier attempts left, and decide whether the run must settle.

        Across the account's manual backups, or per server when that is cheaper: the
        first page across tells how many pages a whole read takes. With ``since`` the
        read across may end much sooner, which no count tells in advance, so it goes on
        until it has cost what reading per server would, and only then changes to that:
        at most twice the cheaper of the two.
        """
        if isinstance(server_ids, Collection) and not isinstance(server_ids, str | bytes):
            # Bad IDs are left to the run, which refuses them when it reaches them.
            self._servers = frozenset(
                server_id for server_id in server_ids if type(server_id) is int and server_id > 0
            )
        found = RunBackups(self.description, self._servers)
        per_server_cost = None if self._servers is None else len(self._servers)
        window = None if self._since is None else ReadWindow(self._since)
        pages_read = 0
        pages = self._reader.pages({"backup_type": BackupType.MANUAL.value})
        async with contextlib.aclosing(pages) as walk:
            async for page in walk:
                pages_read += 1
                found.add(page.backups)
                if window is not None and window.passed(page.backups):
                    break
                if per_server_cost is None or not page.backups:
                    continue
                if pages_read == 1 and page.count:
                    across = math.ceil(page.count / len(page.backups))
                    if per_server_cost >= across:
                        per_server_cost = None  # decided: across
                        continue
                    if window is None:
                        self._per_server = True
                        break
                if pages_read >= per_server_cost:
                    self._per_server = True
                    break
        if self._per_server:
            assert self._servers is not None
            await self._read_each(self._servers, found)
        self._found = found
        # A create of this run on this client, ended in doubt within the settle time,
        # may still land: an earlier attempt known without any backup of it seen.
        in_doubt = in_doubt_at is not None and time.monotonic() - in_doubt_at < self.settle_timeout
        earlier = found.seen or self.earlier_attempt or in_doubt
        self._must_settle = earlier and self.settle_timeout > 0

    async def _read_each(self, servers: Iterable[int], found: RunBackups) -> None:
        """Read each server's manual backups into ``found``, ``concurrency`` at a time.

        All before any create, so that the settle is decided on the whole run. A server
        whose read failed gets the error as its outcome.
        """
        slots = asyncio.Semaphore(self._concurrency)

        async def one(server_id: int) -> None:
            async with slots:
                try:
                    await self._read_server(server_id, found)
                except BackupsError as error:
                    self._errors[server_id] = error

        async with asyncio.TaskGroup() as group:
            for server_id in servers:
                group.create_task(one(server_id))

    async def _read_server(self, server_id: int, found: RunBackups) -> None:
        params = {"server_id": str(server_id), "backup_type": BackupType.MANUAL.value}
        await self._read_into(found, params)

    async def _read_across(self) -> RunBackups:
        found = RunBackups(self.description, self._servers)
        await self._read_into(found, {"backup_type": BackupType.MANUAL.value})
        return found

    async def _read_into(self, found: RunBackups, params: dict[str, str]) -> None:
        """Read the pages of ``params`` into ``found``, down to ``since`` if given."""
        window = None if self._since is None else ReadWindow(self._since)
        pages = self._reader.pages(params)
        async with contextlib.aclosing(pages) as walk:
            async for page in walk:
                found.add(page.backups)
                if window is not None and window.passed(page.backups):
                    break

    # -- per server, as the run reaches it --------------------------------------------------

    async def adopt(self, server_id: int) -> Backup | None:
        """The backup an earlier attempt made for ``server_id``, or ``None`` to create one.

        The first server that needs a create settles the run first, if it must: every
        other waits for that one settle, and servers adopted meanwhile are not held up.
        """
        error = self._errors.pop(server_id, None)
        if error is not None:
            raise error
        found = self._found
        backup = found.take(server_id)
        if backup is None and self._must_settle:
            await self._settle()
            if self._per_server:
                found = RunBackups(self.description)
                await self._read_server(server_id, found)
            else:
                found = self._found
            backup = found.take(server_id)
        if backup is None:
            generation = found.generation(server_id)
            self._keys[server_id] = run_idempotency_key(self.description, server_id, generation)
        return backup

    def idempotency_key(self, server_id: int) -> str:
        """The key of the create ``adopt`` just decided on for ``server_id``."""
        key = self._keys.pop(server_id, None)
        if key is None:
            key = run_idempotency_key(
                self.description, server_id, self._found.generation(server_id)
            )
        return key

    async def _settle(self) -> None:
        """Wait once for an earlier attempt's requests to land, then read again.

        Raises :class:`StopRun` for what ``on_settle`` raised or the read after the wait
        failed with: the run cannot go on without them.
        """
        async with self._lock:
            if not self._waited:
                seconds = self.settle_timeout
                logger.warning(
                    "waiting %s s for an earlier attempt's requests to land", f"{seconds:g}"
                )
                try:
                    await call_back(self._on_settle, seconds)
                except Exception as error:  # the caller's callback: it stops the run
                    raise StopRun(error) from None
                await asyncio.sleep(seconds)
                self._waited = True
            if not self._per_server and not self._reread:
                try:
                    self._found = await self._read_across()
                except BackupsError as error:
                    raise StopRun(error) from None
                self._reread = True


def check_resume_options(
    since: object, settle_timeout: object, earlier_attempt: object, on_settle: object
) -> None:
    if since is not None:
        if not isinstance(since, datetime):
            raise TypeError(f"since must be a datetime, not {type(since).__name__}")
        if since.utcoffset() is None:
            raise ValueError("since must be timezone-aware, like datetime.now(UTC)")
    if settle_timeout is not None:
        check_number("settle_timeout", settle_timeout, minimum=0)
    if not isinstance(earlier_attempt, bool):
        raise TypeError(f"earlier_attempt must be a bool, not {type(earlier_attempt).__name__}")
    if on_settle is not None and not callable(on_settle):
        raise TypeError("on_settle must be callable")
