"""The one module that touches aiohttp: the session, and one attempt of a request.

Per attempt it applies, in this order: the rate governor (which holds the client-wide
429 pause), the concurrency cap, the time limit, the request (with the token added at
the last moment), same-origin redirects for reads, and the body cap; aiohttp's failures
leave as ``APIConnectionError``/``APITimeoutError`` with the token scrubbed and no
aiohttp exception attached. Retrying, reconciling and decoding are the call's business
(:mod:`asyncbackups._calls.call`), not this module's.

Time limits. Each attempt runs inside ``asyncio.timeout(options.timeout)``: a server
that never answers, or trickles its body, is given up on at the timeout. A cancellation
from anyone else (the caller, their own ``asyncio.timeout``, a TaskGroup) is never
taken for a time-out: ``asyncio.timeout`` only turns its own into ``TimeoutError``.
aiohttp's own ``ClientTimeout(total=...)`` would cost less per request, but it does not
hold that line: a caller's cancel landing as its limit fires comes out as a time-out,
and ``test_outside_cancels_landing_as_limits_fire_are_never_lost`` fails with it.
A time-out is reported with ``request_may_have_reached_server=False`` when no connection
had been opened for the attempt: the request certainly never left. Our own session's
connector tells each attempt when aiohttp takes a connection for it
(:class:`_CountingConnector`), so this holds however late the loop runs. A borrowed
session's connector is its owner's: there, a connect still under way is ended by
aiohttp's own connect limit, a little before the attempt's (:data:`_CONNECT_SHARE`),
which reports it as such; if the loop is held up past both limits at once, the
time-out is reported as possibly sent, the safe side (a create reconciles before it is
sent again).

aiohttp repeats a GET or DELETE once, silently, when a kept-alive connection drops: the
same count of connections shows it (two for one attempt), so a delete knows its first
try may have acted. On a borrowed session the repeat goes unseen: a DELETE whose first
try acted and whose silent repeat met 404 raises ``NotFoundError``.
"""

from __future__ import annotations

import asyncio
import contextvars
import enum
import logging
import math
import sys
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from .._core.errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    BackupsError,
    ResponseTooLargeError,
    ResponseValidationError,
)
from .._core.options import ClientOptions
from .._core.protocol import (
    Response,
    parse_retry_after,
)
from .._core.redact import Redactor
from .._core.stats import Counters
from .._core.urls import (
    check_proxy_route,
    is_same_origin,
    resolve_link,
)
from .._version import __version__
from .base import Request
from .governor import Governor

__all__ = ["USER_AGENT", "HTTPTransport", "Session", "TraceConfig", "check_session"]

logger = logging.getLogger("asyncbackups")

USER_AGENT = (
    f"asyncbackups/{__version__} aiohttp/{aiohttp.__version__} "
    f"python/{sys.version_info.major}.{sys.version_info.minor}"
)
"""The ``User-Agent`` the client sends: the SDK, aiohttp and Python versions."""
# Server text quoted in an exception message is cut to this many characters.
_MAX_DETAIL = 300
_MAX_REDIRECTS = 3
# The share of an attempt's time limit that opening a connection may take on a borrowed
# session. aiohttp's connect limit must fire on an earlier pass of the event loop than
# the attempt's own, or the attempt's would end the connect and the request could not
# be known unsent there; the margin is what a busy machine may hold the loop up by
# without changing the verdict.
_CONNECT_SHARE = 0.95


class _Attempt:
    """What our own session's connector saw of one attempt: the connections it took."""

    __slots__ = ("connections",)

    def __init__(self) -> None:
        self.connections = 0


# The attempt under way in this task, for the connector to report to.
_ATTEMPT: contextvars.ContextVar[_Attempt | None] = contextvars.ContextVar(
    "asyncbackups_attempt", default=None
)


class _CountingConnector(aiohttp.TCPConnector):
    """Our own session's connector: it counts the connections aiohttp takes for each
    attempt. None means the request never left; two mean aiohttp's silent repeat."""

    async def connect(
        self, req: aiohttp.ClientRequest, *args: Any, **kwargs: Any
    ) -> aiohttp.connector.Connection:
        connection = await super().connect(req, *args, **kwargs)
        attempt = _ATTEMPT.get()
        if attempt is not None:
            attempt.connections += 1
        return connection


