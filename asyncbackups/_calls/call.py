"""A call across its attempts: retries, ambiguity and reconciling, with no HTTP in sight.

A :class:`Call` sends its :class:`~asyncbackups._transport.base.Request` through a
:class:`~asyncbackups._transport.base.Transport`, one attempt at a time, and decodes the
answer. What it learns on the way is its :class:`CallState`: whether an attempt may
have reached the server (*ambiguous*), may still be at work there, whether retrying
could only do harm now (*give up*), and whether a success came back unreadable.

tenacity runs the attempts, through its documented ``async for attempt in
AsyncRetrying(...)`` loop: it decides, with the one predicate
:func:`~asyncbackups._calls.retry_policy.is_retryable` and the wait
:func:`~asyncbackups._calls.retry_policy.wait_for_retry`, whether and when to try again.
Before any attempt that follows an ambiguous one, a create's *reconcile* reads what the
earlier attempt did; a found backup is the call's result and nothing is sent again.

A 429 is backpressure, not a failure: it never spends one of ``max_retries``. The next
attempt waits for the client's rate governor (which holds the ``Retry-After``), for as
long as the call's own budget allows: its ``timeout`` for a single call, without end for
a *patient* one (a fleet's creates, the poller's reads). A ``Retry-After`` longer than
that budget, or than ``max_retry_after``, fails at once with the figure in the message.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Generic, TypeVar, cast

from yarl import URL

from .._core.callbacks import RetryEvent, call_back
from .._core.errors import (
    AmbiguousCreateError,
    BackupsError,
    RateLimitError,
    ResponseValidationError,
)
from .._core.options import ClientOptions
from .._core.protocol import (
    Response,
    request_id_of,
)
from .._core.stats import Counters
from .._transport.base import (
    Request,
    Transport,
)
from .._transport.governor import Lane
from .retry_policy import (
    Safety,
    is_ambiguous,
    is_retryable,
    may_still_be_running,
    wait_for_retry,
)

if TYPE_CHECKING:
    from tenacity import RetryCallState

__all__ = ["Call", "CallState"]

logger = logging.getLogger("asyncbackups")

T = TypeVar("T")


class CallState:
    """What one call has learned across its attempts."""

    __slots__ = ("ambiguous", "give_up", "may_be_running", "sent", "settled", "unreadable")

    def __init__(self) -> None:
        self.sent = False  # a request of this call may have left the process
        self.ambiguous = False  # an earlier attempt may have reached the server
        self.may_be_running = False  # ...and may still be at work there
        self.settled = False  # such an attempt was already given time to land
        self.give_up = False  # retrying could only do harm now
        # A success whose body could not be read: the work is done, never resend it.
        self.unreadable: ResponseValidationError | None = None


class Call(Generic[T]):
    """One logical call: ``await Call(...).run()`` gives ``decode(answer)`` or raises.

    ``decode`` turns an answer into the result (or a typed error); it may return a
    coroutine, for answers decoded in slices. ``reconcile`` is awaited before any
    attempt that follows an ambiguous one: a non-``None`` result is taken as the call's
    result instead of sending again. After the call, ``response`` is the last answer it
    got (``None`` if none came), ``retries`` the attempts after the first, ``elapsed``
    its seconds.
    """

    __slots__ = (
        "_counters",
        "_decode",
        "_idempotency_key",
        "_options",
        "_own_throttle",
        "_reconcile",
        "_request",
        "_safety",
        "_started",
        "_throttled",
        "_transport",
        "elapsed",
        "response",
        "retries",
        "state",
    )

    def __init__(
        self,
        transport: Transport,
        request: Request,
        *,
        safety: Safety,
        decode: Callable[[Response], T | Coroutine[object, None, T]],
        options: ClientOptions,
        counters: Counters,
        reconcile: Callable[[], Awaitable[T | None]] | None = None,
        idempotency_key: str | None = None,
    ) -> None:
        self._transport = transport
        self._request = request
        self._safety = safety
        self._decode = decode
        self._options = options
        self._counters = counters
        self._reconcile = reconcile
        self._idempotency_key = idempotency_key
        self.state = CallState()
        self.response: Response | None = None
        self.retries = 0
        self.elapsed = 0.0
        self._started = 0.0
        self._throttled = 0  # attempts answered 429: they spend no retry
        self._own_throttle: RateLimitError | None = None  # the last 429 this call's request got

    @property
    def url(self) -> str:
        """Where the call's request goes."""
        return self._request.url

    async def run(self) -> T:
        """Send the call, retrying under the policy for its safety; see the class."""
        started = self._started = time.monotonic()
        try:
            return await self._run()
        except asyncio.CancelledError:
            if self._safety is Safety.CREATE and self.state.sent:
                logger.warning(
                    "%s %s was cancelled after its request was sent: the server may "
                    "have made the backup anyway (Idempotency-Key %s); check before "
                    "creating it again",
                    self._request.method,
                    self._path(),
                    self._idempotency_key,
                )
            raise
        finally:
            self.elapsed = time.monotonic() - started

    async def _run(self) -> T:
        try:
            # The first attempt runs outside tenacity: most calls succeed at once, and
            # setting up and stepping tenacity's loop costs about half as much CPU again
            # as the rest of a call (see docs/performance.md). Its failure is replayed
            # to tenacity as the loop's first attempt.
            return await self._attempt()
        except BackupsError as error:
            first = error
        # Outside the handler: what the retries raise carries no stale context.
        try:
            return await self._retry(first)
        except RateLimitError as error:
            self._explain_throttle(error)
            raise
        except BackupsError:
            # Out of attempts after one that may have acted: look once more before
            # reporting failure, so a backup the server did make is not lost.
            state = self.state
            if state.ambiguous and self._reconcile is not None and not state.give_up:
                with contextlib.suppress(BackupsError):
                    found = await self._look()
                    if found is not None:
                        return found
            raise

    async def _retry(self, first: BackupsError) -> T:
        """The attempts after a first that failed with ``first``, as tenacity runs them;
        raises the last attempt's error."""
        # Imported on the first retry: a call that succeeds never loads tenacity, which
        # keeps `import asyncbackups` within its budget (benchmarks/bench_import.py).
        from tenacity import AsyncRetrying, retry_if_exception

        options = self._options
        retrying = AsyncRetrying(
            sleep=asyncio.sleep,
            stop=self._stop,
            wait=wait_for_retry(multiplier=options.retry_backoff, max=options.max_retry_backoff),
            retry=retry_if_exception(self._may_retry),
            before_sleep=self._before_retry,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                if attempt.retry_state.attempt_number == 1:
                    raise first  # the attempt made in _run: tenacity decides what follows
                self.retries += 1
                self._counters.retries += 1
                return await self._attempt()
        raise AssertionError("tenacity ended without an outcome")  # reraise=True: never

    def _stop(self, retry_state: RetryCallState) -> bool:
        """Whether to stop now: retries spent (429s not counted), or a 429 whose wait
        does not fit the call's budget."""
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None else None
        if isinstance(error, RateLimitError):
            self._throttled += 1  # a reconcile's 429 included: it too is backpressure
            return not self._throttle_fits(error)
        return retry_state.attempt_number - self._throttled > self._options.max_retries

    def _throttle_fits(self, error: RateLimitError) -> bool:
        if self._request.lane is Lane.POLL:
            return False  # the poller plans around a throttle itself, wait by wait
        if self._request.patient:
            return True  # bounded by the fleet that runs it, and by cancelling
        if self._options.max_retries == 0:
            return False  # "never retry" covers waiting out a 429 too
        elapsed = time.monotonic() - self._started
        return elapsed + (error.retry_after or 0.0) <= self._options.timeout

    def _explain_throttle(self, error: RateLimitError) -> None:
        """Say in the message why a 429 was not waited out (once: the call that got it)."""
        if error is not self._own_throttle or self._request.lane is Lane.POLL:
            return
        retry_after = error.retry_after
        if self._options.max_retries == 0 and not self._request.patient:
            why = "max_retries=0: not waiting for the rate limit"
        elif retry_after is not None and retry_after > self._options.max_retry_after:
            why = (
                f"the API asks to wait {retry_after:g}s, longer than max_retry_after "
                f"({self._options.max_retry_after:g}s)"
            )
        elif self._request.patient:
            return
        else:
            wait = f"waiting {retry_after:g}s more" if retry_after is not None else "waiting more"
            why = f"{wait} would pass this call's {self._options.timeout:g}s timeout"
        error.message = f"{error.message}; {why}"
        error.args = (error.message, *error.args[1:])

    def _may_retry(self, error: BaseException) -> bool:
        """The retry predicate, for this call: the policy's, unless the call gave up."""
        return not self.state.give_up and is_retryable(
            error, self._safety, max_retry_after=self._options.max_retry_after
        )

    async def _before_retry(self, retry_state: RetryCallState) -> None:
        """Log the retry, and tell the client's ``on_retry`` (429 waits are no retry)."""
        self._log_retry(retry_state)
        on_retry = self._options.on_retry
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None else None
        if on_retry is None or not isinstance(error, BackupsError):
            return
        if isinstance(error, RateLimitError):
            return
        event = RetryEvent(
            method=self._request.method,
            url=self._transport.redact(self._request.url),
            attempt=retry_state.attempt_number - self._throttled + 1,
            max_attempts=self._options.max_retries + 1,
            delay=retry_state.upcoming_sleep,
            elapsed=time.monotonic() - self._started,
            error=error,
        )
        await call_back(on_retry, event)

    def _log_retry(self, retry_state: RetryCallState) -> None:
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None else None
        if isinstance(error, RateLimitError):
            # Debug, not info: a throttled fleet meets many, and the governor logs the
            # pacing itself once per change.
            logger.debug(
                "%s %s throttled; waiting for the rate governor (throttled %d times)",
                self._request.method,
                self._path(),
                self._throttled,
            )
            return
        delay = retry_state.upcoming_sleep
        logger.info(
            "%s %s failed (%s); retrying in %.2fs (attempt %d of %d)",
            self._request.method,
            self._path(),
            error,
            delay,
            retry_state.attempt_number - self._throttled + 1,
            self._options.max_retries + 1,
        )

    def _path(self) -> str:
        return self._transport.redact(URL(self._request.url).path)

    async def _attempt(self) -> T:
        state = self.state
        if state.ambiguous and self._reconcile is not None:
            found = await self._look()
            if found is not None:
                return found
            if state.unreadable is not None:
                state.give_up = True
                raise state.unreadable
        state.sent = True
        debug = logger.isEnabledFor(logging.DEBUG)
        started = time.monotonic() if debug else 0.0
        try:
            response = await self._transport.send(self._request, self._options)
        except BackupsError as error:
            if debug:
                self._log_attempt(started, f"failed ({error})")
            if is_ambiguous(error):
                state.ambiguous = True
                state.may_be_running = state.may_be_running or may_still_be_running(error)
            raise
        self.response = response
        if debug:
            request_id = request_id_of(response.headers)
            self._log_attempt(
                started,
                f"-> {response.status}" + (f" (request id {request_id})" if request_id else ""),
            )
        if response.repeated:
            state.ambiguous = True
        response.after_ambiguous = state.ambiguous
        try:
            result = self._decode(response)
            if inspect.iscoroutine(result):
                # A large page is structured in slices that let the loop breathe.
                result = await result
        except ResponseValidationError as error:
            self._transport.scrub(error)
            if self._safety is Safety.CREATE:
                # The server said it created the backup but its answer is unreadable:
                # find it by reconciling, and never send the create again.
                state.ambiguous = True
                state.unreadable = error
                state.give_up = self._reconcile is None
            raise
        except BackupsError as error:
            self._transport.scrub(error)
            if isinstance(error, RateLimitError):
                self._own_throttle = error
            if is_ambiguous(error):
                state.ambiguous = True
                state.may_be_running = state.may_be_running or may_still_be_running(error)
            raise
        return cast(T, result)

    def _log_attempt(self, started: float, outcome: str) -> None:
        logger.debug(
            "%s %s attempt %d %s in %.1f ms",
            self._request.method,
            self._transport.redact(self._request.url),
            self.retries + 1,
            self._transport.redact(outcome),
            (time.monotonic() - started) * 1000,
        )

    async def _look(self) -> T | None:
        """What an ambiguous attempt did, read from the server; ``None`` if nothing.

        A timed-out request (or one a gateway gave up on with 504) may still be at work
        on the server: read at once, it could miss the backup that request is about to
        make, and the resend would make a second one. So, once per call, such an
        attempt is given another ``timeout`` to land before the read.
        """
        assert self._reconcile is not None
        state = self.state
        if state.may_be_running and not state.settled:
            state.settled = True
            logger.info(
                "%s %s may still be running on the server; reading its outcome in %.2fs",
                self._request.method,
                self._path(),
                self._options.timeout,
            )
            await asyncio.sleep(self._options.timeout)
        self._counters.reconciles += 1
        try:
            return await self._reconcile()
        except AmbiguousCreateError:
            state.give_up = True  # a report, not a passing failure: never resend after it
            raise
