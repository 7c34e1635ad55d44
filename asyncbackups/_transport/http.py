"""The one module that touches aiohttp: the session, and one attempt of a request.

Per attempt it applies, in this order: the rate governor (which holds the client-wide
429 pause), the concurrency cap, the request (with the token added at the last moment),
same-origin redirects for reads, and the body cap; aiohttp's failures leave as
``APIConnectionError``/``APITimeoutError`` with the token scrubbed and no aiohttp
exception attached. Retrying, reconciling and
decoding are the call's business (:mod:`asyncbackups._calls.call`), not this module's.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import enum
import logging
import math
import sys
import urllib.request
from collections import deque
from collections.abc import Awaitable, Mapping, Sequence

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
    is_same_origin,
    resolve_link,
)
from .._version import __version__
from .base import Request
from .deadlines import (
    Deadline,
    Deadlines,
)
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
_TARGETS_CACHED = 1024
# The share of an attempt's timeout that opening a connection may take; the deadline
# fires at the full timeout, 1-2% late (measured on a 2-core machine under 3 busy
# processes: a 1% margin still let the deadline end a connect now and then).
_CONNECT_SHARE = 0.95

# aiohttp silently repeats a GET or DELETE once when a kept-alive connection drops. The
# repeat is invisible to callers, yet the first try may have reached the server; this
# counter, fed by a per-request middleware, is how a delete learns it happened.
_ATTEMPTS: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar(
    "asyncbackups_attempts", default=None
)


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


def _environment_proxy(base_url: URL) -> URL | None:
    """The proxy ``HTTPS_PROXY``/``HTTP_PROXY`` name for the API, unless ``NO_PROXY``
    exempts its host.

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
        logger.warning("ignoring the %s_PROXY environment variable: not a URL", base_url.scheme)
        return None


def check_session(session: object) -> None:
    """``TypeError`` unless ``session`` is ``None`` or an ``aiohttp.ClientSession``."""
    if session is not None and not isinstance(session, aiohttp.ClientSession):
        raise TypeError(f"session must be an aiohttp.ClientSession, not {type(session)}")


async def _count_attempts(
    request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
) -> aiohttp.ClientResponse:
    counter = _ATTEMPTS.get()
    if counter is not None:
        counter[0] += 1
    return await handler(request)


