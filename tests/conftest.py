"""Shared fixtures and payload builders: the seed's example answers, exactly."""

from __future__ import annotations

import asyncio
import inspect
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from aioresponses import aioresponses
from yarl import URL

from asyncbackups import BackupsClient

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
    """HTTP mocked at the aiohttp boundary; nothing leaves the process."""
    with MockAPI() as mocked:
        yield mocked


@pytest.fixture
async def client() -> AsyncIterator[BackupsClient]:
    """A client for the default base URL that retries without sleeping.

    Its 0.1 s timeout only ever runs out on purpose (mocked answers are instant); it
    also bounds how long a create waits for a timed-out attempt to land.
    """
    async with BackupsClient(
        TOKEN, base_url=BASE_URL, timeout=0.1, retry_backoff=0, max_retry_backoff=0
    ) as backups_client:
        yield backups_client


# -- helpers for asserting what was sent ----------------------------------------------


def _normalized(url: str) -> URL:
    parsed = URL(url)
    return parsed.with_query(sorted(parsed.query.items()))


def sent(mocked: aioresponses, method: str, url: str) -> list[Any]:
    """The calls aioresponses saw for one method and URL (query order does not matter)."""
    return list(mocked.requests.get((method, _normalized(url)), []))


def sent_count(mocked: aioresponses) -> int:
    """How many requests reached the mocked API in all."""
    return sum(len(calls) for calls in mocked.requests.values())


def methods_sent(mocked: aioresponses) -> list[tuple[str, str]]:
    """Each (method, URL) that was requested at least once."""
    return [(method, str(url)) for method, url in mocked.requests]


# -- a real HTTP server on loopback ---------------------------------------------------


@dataclass
class Seen:
    """One request as the loopback server received it."""

    method: str
    path_qs: str
    headers: Mapping[str, str]
    body: bytes
    arrived: float  # time.monotonic() when the handler started

    def json(self) -> Any:
        return json.loads(self.body)


Handler = Callable[[web.Request, "LoopbackAPI"], Awaitable[web.StreamResponse]]


class LoopbackAPI:
    """An aiohttp.web server on 127.0.0.1 that records every request it handles.

    ``handler(request, api)`` answers; ``api.seen`` lists what arrived, in order, and
    ``api.max_in_flight`` is the most handlers that ever ran at once.
    """

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
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
        return str(self._server.make_url("/api/v1/"))

    @property
    def origin(self) -> str:
        return str(self._server.make_url("/"))

    def paths(self) -> list[str]:
        return [f"{seen.method} {seen.path_qs}" for seen in self.seen]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(
            Seen(
                request.method,
                request.path_qs,
                dict(request.headers),
                await request.read(),
                time.monotonic(),
            )
        )
        self.arrived.set()
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self._handler(request, self)
        finally:
            self.in_flight -= 1

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


@pytest.fixture
async def loopback() -> AsyncIterator[Callable[[Handler], Awaitable[LoopbackAPI]]]:
    """Start loopback API servers with a handler; all are stopped after the test."""
    servers: list[LoopbackAPI] = []

    async def start(handler: Handler) -> LoopbackAPI:
        api = LoopbackAPI(handler)
        await api.start()
        servers.append(api)
        return api

    yield start
    for api in servers:
        await api.close()


def loopback_client(api: LoopbackAPI, **options: Any) -> BackupsClient:
    """A client for a loopback server that retries without sleeping."""
    options.setdefault("retry_backoff", 0)
    options.setdefault("max_retry_backoff", 0)
    return BackupsClient(TOKEN, base_url=api.base_url, **options)


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
