"""Shared fixtures and payload builders: the seed's example answers, exactly.

Three HTTP doubles, each for what only it can do:

- ``LoopbackAPI`` (``loopback``, ``scripted_api``): a real server on 127.0.0.1 that
  answers what a test scripts (or a handler decides) and records every request it
  received: assert what went over the wire on ``api.seen`` and ``api.routes()``.
- the fake API (``fake_api``): the stateful Backups API, for behaviour end to end.
- aioresponses (``mock_api``): only to raise an exact aiohttp exception (a refused or
  reset connection, a cut-short body, a timeout) in the SDK's own attempt; tests that
  use it assert outcomes and ``sent_count``, never a call's arguments.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from aioresponses import aioresponses
from multidict import CIMultiDict
from yarl import URL

from asyncbackups import BackupsClient


def pytest_configure(config: pytest.Config) -> None:
    """Let the command-line processes the tests start take Ctrl-C as a terminal's would.

    A shell starts a background job (``pytest ... &``, a CI lane) with SIGINT ignored,
    and an ignored signal stays ignored through fork and exec: the CLI would then never
    see the SIGINT a test sends it. A handler, unlike "ignored", is reset at exec.
    """
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


BASE_URL = "https://admin.vps.org/api/v1/"
BACKUPS_URL = BASE_URL + "backups/"
TOKEN = "test-token-5f1c"

# The three backups of server 12345 and the create answer, as the API's docs show them.
BACKUP_501: dict[str, Any] = {
    "id": 501,
    "server": {"id": 12345, "name": "web-server-01"},
    "backup_type": "automatic",
    "status": "completed",
    "size_mb": 4523,
    "created_at": "2025-01-16T03:00:00Z",
    "expires_at": "2025-02-16T03:00:00Z",
    "description": "Automatic daily backup",
}
BACKUP_499: dict[str, Any] = {
    "id": 499,
    "server": {"id": 12345, "name": "web-server-01"},
    "backup_type": "manual",
    "status": "completed",
    "size_mb": 4456,
    "created_at": "2025-01-14T10:30:00Z",
    "expires_at": None,
    "description": "Pre-update backup",
}
BACKUP_495: dict[str, Any] = {
    "id": 495,
    "server": {"id": 12345, "name": "web-server-01"},
    "backup_type": "automatic",
    "status": "completed",
    "size_mb": 4389,
    "created_at": "2025-01-15T03:00:00Z",
    "expires_at": "2025-02-15T03:00:00Z",
    "description": "Automatic daily backup",
}
SEED_LIST: dict[str, Any] = {"count": 3, "results": [BACKUP_501, BACKUP_499, BACKUP_495]}
CREATED_502: dict[str, Any] = {
    "id": 502,
    "server": {"id": 12345, "name": "web-server-01"},
    "backup_type": "manual",
    "status": "in_progress",
    "size_mb": None,
    "created_at": "2025-01-16T15:45:00Z",
    "expires_at": None,
    "description": "Pre-deployment backup",
    "message": "Backup is being created. This may take several minutes depending on server size.",
}
# A shorthand for payload variations: {**BACKUP, "status": "failed"}.
BACKUP = BACKUP_501


def page(results: list[dict[str, Any]], *, next_url: str | None = None) -> dict[str, Any]:
    """A DRF page body."""
    return {"count": len(results), "next": next_url, "previous": None, "results": results}


class _CompatResponse(aiohttp.ClientResponse):
    """aioresponses 0.7.9 builds responses without aiohttp 3.14's ``stream_writer``."""

    def __init__(self, method: str, url: Any, **kwargs: Any) -> None:
        if "stream_writer" in _RESPONSE_PARAMS:
            kwargs.setdefault("stream_writer", SimpleNamespace(output_size=0))
        super().__init__(method, url, **kwargs)


_RESPONSE_PARAMS = inspect.signature(aiohttp.ClientResponse.__init__).parameters


