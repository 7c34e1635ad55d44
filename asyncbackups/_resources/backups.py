"""``client.backups``: list, iterate, get, create (with reconciliation) and delete."""

from __future__ import annotations

import builtins
import contextlib
import time
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Callable,
    Iterable,
)
from datetime import UTC, datetime, timedelta
from typing import Any

from .._calls.call import Call
from .._calls.pagination import (
    Page,
    Reader,
)
from .._calls.reconcile import (
    Claims,
    call_start,
    same_create,
)
from .._calls.retry_policy import Safety
from .._core.callbacks import call_back
from .._core.checks import (
    check_description,
    check_id,
    check_idempotency_key,
    check_number,
)
from .._core.errors import BackupsError
from .._core.models import (
    Backup,
    BackupType,
)
from .._core.options import ClientOptions
from .._core.protocol import (
    BACKUPS_PATH,
    backup_path,
    list_params,
    server_date,
)
from .._core.retention import (
    CoverageReport,
    PrunePlan,
    PruneResult,
)
from .._core.stats import Counters
from .._decoding.responses import (
    decode_backup_response,
    decode_delete_response,
)
from .._transport.base import Transport
from .._waiting import until_completed
from .._waiting.fleet import (
    BackupOutcome,
    FleetResult,
    stream_fleet,
)
from .._waiting.poller import Poller
from .._waiting.waiters import Schedule
from .base import Resource
from .hygiene import Hygiene
from .raw import (
    RawResponse,
    raw_response,
)
from .resume import Resume, check_resume_options

__all__ = ["BackupsAPI"]


CREATE_ROUTE = "POST backups/"
DELETE_ROUTE = "DELETE backups/{id}/"


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


