"""What the calls need from the network: one attempt at a time, behind a Protocol.

The call logic (:mod:`asyncbackups._calls.call`) and the resources depend on this Protocol,
not on aiohttp: :class:`~asyncbackups._transport.http.HTTPTransport` is one implementation, and
tests drive the call logic with a stub that answers from a list.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from yarl import URL

from .._core.options import ClientOptions
from .._core.protocol import Response
from .governor import Lane

__all__ = ["Request", "Transport"]


class Request:
    """One request of a call, sent as is on every attempt.

    ``route`` names it for the statistics (``"GET backups/{id}/"``); ``params`` is the
    query of a URL that has none (a next-page link carries its own); ``headers`` are the
    request's own (the transport adds the token and the client's). ``data`` is a JSON
    body, serialized once so every attempt sends the same bytes. ``lane`` tells the rate
    governor whose request it is; ``patient`` calls (a fleet's creates, the poller's
    reads) wait out throttling without spending their retries (see ``Call``).
    """

    __slots__ = ("data", "headers", "lane", "method", "params", "patient", "route", "url")

    def __init__(
        self,
        method: str,
        url: str,
        *,
        route: str,
        params: Mapping[str, str] | None = None,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        lane: Lane = Lane.CALL,
        patient: bool = False,
    ) -> None:
        self.method = method
        self.url = url
        self.route = route
        self.params = params
        self.data = data
        self.headers = headers
        self.lane = lane
        self.patient = patient

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.route}>"


class Transport(Protocol):
    """Sends one attempt of a request and hands back the answer as a :class:`Response`.

    ``send`` follows same-origin redirects of reads, caps the body, and turns network
    failures into ``APIConnectionError``/``APITimeoutError`` (and an oversized body into
    ``ResponseTooLargeError``). It never retries: that is the call's business.
    """

    @property
    def base_url(self) -> URL:
        """The API's base URL, ending with ``/``."""
        ...

    def url(self, path: str) -> str:
        """The absolute URL of a route relative to the base URL."""
        ...

    def check_open(self) -> None:
        """Raise ``RuntimeError`` when the client was closed."""
        ...

    def scrub(self, error: BaseException) -> None:
        """Remove every trace of the token from an error built from an answer."""
        ...

    def redact(self, text: str) -> str:
        """``text`` with every trace of the token replaced by ``***``."""
        ...

    async def send(self, request: Request, options: ClientOptions) -> Response:
        """One attempt of ``request`` under ``options`` (timeout, body cap, headers)."""
        ...
