"""Reading backups: one by its detail route, or the list route page by page.

Pages follow DRF ``next`` links, but only within the API's origin, never in a loop,
and never past the page count the first page's ``count`` implies (plus some slack for
backups added meanwhile), so that no server can keep a call paging forever.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncGenerator, Awaitable, Coroutine, Mapping
from typing import Any

from yarl import URL

from ._convert import decode_backups
from ._errors import ResponseValidationError
from ._http import HTTPTransport
from ._models import Backup
from ._policy import Safety
from ._protocol import (
    BACKUPS_PATH,
    Response,
    backup_path,
    decode_backup_response,
    decode_page_parts,
    is_same_origin,
)

__all__ = ["iter_pages", "read_all_pages", "read_backup"]

# A page is structured in slices of this many backups, yielding to the event loop in
# between, so that a 10,000-backup page never blocks it for long (see benchmarks).
_CHUNK = 1000
# Without a usable count the chain is still cut somewhere: a million backups at
# DRF's default page size.
_MAX_PAGES_UNCOUNTED = 10_000
_MAX_LINK_LENGTH = 8192


class _Page:
    """One page as read: its backups, the raw ``next`` link, its count and headers."""

    __slots__ = ("backups", "count", "headers", "next_link")

    def __init__(
        self,
        backups: list[Backup],
        next_link: str | None,
        count: int | None,
        headers: Mapping[str, str],
    ) -> None:
        self.backups = backups
        self.next_link = next_link
        self.count = count
        self.headers = headers


async def read_backup(
    transport: HTTPTransport, backup_id: int, *, max_retries: int | None = None
) -> Backup:
    """One backup from its detail route; :class:`NotFoundError` when there is none."""
    return await transport.send(
        "GET",
        transport.url(backup_path(backup_id)),
        safety=Safety.READ,
        decode=decode_backup_response,
        max_retries=max_retries,
    )


async def _structure_in_slices(raw: list[Any]) -> list[Backup]:
    backups: list[Backup] = []
    for start in range(0, len(raw), _CHUNK):
        await asyncio.sleep(0)
        backups.extend(decode_backups(raw[start : start + _CHUNK], offset=start))
    return backups


def _decode(response: Response) -> _Page | Awaitable[_Page]:
    raw, next_link, count = decode_page_parts(response)
    if len(raw) <= _CHUNK:
        return _Page(decode_backups(raw), next_link, count, response.headers)

    async def in_slices() -> _Page:
        return _Page(await _structure_in_slices(raw), next_link, count, response.headers)

    return in_slices()


def _fetch(
    transport: HTTPTransport,
    url: str,
    query: Mapping[str, str] | None,
    max_retries: int | None,
) -> Coroutine[Any, Any, _Page]:
    # A plain function handing back the transport's coroutine: one frame fewer to
    # resume on every step of every page read.
    return transport.send(
        "GET", url, safety=Safety.READ, decode=_decode, params=query, max_retries=max_retries
    )


class _Links:
    """Checks each ``next`` link before it is followed: same origin, no loop, no excess."""

    __slots__ = ("_base", "_max_pages", "_pages", "_seen")

    def __init__(
        self, transport: HTTPTransport, first_url: str, params: Mapping[str, str], first: _Page
    ) -> None:
        self._base = transport.base_url
        self._seen = {str(URL(first_url).with_query(params))}
        self._pages = 1
        self._max_pages = _page_budget(first)

    def follow(self, current: str, next_link: str) -> str:
        """The absolute URL to read next; ``ResponseValidationError`` if it may not be."""
        shown = next_link if len(next_link) <= 200 else next_link[:200] + "..."
        target = self._parse(current, next_link, shown)
        if target.scheme not in ("http", "https") or not is_same_origin(target, self._base):
            raise ResponseValidationError(
                f"the API's next-page link points to another origin ({shown!r}); "
                "not following it, so the token stays with the API",
                path="$.next",
            )
        if target.user is not None or target.password is not None:
            raise ResponseValidationError(
                "the API's next-page link carries credentials; not following it",
                path="$.next",
            )
        url = str(target)
        if url in self._seen:
            raise ResponseValidationError(
                f"the API's next-page link loops back to a page already read ({shown!r})",
                path="$.next",
            )
        self._pages += 1
        if self._pages > self._max_pages:
            raise ResponseValidationError(
                f"the API's pages go on past the {self._max_pages} its count implies; "
                "stopped following next-page links",
                path="$.next",
            )
        self._seen.add(url)
        return url

    @staticmethod
    def _parse(current: str, next_link: str, shown: str) -> URL:
        problem = len(next_link) > _MAX_LINK_LENGTH
        target = None
        if not problem:
            try:
                # The fragment never reaches the server: two links that differ only
                # by it are the same page.
                target = URL(current).join(URL(next_link)).with_fragment(None)
                str(target)  # some malformed hosts fail only when the URL is built
            except Exception:  # yarl raises more than ValueError on hostile input
                problem = True
        if problem or target is None:
            raise ResponseValidationError(
                f"the API's next-page link is not a usable URL: {shown!r}", path="$.next"
            )
        return target


def _page_budget(first: _Page) -> int:
    """How many pages a list may take, from what its first page says."""
    length = len(first.backups)
    if first.count is None or length == 0:
        return _MAX_PAGES_UNCOUNTED
    expected = math.ceil(first.count / length)
    # Backups made while the pages are read push some to later pages.
    return expected + max(2, math.ceil(expected / 10))


async def read_all_pages(
    transport: HTTPTransport, params: Mapping[str, str], *, max_retries: int | None = None
) -> list[Backup]:
    """Every backup of every page, in order; the one-page case costs one plain await."""
    url = transport.url(BACKUPS_PATH)
    page = await _fetch(transport, url, params, max_retries)
    backups = page.backups
    links = None
    while page.next_link is not None:
        links = links or _Links(transport, url, params, page)
        url = links.follow(url, page.next_link)
        page = await _fetch(transport, url, None, max_retries)
        backups.extend(page.backups)
    return backups


async def iter_pages(
    transport: HTTPTransport, params: Mapping[str, str], *, max_retries: int | None = None
) -> AsyncGenerator[tuple[list[Backup], Mapping[str, str]]]:
    """Yield each page of the list route with its headers, following DRF ``next`` links.

    A link to another origin raises :class:`ResponseValidationError` before anything
    is sent there; so does a link that loops back to a page already read, and one past
    the pages the first page's count allows.
    """
    url = transport.url(BACKUPS_PATH)
    query: Mapping[str, str] | None = params
    links = None
    while True:
        page = await _fetch(transport, url, query, max_retries)
        yield page.backups, page.headers
        if page.next_link is None:
            return
        links = links or _Links(transport, url, params, page)
        url, query = links.follow(url, page.next_link), None