class _Slots:
    """The cap on requests in flight: a counter, and a queue only when it is full.

    asyncio.Semaphore costs two coroutines per request even when free, about 5% of a
    fast request; here a free slot is taken with no await at all.
    """

    __slots__ = ("_free", "_queue")

    def __init__(self, size: int) -> None:
        self._free = size
        self._queue: deque[asyncio.Future[None]] = deque()

    def take(self) -> bool:
        """Take a slot if one is free and nobody queues for it."""
        if self._free > 0 and not self._queue:
            self._free -= 1
            return True
        return False

    async def wait_and_take(self) -> None:
        """Queue for a slot (first come, first served) and take it.

        Cancelled while queued, the turn leaves the queue; cancelled just after being
        handed a slot, the slot passes on. Either way exactly one slot changes hands.
        """
        turn = asyncio.get_running_loop().create_future()
        self._queue.append(turn)
        try:
            await turn
        except BaseException:
            if turn.done() and not turn.cancelled():
                self.give_back()  # handed a slot just as we were cancelled: pass it on
            else:
                # give_back() may already have dropped this cancelled turn from the
                # queue while looking for a live one; removing it again must not raise.
                with contextlib.suppress(ValueError):
                    self._queue.remove(turn)
            raise

    def give_back(self) -> None:
        """Hand the slot to the next live turn in the queue, or free it."""
        while self._queue:
            turn = self._queue.popleft()
            if not turn.done():
                turn.set_result(None)
                return
        self._free += 1


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
        self._trace_configs = list(trace_configs or ())
        if any(not isinstance(config, aiohttp.TraceConfig) for config in self._trace_configs):
            raise TypeError("trace_configs must be aiohttp.TraceConfig objects")
        if session is not None and self._trace_configs:
            raise ValueError("pass trace_configs to your own session, not with a borrowed one")
        self._base_url = options.base_url
        self._base = str(options.base_url)
        # The token lives in the session's default headers (our own session) or is
        # merged into a request's headers at the very last moment (a borrowed one), so
        # that no dict holding it is ever a local of a frame an exception passes through.
        self._secret_headers = _SecretHeaders(token)
        self._borrowed = session is not None
        # Whether the token goes with each request rather than with the session's
        # defaults: on a borrowed session, and behind a proxy, since aiohttp copies a
        # session's default Authorization into Proxy-Authorization for the proxy.
        self._token_per_request = self._borrowed or self._proxy is not None
        self._redactor = Redactor(token)
        self._counters = counters
        self._session_timeout = options.timeout
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}
        self._deadlines = Deadlines()
        self._targets: dict[tuple[str, tuple[tuple[str, str], ...]], URL] = {}
        self._max_concurrency = options.max_concurrency
        self._slots = _Slots(options.max_concurrency)
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
            if self._loop is not None and not self._borrowed:
                raise RuntimeError(
                    "this BackupsClient is bound to another event loop; "
                    "create one client per event loop"
                )
            self._loop = loop
        if self._session is None:
            self.check_open()
            if self._proxy is None:
                self._proxy = _environment_proxy(self._base_url)
                self._token_per_request = self._proxy is not None
            # No connection limit of aiohttp's own: the slots already cap the requests in
            # flight, hence the connections open, and aiohttp counting them again costs
            # ~2 us a request (measured with benchmarks/bench_throughput.py's responder).
            connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300)
            # Our own session carries the headers and timeout, so that a request
            # passes only what is its own (aiohttp merges per-request headers anew).
            self._session = aiohttp.ClientSession(
                connector=connector,
                # The API sets no cookies, and the token is the only credential: a real
                # jar would filter cookies for every request for nothing.
                cookie_jar=aiohttp.DummyCookieJar(),
                timeout=self._timeout(self._session_timeout),
                headers=self._secret_headers.session_headers(
                    with_token=not self._token_per_request
                ),
                trace_configs=self._trace_configs or None,
            )
        return self._session

    async def aclose(self) -> None:
        """Close the session if it is ours. Safe to call more than once."""
        self._state = _State.CLOSED
        self._deadlines.close()
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

    def _timeout(self, seconds: float) -> aiohttp.ClientTimeout:
        """aiohttp's part of a ``seconds`` time limit: opening a new connection.

        The attempt as a whole is limited by :mod:`asyncbackups._transport.deadlines`. Opening a
        connection is left to aiohttp, within a little less time, so that it, not the
        deadline, ends a connect still under way, even when the process was descheduled
        for a while: aiohttp reports that as such, and the request is known never to
        have left. (No rounding: aiohttp would round a limit past 5 s up to whole
        seconds, past the deadline.)
        """
        timeout = self._timeouts.get(seconds)
        if timeout is None:
            timeout = self._timeouts[seconds] = aiohttp.ClientTimeout(
                total=None, connect=seconds * _CONNECT_SHARE, ceil_threshold=math.inf
            )
        return timeout

    def send(self, request: Request, options: ClientOptions) -> Awaitable[Response]:
        """One attempt of ``request``; reads follow same-origin redirects, a few at most.

        A plain function handing back the attempt's coroutine: the checks run at once,
        and the call awaits one coroutine less (about half a microsecond a request).
        """
        self.check_open()
        url = request.url
        if not url.startswith(self._base) and not is_same_origin(URL(url), self._base_url):
            raise ResponseValidationError(
                f"refusing to send the token to {URL(url).origin()}: "
                f"not the API's origin {self._base_url.origin()}"
            )
        return self._send_once(self._get_session(), request, url, options, 0)

    def _redirect_target(self, response: Response) -> str | None:
        location = response.headers.get("Location")
        if not location:
            return None
        target, _ = resolve_link(response.url, location, self._base_url)
        return None if target is None else str(target)

    def _target(self, url: str, params: Mapping[str, str] | None) -> URL:
        """The request's URL, built and encoded once per distinct URL and query.

        aiohttp would otherwise parse the string and re-encode the query on every
        request; a client asks for the same few URLs over and over (measured: a few
        microseconds a request, see benchmarks/bench_throughput.py).
        """
        key = (url, tuple(params.items())) if params else (url, ())
        target = self._targets.get(key)
        if target is None:
            target = URL(url)
            if params:
                target = target.update_query(params)
            target = URL(str(target), encoded=True)
            if len(self._targets) >= _TARGETS_CACHED:
                self._targets.clear()
            self._targets[key] = target
        return target

    def _headers(self, request: Request, options: ClientOptions) -> Mapping[str, str] | None:
        headers = request.headers
        if options.headers:
            headers = {**options.extra_headers, **(headers or {})}
        return headers

    async def _send_once(
        self,
        session: aiohttp.ClientSession,
        request: Request,
        url: str,
        options: ClientOptions,
        redirects: int,
    ) -> Response:
        if options.pacer is not None:
            await options.pacer.wait()
        governor = self.governor
        await governor.acquire(request.lane)
        answered = False
        slots = self._slots
        try:
            if not slots.take():
                await slots.wait_and_take()
                try:
                    await governor.hold_while_paused()
                except BaseException:
                    slots.give_back()
                    raise
        except BaseException:
            governor.unused()
            raise
        counter: list[int] | None = None
        middlewares: tuple[aiohttp.ClientMiddlewareType, ...] | None = None  # the session's
        if request.method == "DELETE":
            counter = [0]
            reset = _ATTEMPTS.set(counter)
            # Chained after the session's own middlewares (read from aiohttp's private
            # attribute: a per-request list would otherwise replace them).
            middlewares = (*getattr(session, "_middlewares", ()), _count_attempts)
        headers = request.headers if not options.headers else self._headers(request, options)
        secret = self._secret_headers if self._token_per_request else None
        failure: BackupsError | None = None
        deadline: Deadline | None = None
        try:
            self._counters.requests[request.route] += 1
            deadline = self._deadlines.start(options.timeout)
            # Awaited rather than entered with `async with`: the context managers cost
            # four coroutines a request (measured: about 2 us of ~90), and release()
            # in the finally below does what leaving them would.
            answer = await session.request(
                request.method,
                self._target(url, request.params),
                data=request.data,
                headers=headers if secret is None else secret.merge(headers),
                allow_redirects=False,
                # Passed each time, rather than merged into a dict of options that
                # differ from the session's: cheaper, and the same to aiohttp.
                timeout=self._timeout(options.timeout),
                proxy=self._proxy,
                middlewares=middlewares,
            )
            try:
                status = answer.status
                answer_headers = answer.headers
                cap = options.max_response_bytes
                length = answer.content_length
                content = answer.content
                if (
                    length is not None
                    and length <= cap
                    and "Content-Encoding" not in answer_headers
                ) or (content.is_eof() and content.total_bytes <= cap):
                    # The fast path: no more than declared, or all of it already here
                    # (a small chunked or compressed answer; counted decompressed).
                    body = await answer.read()
                else:
                    body = await self._read_body(answer, request, url, cap)
            finally:
                answer.release()
            answered = True
            self._note_answer(status, answer_headers, options)
        # Each failure is turned into our own error here and raised after the except
        # block, so that it carries no __context__: aiohttp's exceptions hold the
        # request's headers, the token among them.
        except asyncio.CancelledError:
            if deadline is None or not deadline.expired_here():
                raise  # cancelled from outside (too): that cancellation goes on
        except aiohttp.ConnectionTimeoutError as exc:
            failure = self._connection_error(request, exc, APITimeoutError, counter, sent=False)
        except aiohttp.ClientConnectorError as exc:
            failure = self._connection_error(request, exc, APIConnectionError, counter, sent=False)
        except TimeoutError as exc:
            failure = self._connection_error(request, exc, APITimeoutError, counter, sent=True)
        except (aiohttp.ClientError, ValueError, OSError) as exc:
            # ValueError and OSError: aiohttp refusing what a hostile server sent (an
            # unparsable header, a broken encoding) below its own exception classes.
            failure = self._connection_error(request, exc, APIConnectionError, counter, sent=True)
        finally:
            if not answered:
                governor.failed()
            if deadline is not None:
                self._deadlines.finish(deadline)
            slots.give_back()
            if counter is not None:
                _ATTEMPTS.reset(reset)
        if deadline is not None and deadline.fired:
            # The deadline ended the attempt, whatever aiohttp made of its cancellation;
            # one aiohttp swallowed that was not only the deadline's is raised again.
            if not deadline.expired_here():
                raise asyncio.CancelledError
            failure = self._timed_out(request, options, counter)
        if failure is not None:
            raise failure
        self._counters.bytes_read += len(body)
        response = Response(
            method=request.method,
            url=url,
            status=status,
            headers=answer_headers,
            body=body,
            # aiohttp sent it again after a dropped connection: the first copy may
            # have acted, whatever the repeat met.
            repeated=counter is not None and counter[0] > 1,
        )
        if 300 <= status < 400 and request.method == "GET" and redirects < _MAX_REDIRECTS:
            target = self._redirect_target(response)
            if target is not None:
                return await self._send_once(session, request, target, options, redirects + 1)
        # Anything else is reported as the redirect it is: the token never follows it.
        return response

    async def _read_body(
        self, answer: aiohttp.ClientResponse, request: Request, url: str, cap: int
    ) -> bytes:
        """The whole body, refusing to hold more than ``cap`` bytes of it.

        The cap counts decoded bytes, so a small gzip or deflate body that would inflate
        past it is stopped as it inflates; aiohttp decompresses in bounded chunks. (A
        plain body of declared length within the cap is read inline by the caller.)
        """
        length = answer.content_length
        if length is not None and length > cap:
            answer.close()
            raise self._too_large(request, url, cap, declared=length)
        chunks: list[bytes] = []
        size = 0
        async for chunk in answer.content.iter_any():
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
        self, request: Request, options: ClientOptions, counter: list[int] | None
    ) -> APIConnectionError:
        return self._connection_error(
            request,
            TimeoutError(f"no complete answer within {options.timeout:g}s"),
            APITimeoutError,
            counter,
            sent=True,
        )

    def _connection_error(
        self,
        request: Request,
        exc: BaseException,
        kind: type[APIConnectionError],
        counter: list[int] | None,
        *,
        sent: bool,
    ) -> APIConnectionError:
        # A connect failure on aiohttp's silent repeat still follows a try that may
        # have arrived, so it is not "certainly unsent".
        sent = sent or (counter is not None and counter[0] > 1)
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

    def session_headers(self, *, with_token: bool) -> dict[str, str]:
        """A copy for an owned session's defaults, the token left out if asked."""
        if with_token:
            return dict(self._headers)
        return {name: value for name, value in self._headers.items() if name != "Authorization"}

    def merge(self, extra: Mapping[str, str] | None) -> dict[str, str]:
        """The token's headers with ``extra`` on top, for a borrowed session's request."""
        return {**self._headers, **extra} if extra else dict(self._headers)
