"""The fake on the wire: an aiohttp.web application around the views, with faults.

The only module of the fake that speaks HTTP. Per request it takes a token from the
rate limit (a refused request is answered 429 there and goes no further: the limit
stands in front of the whole service, like a provider's gateway), resolves the route,
asks the fault rules, then lets the views answer, and bends the answer (or the
connection) as the fault says; every answer carries the rate limit's headers. Dropping
a connection closes the transport and hands aiohttp a response it can no longer write,
which aiohttp treats as the premature client disconnect it is: no error logs, no leaked
transports. Paths under ``/_fake/`` are the fake's own (its stats, see ``_control``):
they bypass the journal, the faults and the rate limit.
"""

from __future__ import annotations

import asyncio
from email.utils import format_datetime
from typing import Final

from aiohttp import web

from ._clock import Clock
from ._control import CONTROL_PREFIX, Control
from ._faults import Fault, FaultKind, Faults
from ._journal import Journal, RecordedRequest
from ._rate_limit import RateLimiter
from ._views import JSON_CONTENT_TYPE, ApiRequest, BackupsViews, Reply, resolve

__all__ = ["build_app"]

_PROXY_ERROR_PAGE: Final = (
    b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n"
    b"<body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body>"
    b"</html>\n"
)


def _fault_reply(fault: Fault) -> Reply:
    headers = () if fault.retry_after is None else (("Retry-After", fault.retry_after),)
    assert fault.status is not None
    return Reply(fault.status, fault.body or b"", headers, fault.content_type)


def _malformed(reply: Reply, style: str) -> Reply:
    # A 204 cannot carry a body, and a broken body is the whole point here.
    status = 200 if reply.status == 204 else reply.status
    if style == "html":
        return Reply(status, _PROXY_ERROR_PAGE, reply.headers, "text/html; charset=utf-8")
    source = reply.body or b'{"detail":"'
    return Reply(status, source[: max(1, len(source) // 2)], reply.headers, JSON_CONTENT_TYPE)


class _Handler:
    """The one aiohttp handler behind every path."""

    def __init__(
        self,
        views: BackupsViews,
        faults: Faults,
        journal: Journal,
        clock: Clock,
        rate_limiter: RateLimiter,
    ):
        self._views = views
        self._control = Control(views.state, journal, faults, rate_limiter)
        self._rate_limiter = rate_limiter
        self._faults = faults
        self._journal = journal
        self._clock = clock
        self._closing = asyncio.Event()

    async def close(self, app: web.Application) -> None:
        """Cut injected delays short: the server is stopping (an ``on_shutdown`` hook)."""
        self._closing.set()

    async def _pause(self, seconds: float) -> bool:
        """Sleep ``seconds``; ``False`` if the server began stopping meanwhile."""
        try:
            async with asyncio.timeout(seconds):
                await self._closing.wait()
        except TimeoutError:
            return True
        return False

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Answer one request (or drop it), as the faults say."""
        try:
            # Read the body first: once a client gives up, it can no longer be read.
            body = await request.read()
        except ConnectionError:
            return web.Response(status=400)
        method = request.method
        if request.path.startswith(CONTROL_PREFIX):
            return self._respond(self._control.handle(method, request.path))
        resolved = resolve(request.path)
        query = dict(request.query.items())  # Django keeps the last of repeated parameters
        key = request.headers.get("Idempotency-Key") or None
        # Before the faults: a refused request never reaches the service they stand for.
        admission = self._rate_limiter.admit()
        refusal = None if admission is None else admission.refusal
        fault: Fault | None = None
        if refusal is None:
            fault = self._faults.pick(method, resolved.path, resolved.template)
        kind = None if fault is None else fault.kind

        def record(reply: Reply | None) -> None:
            self._journal.record(
                RecordedRequest(
                    method=method,
                    path=resolved.path,
                    template=resolved.template,
                    query=query,
                    body=body,
                    idempotency_key=key,
                    status=None if reply is None else reply.status,
                    fault=kind,
                    replayed=reply is not None and reply.replayed,
                    throttled=refusal is not None,
                )
            )

        if refusal is not None:
            record(refusal)
            return self._respond(refusal)
        extra = () if admission is None else admission.headers
        if fault is None:
            reply = self._views.handle(self._api_request(request, query, body, key), resolved)
        elif fault.kind is FaultKind.DROP_BEFORE:
            record(None)
            return self._drop(request)
        elif fault.kind is FaultKind.STATUS_BEFORE:
            reply = _fault_reply(fault)
        else:
            # A stopping server drops delayed requests rather than keep its caller waiting.
            if fault.kind is FaultKind.DELAY and not await self._pause(fault.seconds):
                record(None)
                return self._drop(request)
            reply = self._views.handle(self._api_request(request, query, body, key), resolved)
            if fault.kind is FaultKind.DROP_AFTER:
                record(None)
                return self._drop(request)
            if fault.kind is FaultKind.STATUS_AFTER:
                reply = _fault_reply(fault)
            elif fault.kind is FaultKind.MALFORMED:
                reply = _malformed(reply, fault.style)
        record(reply)
        return self._respond(reply, extra)

    @staticmethod
    def _api_request(
        request: web.Request, query: dict[str, str], body: bytes, key: str | None
    ) -> ApiRequest:
        return ApiRequest(
            method=request.method,
            url=str(request.url),
            query=query,
            body=body,
            authorization=request.headers.get("Authorization"),
            idempotency_key=key,
        )

    def _respond(self, reply: Reply, extra: tuple[tuple[str, str], ...] = ()) -> web.Response:
        headers = {"Date": format_datetime(self._clock.now(), usegmt=True)}
        headers.update(reply.headers)
        headers.update(extra)
        if reply.content_type is not None:
            headers["Content-Type"] = reply.content_type
        return web.Response(status=reply.status, body=reply.body or None, headers=headers)

    @staticmethod
    def _drop(request: web.Request) -> web.Response:
        transport = request.transport
        if transport is not None:
            transport.close()
        # Never written: the transport is closing, and aiohttp takes that for a client
        # that went away.
        return web.Response(status=204)


def build_app(
    views: BackupsViews,
    faults: Faults,
    journal: Journal,
    clock: Clock,
    rate_limiter: RateLimiter | None = None,
) -> web.Application:
    """An aiohttp application serving ``views`` under ``/api/v1/``, faults applied.

    It also serves the fake's stats under ``/_fake/`` (see ``FakeBackupsAPI.stats``).
    ``rate_limiter`` throttles the API (default: no limit).

    Usable on its own, e.g. with ``aiohttp.test_utils.TestServer``; ``FakeBackupsAPI``
    is the convenient way to run it.
    """
    limiter = rate_limiter if rate_limiter is not None else RateLimiter(clock)
    handler = _Handler(views, faults, journal, clock, limiter)
    app = web.Application()
    # Every path, a decoded newline in it too (".*" stops at one), so that no request
    # gets aiohttp's own plain-text 404 instead of the API's JSON one.
    app.router.add_route("*", r"/{path:[\s\S]*}", handler.handle)
    app.on_shutdown.append(handler.close)
    return app
