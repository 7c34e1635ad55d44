"""Reading backups: one by its detail route, or the list route page by page.

Pages follow DRF ``next`` links, but only within the API's origin.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Coroutine, Mapping
from typing import Any

from yarl import URL

from ._errors import ResponseValidationError
from ._http import HTTPTransport
from ._models import Backup
from ._policy import Safety
from ._protocol import (
    BACKUPS_PATH,
    Response,
    backup_path,
    decode_backup_response,
    decode_page,
    is_same_origin,
)

__all__ = ["iter_pages", "read_all_pages", "read_backup"]

_Page = tuple[list[Backup], str | None, Mapping[str, str]]


async def read_backup(transport: HTTPTransport, backup_id: int) -> Backup:
    """One backup from its detail route; :class:`NotFoundError` when there is none."""
    return await transport.send(
        "GET",
        transport.url(backup_path(backup_id)),
        safety=Safety.READ,
        decode=decode_backup_response,
    )


def _decode_page_with_headers(response: Response) -> _Page:
    backups, next_link = decode_page(response)
    return backups, next_link, response.headers


def _fetch(
    transport: HTTPTransport, url: str, query: Mapping[str, str] | None
) -> Coroutine[Any, Any, _Page]:
    # A plain function handing back the transport's coroutine: one frame fewer to
    # resume on every step of every page read.
    return transport.send(
        "GET", url, safety=Safety.READ, decode=_decode_page_with_headers, params=query
    )


class _Links:
    """Checks each ``next`` link before it is followed: same origin, no loop."""

    __slots__ = ("_base", "_seen")

    def __init__(self, transport: HTTPTransport, first: str, params: Mapping[str, str]) -> None:
        self._base = transport.base_url
        self._seen = {str(URL(first).with_query(params))}

    def follow(self, current: str, next_link: str) -> str:
        """The absolute URL to read next; ``ResponseValidationError`` if it may not be."""
        try:
            target = URL(current).join(URL(next_link))
        except ValueError:
            raise ResponseValidationError(
                f"the API's next-page link is not a URL: {next_link!r}", path="$.next"
            ) from None
        if not is_same_origin(target, self._base):
            raise ResponseValidationError(
                f"the API's next-page link points to another origin ({target.origin()}); "
                "not following it, so the token stays with the API",
                path="$.next",
            )
        url = str(target)
        if url in self._seen:
            raise ResponseValidationError(
                f"the API's next-page link loops back to {url}", path="$.next"
            )
        self._seen.add(url)
        return url


async def read_all_pages(transport: HTTPTransport, params: Mapping[str, str]) -> list[Backup]:
    """Every backup of every page, in order; the one-page case costs one plain await."""
    url = transport.url(BACKUPS_PATH)
    backups, next_link, _ = await _fetch(transport, url, params)
    links = None
    while next_link is not None:
        links = links or _Links(transport, url, params)
        url = links.follow(url, next_link)
        page, next_link, _ = await _fetch(transport, url, None)
        backups.extend(page)
    return backups


async def iter_pages(
    transport: HTTPTransport, params: Mapping[str, str]
) -> AsyncGenerator[tuple[list[Backup], Mapping[str, str]]]:
    """Yield each page of the list route with its headers, following DRF ``next`` links.

    A link to another origin raises :class:`ResponseValidationError` before anything
    is sent there; so does a link that loops back to a page already read.
    """
    url = transport.url(BACKUPS_PATH)
    query: Mapping[str, str] | None = params
    links = None
    while True:
        backups, next_link, headers = await _fetch(transport, url, query)
        yield backups, headers
        if next_link is None:
            return
        links = links or _Links(transport, url, params)
        url, query = links.follow(url, next_link), None
