"""``FakeBackupsAPI``: the fake served on loopback, in the running loop or in a thread."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import socket
import threading
from collections import Counter
from collections.abc import Iterable
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from ._app import build_app
from ._clock import Clock
from ._control import CONTROL_PREFIX, Control
from ._faults import Faults
from ._journal import Journal, RecordedRequest
from ._rate_limit import RateLimiter
from ._state import BackupsState, FakeBackup, FakeServer, RestoreRecord
from ._views import API_PREFIX, BackupsViews

__all__ = ["FakeBackupsAPI"]

# Requests still running at stop (a long injected delay, say) get this long to finish.
_SHUTDOWN_TIMEOUT = 0.25


class FakeBackupsAPI:
    """A stateful, fault-injecting fake of the Backups API, served over real HTTP.

    Two ways to run it, one object either way::

        async with FakeBackupsAPI() as api:       # in the running event loop
            ...
        with FakeBackupsAPI(fleet=10) as api:     # on its own loop in a background thread
            ...

    The threaded form needs no event loop in the caller, so it serves synchronous tests
    and any async framework alike; every accessor below is safe from any thread.

    Options: ``token`` is the one bearer token accepted. ``backup_seconds`` is how long
    (in clock time) a new backup stays ``in_progress``. ``page_size`` is the list page
    size. ``honor_idempotency_keys=False`` mimics a server that ignores the header.
    A backup made without a description is answered with ``"description": ""``, as
    the API's documentation shows descriptions (strings); ``null_descriptions=True``
    answers ``null`` instead, as some services do (the SDK reads both).
    ``seed`` seeds fault rates. ``sample_data`` loads the documentation's example
    (server 12345, backups 501/499/495). ``fleet`` adds N servers numbered from 1
    (``add_fleet``); a fleet reaching 12345 with the sample data loaded steps around the
    sample server and takes one more id at its end instead, so ``fleet=20_000`` gives
    exactly 20,000 fleet servers (1..20,001 but 12345) plus the sample server, whose
    backups stay 501/499/495. ``failing_servers`` marks existing servers failing.
    ``clock`` lets tests share or pre-set a ``Clock``. ``port=0`` picks a free port.

    Rate limit: ``rate_limit`` (requests a second; ``None``, the default, means no limit
    and costs nothing) turns on a token bucket shared by every client, whatever its
    token or connection: it refills at ``rate_limit`` tokens a second, holds at most
    ``burst`` (default ``max(1, rate_limit)``, one second's worth) and starts full. Each
    API request takes a token, an unauthenticated or unknown one too (a provider counts
    them at its gateway, before it knows who is asking); the ``/_fake/`` routes take
    none. A request finding the bucket empty is answered at once, before any fault or
    view: ``429`` with ``{"detail": "Request was throttled. Expected available in N
    seconds."}`` and ``Retry-After: N``, whole seconds until a token is there, rounded
    up (at least 1); nothing is done. With ``rate_limit_headers`` (the default) every
    API answer, a 429 too, carries ``RateLimit-Limit`` (``burst`` rounded down),
    ``RateLimit-Remaining`` (whole tokens left after this request) and
    ``RateLimit-Reset`` (the UNIX time, whole seconds rounded up, when the bucket is
    full again); without them a throttled answer has only ``Retry-After``. The bucket
    refills on ``clock``, so ``advance`` refills it without waiting. ``set_rate_limit``
    changes the limit while running.

    What tests reach for: ``base_url``, ``token`` and ``auth_headers`` to connect;
    ``advance(seconds)`` or ``clock`` to drive time; ``faults`` to misbehave; ``state``
    (and the shortcuts ``backups()``, ``backup(id)``, ``servers()``, ``restores``) to
    arrange and inspect data; ``requests``, ``request_log`` and ``faults.injected`` to
    count what happened.

    ``stats()`` sums it all up as one JSON-ready dict, which another process reads from
    ``GET /_fake/stats`` (``stats_url``; outside the API, no token needed, never
    counted, faulted or throttled)::

        {"requests": {"GET backups/": 12, "POST backups/": 3},   # by "METHOD route"
         "faults": {"status_before": 1},                          # injected, by kind
         "throttled": 0,                                          # 429s of the rate limit
         "servers": 3,
         "backups": {"in_progress": 2, "completed": 5, "failed": 1},
         "restores": 0,
         "rate_limit": null}                     # or {"rate": 20.0, "burst": 20.0}

    ``reset_stats()`` (``POST /_fake/reset-stats``) zeroes the request, fault and
    throttled counters and returns the stats as they stood. Counting backups by status
    costs no walk over them, so large fleets can be measured as often as wanted.
    """

    def __init__(
        self,
        *,
        token: str = "test-token",
        backup_seconds: float = 5.0,
        page_size: int = 100,
        honor_idempotency_keys: bool = True,
        seed: int = 0,
        sample_data: bool = True,
        fleet: int = 0,
        failing_servers: Iterable[int] = (),
        clock: Clock | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        rate_limit: float | None = None,
        burst: float | None = None,
        rate_limit_headers: bool = True,
        null_descriptions: bool = False,
    ) -> None:
        """Set up the state; nothing listens until started (see the class docstring).

        Raises ``ValueError`` for a ``rate_limit`` that is not positive, a ``burst``
        below 1, or a ``burst`` without a ``rate_limit``.
        """
        self.clock = clock if clock is not None else Clock()
        self.state = BackupsState(
            clock=self.clock, backup_seconds=backup_seconds, sample_data=sample_data
        )
        if fleet:
            self.state.add_fleet(fleet)
        for server_id in failing_servers:
            self.state.set_failing(server_id)
        self._views = BackupsViews(
            self.state,
            token=token,
            page_size=page_size,
            honor_idempotency_keys=honor_idempotency_keys,
            null_descriptions=null_descriptions,
        )
        self.faults = Faults(seed=seed)
        self.journal = Journal()
        self._rate_limiter = RateLimiter(
            self.clock, rate=rate_limit, burst=burst, headers=rate_limit_headers
        )
        self._control = Control(self.state, self.journal, self.faults, self._rate_limiter)
        self._host = host
        self._requested_port = port
        self._port: int | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._thread_loop: asyncio.AbstractEventLoop | None = None
        self._thread_stop: asyncio.Event | None = None

    def __repr__(self) -> str:
        where = self.base_url if self.running else "not running"
        return f"<FakeBackupsAPI {where}>"

    # -- lifecycle -----------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the server is listening."""
        return self._runner is not None

    async def start(self) -> None:
        """Listen in the running event loop; raises ``RuntimeError`` if already running."""
        if self._runner is not None:
            raise RuntimeError("the fake API is already running")
        sock = self._bind()
        runner = web.AppRunner(
            build_app(self._views, self.faults, self.journal, self.clock, self._rate_limiter),
            access_log=None,
            shutdown_timeout=_SHUTDOWN_TIMEOUT,
        )
        try:
            await runner.setup()
            await web.SockSite(runner, sock).start()
        except BaseException:
            sock.close()
            await runner.cleanup()
            raise
        self._port = sock.getsockname()[1]
        self._runner = runner

    async def stop(self) -> None:
        """Stop listening and close every connection; stopping twice is harmless."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    def start_in_thread(self, *, timeout: float = 10.0) -> None:
        """Serve from a new daemon thread with its own event loop; return once listening.

        Raises ``RuntimeError`` if already running, or what starting raised (``OSError``
        for a taken port).
        """
        if self._runner is not None or self._thread is not None:
            raise RuntimeError("the fake API is already running")
        started: concurrent.futures.Future[None] = concurrent.futures.Future()
        thread = threading.Thread(
            target=asyncio.run,
            args=(self._serve_in_thread(started),),
            name="FakeBackupsAPI",
            daemon=True,
        )
        thread.start()
        try:
            started.result(timeout)
        except BaseException:
            # A failed start ends the thread by itself; one still starting is told to stop.
            self._signal_thread_stop()
            thread.join(timeout)
            raise
        self._thread = thread

    def stop_in_thread(self, *, timeout: float = 10.0) -> None:
        """Stop a fake started with ``start_in_thread`` and wait for its thread to end."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._signal_thread_stop()
        thread.join(timeout)

    def _signal_thread_stop(self) -> None:
        loop, stop = self._thread_loop, self._thread_stop
        if loop is None or stop is None:
            return
        # The loop may have closed already, if the thread ended on its own.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(stop.set)

    def __enter__(self) -> Self:
        self.start_in_thread()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop_in_thread()

    async def _serve_in_thread(self, started: concurrent.futures.Future[None]) -> None:
        self._thread_loop = asyncio.get_running_loop()
        self._thread_stop = stop = asyncio.Event()
        try:
            await self.start()
        except Exception as exc:
            started.set_exception(exc)
            return
        started.set_result(None)
        try:
            await stop.wait()
        finally:
            await self.stop()

    def _bind(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            if os.name != "nt":
                # Lets a restarted fake take its fixed port back while old sockets linger
                # (on Windows the same option would let two servers share a port).
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self._host, self._requested_port))
        except BaseException:
            sock.close()
            raise
        return sock

    # -- where it listens ----------------------------------------------------------

    @property
    def host(self) -> str:
        """The address it listens on."""
        return self._host

    @property
    def port(self) -> int:
        """The port it listens on; raises ``RuntimeError`` before it is started."""
        if self._port is None:
            raise RuntimeError("the fake API has not been started")
        return self._port

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT/api/v1/``: what the SDK takes as ``base_url``."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}{API_PREFIX}"

    @property
    def stats_url(self) -> str:
        """``http://HOST:PORT/_fake/stats``: the stats for another process (see ``stats``)."""
        return f"{self.base_url.removesuffix(API_PREFIX)}{CONTROL_PREFIX}stats"

    def url(self, path: str = "") -> str:
        """An absolute URL for ``path`` relative to the API root, e.g. ``url("backups/")``."""
        return self.base_url + path.lstrip("/")

    @property
    def token(self) -> str:
        """The bearer token the fake accepts."""
        return self._views.token

    @property
    def auth_headers(self) -> dict[str, str]:
        """``{"Authorization": "Bearer <token>"}``, for talking to the fake directly."""
        return {"Authorization": f"Bearer {self.token}"}

    # -- configuration that may change while running ---------------------------------

    @property
    def backup_seconds(self) -> float:
        """How long new backups stay ``in_progress``; changing it affects new backups."""
        return self.state.backup_seconds

    @backup_seconds.setter
    def backup_seconds(self, value: float) -> None:
        self.state.backup_seconds = value

    @property
    def page_size(self) -> int:
        """Backups per list page; setting one below 1 raises ``ValueError``."""
        return self._views.page_size

    @page_size.setter
    def page_size(self, value: int) -> None:
        self._views.page_size = value

    @property
    def honor_idempotency_keys(self) -> bool:
        """Whether repeated ``Idempotency-Key`` POSTs replay the first answer."""
        return self._views.honor_idempotency_keys

    @honor_idempotency_keys.setter
    def honor_idempotency_keys(self, value: bool) -> None:
        self._views.honor_idempotency_keys = value

    @property
    def null_descriptions(self) -> bool:
        """Whether a backup made without a description reads ``null`` (else ``""``)."""
        return self._views.null_descriptions

    @null_descriptions.setter
    def null_descriptions(self, value: bool) -> None:
        self._views.null_descriptions = value

    @property
    def rate_limit(self) -> float | None:
        """Requests a second the bucket refills; ``None``: no limit (see the class docs).

        Setting it is ``set_rate_limit(value)``: a new, full bucket of the default burst.
        """
        bucket = self._rate_limiter.bucket
        return None if bucket is None else bucket.rate

    @rate_limit.setter
    def rate_limit(self, value: float | None) -> None:
        self.set_rate_limit(value)

    @property
    def burst(self) -> float | None:
        """The bucket's capacity in requests; ``None`` when there is no limit."""
        bucket = self._rate_limiter.bucket
        return None if bucket is None else bucket.burst

    def set_rate_limit(self, rate: float | None, burst: float | None = None) -> None:
        """Limit the API to ``rate`` requests a second from now on; ``None`` lifts the limit.

        The new bucket starts full, holding ``burst`` (default ``max(1, rate)``). Safe
        from any thread, while running. Raises ``ValueError`` for a ``rate`` that is not
        positive, a ``burst`` below 1, or a ``burst`` without a ``rate``.
        """
        self._rate_limiter.configure(rate, burst)

    @property
    def rate_limit_headers(self) -> bool:
        """Whether API answers carry ``RateLimit-Limit``, ``-Remaining`` and ``-Reset``."""
        return self._rate_limiter.headers

    @rate_limit_headers.setter
    def rate_limit_headers(self, value: bool) -> None:
        self._rate_limiter.headers = value

    @property
    def throttled(self) -> int:
        """API requests the rate limit answered 429 so far (``stats()["throttled"]``)."""
        return self._rate_limiter.throttled

    # -- shortcuts to the state, the clock and the journal ---------------------------

    def advance(self, seconds: float) -> None:
        """Move the fake's clock forward (see ``Clock.advance``)."""
        self.clock.advance(seconds)

    def add_server(
        self, server_id: int, name: str | None = None, *, failing: bool = False
    ) -> FakeServer:
        """Add a server with no backups (see ``BackupsState.add_server``)."""
        return self.state.add_server(server_id, name, failing=failing)

    def add_fleet(self, count: int, *, start: int = 1) -> list[FakeServer]:
        """Add servers ``fleet-0001``… with one backup each (see ``BackupsState.add_fleet``)."""
        return self.state.add_fleet(count, start=start)

    def set_failing(self, server_id: int, failing: bool = True) -> None:
        """Make a server's backups fail from now on (see ``BackupsState.set_failing``)."""
        self.state.set_failing(server_id, failing)

    def backup(self, backup_id: int) -> FakeBackup:
        """One stored backup as of now; raises ``UnknownBackupError``."""
        return self.state.backup(backup_id)

    def backups(
        self, *, server_id: int | None = None, backup_type: str | None = None
    ) -> list[FakeBackup]:
        """Stored backups matching the filters, newest first."""
        return self.state.backups(server_id=server_id, backup_type=backup_type)

    def servers(self) -> list[FakeServer]:
        """Every server, by id."""
        return self.state.servers()

    @property
    def restores(self) -> list[RestoreRecord]:
        """Every accepted restore, oldest first."""
        return self.state.restores

    @property
    def requests(self) -> Counter[tuple[str, str]]:
        """Requests so far by ``(method, template)``, e.g. ``("POST", "backups/")``."""
        return self.journal.counts

    @property
    def request_log(self) -> list[RecordedRequest]:
        """The most recent requests (up to 10,000), oldest first."""
        return self.journal.records

    def stats(self) -> dict[str, Any]:
        """The counts so far, exactly as ``GET /_fake/stats`` answers them.

        ``{"requests": {"GET backups/": 12, ...}, "faults": {...}, "throttled": n,
        "servers": N, "backups": {"in_progress": n, "completed": n, "failed": n},
        "restores": n, "rate_limit": {"rate": r, "burst": b} or None}``: requests by
        ``"METHOD route"`` (the ``requests`` counter, keys joined by a space; throttled
        requests included), injected faults by kind, requests the rate limit answered
        429, the stored data now, and the rate limit in force. A fresh dict each call.
        """
        return self._control.stats()

    def reset_stats(self) -> dict[str, Any]:
        """Zero the request, fault and throttled counters; return the stats as they stood.

        The request log, the data, the fault rules and the rate limit's bucket are left
        alone.
        """
        return self._control.reset_stats()
