"""``client.servers``: restoring a server from one of its backups."""

from __future__ import annotations

from ._http import HTTPTransport
from ._models import RestoreResult
from ._policy import Safety
from ._protocol import (
    check_id,
    check_idempotency_key,
    decode_restore_response,
    dump_json,
    restore_path,
)

__all__ = ["ServersAPI"]


class ServersAPI:
    """Operations on servers. Reached as ``client.servers``."""

    def __init__(self, transport: HTTPTransport) -> None:
        self._transport = transport

    async def restore(
        self, server_id: int, backup_id: int, *, idempotency_key: str | None = None
    ) -> RestoreResult:
        """Restore a server from one of its completed backups, overwriting its disk.

        Never sent twice once it may have reached the server: it is retried only after
        a failure to connect, a 429 or a 503. Raises :class:`NotFoundError` for an
        unknown server or backup and :class:`BadRequestError` when the backup is not
        completed or belongs to another server.
        """
        check_id(server_id, "server_id")
        check_id(backup_id, "backup_id")
        return await self._transport.send(
            "POST",
            self._transport.url(restore_path(server_id)),
            safety=Safety.RESTORE,
            decode=decode_restore_response,
            data=dump_json({"backup_id": backup_id}),
            idempotency_key=check_idempotency_key(idempotency_key),
        )
