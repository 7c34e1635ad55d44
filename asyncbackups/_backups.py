"""``client.backups``: list, iterate, get, create (with reconciliation) and delete."""

from __future__ import annotations

import builtins
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from ._fleet import BackupOutcome, FleetResult, run_fleet
from ._http import HTTPTransport
from ._models import Backup, BackupType
from ._policy import Safety
from ._protocol import (
    BACKUPS_PATH,
    backup_path,
    check_id,
    check_idempotency_key,
    check_number,
    decode_backup_response,
    decode_delete_response,
    dump_json,
    list_params,
    server_date,
)
from ._reading import iter_pages, read_all_pages, read_backup
from ._waiting import Poller

__all__ = ["BackupsAPI"]

logger = logging.getLogger("asyncbackups")

# Without a Date header only our own clock is known, which may be off by much more.
_NO_DATE_MARGIN = timedelta(seconds=60)
# Our clock and the server's Date header disagreeing by more than this means one of
# them is wrong; the reconcile window then opens at the earlier of the two.
_CLOCK_TOLERANCE = timedelta(seconds=5)
_ONE_SECOND = timedelta(seconds=1)
_CLAIMED_LIMIT = 65_536


class BackupsAPI:
    """The backups of every server the token can see. Reached as ``client.backups``."""

    def __init__(self, transport: HTTPTransport, poller: Poller, *, max_concurrency: int) -> None:
        self._transport = transport
        self._poller = poller
        self._max_concurrency = max_concurrency
        # IDs this client already handed out as the result of a create, so that a
        # reconciliation never adopts the same backup for two calls.
        self._claimed: dict[int, None] = {}
        # Creates in flight per (server, description as the server keeps it): how many
        # backups made since a call began can be this client's own.
        self._in_flight: dict[tuple[int, str], int] = {}

    # -- reading ------------------------------------------------------------------------

    async def list(
        self, *, server_id: int | None = None, backup_type: BackupType | str | None = None
    ) -> builtins.list[Backup]:
        """Every backup matching the filters, across all pages, in the API's order.

        Raises ``TypeError``/``ValueError`` for a bad filter before any request.
        """
        params = list_params(server_id, backup_type)
        self._transport.check_open()
        return await read_all_pages(self._transport, params)

    async def iter(
        self, *, server_id: int | None = None, backup_type: BackupType | str | None = None
    ) -> AsyncIterator[Backup]:
        """Yield matching backups lazily, one page fetched at a time (``async for``)."""
        params = list_params(server_id, backup_type)
        self._transport.check_open()
        async for page, _ in iter_pages(self._transport, params):
            for backup in page:
                yield backup

    async def get(self, backup_id: int) -> Backup:
        """One backup by ID. Raises :class:`NotFoundError` when there is none."""
        check_id(backup_id, "backup_id")
        return await read_backup(self._transport, backup_id)

    # -- writing ------------------------------------------------------------------------

    async def create(
        self,
        server_id: int,
        *,
        description: str | None = None,
        idempotency_key: str | None = None,
    ) -> Backup:
        """Start a manual backup of a server; returns it ``IN_PROGRESS``.

        Safe to retry: every attempt carries the same ``Idempotency-Key`` (yours, or a
        fresh one), and after an attempt that may have reached the server the server's
        manual backups are read and the one that attempt made is adopted, so one call
        never makes two backups. Raises :class:`NotFoundError` for an unknown server and
        :class:`BadRequestError` (with ``field_errors``) for a refused description.
        """
        check_id(server_id, "server_id")
        if description is not None and not isinstance(description, str):
            raise TypeError(f"description must be a str, not {type(description).__name__}")
        key = check_idempotency_key(idempotency_key)
        body: dict[str, Any] = {"server_id": server_id}
        if description is not None:
            body["description"] = description
        started = time.monotonic()
        started_wall = datetime.now(UTC)
        # DRF trims surrounding whitespace and may store "" or null for no description,
        # so compare what the server would have kept, not what was sent.
        same = (server_id, (description or "").strip())

        async def reconcile() -> Backup | None:
            return await self._find_created(same, key, started, started_wall)

        self._in_flight[same] = self._in_flight.get(same, 0) + 1
        try:
            backup = await self._transport.send(
                "POST",
                self._transport.url(BACKUPS_PATH),
                safety=Safety.CREATE,
                decode=decode_backup_response,
                data=dump_json(body),
                idempotency_key=key,
                reconcile=reconcile,
            )
        finally:
            left = self._in_flight.pop(same) - 1
            if left:
                self._in_flight[same] = left
        self._claim(backup.id)
        return backup

    def _claim(self, backup_id: int) -> None:
        self._claimed[backup_id] = None
        if len(self._claimed) > _CLAIMED_LIMIT:
            del self._claimed[next(iter(self._claimed))]

    async def _find_created(
        self,
        same: tuple[int, str],
        idempotency_key: str,
        started: float,
        started_wall: datetime,
    ) -> Backup | None:
        """The backup an ambiguous create made, if the server has it; ``None`` if not.

        A candidate is a manual backup of the same server, with the description the
        server would have kept, made since the call began, and not already handed to
        another call of this client. The call's start is taken from the server's
        ``Date`` clock (whole seconds, so it may open up to a second early); when that
        clock and ours disagree by more than a few seconds, from the earlier of the two.
        More candidates than this client has creates in flight for the same server and
        description means another client made one too: that is reported, not guessed.
        """
        server_id, wanted = same
        params = {"server_id": str(server_id), "backup_type": BackupType.MANUAL.value}
        candidates: builtins.list[Backup] = []
        date: datetime | None = None
        elapsed = 0.0
        first = True
        # One attempt per page: the reconcile is part of the create's own attempts,
        # which keeps a create within 2 x (max_retries + 1) requests.
        async for page, headers in iter_pages(self._transport, params, max_retries=0):
            if first:
                first = False
                elapsed = time.monotonic() - started
                date = server_date(headers)
            candidates.extend(
                backup
                for backup in page
                if backup.server_id == server_id
                and backup.backup_type is BackupType.MANUAL
                and (backup.description or "").strip() == wanted
            )
        since = _call_start(date, elapsed, started_wall)
        # Claims are checked only now, with no await before the claim below: another
        # reconciling call may have claimed a candidate while these pages were read.
        matches = sorted(
            (
                backup
                for backup in candidates
                if _made_since(backup.created_at, since) and backup.id not in self._claimed
            ),
            key=lambda backup: (backup.created_at, backup.id),
        )
        if not matches:
            logger.info("create for server %d: no backup from the earlier attempt", server_id)
            return None
        if len(matches) > self._in_flight.get(same, 1):
            from ._errors import AmbiguousCreateError  # TODO: top-level once it lands

            ids = ", ".join(str(backup.id) for backup in matches)
            raise AmbiguousCreateError(
                f"create for server {server_id} was in doubt, and {len(matches)} backups "
                f"with its description were made since it began ({ids}): another client "
                "made the same backup at the same moment, or a delayed request landed "
                "late. Not guessing which is this call's: check them and delete any extra",
                server_id=server_id,
                candidates=matches,
                idempotency_key=idempotency_key,
            )
        chosen = matches[0]
        self._claim(chosen.id)
        logger.info(
            "create for server %d: the earlier attempt made backup %d; adopting it",
            server_id,
            chosen.id,
        )
        return chosen

    async def delete(self, backup_id: int) -> None:
        """Delete a backup for good.

        Raises :class:`NotFoundError` when it does not exist; a 404 that follows an
        attempt which may already have deleted it counts as success.
        """
        check_id(backup_id, "backup_id")
        await self._transport.send(
            "DELETE",
            self._transport.url(backup_path(backup_id)),
            safety=Safety.DELETE,
            decode=decode_delete_response,
        )

    # -- waiting and fleets -------------------------------------------------------------

    async def wait_until_completed(
        self,
        backup: Backup | int,
        *,
        timeout: float | None = 1800.0,
        poll_interval: float = 2.0,
        max_poll_interval: float = 30.0,
        on_update: Callable[[Backup], Any] | None = None,
    ) -> Backup:
        """Wait until a backup is ``COMPLETED`` and return it.

        Polls every ``poll_interval`` seconds at first, growing (with jitter) to
        ``max_poll_interval``, never sooner than a ``Retry-After``. Every wait on this
        client shares the same poll rounds, so a thousand waits cost a few requests a
        round. ``on_update`` (plain or async) hears the first read and every change;
        what it raises reaches you. A status the SDK does not know keeps the wait going.
        A ``Backup`` already final returns (or raises) at once, without a request.

        Raises :class:`BackupFailedError` when the backup ends ``FAILED``,
        :class:`WaitTimeoutError` after ``timeout`` seconds (``None``: no deadline),
        :class:`NotFoundError` when the backup disappears. Cancelling the wait stops
        only this wait.
        """
        if not isinstance(backup, Backup):
            check_id(backup, "backup")
        _check_wait_options(timeout, poll_interval, max_poll_interval)
        if on_update is not None and not callable(on_update):
            raise TypeError("on_update must be callable")
        self._transport.check_open()
        return await self._poller.wait(
            backup,
            timeout=None if timeout is None else float(timeout),
            poll_interval=float(poll_interval),
            max_poll_interval=float(max_poll_interval),
            on_update=on_update,
        )

    async def create_many(
        self,
        server_ids: Iterable[int],
        *,
        description: str | None = None,
        wait: bool = False,
        concurrency: int | None = None,
        wait_timeout: float | None = 1800.0,
        on_progress: Callable[[BackupOutcome], Any] | None = None,
        poll_interval: float = 2.0,
        max_poll_interval: float = 30.0,
    ) -> FleetResult:
        """Back up many servers at once; every server gets exactly one outcome.

        Never raises because a server failed: each failure is an outcome's ``error``,
        and outcomes come back in input order. At most ``concurrency`` creates run at
        once (default: the client's ``max_concurrency``). With ``wait=True`` each
        backup is then waited for (up to ``wait_timeout`` seconds) through the shared
        poller, and an outcome is ``ok`` only once its backup completed.
        ``on_progress`` (plain or async) hears each outcome as it lands.

        Raises ``TypeError``/``ValueError`` before any request for an ID that is not a
        positive ``int`` and for repeated IDs. Cancelling it cancels all its work.
        """
        ids = builtins.list(server_ids) if not isinstance(server_ids, str | bytes) else None
        if ids is None:
            raise TypeError("server_ids must be an iterable of ints, not a string")
        for server_id in ids:
            check_id(server_id, "server_id")
        repeated = sorted({i for i in ids if ids.count(i) > 1}) if len(set(ids)) < len(ids) else []
        if repeated:
            raise ValueError(f"server_ids repeats {repeated}; each server is backed up once")
        if description is not None and not isinstance(description, str):
            raise TypeError(f"description must be a str, not {type(description).__name__}")
        if concurrency is None:
            concurrency = self._max_concurrency
        check_number("concurrency", concurrency, minimum=1, integer=True)
        _check_wait_options(wait_timeout, poll_interval, max_poll_interval)
        if on_progress is not None and not callable(on_progress):
            raise TypeError("on_progress must be callable")
        self._transport.check_open()

        async def create(server_id: int) -> Backup:
            return await self.create(server_id, description=description)

        async def wait_for(backup: Backup, seen: Callable[[Backup], None]) -> Backup:
            return await self.wait_until_completed(
                backup,
                timeout=wait_timeout,
                poll_interval=poll_interval,
                max_poll_interval=max_poll_interval,
                on_update=seen,
            )

        return await run_fleet(
            ids,
            create=create,
            wait=wait_for if wait else None,
            concurrency=concurrency,
            on_progress=on_progress,
        )


def _call_start(date: datetime | None, elapsed: float, started_wall: datetime) -> datetime:
    """The earliest moment a backup made by the call can be stamped with."""
    if date is None:
        return started_wall - _NO_DATE_MARGIN
    by_server = date - timedelta(seconds=elapsed)
    ours_now = started_wall + timedelta(seconds=elapsed)
    if abs(ours_now - date) > _CLOCK_TOLERANCE:
        return min(by_server, started_wall)
    return by_server


def _made_since(created_at: datetime, since: datetime) -> bool:
    # A stamp in whole seconds may be the floor of a moment after ``since``.
    if created_at.microsecond == 0:
        return created_at > since - _ONE_SECOND
    return created_at >= since


def _check_wait_options(
    timeout: float | None, poll_interval: float, max_poll_interval: float
) -> None:
    if timeout is not None:
        check_number("timeout", timeout, minimum=0)
    check_number("poll_interval", poll_interval, minimum=0)
    check_number("max_poll_interval", max_poll_interval, minimum=poll_interval)