class MockAPI(aioresponses):
    """aioresponses that works with every aiohttp this package supports."""

    def add(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("response_class", _CompatResponse)
        super().add(*args, **kwargs)


@pytest.fixture
def mock_api() -> Iterator[MockAPI]:
    """HTTP mocked at the aiohttp boundary, to raise exact aiohttp exceptions."""
    with MockAPI() as mocked:
        yield mocked


@pytest.fixture
async def client() -> AsyncIterator[BackupsClient]:
    """A client for the default base URL (``mock_api``'s) that retries without sleeping.

    Its 1 s timeout only ever runs out on purpose (mocked answers are instant, but a busy
    machine may stall a task for a tenth of a second); it
    also bounds how long a create waits for a timed-out attempt to land.
    """
    async with BackupsClient(
        TOKEN, base_url=BASE_URL, timeout=1.0, retry_backoff=0, max_retry_backoff=0
    ) as backups_client:
        yield backups_client


# -- counting what reached aioresponses -----------------------------------------------
#
# aioresponses stays only where a test must inject an exact aiohttp exception. What
# went over the wire is asserted on a server (LoopbackAPI, the fake API), so these
# helpers count calls and never expose their arguments.


def _normalized(url: str) -> URL:
    parsed = URL(url)
    return parsed.with_query(sorted(parsed.query.items()))


def sent_count(mocked: aioresponses, method: str | None = None, url: str | None = None) -> int:
    """How many requests reached the mocked API, for one method and URL if given.

    The query's order does not matter.
    """
    wanted = None if url is None else _normalized(url)
    return sum(
        len(calls)
        for (sent_method, sent_url), calls in mocked.requests.items()
        if (method is None or sent_method == method) and (wanted is None or sent_url == wanted)
    )


# -- a real HTTP server on loopback ---------------------------------------------------

API_PATH = "/api/v1/"


def route(method: str, path: str) -> str:
    """``"GET backups/?a=1&b=2"``: a request as tests name it, whatever its query order.

    ``path`` is relative to ``/api/v1/`` unless it starts with ``/``; a full path under
    ``/api/v1/`` is shortened the same way, so both spellings give one name.
    """
    parsed = URL(path if path.startswith("/") else API_PATH + path)
    name = parsed.path
    if name.startswith(API_PATH):
        name = name[len(API_PATH) :]
    query = sorted(parsed.query.items())
    if query:
        name += "?" + "&".join(f"{key}={value}" for key, value in query)
    return f"{method.upper()} {name}"


@dataclass
class Seen:
    """One request as the loopback server received it."""

    method: str
    path_qs: str
    headers: Mapping[str, str]  # names match whatever their case
    body: bytes
    arrived: float  # time.monotonic() when the handler started

    @property
    def route(self) -> str:
        """The request as tests name it, e.g. ``"GET backups/?server_id=1"`` (see ``route``)."""
        return route(self.method, self.path_qs)

    def json(self) -> Any:
        return json.loads(self.body)


Handler = Callable[[web.Request, "LoopbackAPI"], Awaitable[web.StreamResponse]]
_NO_PAYLOAD: Any = object()


@dataclass(frozen=True)
class Answer:
    """One scripted answer: a status with a JSON or raw body, or a dropped or stalled request."""

    status: int = 200
    payload: Any = _NO_PAYLOAD
    body: bytes = b""
    content_type: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    drop: bool = False
    stall: bool = False

    async def respond(self, request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        if self.drop:
            return api.drop(request)
        if self.stall:
            return await api.stall()
        headers = dict(self.headers)
        if self.payload is not _NO_PAYLOAD:
            return web.json_response(self.payload, status=self.status, headers=headers)
        if self.content_type is not None:
            headers["Content-Type"] = self.content_type
        return web.Response(status=self.status, body=self.body or None, headers=headers)


class LoopbackAPI:
    """An aiohttp.web server on 127.0.0.1 that records every request it handles.

    ``handler(request, api)`` answers; without one, the server gives the answers a test
    scripted with ``answer``. ``api.seen`` lists what arrived, in order (``routes()``
    names each), and ``api.max_in_flight`` is the most handlers that ever ran at once.
    """

    def __init__(self, handler: Handler | None = None) -> None:
        self._handler = handler
        self._script: dict[str, list[Answer]] = {}
        self.unscripted: list[str] = []  # requests a scripted server had no answer for
        self.seen: list[Seen] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.arrived = asyncio.Event()  # set on every request; tests clear it
        self._released = asyncio.Event()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._server = TestServer(app, host="127.0.0.1")

    @property
    def base_url(self) -> str:
        return str(self._server.make_url(API_PATH))

    @property
    def origin(self) -> str:
        return str(self._server.make_url("/"))

    def url(self, path: str) -> str:
        """The absolute URL of ``path`` (relative to ``/api/v1/`` unless it starts with ``/``)."""
        return self.origin + path.lstrip("/") if path.startswith("/") else self.base_url + path

    def paths(self) -> list[str]:
        return [f"{seen.method} {seen.path_qs}" for seen in self.seen]

    def routes(self) -> list[str]:
        """Every request so far, in order, as ``route`` names it."""
        return [seen.route for seen in self.seen]

    def received(self, method: str, path: str) -> list[Seen]:
        """The requests for one route (query order does not matter), in order."""
        wanted = route(method, path)
        return [seen for seen in self.seen if seen.route == wanted]

    def answer(
        self,
        method: str,
        path: str,
        *,
        status: int = 200,
        payload: Any = _NO_PAYLOAD,
        body: str | bytes = b"",
        content_type: str | None = None,
        headers: Mapping[str, str] | None = None,
        drop: bool = False,
        stall: bool = False,
    ) -> None:
        """Script the next answer to ``method path``; the last one scripted keeps answering.

        ``payload`` is sent as JSON, else ``body`` as is; ``drop`` closes the connection
        once the request arrived and ``stall`` answers only when the test ends.
        """
        encoded = body.encode() if isinstance(body, str) else body
        scripted = Answer(
            status, payload, encoded, content_type, dict(headers or {}), drop=drop, stall=stall
        )
        self._script.setdefault(route(method, path), []).append(scripted)

    async def _scripted(self, request: web.Request) -> web.StreamResponse:
        name = route(request.method, request.path_qs)
        answers = self._script.get(name)
        if not answers:
            self.unscripted.append(name)
            return web.json_response({"detail": f"nothing scripted for {name}"}, status=404)
        scripted = answers.pop(0) if len(answers) > 1 else answers[0]
        return await scripted.respond(request, self)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(
            Seen(
                request.method,
                request.path_qs,
                CIMultiDict(request.headers),
                await request.read(),
                time.monotonic(),
            )
        )
        self.arrived.set()
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self._handler is None:
                return await self._scripted(request)
            return await self._handler(request, self)
        finally:
            self.in_flight -= 1

    async def hold_until_in_flight(self, count: int) -> None:
        """Hold a request until ``count`` requests are (or once were) in flight at once."""
        await until(lambda: self.max_in_flight >= count)

    async def stall(self) -> web.Response:
        """Answer only when the test ends: the client must give up first."""
        await self._released.wait()
        return web.Response(status=503)

    @staticmethod
    def drop(request: web.Request) -> web.Response:
        """Close the connection after the request arrived, without answering."""
        assert request.transport is not None
        request.transport.close()
        return web.Response()

    async def start(self) -> None:
        await self._server.start_server()

    async def close(self) -> None:
        self._released.set()
        await self._server.close()


def json_response(payload: Any, *, status: int = 200, **headers: str) -> web.Response:
    return web.json_response(payload, status=status, headers=headers or None)


StartLoopback = Callable[..., Awaitable[LoopbackAPI]]


@pytest.fixture
async def loopback() -> AsyncIterator[StartLoopback]:
    """Start loopback API servers, each with a handler or scripted answers.

    All are stopped after the test, which fails if a scripted server was asked
    something nobody scripted.
    """
    servers: list[LoopbackAPI] = []

    async def start(handler: Handler | None = None) -> LoopbackAPI:
        api = LoopbackAPI(handler)
        await api.start()
        servers.append(api)
        return api

    yield start
    for api in servers:
        await api.close()
    assert [name for api in servers for name in api.unscripted] == []


@pytest.fixture
async def scripted_api(loopback: StartLoopback) -> LoopbackAPI:
    """A loopback API that answers only what the test scripts with ``answer``."""
    return await loopback()


@pytest.fixture
async def scripted_client(scripted_api: LoopbackAPI) -> AsyncIterator[BackupsClient]:
    """A client of ``scripted_api`` that retries without sleeping.

    Its 2 s timeout never runs out by accident; a test that makes an attempt time out
    (or a create wait for one to land) builds its client with a short one.
    """
    async with loopback_client(scripted_api, timeout=2.0) as backups_client:
        yield backups_client


# Long next to a loopback answer, short next to a test: for attempts meant to time out,
# and for creates that wait that long for a timed-out attempt to land.
SHORT_TIMEOUT = 0.25


def loopback_client(api: LoopbackAPI, **options: Any) -> BackupsClient:
    """A client for a loopback server that retries without sleeping."""
    options.setdefault("retry_backoff", 0)
    options.setdefault("max_retry_backoff", 0)
    return BackupsClient(TOKEN, base_url=api.base_url, **options)


async def until(condition: Callable[[], object], *, timeout: float = 5.0) -> None:
    """Return once ``condition()`` is true, checking each millisecond; fail after ``timeout``.

    For ordering a test on what happened (a request arrived, a line was logged), never
    on how long something took: the bound only keeps a broken test from hanging.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout} s: {condition}")
        await asyncio.sleep(0.001)


@pytest.fixture
async def fake_api() -> AsyncIterator[Any]:
    """The fake Backups API on loopback, in this test's loop; backups take 60 s of its clock."""
    from asyncbackups.testing import FakeBackupsAPI

    async with FakeBackupsAPI(backup_seconds=60) as api:
        yield api


@pytest.fixture
async def fake_client(fake_api: Any) -> AsyncIterator[BackupsClient]:
    """A client of ``fake_api`` that retries without sleeping."""
    async with BackupsClient(
        fake_api.token, base_url=fake_api.base_url, retry_backoff=0, max_retry_backoff=0
    ) as backups_client:
        yield backups_client