# The types a caller may hand the client, named here so no other module needs aiohttp
# to spell them.
Session = aiohttp.ClientSession
TraceConfig = aiohttp.TraceConfig


def _check_proxy(proxy: object) -> URL | None:
    if proxy is None:
        return None
    if not isinstance(proxy, str):
        raise TypeError(f"proxy must be a URL string, not {type(proxy).__name__}")
    try:
        url = URL(proxy)
    except (ValueError, TypeError):
        raise ValueError("proxy is not a valid URL") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError("proxy must be an absolute http:// or https:// URL")
    return url


def _environment_proxy(base_url: URL, *, quiet: bool = False) -> URL | None:
    """The proxy ``HTTPS_PROXY``/``HTTP_PROXY`` name for the API, unless ``NO_PROXY``
    exempts its host (``quiet``: no warning for one that is not a URL).

    Read here rather than through aiohttp's ``trust_env``, which would also read
    ``~/.netrc`` and send its credentials beside the token.
    """
    proxies = urllib.request.getproxies_environment()
    chosen = proxies.get(base_url.scheme or "")
    if not chosen or not base_url.host:
        return None
    # The stdlib's own NO_PROXY matching (hosts, domain suffixes, ports, "*"); typeshed
    # does not list it.
    if urllib.request.proxy_bypass_environment(  # type: ignore[attr-defined]
        base_url.host, proxies
    ):
        return None
    try:
        return _check_proxy(chosen)
    except ValueError:
        if not quiet:
            logger.warning("ignoring the %s_PROXY environment variable: not a URL", base_url.scheme)
        return None


def _check_route(base_url: URL, proxy: URL | None, *, allow_plain_http: bool, given: bool) -> None:
    """Refuse a plain-http API through a proxy off loopback (``given``: by ``proxy=``,
    else by the environment)."""
    source = "proxy=" if given else f"${(base_url.scheme or '').upper()}_PROXY"
    check_proxy_route(base_url, proxy, allow_plain_http=allow_plain_http, source=source)


def check_session(session: object) -> None:
    """``TypeError`` unless ``session`` is ``None`` or an ``aiohttp.ClientSession``."""
    if session is not None and not isinstance(session, aiohttp.ClientSession):
        raise TypeError(f"session must be an aiohttp.ClientSession, not {type(session)}")


def _connect_limit(seconds: float) -> aiohttp.ClientTimeout:
    """aiohttp's part of a ``seconds`` limit: opening a connection, and nothing else.

    Unrounded: past ``ceil_threshold`` aiohttp rounds a limit up to a whole second,
    which could put it after the attempt's own.
    """
    return aiohttp.ClientTimeout(
        total=None, connect=seconds * _CONNECT_SHARE, ceil_threshold=math.inf
    )


class _State(enum.Enum):
    OPEN = "open"
    CLOSED = "closed"


