"""``client.backups``: list, iterate, get, create (with reconciliation) and delete."""

from __future__ import annotations

import builtins
import contextlib
import math
import time
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Sized,
)
from datetime import UTC, datetime
from typing import Any

from ._callbacks import call_back
from ._calls import Call
from ._checks import (
    check_description,
    check_id,
    check_idempotency_key,
    check_number,
)
from ._fleet import BackupOutcome, FleetResult, stream_fleet
from ._models import Backup, BackupStatus, BackupType
from ._options import ClientOptions
from ._protocol import (
    BACKUPS_PATH,
    backup_path,
    decode_backup_response,
    decode_delete_response,
    dump_json,
    list_params,
    server_date,
)
from ._raw import RawResponse, raw_response
from ._reading import Page, Reader
from ._reconcile import Claims, call_start, same_create
from ._retry_policy import Safety
from ._stats import Counters
from ._transport import Request, Transport
from ._waiting import Poller, Schedule

__all__ = ["BackupsAPI"]

CREATE_ROUTE = "POST backups/"
DELETE_ROUTE = "DELETE backups/{id}/"
_JSON_HEADERS = {"Content-Type": "application/json"}


class BackupsWithRawResponse:
    """``client.backups.with_raw_response``: each call, returning a :class:`RawResponse`.

    ::

        raw = await client.backups.with_raw_response.get(501)
        print(raw.status_code, raw.request_id, raw.retries_taken)
        backup = raw.parse()
    """

    def __init__(self, api: BackupsAPI) -> None:
        self._api = api

    async def list(
        self, *, server_id: int | None = None, backup_type: BackupType | str | None = None
    ) -> RawResponse[builtins.list[Backup]]:
        """``backups.list``; ``headers`` and ``request_id`` are the last page's."""
        params = list_params(server_id, backup_type)
        self._api._transport.check_open()
        calls: builtins.list[Call[Page]] = []
        backups = await self._api._reader.read_all(params, calls=calls)
        return raw_response(calls, backups, pages=len(calls))

    async def get(self, backup_id: int) -> RawResponse[Backup]:
        """``backups.get``."""
        check_id(backup_id, "backup_id")
        call = self._api._reader.detail_call(backup_id)
        return raw_response([call], await call.run())

    async def create(
        self,
        server_id: int,
        *,
        description: str | None = None,
        idempotency_key: str | None = None,
    ) -> RawResponse[Backup]:
        """``backups.create``."""
        call, same = self._api._create_call(server_id, description, idempotency_key)
        return raw_response([call], await self._api._run_create(call, same))

    async def delete(self, backup_id: int) -> RawResponse[None]:
        """``backups.delete``."""
        call = self._api._delete_call(backup_id)
        await call.run()
        return raw_response([call], None)