class BackupsAPI(Resource):
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
        super().__init__(transport, options, counters)
        self._reader = Reader(transport, options, counters)
        # A fleet's reads (resume) wait out throttling, as its creates do.
        self._fleet_reader = Reader(transport, options, counters, patient=True)
        self._poller = poller
        # Backups handed out by this client's creates, and its creates in flight: a
        # reconcile never adopts one backup for two calls.
        self._claims = claims
        self._hygiene = Hygiene(
            self._fleet_reader,
            self._delete_patiently,
            check_open=transport.check_open,
            concurrency=options.max_concurrency,
        )

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
        self,
        server_id: int,
        description: str | None,
        idempotency_key: str | None,
        *,
        patient: bool = False,
    ) -> tuple[Call[Backup], tuple[int, str]]:
        check_id(server_id, "server_id")
        check_description(description)
        key = check_idempotency_key(idempotency_key)
        payload: dict[str, Any] = {"server_id": server_id}
        if description is not None:
            payload["description"] = description
        same = same_create(server_id, description)
        started = time.monotonic()
        started_wall = datetime.now(UTC)

        async def reconcile() -> Backup | None:
            return await self._find_created(same, key, started, started_wall)

        call = self._post(
            BACKUPS_PATH,
            payload,
            route=CREATE_ROUTE,
            safety=Safety.CREATE,
            decode=decode_backup_response,
            idempotency_key=key,
            reconcile=reconcile,
            patient=patient,
        )
        return call, same

    async def _run_create(self, call: Call[Backup], same: tuple[int, str]) -> Backup:
        self._claims.begin(same)
        try:
            backup = await call.run()
            self._claims.claim(backup.id)  # before end(): a reconcile waiting wakes then
        except BaseException as error:
            # Its request may still land on the server: a resumed run of this
            # description on this client must give it time to (see resume.Resume).
            if call.state.sent and (call.state.ambiguous or not isinstance(error, BackupsError)):
                self._claims.left_in_doubt(same[1], time.monotonic())
            raise
        finally:
            self._claims.end(same)
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
        the one it made (see the guide [What a create's reconcile can know][reconcile-limits]).
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
        try:
            await self._claims.reconciling(same)
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
        finally:
            self._claims.reconciled(same)

    def _delete_call(self, backup_id: int, *, patient: bool = False) -> Call[None]:
        check_id(backup_id, "backup_id")
        return self._delete(
            backup_path(backup_id),
            route=DELETE_ROUTE,
            decode=decode_delete_response,
            patient=patient,
        )

    async def _delete_patiently(self, backup_id: int) -> None:
        # A prune's deletes wait out throttling, as a fleet's creates do.
        await self._delete_call(backup_id, patient=True).run()

    async def delete(self, backup_id: int) -> None:
        """Delete a backup for good.

        Raises :class:`NotFoundError` when it does not exist; a 404 that follows an
        attempt which may already have deleted it counts as success.
        """
        await self._delete_call(backup_id).run()

    # -- hygiene: retention and coverage (see _resources/hygiene.py) ----------------------

    async def plan_prune(
        self,
        *,
        keep_last: int | None = None,
        older_than: timedelta | None = None,
        server_ids: Iterable[int] | None = None,
        keep_none: bool = False,
    ) -> PrunePlan:
        """Plan a prune of old manual backups; reads, and deletes nothing.

        ``plan.to_delete`` lists the backups that would go, oldest first. Only manual
        backups are planned, only ``completed`` or ``failed`` ones (never one in
        progress), and never a server's newest completed manual backup, unless
        ``keep_none=True``. ``keep_last=N`` keeps each server's newest ``N`` completed
        manual backups; ``older_than`` lets go only backups created longer ago than
        that, by the API's clock; with both, a backup goes only when both let it.
        ``server_ids`` limits the plan to those servers (default: every server).

        Reads the manual backups page by page across the account, or each server's own
        when fewer servers are asked about than the account's list has pages left after
        the first; throttling is waited out. Raises ``TypeError``/``ValueError`` before
        any request for bad rules: neither rule, a negative ``keep_last``, an
        ``older_than`` that is not a positive ``timedelta``, a bad or repeated ID.
        """
        return await self._hygiene.plan_prune(
            keep_last=keep_last,
            older_than=older_than,
            server_ids=server_ids,
            keep_none=keep_none,
        )

    async def prune(self, plan: PrunePlan, *, concurrency: int | None = None) -> PruneResult:
        """Delete exactly the backups of ``plan`` (from :meth:`plan_prune`, any client's).

        Never raises because a delete failed: each backup ends in ``result.deleted``,
        ``result.already_gone`` (a 404: deleted by someone else first, which is success)
        or ``result.failed`` with its error. At most ``concurrency`` deletes run at once
        (default: the client's ``max_concurrency``), through the client's rate governor,
        waiting out throttling. Raises ``TypeError``/``ValueError`` for a bad plan before
        any request, ``RuntimeError`` for a closed client; cancelling it stops the
        deletes. After a crash or a cancel, planning again with the same rules plans
        only what is left.
        """
        return await self._hygiene.prune(plan, concurrency=concurrency)

    async def coverage(
        self, server_ids: Iterable[int] | None, *, within: timedelta
    ) -> CoverageReport:
        """Which servers have a recent ``completed`` backup, and which have none.

        A server is covered by a completed backup of either type created ``within`` the
        span before now, by the API's clock (one exactly that old counts).
        ``report.covered`` maps each covered server to its newest completed backup;
        ``report.missing`` lists the others, in input order. ``server_ids=None`` checks
        every server that has any backup (a server with none at all cannot be seen
        then). Reads list pages across the account (at most its whole list, and less
        when the list comes newest first), or each server's own when that is fewer
        requests. Raises ``TypeError``/``ValueError`` before any request for a bad or
        repeated ID, or a ``within`` that is not a positive ``timedelta``.
        """
        return await self._hygiene.coverage(server_ids, within=within)

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
        return await until_completed.wait_until_completed(
            self._poller,
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
        since: datetime | None = None,
        settle_timeout: float | None = None,
        earlier_attempt: bool = False,
        on_settle: Callable[[float], Any] | None = None,
    ) -> FleetResult:
        """Back up many servers at once; every server gets exactly one outcome.

        Never raises because a server failed: each failure is an outcome's ``error``,
        and outcomes come back in input order. At most ``concurrency`` creates run at
        once (default: the client's ``max_concurrency``). With ``wait=True`` each
        backup is then waited for (up to ``wait_timeout`` seconds) through the shared
        poller, and an outcome is ``ok`` only once its backup completed.
        ``on_created`` hears each server as its backup is made (or adopted), and
        ``on_progress`` each outcome as it lands (plain or async callables; what they
        raise stops the run and reaches you). ``resume``, ``since``,
        ``settle_timeout``, ``earlier_attempt`` and ``on_settle`` are as for
        :meth:`stream_many`.

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
            since=since,
            settle_timeout=settle_timeout,
            earlier_attempt=earlier_attempt,
            on_settle=on_settle,
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
        since: datetime | None = None,
        settle_timeout: float | None = None,
        earlier_attempt: bool = False,
        on_settle: Callable[[float], Any] | None = None,
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
        again after a crash, in this process or another: a server that already has a
        manual backup with exactly that description, not ``failed``, is adopted
        (``outcome.adopted``) instead of backed up again, completed ones reported at
        once and in-progress ones waited for when ``wait=True``. Choose a description
        that names the run (``"weekly 2026-W48"``). In such a run:

        - Each create carries an ``Idempotency-Key`` derived from the run and the
          server, so every attempt of the run sends the same key for the same server:
          ``"asyncbackups-run-"`` and the first 32 hex digits of the SHA-256 of
          ``"v1\\0<description, stripped>\\0<server ID>\\0<generation>"`` (UTF-8), where
          the generation is how many of the run's backups of that server the read saw
          ``failed``. A new description makes new keys. An API that honours keys makes
          one backup per server whatever the timing.
        - *Settle before creating.* An earlier attempt's creates may still be on their
          way when this one starts (its process was killed with requests in flight),
          and an API that ignores keys would make a second backup. So before its first
          create the run waits ``settle_timeout`` seconds (default: the client's
          per-request ``timeout``, the longest such a request can be under way) and reads
          again, when an earlier attempt is known: the read found a backup of the run
          (any status) on one of its servers (any server, when ``server_ids`` is not a
          collection), or you pass ``earlier_attempt=True`` (a retried task knows), or a
          create of this description on this client ended in doubt less than
          ``settle_timeout`` ago. A fresh run, and one with nothing left to create, never
          waits. The wait is logged (WARNING, ``"waiting 30 s for an earlier attempt's
          requests to land"``) and ``on_settle`` (plain or async; what it raises stops
          the run) hears its seconds before it begins. ``settle_timeout=0`` skips it: do
          so only against an API that honours ``Idempotency-Key``.
        - ``since`` (timezone-aware) bounds what is read: the earliest moment the run
          can have started, recorded once before its first attempt and passed to every
          attempt (a later value would hide the earlier attempts' backups). A list that
          comes newest first is then read only down to the first page wholly older than
          ``since`` less 10 minutes (for clock skew); a list seen in any other order is
          read whole. Without it, the account's manual backups are read whole, or per
          server when that takes fewer requests.

        An ID that is not a positive ``int``, or a repeated one, raises
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
        check_resume_options(since, settle_timeout, earlier_attempt, on_settle)
        self._transport.check_open()
        resumed = None
        if resume:
            resumed = Resume(
                self._fleet_reader,
                (description or "").strip(),
                since=since,
                settle_timeout=(
                    self._options.timeout if settle_timeout is None else float(settle_timeout)
                ),
                earlier_attempt=earlier_attempt,
                on_settle=on_settle,
                concurrency=concurrency,
            )
        return self._stream(
            server_ids,
            description=description,
            wait=wait,
            concurrency=concurrency,
            schedule=self._schedule(poll_interval, max_poll_interval, wait_timeout),
            resumed=resumed,
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
        resumed: Resume | None,
        on_created: Callable[[BackupOutcome], Any] | None,
    ) -> AsyncGenerator[BackupOutcome]:
        if resumed is not None:
            last = self._claims.last_in_doubt(resumed.description)
            await resumed.read(server_ids, in_doubt_at=last)

        async def create(server_id: int) -> Backup:
            key = None if resumed is None else resumed.idempotency_key(server_id)
            # A fleet's creates wait out throttling (429 is backpressure here).
            call, same = self._create_call(server_id, description, key, patient=True)
            return await self._run_create(call, same)

        stream = stream_fleet(
            server_ids,
            create=create,
            adopt=None if resumed is None else resumed.adopt,
            poller=self._poller if wait else None,
            schedule=schedule,
            concurrency=concurrency,
            on_created=on_created,
        )
        async with contextlib.aclosing(stream) as landed:
            async for outcome in landed:
                yield outcome


def _check_wait_options(
    timeout: float | None, poll_interval: float, max_poll_interval: float
) -> None:
    if timeout is not None:
        check_number("timeout", timeout, minimum=0)
    check_number("poll_interval", poll_interval, minimum=0)
    # A cap below the start is raised to it: "poll every 5 s, at most every 2 s" can
    # only mean every 5 s.
    check_number("max_poll_interval", max_poll_interval, minimum=0)
