"""Reading backups: one by its detail route, or the list route page by page.

Pages follow DRF ``next`` links, but only within the API's origin, never in a loop,
and never past the page count the first page's ``count`` implies (plus some slack for
backups added meanwhile), so that no server can keep a call paging forever.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncGenerator, Callable, Coroutine, Mapping
from typing import Any, TypeVar

from yarl import URL

from .._core.errors import (
    NotFoundError,
    ResponseValidationError,
)
from .._core.models import Backup
from .._core.options import ClientOptions
from .._core.protocol import (
    BACKUPS_PATH,
    Response,
    backup_path,
)
from .._core.stats import Counters
from .._core.urls import resolve_link
from .._decoding.convert import decode_backups
from .._decoding.fast import decode_page_bytes
from .._decoding.responses import (
    decode_backup_response,
    decode_page_parts,
)
from .._transport.base import (
    Request,
    Transport,
)
from .._transport.governor import Lane
from .call import Call
from .retry_policy import Safety

__all__ = ["Page", "Reader"]

T = TypeVar("T")

# A page is structured in slices of this many backups, yielding to the event loop in
# between, so that a 10,000-backup page never blocks it for long (see benchmarks).
_CHUNK = 1000
# Whatever the counts say, the chain is cut somewhere: a million backups at DRF's
# default page size.
_MAX_PAGES = 10_000
LIST_ROUTE = "GET backups/"
DETAIL_ROUTE = "GET backups/{id}/"


class Page:
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


async def _structure_in_slices(raw: list[Any]) -> list[Backup]:
    backups: list[Backup] = []
    for start in range(0, len(raw), _CHUNK):
        await asyncio.sleep(0)
        backups.extend(decode_backups(raw[start : start + _CHUNK], offset=start))
    return backups


def _decode_page(response: Response) -> Page | Coroutine[object, None, Page]:
    """A page of the list route; one the general path structures, of more than a
    thousand backups, is a coroutine.

    msgspec decodes a usual page in one C call (see :mod:`asyncbackups._decoding.fast`);
    anything else takes the general path, which yields to the event loop between slices.
    """
    if response.status == 200:
        fast = decode_page_bytes(response.body)
        if fast is not None:
            backups, next_link, count = fast
            return Page(backups, next_link, count, response.headers)
    raw, next_link, count = decode_page_parts(response)
    if len(raw) <= _CHUNK:
        return Page(decode_backups(raw), next_link, count, response.headers)

    async def in_slices() -> Page:
        return Page(await _structure_in_slices(raw), next_link, count, response.headers)

    return in_slices()


class _Links:
    """Checks each ``next`` link before it is followed: same origin, no loop, no excess.

    The page budget follows the largest ``count`` the pages have stated, since a list
    that grows while it is read (a fleet's backups, say) legitimately takes more pages.
    """

    __slots__ = ("_base", "_count", "_length", "_pages", "_seen", "_transport")

    def __init__(
        self, transport: Transport, first_url: str, params: Mapping[str, str], first: Page
    ) -> None:
        self._transport = transport
        self._base = transport.base_url
        self._seen = {str(URL(first_url).with_query(params))}
        self._pages = 1
        self._length = len(first.backups)
        self._count = first.count

    def follow(self, current: str, page: Page) -> str:
        """The absolute URL to read after ``page``; ``ResponseValidationError`` if it may
        not be followed."""
        next_link = page.next_link
        assert next_link is not None
        if page.count is not None and (self._count is None or page.count > self._count):
            self._count = page.count
        target, why = resolve_link(current, next_link, self._base)
        if target is None:
            shown = next_link if len(next_link) <= 200 else next_link[:200] + "..."
            error = ResponseValidationError(
                f"the API's next-page link {why} ({shown!r}); not following it, "
                "so the token stays with the API",
                path="$.next",
            )
            self._transport.scrub(error)  # the link is the server's text
            raise error
        url = str(target)
        if url in self._seen:
            raise ResponseValidationError(
                "the API's next-page link loops back to a page already read", path="$.next"
            )
        self._pages += 1
        budget = _page_budget(self._count, self._length)
        if self._pages > budget:
            raise ResponseValidationError(
                f"the API's pages go on past the {budget} its count implies; "
                "stopped following next-page links",
                path="$.next",
            )
        self._seen.add(url)
        return url


def _page_budget(count: int | None, length: int) -> int:
    """How many pages a list of ``count`` backups, ``length`` a page, may take."""
    if count is None or length == 0:
        return _MAX_PAGES
    expected = math.ceil(count / length)
    # Backups made while the pages are read push some to later pages.
    return min(_MAX_PAGES, expected + max(2, math.ceil(expected / 10)))


async def _next_page(call: Call[Page]) -> Page | None:
    """A page a ``next`` link led to, or ``None`` when it no longer exists.

    DRF answers ``404 Invalid page.`` for a page past the end: the list shrank while it
    was read, and what was on that page moved to pages already read. That ends the list;
    it says nothing about any backup.
    """
    try:
        return await call.run()
    except NotFoundError:
        return None


class Reader:
    """Reads backups through one transport under one client's options."""

    __slots__ = ("_counters", "_lane", "_options", "_patient", "_transport")

    def __init__(
        self,
        transport: Transport,
        options: ClientOptions,
        counters: Counters,
        *,
        lane: Lane = Lane.CALL,
        patient: bool = False,
    ) -> None:
        self._transport = transport
        self._options = options
        self._counters = counters
        # The poller's reads queue in their own lane of the rate governor, and they (like
        # a fleet's) wait out throttling rather than fail on it.
        self._lane = lane
        self._patient = patient

    def options(self, *, max_retries: int | None = None) -> ClientOptions:
        """This reader's options, with another retry count if asked."""
        if max_retries is None or max_retries == self._options.max_retries:
            return self._options
        return self._options.evolve(max_retries=max_retries)

    def detail_call(self, backup_id: int) -> Call[Backup]:
        """The call that reads one backup from its detail route."""
        url = self._transport.url(backup_path(backup_id))
        return self._get(url, None, route=DETAIL_ROUTE, decode=decode_backup_response)

    async def read_backup(self, backup_id: int) -> Backup:
        """One backup from its detail route; :class:`NotFoundError` when there is none."""
        return await self.detail_call(backup_id).run()

    def page_call(
        self, url: str, query: Mapping[str, str] | None, options: ClientOptions
    ) -> Call[Page]:
        """The call that reads one page of the list route."""
        return self._get(url, query, route=LIST_ROUTE, decode=_decode_page, options=options)

    def _get(
        self,
        url: str,
        query: Mapping[str, str] | None,
        *,
        route: str,
        decode: Callable[[Response], T | Coroutine[object, None, T]],
        options: ClientOptions | None = None,
    ) -> Call[T]:
        request = Request(
            "GET", url, route=route, params=query, lane=self._lane, patient=self._patient
        )
        return Call(
            self._transport,
            request,
            safety=Safety.READ,
            decode=decode,
            options=self._options if options is None else options,
            counters=self._counters,
        )

    async def read_all(
        self, params: Mapping[str, str], *, calls: list[Call[Page]] | None = None
    ) -> list[Backup]:
        """Every backup of every page, in order; the one-page case costs one plain await.

        ``calls``, when given, collects each page's call (for raw responses).
        """
        options = self._options
        url = self._transport.url(BACKUPS_PATH)
        call = self.page_call(url, params, options)
        if calls is not None:
            calls.append(call)
        page = await call.run()
        backups = page.backups
        links = None
        while page.next_link is not None:
            links = links or _Links(self._transport, url, params, page)
            url = links.follow(url, page)
            call = self.page_call(url, None, options)
            if calls is not None:
                calls.append(call)
            next_page = await _next_page(call)
            if next_page is None:
                break
            page = next_page
            backups.extend(page.backups)
        return backups

    async def pages(
        self, params: Mapping[str, str], *, max_retries: int | None = None
    ) -> AsyncGenerator[Page]:
        """Yield each page of the list route, following DRF ``next`` links.

        A link to another origin raises :class:`ResponseValidationError` before anything
        is sent there; so does a link that loops back to a page already read, and one
        past the pages the first page's count allows.
        """
        options = self.options(max_retries=max_retries)
        url = self._transport.url(BACKUPS_PATH)
        query: Mapping[str, str] | None = params
        links = None
        while True:
            call = self.page_call(url, query, options)
            if query is None:
                next_page = await _next_page(call)
                if next_page is None:
                    return
                page = next_page
            else:
                page = await call.run()
            yield page
            if page.next_link is None:
                return
            links = links or _Links(self._transport, url, params, page)
            url, query = links.follow(url, page), None
