"""``BackupsClient``: configuration, lifecycle, and the resources as attributes."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Final

import attrs

from ._calls.pagination import Reader
from ._calls.reconcile import Claims
from ._core.callbacks import RetryEvent
from ._core.options import (
    ClientOptions,
    read_token,
)
from ._core.stats import (
    ClientStats,
    Counters,
)
from ._resources.backups import BackupsAPI
from ._resources.servers import ServersAPI
from ._transport.governor import (
    Lane,
    Pacer,
)
from ._transport.http import (
    HTTPTransport,
    Session,
    TraceConfig,
)
from ._waiting.poller import Poller

__all__ = ["NOT_GIVEN", "BackupsClient", "NotGiven"]


class NotGiven:
    """The type of ``NOT_GIVEN``, the one value meaning "keep this client's value".

    It tells an argument left out apart from any value, ``None`` included; annotate a
    wrapper that forwards ``with_options``' arguments with it.
    """

    _instance: NotGiven | None = None

    def __new__(cls) -> NotGiven:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NOT_GIVEN"

    def __reduce__(self) -> str:
        return "NOT_GIVEN"


NOT_GIVEN: Final = NotGiven()
"""The default of ``with_options``' arguments: "keep this client's value"."""


@attrs.frozen
class _Shared:
    """What a client shares with every copy ``with_options`` makes of it: the session and
    its rate governor (in the transport), the statistics, the poller, and the claims that
    keep two creates from adopting one backup."""

    transport: HTTPTransport
    counters: Counters
    poller: Poller
    claims: Claims


