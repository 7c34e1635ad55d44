"""``BackupsClient``: configuration, lifecycle, and the resources as attributes."""

from __future__ import annotations

import os
from types import TracebackType

import aiohttp

from ._backups import BackupsAPI
from ._http import HTTPTransport
from ._protocol import DEFAULT_BASE_URL, check_number, normalize_base_url
from ._servers import ServersAPI
from ._waiting import Poller

__all__ = ["BackupsClient"]

TOKEN_ENV = "ASYNCBACKUPS_TOKEN"
BASE_URL_ENV = "ASYNCBACKUPS_BASE_URL"


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

    Raises ``ValueError`` when there is no token, or when ``base_url`` is plain
    ``http://`` to a host other than loopback.
    """

    def __init__(
        self,
        token: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float = 30.0,
        max_retries: int = 3,
        max_concurrency: int = 64,
        session: aiohttp.ClientSession | None = None,
        retry_backoff: float = 0.5,
        max_retry_backoff: float = 8.0,
        max_retry_after: float = 120.0,
        max_response_bytes: int = 32 * 1024 * 1024,
    ) -> None:
        if token is None:
            token = os.environ.get(TOKEN_ENV) or None
        if token is None:
            raise ValueError(f"no API token: pass BackupsClient(token=...) or set ${TOKEN_ENV}")
        if not isinstance(token, str):
            raise TypeError(f"token must be a str, not {type(token).__name__}")
        token = token.strip()
        if not token or not token.isprintable() or any(c.isspace() for c in token):
            raise ValueError("token must be non-empty printable text without spaces")
        if base_url is None:
            base_url = os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
        check_number("timeout", timeout, minimum=0.001)
        check_number("max_retries", max_retries, minimum=0, integer=True)
        check_number("max_concurrency", max_concurrency, minimum=1, integer=True)
        check_number("retry_backoff", retry_backoff, minimum=0)
        check_number("max_retry_backoff", max_retry_backoff, minimum=0)
        check_number("max_retry_after", max_retry_after, minimum=0)
        check_number("max_response_bytes", max_response_bytes, minimum=1, integer=True)
        if session is not None and not isinstance(session, aiohttp.ClientSession):
            raise TypeError(f"session must be an aiohttp.ClientSession, not {type(session)}")
        self._transport = HTTPTransport(
            token=token,
            base_url=normalize_base_url(base_url),
            timeout=float(timeout),
            max_retries=max_retries,
            max_concurrency=max_concurrency,
            session=session,
            backoff_base=float(retry_backoff),
            max_backoff=float(max_retry_backoff),
            max_retry_after=float(max_retry_after),
            max_response_bytes=max_response_bytes,
        )
        self.max_concurrency = max_concurrency
        self._poller = Poller(self._transport)
        self.backups = BackupsAPI(self._transport, self._poller, max_concurrency=max_concurrency)
        self.servers = ServersAPI(self._transport)

    @property
    def base_url(self) -> str:
        """The API's base URL, always ending with ``/``."""
        return str(self._transport.base_url)

    @property
    def closed(self) -> bool:
        """Whether :meth:`aclose` was called; a closed client refuses every call."""
        return self._transport.closed

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<BackupsClient base_url={self.base_url!r} {state}>"

    async def aclose(self) -> None:
        """Close the client and its session (a borrowed session is left open).

        Safe to call more than once; any call afterwards raises ``RuntimeError``.
        """
        await self._poller.aclose()
        await self._transport.aclose()

    async def __aenter__(self) -> BackupsClient:
        self._transport.check_open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()
