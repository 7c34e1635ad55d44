"""``client.servers``: restoring a server from one of its backups."""

from __future__ import annotations

from .._calls.call import Call
from .._calls.retry_policy import Safety
from .._core.checks import (
    check_id,
    check_idempotency_key,
)
from .._core.models import RestoreResult
from .._core.protocol import restore_path
from .._decoding.responses import decode_restore_response
from .base import Resource
from .raw import (
    RawResponse,
    raw_response,
)

__all__ = ["ServersAPI"]

RESTORE_ROUTE = "POST servers/{id}/restore/"


class ServersWithRawResponse:
    """``client.servers.with_raw_response``: each call, returning a :class:`RawResponse`."""

    def __init__(self, api: ServersAPI) -> None:
        self._api = api

    async def restore(
        self, server_id: int, backup_id: int, *, idempotency_key: str | None = None
    ) -> RawResponse[RestoreResult]:
        """``servers.restore``."""
        call = self._api._restore_call(server_id, backup_id, idempotency_key)
        return raw_response([call], await call.run())


class ServersAPI(Resource):
    """Operations on servers. Reached as ``client.servers``."""

    @property
    def with_raw_response(self) -> ServersWithRawResponse:
        """The same calls, each returning a :class:`RawResponse` around its result."""
        return ServersWithRawResponse(self)

    def _restore_call(
        self, server_id: int, backup_id: int, idempotency_key: str | None
    ) -> Call[RestoreResult]:
        check_id(server_id, "server_id")
        check_id(backup_id, "backup_id")
        return self._post(
            restore_path(server_id),
            {"backup_id": backup_id},
            route=RESTORE_ROUTE,
            safety=Safety.RESTORE,
            decode=decode_restore_response,
            idempotency_key=check_idempotency_key(idempotency_key),
        )

    async def restore(
        self, server_id: int, backup_id: int, *, idempotency_key: str | None = None
    ) -> RestoreResult:
        """Restore a server from one of its completed backups, overwriting its disk.

        Never sent twice once it may have reached the server: it is retried only after
        a failure to connect, a 429 or a 503. Raises :class:`NotFoundError` for an
        unknown server or backup and :class:`BadRequestError` when the backup is not
        completed or belongs to another server.
        """
        return await self._restore_call(server_id, backup_id, idempotency_key).run()