class BackupsAPI:
    """The backups of every server the token can see. Reached as ``client.backups``."""

    def __init__(
        self,
        transport: Transport,
        options: ClientOptions,
        counters: Counters,
        *,
        poller: Poller,
        claims: Claims,
    ) -> None:
        self._transport = transport
        self._options = options
        self._counters = counters
        self._reader = Reader(transport, options, counters)
        self._poller = poller
        # Backups handed out by this client's creates, and its creates in flight: a
        # reconcile never adopts one backup for two calls.
        self._claims = claims

    @property
    def with_raw_response(self) -> BackupsWithRawResponse:
        """The same calls, each returning a :class:`RawResponse` around its result."""
        return BackupsWithRawResponse(self)

    # -- reading ------------------------------------------------------------------------

    async def list(
        self, *, server_id: int | None = None, backup_type: BackupType | str | None = None
    ) -> builtins.list[Backup]:
        """Every backup matching the filters, across all pages, in the API's order.

        Raises ``TypeError``/``ValueError`` for a bad filter before any request.
        """
        params = list_params(server_id, backup_type)
        self._transport.check_open()
        return await self._reader.read_all(params)

    async def iter(
        self, *, server_id: int | None = None, backup_type: BackupType | str | None = None
    ) -> AsyncIterator[Backup]:
        """Yield matching backups lazily, one page fetched at a time (``async for``)."""
        params = list_params(server_id, backup_type)
        self._transport.check_open()
        async for page in self._reader.pages(params):
            for backup in page.backups:
                yield backup

    async def get(self, backup_id: int) -> Backup:
        """One backup by ID. Raises :class:`NotFoundError` when there is none."""
        check_id(backup_id, "backup_id")
        return await self._reader.read_backup(backup_id)

    # -- writing ------------------------------------------------------------------------

    def _create_call(
        self, server_id: int, description: str | None, idempotency_key: str | None
    ) -> tuple[Call[Backup], tuple[int, str]]:
        check_id(server_id, "server_id")
        check_description(description)
        key = check_idempotency_key(idempotency_key)
        payload: dict[str, Any] = {"server_id": server_id}
        if description is not None:
            payload["description"] = description
        request = Request(
            "POST",
            self._transport.url(BACKUPS_PATH),
            route=CREATE_ROUTE,
            data=dump_json(payload),
            headers={**_JSON_HEADERS, "Idempotency-Key": key},
        )
        same = same_create(server_id, description)
        started = time.monotonic()
        started_wall = datetime.now(UTC)

        async def reconcile() -> Backup | None:
            return await self._find_created(same, key, started, started_wall)

        call = Call(
            self._transport,
            request,
            safety=Safety.CREATE,
            decode=decode_backup_response,
            options=self._options,
            counters=self._counters,
            reconcile=reconcile,
            idempotency_key=key,
        )
        return call, same

    async def _run_create(self, call: Call[Backup], same: tuple[int, str]) -> Backup:
        self._claims.begin(same)
        try:
            backup = await call.run()
        finally:
            self._claims.end(same)
        self._claims.claim(backup.id)
        return backup

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
        never makes two backups. Raises :class:`NotFoundError` for an unknown server,
        :class:`BadRequestError` (with ``field_errors``) for a refused description, and
        :class:`AmbiguousCreateError` when, in doubt, several existing backups could be
        the one it made (see the README's "What a create's reconcile can know").
        """
        call, same = self._create_call(server_id, description, idempotency_key)
        return await self._run_create(call, same)

    async def _find_created(
        self,
        same: tuple[int, str],
        idempotency_key: str,
        started: float,
        started_wall: datetime,
    ) -> Backup | None:
        """The backup an ambiguous create made, if the server has it; ``None`` if not."""
        server_id, _ = same
        params = {"server_id": str(server_id), "backup_type": BackupType.MANUAL.value}
        candidates: builtins.list[Backup] = []
        date: datetime | None = None
        elapsed = 0.0
        first = True
        # One attempt per page: the reconcile is part of the create's own attempts,
        # which keeps a create within 2 x (max_retries + 1) requests.
        async for page in self._reader.pages(params, max_retries=0):
            if first:
                first = False
                elapsed = time.monotonic() - started
                date = server_date(page.headers)
            candidates.extend(page.backups)
        since = call_start(date, elapsed, started_wall)
        return self._claims.adopt(same, candidates, since, idempotency_key=idempotency_key)

    def _delete_call(self, backup_id: int) -> Call[None]:
        check_id(backup_id, "backup_id")
        request = Request("DELETE", self._transport.url(backup_path(backup_id)), route=DELETE_ROUTE)
        return Call(
            self._transport,
            request,
            safety=Safety.DELETE,
            decode=decode_delete_response,
            options=self._options,
            counters=self._counters,
        )

    async def delete(self, backup_id: int) -> None:
        """Delete a backup for good.

        Raises :class:`NotFoundError` when it does not exist; a 404 that follows an
        attempt which may already have deleted it counts as success.
        """
        await self._delete_call(backup_id).run()

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
            schedule=self._schedule(poll_interval, max_poll_interval),
            on_update=on_update,
        )

    def _schedule(
        self, poll_interval: float, max_poll_interval: float, timeout: float | None = None
    ) -> Schedule:
        return Schedule(
            poll_interval=float(poll_interval),
            max_poll_interval=float(max_poll_interval),
            max_retry_after=self._options.max_retry_after,
            timeout=None if timeout is None else float(timeout),
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
        resume: bool = False,
        on_created: Callable[[BackupOutcome], Any] | None = None,
    ) -> FleetResult:
        """Back up many servers at once; every server gets exactly one outcome.

        Never raises because a server failed: each failure is an outcome's ``error``,
        and outcomes come back in input order. At most ``concurrency`` creates run at
        once (default: the client's ``max_concurrency``). With ``wait=True`` each
        backup is then waited for (up to ``wait_timeout`` seconds) through the shared
        poller, and an outcome is ``ok`` only once its backup completed.
        ``on_created`` hears each server as its backup is made (or adopted), and
        ``on_progress`` each outcome as it lands (plain or async callables; what they
        raise stops the run and reaches you). ``resume`` is as for :meth:`stream_many`.

        Raises ``TypeError``/``ValueError`` before any request for an ID that is not a
        positive ``int`` and for repeated IDs. Cancelling it cancels all its work.
        """
        if isinstance(server_ids, str | bytes):
            raise TypeError("server_ids must be an iterable of ints, not a string")
        ids = builtins.list(server_ids)
        index: dict[int, int] = {}
        for position, server_id in enumerate(ids):
            check_id(server_id, "server_id")
            if server_id in index:
                raise ValueError(f"server_ids repeats [{server_id}]; each server is backed up once")
            index[server_id] = position
        if on_progress is not None and not callable(on_progress):
            raise TypeError("on_progress must be callable")
        outcomes: builtins.list[BackupOutcome | None] = [None] * len(ids)
        stream = self.stream_many(
            ids,
            description=description,
            wait=wait,
            concurrency=concurrency,
            wait_timeout=wait_timeout,
            poll_interval=poll_interval,
            max_poll_interval=max_poll_interval,
            resume=resume,
            on_created=on_created,
        )
        async with contextlib.aclosing(stream) as landed:
            async for outcome in landed:
                outcomes[index[outcome.server_id]] = outcome
                await call_back(on_progress, outcome)
        return FleetResult([outcome for outcome in outcomes if outcome is not None])

    def stream_many(
        self,
        server_ids: Iterable[int] | AsyncIterable[int],
        *,
        description: str | None = None,
        wait: bool = False,
        concurrency: int | None = None,
        wait_timeout: float | None = 1800.0,
        poll_interval: float = 2.0,
        max_poll_interval: float = 30.0,
        resume: bool = False,
        on_created: Callable[[BackupOutcome], Any] | None = None,
    ) -> AsyncGenerator[BackupOutcome]:
        """Back up many servers, yielding each server's outcome as it lands.

        ::

            async for outcome in client.backups.stream_many(ids, description="weekly"):
                print(outcome.server_id, outcome.ok)

        ``server_ids`` may be any iterable or async iterable, read lazily: memory is
        bounded by what is in flight, not by the fleet (a waiting server costs a small
        record held by the shared poller, not a task). Outcomes come in completion
        order; every server gets exactly one. Breaking out of the loop, or cancelling,
        stops all its work (use ``contextlib.aclosing`` to stop it at once).

        ``resume=True`` (which needs a ``description``) makes a run safe to start
        again after a crash: a server that already has a manual backup with exactly
        that description, not ``failed``, is adopted (``outcome.adopted``) instead of
        backed up again, completed ones reported at once and in-progress ones waited
        for when ``wait=True``. Choose a description that names the run (``"weekly
        2026-W48"``). An ID that is not a positive ``int``, or a repeated one, raises
        ``TypeError``/``ValueError`` from the loop when it is reached.
        """
        check_description(description)
        if resume and not (description or "").strip():
            raise ValueError("resume=True needs a description that names the run")
        if concurrency is None:
            concurrency = self._options.max_concurrency
        check_number("concurrency", concurrency, minimum=1, integer=True)
        _check_wait_options(wait_timeout, poll_interval, max_poll_interval)
        if on_created is not None and not callable(on_created):
            raise TypeError("on_created must be callable")
        if not isinstance(wait, bool):
            raise TypeError(f"wait must be a bool, not {type(wait).__name__}")
        self._transport.check_open()
        return self._stream(
            server_ids,
            description=description,
            wait=wait,
            concurrency=concurrency,
            schedule=self._schedule(poll_interval, max_poll_interval, wait_timeout),
            resume=resume,
            on_created=on_created,
        )

    async def _stream(
        self,
        server_ids: Iterable[int] | AsyncIterable[int],
        *,
        description: str | None,
        wait: bool,
        concurrency: int,
        schedule: Schedule,
        resume: bool,
        on_created: Callable[[BackupOutcome], Any] | None,
    ) -> AsyncGenerator[BackupOutcome]:
        adopt = None
        if resume:
            adopt = await self._previous_run(server_ids, (description or "").strip())

        async def create(server_id: int) -> Backup:
            return await self.create(server_id, description=description)

        stream = stream_fleet(
            server_ids,
            create=create,
            adopt=adopt,
            poller=self._poller if wait else None,
            schedule=schedule,
            concurrency=concurrency,
            on_created=on_created,
        )
        async with contextlib.aclosing(stream) as landed:
            async for outcome in landed:
                yield outcome

    async def _previous_run(
        self, server_ids: Iterable[int] | AsyncIterable[int], description: str
    ) -> Callable[[int], Awaitable[Backup | None]]:
        """How a resumed run finds each server's backup from an earlier run.

        The manual backups are read once across the fleet, or per server when that
        takes fewer requests (a small fleet among many backups): the first page across
        tells how many pages there are, so it costs at most one request more than the
        fewer of the two.
        """
        fleet_size = len(server_ids) if isinstance(server_ids, Sized) else None
        params = {"backup_type": BackupType.MANUAL.value}
        found: dict[int, Backup] = {}
        pages = self._reader.pages(params)
        async with contextlib.aclosing(pages) as walk:
            async for page in walk:
                if fleet_size is not None and page.count and page.backups:
                    across = math.ceil(page.count / len(page.backups))
                    if fleet_size < across:
                        return self._per_server_lookup(description)
                    fleet_size = None  # decided: across
                _keep_best(found, page.backups, description)

        async def lookup(server_id: int) -> Backup | None:
            return found.pop(server_id, None)

        return lookup

    def _per_server_lookup(self, description: str) -> Callable[[int], Awaitable[Backup | None]]:
        async def lookup(server_id: int) -> Backup | None:
            found: dict[int, Backup] = {}
            params = {"server_id": str(server_id), "backup_type": BackupType.MANUAL.value}
            async for page in self._reader.pages(params):
                _keep_best(found, page.backups, description)
            return found.get(server_id)

        return lookup


def _keep_best(found: dict[int, Backup], backups: Iterable[Backup], description: str) -> None:
    """Keep, per server, the backup a resumed run adopts: completed before in progress,
    then the newest; a failed one never."""
    for backup in backups:
        if (
            backup.backup_type is not BackupType.MANUAL
            or backup.status is BackupStatus.FAILED
            or (backup.description or "").strip() != description
        ):
            continue
        held = found.get(backup.server_id)
        if held is None or _rank(backup) > _rank(held):
            found[backup.server_id] = backup


def _rank(backup: Backup) -> tuple[bool, datetime, int]:
    return (backup.status is BackupStatus.COMPLETED, backup.created_at, backup.id)


def _check_wait_options(
    timeout: float | None, poll_interval: float, max_poll_interval: float
) -> None:
    if timeout is not None:
        check_number("timeout", timeout, minimum=0)
    check_number("poll_interval", poll_interval, minimum=0)
    # A cap below the start is raised to it: "poll every 5 s, at most every 2 s" can
    # only mean every 5 s.
    check_number("max_poll_interval", max_poll_interval, minimum=0)
