"""``RawResponse``: the HTTP answer behind a call's result, for callers who need it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import attrs
from multidict import CIMultiDict

from .._core.protocol import request_id_of

if TYPE_CHECKING:
    from .._calls.call import Call

__all__ = ["RawResponse", "raw_response"]

T = TypeVar("T")


def _headers(value: Mapping[str, str]) -> CIMultiDict[str]:
    return value if isinstance(value, CIMultiDict) else CIMultiDict(value)


@attrs.frozen(kw_only=True)
class RawResponse(Generic[T]):
    """The answer behind one call (``client.backups.with_raw_response.get(501)``).

    ``status_code``, ``headers`` (case-insensitive) and ``url`` are the last answer's
    (for ``list``, the last page's; ``status_code`` is ``None`` only for a create whose
    answer was lost and whose backup was found by reconciling). ``request_id`` is the
    API's ID for that request (``X-Request-ID`` or ``Request-Id``), ``None`` if absent;
    ``retries_taken`` counts attempts after the first (all pages); ``elapsed`` is the
    whole call in seconds; ``pages`` is how many pages ``list`` read (``None`` for the
    other calls). :meth:`parse` returns what the plain call would have returned.
    """

    status_code: int | None
    headers: CIMultiDict[str] = attrs.field(converter=_headers)
    request_id: str | None
    retries_taken: int
    elapsed: float
    url: str
    pages: int | None = None
    _parsed: Any = attrs.field(alias="parsed", repr=False)

    def parse(self) -> T:
        """What the plain call returns (the backup, the list, the restore result...)."""
        return self._parsed  # type: ignore[no-any-return]


def raw_response(
    calls: Sequence[Call[Any]], parsed: T, *, pages: int | None = None
) -> RawResponse[T]:
    """The raw response of a call made of ``calls`` (one, or one per page)."""
    last = calls[-1]
    response = last.response
    headers: Mapping[str, str] = response.headers if response is not None else {}
    return RawResponse(
        status_code=response.status if response is not None else None,
        headers=headers,
        request_id=request_id_of(headers),
        retries_taken=sum(call.retries for call in calls),
        elapsed=sum(call.elapsed for call in calls),
        url=response.url if response is not None else last.url,
        pages=pages,
        parsed=parsed,
    )
