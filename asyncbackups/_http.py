"""The one module that touches aiohttp: it owns the session and sends every request.

Per request it applies, in this order: the client-wide 429 pause, the concurrency cap,
one attempt bounded by the timeout, and - only after a failure - tenacity's retries
under the policy of :mod:`asyncbackups._policy`. The success path builds no retry
machinery at all, so a call costs what the same aiohttp request costs.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import enum
import inspect
import logging
import random
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Generic, TypeVar

import aiohttp
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)
from yarl import URL

from ._errors import (
    AmbiguousCreateError,
    APIConnectionError,
    APITimeoutError,
    BackupsError,
    ResponseTooLargeError,
    ResponseValidationError,
)
from ._policy import Safety, is_ambiguous, is_retryable, may_still_be_running
from ._protocol import Response, is_same_origin, parse_retry_after
from ._redact import Redactor
from ._version import __version__

__all__ = ["DEFAULT_MAX_RESPONSE_BYTES", "HTTPTransport"]

logger = logging.getLogger("asyncbackups")

T = TypeVar("T")

DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024
# Server text quoted in an exception message is cut to this many characters.
_MAX_DETAIL = 300
_MAX_LINK_LENGTH = 8192

USER_AGENT = (
    f"asyncbackups/{__version__} aiohttp/{aiohttp.__version__} "
    f"python/{sys.version_info.major}.{sys.version_info.minor}"
)

# aiohttp silently repeats a GET or DELETE once when a kept-alive connection drops. The
# repeat is invisible to callers, yet the first try may have reached the server; this
# counter, fed by a per-request middleware, is how a delete learns it happened.
_ATTEMPTS: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar(
    "asyncbackups_attempts", default=None
)


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


class _Call(Generic[T]):
    """One logical call across its attempts: what to send and what was learned so far."""

    __slots__ = (
        "ambiguous",
        "data",
        "decode",
        "give_up",
        "headers",
        "idempotency_key",
        "max_retries",
        "may_be_running",
        "method",
        "params",
        "reconcile",
        "safety",
        "sent",
        "settled",
        "unreadable",
        "url",
    )

    def __init__(
        self,
        method: str,
        url: str,
        params: Mapping[str, str] | None,
        data: bytes | None,
        headers: Mapping[str, str] | None,
        safety: Safety,
        decode: Callable[[Response], T | Awaitable[T]],
        reconcile: Callable[[], Awaitable[T | None]] | None,
        idempotency_key: str | None,
        max_retries: int,
    ) -> None:
        self.method = method
        self.url = url
        self.params = params
        self.data = data
        self.headers = headers
        self.safety = safety
        self.decode = decode
        self.reconcile = reconcile
        self.idempotency_key = idempotency_key
        self.max_retries = max_retries
        self.sent = False  # a request of this call may have left the process
        self.ambiguous = False  # an earlier attempt may have reached the server
        self.may_be_running = False  # ...and may still be at work there
        self.settled = False  # such an attempt was already given time to land
        self.give_up = False  # retrying could only do harm now
        # A success whose body could not be read: the work is done, never resend it.
        self.unreadable: ResponseValidationError | None = None


class HTTPTransport:
    """Sends the SDK's requests: session lifecycle, 429 pause, concurrency cap, retries.

    ``session`` is borrowed when given: used, never closed. Otherwise one session is
    made on first use, inside the running loop, and closed by :meth:`aclose`.
    """

    def __init__(
        self,
        *,
        token: str,
        base_url: URL,
        timeout: float,
        max_retries: int,
        max_concurrency: int,
        session: aiohttp.ClientSession | None,
        backoff_base: float,
        max_backoff: float,
        max_retry_after: float,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        self.base_url = base_url
        self._base = str(base_url)
        # The token lives in the session's default headers (our own session) or is
        # merged into a request's headers at the very last moment (a borrowed one), so
        # that no dict holding it is ever a local of a frame an exception passes through.
        self._secret_headers = _SecretHeaders(token)
        self._borrowed = session is not None
        self._write_headers = {"Content-Type": "application/json"}
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._request_options: dict[str, Any] = {}
        if session is not None:
            self._request_options["timeout"] = self._timeout
        self._redactor = Redactor(token)
        self._settle_time = timeout
        self.max_retries = max_retries
        self._max_concurrency = max_concurrency
        self._slots = _Slots(max_concurrency)
        self._backoff = wait_random_exponential(multiplier=backoff_base, max=max_backoff)
        self.max_retry_after = max_retry_after
        self._max_response_bytes = max_response_bytes
        self._session = session
        self._owns_session = session is None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._state = _State.OPEN
        # Monotonic time before which no request may start: a 429's Retry-After holds
        # back the whole client, since every task would hit the same limit.
        self._resume_at = 0.0

    # -- lifecycle ----------------------------------------------------------------------

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
            if self._loop is not None and self._owns_session:
                raise RuntimeError(
                    "this BackupsClient is bound to another event loop; "
                    "create one client per event loop"
                )
            self._loop = loop
        if self._session is None:
            self.check_open()
            connector = aiohttp.TCPConnector(limit=self._max_concurrency, ttl_dns_cache=300)
            # Our own session carries the headers and timeout, so that a request
            # passes only what is its own (aiohttp merges per-request headers anew).
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=self._timeout,
                headers=self._secret_headers.session_headers(),
            )
        return self._session

    async def aclose(self) -> None:
        """Close the session if it is ours. Safe to call more than once."""
        self._state = _State.CLOSED
        session, self._session = self._session, None
        if session is not None and self._owns_session and not session.closed:
            await session.close()

    # -- sending ------------------------------------------------------------------------

    def url(self, path: str) -> str:
        """The absolute URL of a route relative to the base URL."""
        return self._base + path

    def redact(self, text: str) -> str:
        """``text`` with every trace of the token replaced by ``***``."""
        return self._redactor.text(text)

    async def send(
        self,
        method: str,
        url: str,
        *,
        safety: Safety,
        decode: Callable[[Response], T | Awaitable[T]],
        params: Mapping[str, str] | None = None,
        data: bytes | None = None,
        idempotency_key: str | None = None,
        reconcile: Callable[[], Awaitable[T | None]] | None = None,
        max_retries: int | None = None,
    ) -> T:
        """Send one call, retrying under the policy for ``safety``; return ``decode(answer)``.

        ``data`` is a JSON body, sent byte for byte on every attempt. ``reconcile`` is
        awaited before any attempt that follows an ambiguous one: a non-``None`` result
        is taken as the call's result instead of sending again. ``max_retries``
        overrides the client's for this call (a reconcile's own reads use 0, so that a
        create stays within its request budget).
        """
        self.check_open()
        if not url.startswith(self._base) and not is_same_origin(URL(url), self.base_url):
            raise ResponseValidationError(
                f"refusing to send the token to {URL(url).origin()}: "
                f"not the API's origin {self.base_url.origin()}"
            )
        headers: Mapping[str, str] | None = None if data is None else self._write_headers
        if idempotency_key is not None:
            headers = {**(headers or {}), "Idempotency-Key": idempotency_key}
        call = _Call(
            method,
            url,
            params,
            data,
            headers,
            safety,
            decode,
            reconcile,
            idempotency_key,
            self.max_retries if max_retries is None else max_retries,
        )
        try:
            return await self._run(call)
        except asyncio.CancelledError:
            if call.safety is Safety.CREATE and call.sent:
                logger.warning(
                    "%s %s was cancelled after its request was sent: the server may "
                    "have made the backup anyway (Idempotency-Key %s); check before "
                    "creating it again",
                    call.method,
                    self._redactor.text(URL(call.url).path),
                    call.idempotency_key,
                )
            raise

    async def _run(self, call: _Call[T]) -> T:
        try:
            try:
                return await self._attempt(call)
            except BackupsError as error:
                if not self._should_retry(call, error):
                    raise
                first_error = error
            return await self._retry(call, first_error)
        except BackupsError:
            # Out of attempts after one that may have acted: look once more before
            # reporting failure, so a backup the server did make is not lost.
            if call.ambiguous and call.reconcile is not None and not call.give_up:
                with contextlib.suppress(BackupsError):
                    found = await self._reconcile(call)
                    if found is not None:
                        return found
            raise

    def _should_retry(self, call: _Call[Any], error: BaseException) -> bool:
        return (
            call.max_retries > 0
            and not call.give_up
            and is_retryable(error, call.safety, max_retry_after=self.max_retry_after)
        )

    async def _retry(self, call: _Call[T], first_error: BackupsError) -> T:
        replay: list[BackupsError] = [first_error]
        retrying = AsyncRetrying(
            stop=stop_after_attempt(call.max_retries + 1),
            wait=self._wait,
            retry=retry_if_exception(lambda error: self._should_retry(call, error)),
            before_sleep=lambda state: self._log_retry(call, state),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                if replay:
                    # The first attempt already ran on the fast path; replaying its
                    # failure lets tenacity count it and choose the first wait.
                    raise replay.pop()
                return await self._attempt(call)
        raise AssertionError("tenacity ended without a result")  # pragma: no cover

    def _wait(self, state: RetryCallState) -> float:
        backoff = self._backoff(state)
        error = state.outcome.exception() if state.outcome is not None else None
        retry_after = getattr(error, "retry_after", None)
        if retry_after is None:
            return backoff
        # Never undercut the server's Retry-After; a little jitter on top keeps the
        # callers it held back from all coming back in the same millisecond.
        return float(retry_after) + random.uniform(0.0, min(1.0, 0.1 * retry_after))

    def _log_retry(self, call: _Call[Any], state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        delay = state.next_action.sleep if state.next_action is not None else 0.0
        logger.info(
            "%s %s failed (%s); retrying in %.2fs (attempt %d of %d)",
            call.method,
            self._redactor.text(URL(call.url).path),
            error,
            delay,
            state.attempt_number + 1,
            call.max_retries + 1,
        )

    async def _attempt(self, call: _Call[T]) -> T:
        if call.ambiguous and call.reconcile is not None:
            found = await self._reconcile(call)
            if found is not None:
                return found
            if call.unreadable is not None:
                call.give_up = True
                raise call.unreadable
        try:
            session = self._get_session()
            response = await self._send_once(session, call, call.url)
            if 300 <= response.status < 400 and call.method == "GET":
                response = await self._follow_redirects(session, call, response)
            result = call.decode(response)
            if inspect.isawaitable(result):
                # A large page is structured in slices that let the loop breathe.
                return await result
            return result
        except ResponseValidationError as error:
            self._redactor.error(error)
            if call.safety is Safety.CREATE:
                # The server said it created the backup but its answer is unreadable:
                # find it by reconciling, and never send the create again.
                call.ambiguous = True
                call.unreadable = error
                call.give_up = call.reconcile is None
            raise
        except BackupsError as error:
            self._redactor.error(error)
            if is_ambiguous(error):
                call.ambiguous = True
                call.may_be_running = call.may_be_running or may_still_be_running(error)
            raise

    async def _reconcile(self, call: _Call[T]) -> T | None:
        """What an ambiguous attempt did, read from the server; ``None`` if nothing.

        A timed-out request (or one a gateway gave up on with 504) may still be at work
        on the server: read at once, it could miss the backup that request is about to
        make, and the resend would make a second one. So, once per call, such an
        attempt is given another ``timeout`` to land before the read.
        """
        assert call.reconcile is not None
        if call.may_be_running and not call.settled:
            call.settled = True
            logger.info(
                "%s %s may still be running on the server; reading its outcome in %.2fs",
                call.method,
                self._redactor.text(URL(call.url).path),
                self._settle_time,
            )
            await asyncio.sleep(self._settle_time)
        try:
            return await call.reconcile()
        except AmbiguousCreateError:
            call.give_up = True  # a report, not a passing failure: never resend after it
            raise

    async def _follow_redirects(
        self, session: aiohttp.ClientSession, call: _Call[Any], response: Response
    ) -> Response:
        """Only reads follow redirects, only within the origin, and only a few."""
        redirects = 0
        while 300 <= response.status < 400 and redirects < 3:
            target = self._redirect_target(response)
            if target is None:
                break  # reported as the redirect it is: the token never follows it
            redirects += 1
            response = await self._send_once(session, call, target)
        return response

    def _redirect_target(self, response: Response) -> str | None:
        location = response.headers.get("Location")
        if not location or len(location) > _MAX_LINK_LENGTH:
            return None
        try:
            target = URL(response.url).join(URL(location)).with_fragment(None)
            if target.user is not None or target.password is not None:
                return None  # credentials in a link are never ours to send
            return str(target) if is_same_origin(target, self.base_url) else None
        except Exception:  # yarl raises more than ValueError on hostile input
            return None

    async def _send_once(
        self, session: aiohttp.ClientSession, call: _Call[Any], url: str
    ) -> Response:
        slots = self._slots
        if not slots.take():
            await slots.wait_and_take()
        counter: list[int] | None = None
        options = self._request_options
        if call.method == "DELETE":
            counter = [0]
            reset = _ATTEMPTS.set(counter)
            # Chained after the session's own middlewares (read from aiohttp's private
            # attribute: a per-request list would otherwise replace them).
            middlewares = (*getattr(session, "_middlewares", ()), _count_attempts)
            options = {**options, "middlewares": middlewares}
        debug = logger.isEnabledFor(logging.DEBUG)
        started = time.monotonic() if debug else 0.0
        secret = self._secret_headers if self._borrowed else None
        failure: BackupsError | None = None
        try:
            # Checked with the slot in hand: a request queued behind the cap must
            # still honour a 429 that arrived while it waited.
            if self._resume_at > time.monotonic():
                await self._wait_for_rate_limit()
            call.sent = True
            async with session.request(
                call.method,
                url,
                params=call.params,
                data=call.data,
                headers=call.headers if secret is None else secret.merge(call.headers),
                allow_redirects=False,
                **options,
            ) as answer:
                status = answer.status
                headers = answer.headers
                body = await self._read_body(answer, call, url)
            if status == 429:
                self._note_rate_limit(headers)
        # Each failure is turned into our own error here and raised after the except
        # block, so that it carries no __context__: aiohttp's exceptions hold the
        # request's headers, the token among them.
        except aiohttp.ConnectionTimeoutError as exc:
            failure = self._connection_error(call, exc, APITimeoutError, counter, sent=False)
        except aiohttp.ClientConnectorError as exc:
            failure = self._connection_error(call, exc, APIConnectionError, counter, sent=False)
        except TimeoutError as exc:
            failure = self._connection_error(call, exc, APITimeoutError, counter, sent=True)
        except (aiohttp.ClientError, ValueError, OSError) as exc:
            # ValueError and OSError: aiohttp refusing what a hostile server sent (an
            # unparsable header, a broken encoding) below its own exception classes.
            failure = self._connection_error(call, exc, APIConnectionError, counter, sent=True)
        finally:
            slots.give_back()
            if counter is not None:
                _ATTEMPTS.reset(reset)
                if counter[0] > 1:
                    # aiohttp silently sent it again after a dropped connection: the
                    # first copy may have acted, whatever the repeat met.
                    call.ambiguous = True
        if failure is not None:
            raise failure
        if debug:
            logger.debug(
                "%s %s -> %d in %.1f ms",
                call.method,
                self._redactor.text(url),
                status,
                (time.monotonic() - started) * 1000,
            )
        return Response(
            method=call.method,
            url=url,
            status=status,
            headers=headers,
            body=body,
            after_ambiguous=call.ambiguous,
        )

    async def _read_body(self, answer: aiohttp.ClientResponse, call: _Call[Any], url: str) -> bytes:
        """The whole body, refusing to hold more than ``max_response_bytes`` of it.

        The cap counts decoded bytes, so a small gzip or deflate body that would inflate
        past it is stopped as it inflates; aiohttp decompresses in bounded chunks.
        """
        cap = self._max_response_bytes
        length = answer.content_length
        if length is not None and length > cap:
            answer.close()
            raise self._too_large(call, url, cap, declared=length)
        if length is not None and "Content-Encoding" not in answer.headers:
            # The fast path: aiohttp reads no more than the declared length.
            return await answer.read()
        chunks: list[bytes] = []
        size = 0
        async for chunk in answer.content.iter_any():
            size += len(chunk)
            if size > cap:
                answer.close()  # the rest is never read; the connection is not reused
                raise self._too_large(call, url, cap, declared=None)
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_large(
        self, call: _Call[Any], url: str, cap: int, *, declared: int | None
    ) -> ResponseValidationError:
        size = f"declares {declared} bytes" if declared is not None else "goes on"
        return ResponseTooLargeError(
            f"{call.method} {self._redactor.text(URL(url).path)}: the answer {size}, past "
            f"max_response_bytes ({cap} bytes); not reading more of it",
            path="$",
        )

    def _connection_error(
        self,
        call: _Call[Any],
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
            f"{call.method} {URL(call.url).path} {what}: {type(exc).__name__}: {detail}",
            request_may_have_reached_server=sent,
        )
        self._redactor.error(error)
        return error

    def _note_rate_limit(self, headers: Mapping[str, str]) -> None:
        retry_after = parse_retry_after(headers.get("Retry-After"))
        if retry_after is not None and retry_after <= self.max_retry_after:
            self._resume_at = max(self._resume_at, time.monotonic() + retry_after)
            logger.info("rate limited: pausing every request for %.2fs", retry_after)

    async def _wait_for_rate_limit(self) -> None:
        # Another 429 may push the resume time further while we sleep.
        delay = self._resume_at - time.monotonic()
        while delay > 0:
            await asyncio.sleep(delay)
            delay = self._resume_at - time.monotonic()


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
        """A copy for an owned session's defaults."""
        return dict(self._headers)

    def merge(self, extra: Mapping[str, str] | None) -> dict[str, str]:
        """The token's headers with ``extra`` on top, for a borrowed session's request."""
        return {**self._headers, **extra} if extra else dict(self._headers)
