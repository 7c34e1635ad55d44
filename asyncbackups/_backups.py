"""``client.backups``: list, iterate, get, create (with reconciliation) and delete."""

from __future__ import annotations

import builtins
import logging
import time
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from yarl import URL

from ._errors import ResponseValidationError
from ._http import HTTPTransport
from ._models import Backup, BackupType
from ._policy import Safety
from ._protocol import (
    BACKUPS_PATH,
    Response,
    backup_path,
    check_id,
    check_idempotency_key,
    decode_backup_response,
    decode_delete_response,
    decode_page,
    dump_json,
    is_same_origin,
    list_params,
    server_date,
)

__all__ = ["BackupsAPI", "iter_pages"]

logger = logging.getLogger("asyncbackups")

# A create that was in doubt adopts a backup made after the call began by the server's
# clock; its Date header has one-second resolution, hence the margin.
_CLOCK_MARGIN = timedelta(seconds=2)
# Without a Date header only our own clock is known, which may be off by much more.
_NO_DATE_MARGIN = timedelta(seconds=60)
_CLAIMED_LIMIT = 65_536

Page = tuple[builtins.list[Backup], str | None, Mapping[str, str]]


def _decode_page_with_headers(response: Response) -> Page:
    backups, next_link = decode_page(response)
    return backups, next_link, response.headers


async def iter_pages(
    transport: HTTPTransport, params: Mapping[str, str]
) -> AsyncIterator[tuple[builtins.list[Backup], Mapping[str, str]]]:
    """Yield each page of the list route with its headers, following DRF ``next`` links.

    A link to another origin raises :class:`ResponseValidationError` before anything
    is sent there; a link that loops back to a page already read does too.
    """
    url = transport.url(BACKUPS_PATH)
    query: Mapping[str, str] | None = params
    seen = {url + "?" + "&".join(f"{k}={v}" for k, v in params.items())}
    while True:
        backups, next_link, headers = await transport.send(
            "GET", url, safety=Safety.READ, decode=_decode_page_with_headers, params=query
        )
        yield backups, headers
        if next_link is None:
            return
        target = URL(url).join(URL(next_link))
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


class BackupsAPI:
    """The backups of every server the token can see. Reached as ``client.backups``."""

    def __init__(self, transport: HTTPTransport) -> None:
        self._transport = transport
        # IDs this client already handed out as the result of a create, so that a
        # reconciliation never adopts the same backup for two calls.
        self._claimed: dict[int, None] = {}

    # -- reading ------------------------------------------------------------------------

    async def list(
        self, *, server_id: int | None = None, backup_type: BackupType | str | None = None
    ) -> builtins.list[Backup]:
        """Every backup matching the filters, across all pages, in the API's order.

        Raises ``TypeError``/``ValueError`` for a bad filter before any request.
        """
        params = list_params(server_id, backup_type)
        self._transport.check_open()
        backups: builtins.list[Backup] = []
        async for page, _ in iter_pages(self._transport, params):
            backups.extend(page)
        return backups

    async def iter(
        self, *, server_id: int | None = None, backup_type: BackupType | str | None = None
    ) -> AsyncIterator[Backup]:
        """Yield matching backups lazily, one page fetched at a time (``async for``)."""
        params = list_params(server_id, backup_type)
        self._transport.check_open()
        async for page, _ in iter_pages(self._transport, params):
            for backup in page:
                yield backup

    async def get(self, backup_id: int) -> Backup:
        """One backup by ID. Raises :class:`NotFoundError` when there is none."""
        check_id(backup_id, "backup_id")
        return await self._transport.send(
            "GET",
            self._transport.url(backup_path(backup_id)),
            safety=Safety.READ,
            decode=decode_backup_response,
        )

    # -- writing ------------------------------------------------------------------------

    async def create(
        self,
        server_id: int,
        *,
        description: str | None = None,
        idempotency_key: str | None = None,
    ) -> Backup:
        """Start a manual backup of a server; returns it ``IN_PROGRESS``.

        Safe to retry: every attempt carries the same ``Idempotency-Key`` (yours, or a
        fresh one), and after an attempt that may have reached the server the server's
        manual backups are read and the one that attempt made is adopted, so one call
        never makes two backups. Raises :class:`NotFoundError` for an unknown server and
        :class:`BadRequestError` (with ``field_errors``) for a refused description.
        """
        check_id(server_id, "server_id")
        if description is not None and not isinstance(description, str):
            raise TypeError(f"description must be a str, not {type(description).__name__}")
        key = check_idempotency_key(idempotency_key)
        body: dict[str, Any] = {"server_id": server_id}
        if description is not None:
            body["description"] = description
        started = time.monotonic()

        async def reconcile() -> Backup | None:
            return await self._find_created(server_id, description, started)

        backup = await self._transport.send(
            "POST",
            self._transport.url(BACKUPS_PATH),
            safety=Safety.CREATE,
            decode=decode_backup_response,
            data=dump_json(body),
            idempotency_key=key,
            reconcile=reconcile,
        )
        self._claim(backup.id)
        return backup

    def _claim(self, backup_id: int) -> None:
        self._claimed[backup_id] = None
        if len(self._claimed) > _CLAIMED_LIMIT:
            del self._claimed[next(iter(self._claimed))]

    async def _find_created(
        self, server_id: int, description: str | None, started: float
    ) -> Backup | None:
        """The backup an ambiguous create made, if the server has it; ``None`` if not."""
        params = {"server_id": str(server_id), "backup_type": BackupType.MANUAL.value}
        wanted = description or None
        candidates: builtins.list[Backup] = []
        now: datetime | None = None
        elapsed = 0.0
        async for page, headers in iter_pages(self._transport, params):
            if now is None:
                elapsed = time.monotonic() - started
                now = server_date(headers)
            candidates.extend(
                backup
                for backup in page
                if backup.server_id == server_id
                and backup.backup_type is BackupType.MANUAL
                and (backup.description or None) == wanted
                and backup.id not in self._claimed
            )
        margin = _CLOCK_MARGIN
        if now is None:
            now, margin = datetime.now(UTC), _NO_DATE_MARGIN
        earliest = now - timedelta(seconds=elapsed) - margin
        matches = [backup for backup in candidates if backup.created_at >= earliest]
        if not matches:
            logger.info("create for server %d: no backup from the earlier attempt", server_id)
            return None
        chosen = min(matches, key=lambda backup: (backup.created_at, backup.id))
        self._claim(chosen.id)
        logger.info(
            "create for server %d: the earlier attempt made backup %d; adopting it",
            server_id,
            chosen.id,
        )
        return chosen

    async def delete(self, backup_id: int) -> None:
        """Delete a backup for good.

        Raises :class:`NotFoundError` when it does not exist; a 404 that follows an
        attempt which may already have deleted it counts as success.
        """
        check_id(backup_id, "backup_id")
        await self._transport.send(
            "DELETE",
            self._transport.url(backup_path(backup_id)),
            safety=Safety.DELETE,
            decode=decode_delete_response,
        )
