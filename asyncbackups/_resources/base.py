"""The base of every resource: what its calls share, and the one place they are built.

A resource method checks its arguments, then describes its call to :meth:`Resource._post`
or :meth:`Resource._delete` (the route, how safe it is to resend, how to decode the
answer) and runs it; the request, its headers and the :class:`~asyncbackups._calls.call.Call`
are built here. Reads go through the resource's
:class:`~asyncbackups._calls.pagination.Reader`, which the poller shares.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final, TypeVar

from .._calls.call import Call
from .._calls.retry_policy import Safety
from .._core.options import ClientOptions
from .._core.protocol import Response, dump_json
from .._core.stats import Counters
from .._transport.base import Request, Transport

__all__ = ["Resource"]

T = TypeVar("T")

_JSON_HEADERS: Final = {"Content-Type": "application/json"}


class Resource:
    """A resource of the API (``client.backups``, ``client.servers``) under one client's
    options; a copy made by ``with_options`` gets its own, over the same transport."""

    def __init__(self, transport: Transport, options: ClientOptions, counters: Counters) -> None:
        self._transport = transport
        self._options = options
        self._counters = counters

    def _post(
        self,
        path: str,
        body: Mapping[str, Any],
        *,
        route: str,
        safety: Safety,
        decode: Callable[[Response], T],
        idempotency_key: str,
        reconcile: Callable[[], Awaitable[T | None]] | None = None,
        patient: bool = False,
    ) -> Call[T]:
        """A POST of ``body`` as JSON; every attempt carries the same ``Idempotency-Key``.

        ``patient`` calls wait out throttling without spending retries (a fleet's).
        """
        request = Request(
            "POST",
            self._transport.url(path),
            route=route,
            data=dump_json(body),
            headers={**_JSON_HEADERS, "Idempotency-Key": idempotency_key},
            patient=patient,
        )
        return self._call(
            request,
            safety=safety,
            decode=decode,
            reconcile=reconcile,
            idempotency_key=idempotency_key,
        )

    def _delete(
        self, path: str, *, route: str, decode: Callable[[Response], T], patient: bool = False
    ) -> Call[T]:
        """A DELETE, retried as :attr:`Safety.DELETE` allows; ``patient`` as for ``_post``."""
        request = Request("DELETE", self._transport.url(path), route=route, patient=patient)
        return self._call(request, safety=Safety.DELETE, decode=decode)

    def _call(
        self,
        request: Request,
        *,
        safety: Safety,
        decode: Callable[[Response], T],
        reconcile: Callable[[], Awaitable[T | None]] | None = None,
        idempotency_key: str | None = None,
    ) -> Call[T]:
        return Call(
            self._transport,
            request,
            safety=safety,
            decode=decode,
            options=self._options,
            counters=self._counters,
            reconcile=reconcile,
            idempotency_key=idempotency_key,
        )
