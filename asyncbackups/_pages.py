"""Walking the list route page by page, following DRF ``next`` links within the origin."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping

from yarl import URL

from ._errors import ResponseValidationError
from ._http import HTTPTransport
from ._models import Backup
from ._policy import Safety
from ._protocol import BACKUPS_PATH, Response, decode_page, is_same_origin

__all__ = ["iter_pages"]

_Page = tuple[list[Backup], str | None, Mapping[str, str]]


def _decode_page_with_headers(response: Response) -> _Page:
    backups, next_link = decode_page(response)
    return backups, next_link, response.headers


async def iter_pages(
    transport: HTTPTransport, params: Mapping[str, str]
) -> AsyncGenerator[tuple[list[Backup], Mapping[str, str]]]:
    """Yield each page of the list route with its headers, following DRF ``next`` links.

    A link to another origin raises :class:`ResponseValidationError` before anything
    is sent there; so does a link that loops back to a page already read.
    """
    url = transport.url(BACKUPS_PATH)
    query: Mapping[str, str] | None = params
    seen = {str(URL(url).with_query(params))}
    while True:
        backups, next_link, headers = await transport.send(
            "GET", url, safety=Safety.READ, decode=_decode_page_with_headers, params=query
        )
        yield backups, headers
        if next_link is None:
            return
        try:
            target = URL(url).join(URL(next_link))
        except ValueError:
            raise ResponseValidationError(
                f"the API's next-page link is not a URL: {next_link!r}", path="$.next"
            ) from None
        if not is_same_origin(target, transport.base_url):
            raise ResponseValidationError(
                f"the API's next-page link points to another origin ({target.origin()}); "
                "not following it, so the token stays with the API",
                path="$.next",
            )
        url, query = str(target), None
        if url in seen:
            raise ResponseValidationError(
                f"the API's next-page link loops back to {url}", path="$.next"
            )
        seen.add(url)