class HTTPTransport:
    """Sends one attempt at a time through one aiohttp session; see the module docstring.

    ``session`` is borrowed when given: used, never closed. Otherwise one session is
    made on first use, inside the running loop, and closed by :meth:`aclose`.
    """

    def __init__(
        self,
        *,
        token: str,
        options: ClientOptions,
        session: aiohttp.ClientSession | None,
        counters: Counters,
        proxy: str | None = None,
        trace_configs: Sequence[aiohttp.TraceConfig] | None = None,
    ) -> None:
        check_session(session)
        self._proxy = _check_proxy(proxy)
        self._allow_plain_http = options.allow_plain_http
        # A plain-http API through a proxy off loopback is refused here, before any
        # request: the proxy given, or the environment's when the session reads it.
        allow = self._allow_plain_http
        _check_route(options.base_url, self._proxy, allow_plain_http=allow, given=True)
        if self._proxy is None and (session is None or session.trust_env):
            environment = _environment_proxy(options.base_url, quiet=True)
            _check_route(options.base_url, environment, allow_plain_http=allow, given=False)
        self._trace_configs = list(trace_configs or ())
        if any(not isinstance(config, aiohttp.TraceConfig) for config in self._trace_configs):
            raise TypeError("trace_configs must be aiohttp.TraceConfig objects")
        if session is not None and self._trace_configs:
            raise ValueError("pass trace_configs to your own session, not with a borrowed one")
        self._base_url = options.base_url
        self._base = str(options.base_url)
        # The token is put on each request by our own session's middleware, as it leaves
        # (see _SecretHeaders.authorize), or merged into a request's headers at the very
        # last moment on a borrowed session, so that no dict holding it is ever a local
        # of a frame an exception passes through.
        self._secret_headers = _SecretHeaders(token)
        self._borrowed = session is not None
        self._redactor = Redactor(token)
        self._counters = counters
        self._session_timeout = options.timeout
        self._max_concurrency = options.max_concurrency
        # The cap on requests in flight, shared by every with_options copy.
        self._slots = asyncio.Semaphore(options.max_concurrency)
        self._session = session
        self._loop: asyncio.AbstractEventLoop | None = None
        self._state = _State.OPEN
        # Every request asks it first: a 429's Retry-After holds back the whole client,
        # since every task would hit the same limit, and a stated limit paces it.
        self.governor = Governor(rate_limit=options.rate_limit)

    # -- lifecycle ----------------------------------------------------------------------

    @property
    def base_url(self) -> URL:
        """The API's base URL, ending with ``/``."""
        return self._base_url

    @property
    def closed(self) -> bool:
        """Whether :meth:`aclose` was called."""
        return self._state is _State.CLOSED

    def check_open(self) -> None:
        """Raise ``RuntimeError`` when the client was closed."""
        if self._state is _State.CLOSED:
            raise RuntimeError("this BackupsClient is closed; create a new one")

    def _get_session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            if self._loop is not None:
                if not self._borrowed:
                    raise RuntimeError(
                        "this BackupsClient is bound to another event loop; "
                        "create one client per event loop"
                    )
                # A borrowed session moved to another loop: the cap's waiters belong
                # to the loop they were made on.
                self._slots = asyncio.Semaphore(self._max_concurrency)
            self._loop = loop
        if self._session is None:
            self.check_open()
            if self._proxy is None:
                self._proxy = _environment_proxy(self._base_url)
                # The environment may have changed since the client was made.
                _check_route(
                    self._base_url,
                    self._proxy,
                    allow_plain_http=self._allow_plain_http,
                    given=False,
                )
            # No connection limit of aiohttp's own: the slots already cap the requests in
            # flight, hence the connections open; one cap, not two that could disagree.
            connector = _CountingConnector(limit=0, ttl_dns_cache=300)
            # Our own session carries the headers, so that a request passes only what
            # is its own (aiohttp merges per-request headers anew).
            self._session = aiohttp.ClientSession(
                connector=connector,
                # The API sets no cookies, and the token is the only credential: no jar
                # to keep, nor to filter for every request.
                cookie_jar=aiohttp.DummyCookieJar(),
                timeout=_connect_limit(self._session_timeout),
                headers=self._secret_headers.session_headers(),
                middlewares=(self._secret_headers.authorize,),
                trace_configs=self._trace_configs or None,
            )
        return self._session

    async def aclose(self) -> None:
        """Close the session if it is ours. Safe to call more than once."""
        self._state = _State.CLOSED
        session, self._session = self._session, None
        if session is not None and not self._borrowed and not session.closed:
            await session.close()

    # -- one attempt --------------------------------------------------------------------

    def url(self, path: str) -> str:
        """The absolute URL of a route relative to the base URL."""
        return self._base + path

    def scrub(self, error: BaseException) -> None:
        """Remove every trace of the token from an error built from an answer."""
        self._redactor.error(error)
        if isinstance(error, APIStatusError) and error.headers:
            text = self._redactor.text
            error.headers = CIMultiDict(
                (name, text(value)) for name, value in error.headers.items()
            )

    def redact(self, text: str) -> str:
        """``text`` with every trace of the token replaced by ``***``."""
        return self._redactor.text(text)

    async def send(self, request: Request, options: ClientOptions) -> Response:
        """One attempt of ``request``; reads follow same-origin redirects, a few at most."""
        self.check_open()
        url = request.url
        parsed = URL(url)
        if not is_same_origin(parsed, self._base_url):
            raise ResponseValidationError(
                f"refusing to send the token to {parsed.origin()}: "
                f"not the API's origin {self._base_url.origin()}"
            )
        session = self._get_session()
        response = await self._send_once(session, request, url, options)
        redirects = 0
        while 300 <= response.status < 400 and request.method == "GET":
            target = self._redirect_target(response)
            if target is None or redirects == _MAX_REDIRECTS:
                break  # reported as the redirect it is: the token never follows it
            redirects += 1
            response = await self._send_once(session, request, target, options)
        return response

    def _redirect_target(self, response: Response) -> str | None:
        location = response.headers.get("Location")
        if not location:
            return None
        target, _ = resolve_link(response.url, location, self._base_url)
        return None if target is None else str(target)

    def _headers(self, request: Request, options: ClientOptions) -> Mapping[str, str] | None:
        headers = request.headers
        if options.headers:
            headers = {**options.extra_headers, **(headers or {})}
        if self._borrowed:
            return self._secret_headers.merge(headers)
        return headers

    async def _take_turn(self, request: Request, options: ClientOptions) -> None:
        """Wait for the pacer, the governor, then a slot; on return the slot is held."""
        if options.pacer is not None:
            await options.pacer.wait()
        governor = self.governor
        await governor.acquire(request.lane)
        try:
            queued = self._slots.locked()
            await self._slots.acquire()
        except BaseException:
            governor.unused()
            raise
        if queued:
            try:
                # A 429 that came while this request queued for a slot holds it back too.
                await governor.hold_while_paused()
            except BaseException:
                self._slots.release()
                governor.unused()
                raise

    async def _send_once(
        self, session: aiohttp.ClientSession, request: Request, url: str, options: ClientOptions
    ) -> Response:
        await self._take_turn(request, options)
        attempt = _Attempt()
        reset = _ATTEMPT.set(attempt)
        failure: BackupsError | None = None
        answered = False
        try:
            self._counters.requests[request.route] += 1
            async with asyncio.timeout(options.timeout):
                async with session.request(
                    request.method,
                    url,
                    params=request.params,
                    data=request.data,
                    headers=self._headers(request, options),
                    allow_redirects=False,
                    timeout=_connect_limit(options.timeout),
                    proxy=self._proxy,
                ) as answer:
                    status = answer.status
                    answer_headers = answer.headers
                    body = await self._read_body(answer, request, url, options)
            answered = True
            self._note_answer(status, answer_headers, options)
        # Each failure is turned into our own error here and raised after the except
        # block, so that it carries no __context__: aiohttp's exceptions hold the
        # request's headers, the token among them.
        except aiohttp.ConnectionTimeoutError as exc:
            failure = self._connection_error(request, exc, APITimeoutError, attempt, sent=False)
        except aiohttp.ClientConnectorError as exc:
            failure = self._connection_error(request, exc, APIConnectionError, attempt, sent=False)
        except TimeoutError as exc:
            failure = self._timed_out(request, exc, options, attempt)
        except (aiohttp.ClientError, ValueError, OSError) as exc:
            # ValueError and OSError: aiohttp refusing what a hostile server sent (an
            # unparsable header, a broken encoding) below its own exception classes.
            failure = self._connection_error(request, exc, APIConnectionError, attempt, sent=True)
        finally:
            if not answered:
                self.governor.failed()
            self._slots.release()
            _ATTEMPT.reset(reset)
        if failure is not None:
            raise failure
        self._counters.bytes_read += len(body)
        return Response(
            method=request.method,
            url=url,
            status=status,
            headers=answer_headers,
            body=body,
            # aiohttp sent it again after a dropped connection: the first copy may
            # have acted, whatever the repeat met.
            repeated=attempt.connections > 1,
        )

    async def _read_body(
        self, answer: aiohttp.ClientResponse, request: Request, url: str, options: ClientOptions
    ) -> bytes:
        """The whole body, refusing to hold more than ``max_response_bytes`` of it.

        The cap counts decoded bytes, so a small gzip or deflate body that would inflate
        past it is stopped as it inflates; aiohttp decompresses in bounded chunks.
        """
        cap = options.max_response_bytes
        length = answer.content_length
        if length is not None and length > cap:
            answer.close()
            raise self._too_large(request, url, cap, declared=length)
        chunks: list[bytes] = []
        size = 0
        while chunk := await answer.content.readany():
            size += len(chunk)
            if size > cap:
                answer.close()  # the rest is never read; the connection is not reused
                raise self._too_large(request, url, cap, declared=None)
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_large(
        self, request: Request, url: str, cap: int, *, declared: int | None
    ) -> ResponseValidationError:
        size = f"declares {declared} bytes" if declared is not None else "goes on"
        return ResponseTooLargeError(
            f"{request.method} {self._redactor.text(URL(url).path)}: the answer {size}, past "
            f"max_response_bytes ({cap} bytes); not reading more of it",
            path="$",
        )

    def _timed_out(
        self, request: Request, exc: TimeoutError, options: ClientOptions, attempt: _Attempt
    ) -> APIConnectionError:
        # asyncio.timeout's own error says nothing; one of aiohttp's says which limit.
        reason = (
            exc if str(exc) else TimeoutError(f"no complete answer within {options.timeout:g}s")
        )
        # Our own connector says whether a connection was opened; a borrowed one cannot.
        sent = self._borrowed or attempt.connections > 0
        return self._connection_error(request, reason, APITimeoutError, attempt, sent=sent)

    def _connection_error(
        self,
        request: Request,
        exc: BaseException,
        kind: type[APIConnectionError],
        attempt: _Attempt,
        *,
        sent: bool,
    ) -> APIConnectionError:
        # A connect failure on aiohttp's silent repeat still follows a try that may
        # have arrived, so it is not "certainly unsent".
        sent = sent or attempt.connections > 1
        what = "timed out" if kind is APITimeoutError else "failed"
        detail = str(exc) or type(exc).__name__
        if len(detail) > _MAX_DETAIL:
            detail = detail[:_MAX_DETAIL] + "..."
        error = kind(
            f"{request.method} {URL(request.url).path} {what}: {type(exc).__name__}: {detail}",
            request_may_have_reached_server=sent,
        )
        self._redactor.error(error)
        return error

    def _note_answer(self, status: int, headers: Mapping[str, str], options: ClientOptions) -> None:
        """Tell the governor what came back; a 429 pauses every request for its
        ``Retry-After``, unless that is longer than the client accepts to wait."""
        retry_after = None
        if status == 429:
            self._counters.throttled += 1
            retry_after = parse_retry_after(headers.get("Retry-After"))
            if retry_after is not None and retry_after > options.max_retry_after:
                retry_after = None
            elif retry_after is not None:
                self._counters.rate_limit_pauses += 1
        self.governor.answered(status, headers, retry_after)