class BackupsClient:
    """An asyncio client for the Backups API.

    ::

        async with BackupsClient() as client:
            backups = await client.backups.list(server_id=12345)

    ``token`` defaults to ``$ASYNCBACKUPS_TOKEN`` and ``base_url`` to
    ``$ASYNCBACKUPS_BASE_URL``, else ``https://admin.vps.org/api/v1/``. Construction
    sends nothing and needs no running loop; the aiohttp session is made on first use.

    Retries: connection failures, timeouts, 429, 500, 502, 503 and 504 are tried up to
    ``max_retries`` more times with capped exponential backoff and full jitter
    (``retry_backoff`` doubling up to ``max_retry_backoff`` seconds). A ``Retry-After``
    is always honoured; after a 429 the whole client pauses for it. A ``Retry-After``
    longer than ``max_retry_after`` seconds is not waited out: the error is raised
    carrying it. Writes are retried only where that can neither duplicate nor lose
    work (see ``backups.create``, ``backups.delete`` and ``servers.restore``).

    An answer longer than ``max_response_bytes`` (its decompressed size included) is
    not read past the cap: the call raises ``ResponseValidationError``.

    ``headers`` are extra headers sent with every request (never ``Authorization``).
    ``proxy`` is an ``http://`` proxy URL; without it the client's own session honours
    ``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY`` (never ``~/.netrc``: the token is the
    only credential sent). ``trace_configs`` are aiohttp ``TraceConfig``s for the
    client's own session (OpenTelemetry's aiohttp instrumentation, say).

    Rate limits: one governor per client paces every request (its copies, its poller
    and its fleets included). ``rate_limit`` is a rate you know, in requests a second
    (default ``$ASYNCBACKUPS_RATE_LIMIT``); ``None`` learns it from the API's
    ``RateLimit-*``/``X-RateLimit-*``/``RateLimit-Policy`` headers and its 429s. A fleet
    or a wait treats a 429 as backpressure, never as a failure; a single call waits for
    the governor within its ``timeout`` and then raises ``RateLimitError``.

    ``on_retry`` (plain or async) hears a :class:`RetryEvent` before each retry of a
    call: the attempt to come, the error that ended the last one, the time spent so far
    (the command line shows retries with it). What it raises ends the call.

    Plain ``http://`` carries the token in clear text, so it is allowed only to a
    loopback host, reached directly or through a proxy on loopback.
    ``allow_plain_http=True`` lifts both rules, for a network you trust (an internal
    staging host): the one override, never the default.

    Raises ``ValueError`` when there is no token, when ``base_url`` is plain
    ``http://`` to a host other than loopback, or when a plain ``http://`` base URL
    would go through a proxy (``proxy=``, ``HTTP_PROXY``) that is not on loopback.
    """

    def __init__(
        self,
        token: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float = 30.0,
        max_retries: int = 3,
        max_concurrency: int = 64,
        session: Session | None = None,
        retry_backoff: float = 0.5,
        max_retry_backoff: float = 8.0,
        max_retry_after: float = 120.0,
        max_response_bytes: int = 32 * 1024 * 1024,
        headers: Mapping[str, str] | None = None,
        proxy: str | None = None,
        trace_configs: Sequence[TraceConfig] | None = None,
        rate_limit: float | None = None,
        on_retry: Callable[[RetryEvent], object] | None = None,
        allow_plain_http: bool = False,
    ) -> None:
        token = read_token(token)
        options = ClientOptions.build(
            base_url=base_url,
            allow_plain_http=allow_plain_http,
            timeout=timeout,
            max_retries=max_retries,
            max_concurrency=max_concurrency,
            retry_backoff=retry_backoff,
            max_retry_backoff=max_retry_backoff,
            max_retry_after=max_retry_after,
            max_response_bytes=max_response_bytes,
            headers=headers or {},
            rate_limit=rate_limit,
            on_retry=on_retry,
        )
        counters = Counters()
        transport = HTTPTransport(
            token=token,
            options=options,
            session=session,
            counters=counters,
            proxy=proxy,
            trace_configs=trace_configs,
        )
        shared = _Shared(
            transport=transport,
            counters=counters,
            poller=Poller(Reader(transport, options, counters, lane=Lane.POLL), counters),
            claims=Claims(),
        )
        self._start(options, shared, copy=False)

    @classmethod
    def _sharing(cls, shared: _Shared, options: ClientOptions) -> BackupsClient:
        """A client over ``shared`` under its own ``options``: what ``with_options`` makes.

        It is set up by :meth:`_start`, as the constructor's client is, so the two cannot
        drift apart.
        """
        client = cls.__new__(cls)
        client._start(options, shared, copy=True)
        return client

    def _start(self, options: ClientOptions, shared: _Shared, *, copy: bool) -> None:
        """Every field of a client, the constructor's or a copy's."""
        self._options = options
        self._shared = shared
        self._copy = copy  # a copy leaves closing to the client it was made from
        self.backups = BackupsAPI(
            shared.transport,
            options,
            shared.counters,
            poller=shared.poller,
            claims=shared.claims,
        )
        self.servers = ServersAPI(shared.transport, options, shared.counters)

    def with_options(
        self,
        *,
        timeout: float | NotGiven = NOT_GIVEN,
        max_retries: int | NotGiven = NOT_GIVEN,
        retry_backoff: float | NotGiven = NOT_GIVEN,
        max_retry_backoff: float | NotGiven = NOT_GIVEN,
        max_retry_after: float | NotGiven = NOT_GIVEN,
        max_response_bytes: int | NotGiven = NOT_GIVEN,
        headers: Mapping[str, str] | NotGiven = NOT_GIVEN,
        rate_limit: float | NotGiven | None = NOT_GIVEN,
        on_retry: Callable[[RetryEvent], object] | NotGiven | None = NOT_GIVEN,
    ) -> BackupsClient:
        """A client that differs from this one only in the options given.

        ::

            fast = client.with_options(timeout=2, max_retries=0)
            await fast.backups.get(501)

        It shares this client's session, concurrency slots, 429 pause, poller and
        statistics, so it is cheap enough to make per call: no session, no task.
        ``headers`` are added to this client's extra headers (never ``Authorization``).
        ``rate_limit`` paces the copy's own calls at that many requests a second, on top
        of the client's shared governor (``None``: only the shared governor).
        ``on_retry`` replaces this client's for the copy's calls (``None``: none).
        Closing this client closes it too; closing it does nothing (this client owns
        the session). Raises ``TypeError`` for an unknown option or a value of the
        wrong type and ``ValueError`` for a bad value, before any request.
        """
        given = {
            name: value
            for name, value in (
                ("timeout", timeout),
                ("max_retries", max_retries),
                ("retry_backoff", retry_backoff),
                ("max_retry_backoff", max_retry_backoff),
                ("max_retry_after", max_retry_after),
                ("max_response_bytes", max_response_bytes),
                ("headers", headers),
                ("rate_limit", rate_limit),
                ("on_retry", on_retry),
            )
            if value is not NOT_GIVEN
        }
        options = self._options.evolve(**given)
        if "rate_limit" in given:
            rate = options.rate_limit
            options = attrs.evolve(options, pacer=None if rate is None else Pacer(rate))
        return self._sharing(self._shared, options)

    @property
    def base_url(self) -> str:
        """The API's base URL, always ending with ``/``."""
        return str(self._options.base_url)

    @property
    def max_concurrency(self) -> int:
        """The most HTTP requests this client has in flight at once (fixed at creation)."""
        return self._options.max_concurrency

    @property
    def stats(self) -> ClientStats:
        """A read-only snapshot of what this client (and its copies) did.

        Requests by route, retries, reconciles, rate-limit pauses, 429s met, the rate the
        governor runs at, poll rounds and bytes read; see :class:`ClientStats`.
        """
        return self._shared.counters.snapshot(rate_limit=self._shared.transport.governor.rate)

    @property
    def closed(self) -> bool:
        """Whether :meth:`aclose` was called; a closed client refuses every call."""
        return self._shared.transport.closed

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<BackupsClient base_url={self.base_url!r} {state}>"

    async def aclose(self) -> None:
        """Close the client and its session (a borrowed session is left open).

        Safe to call more than once; any call afterwards raises ``RuntimeError``. On a
        client made by :meth:`with_options` it does nothing: the original owns the
        session, and closing that one closes every copy.
        """
        if self._copy:
            return
        await self._shared.poller.aclose()
        await self._shared.transport.aclose()

    async def __aenter__(self) -> BackupsClient:
        self._shared.transport.check_open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()