class _SecretHeaders:
    """The headers that carry the token, kept out of every ``repr`` and frame local."""

    __slots__ = ("_headers",)

    def __init__(self, token: str) -> None:
        self._headers = {
            "Authorization": f"Bearer {token}",
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
        }

    def __repr__(self) -> str:
        return "<headers: Authorization=***>"

    def session_headers(self) -> dict[str, str]:
        """A copy for an owned session's defaults: all but the token."""
        return {name: value for name, value in self._headers.items() if name != "Authorization"}

    async def authorize(
        self, request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
    ) -> aiohttp.ClientResponse:
        """Our own session's middleware: the token, put on each request as it leaves.

        Not among the session's default headers, which aiohttp hands to every
        ``TraceConfig`` at ``on_request_start``: tracing that captures request headers
        (OpenTelemetry's ``captured_request_headers=[".*"]``, or its
        ``OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST``) never records it,
        whatever its ``sensitive_headers``. Nor would aiohttp copy a default
        ``Authorization`` into ``Proxy-Authorization`` for a proxy. The SDK follows
        redirects itself, after its same-origin check, so each request here is one the
        token may go with.
        """
        request.headers["Authorization"] = self._headers["Authorization"]
        return await handler(request)

    def merge(self, extra: Mapping[str, str] | None) -> dict[str, str]:
        """The token's headers with ``extra`` on top, for a borrowed session's request."""
        return {**self._headers, **extra} if extra else dict(self._headers)
