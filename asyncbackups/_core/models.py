"""The data the API speaks of, as frozen attrs classes and string enums."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import attrs

__all__ = ["Backup", "BackupStatus", "BackupType", "RestoreResult", "ServerRef"]


# Unknown values are built once per text, so equal unknowns are also the same object.
_UNKNOWN_MEMBERS: dict[tuple[type, str], Any] = {}
_UNKNOWN_LIMIT = 1024


class _OpenStrEnum(enum.StrEnum):
    """A string enum that also holds values it was not built with.

    The API may grow new statuses or types before the SDK learns them; such a value
    decodes to a member-like instance that equals its text (``status == "restoring"``),
    is never one of the known members, and is shared per text so ``is`` still works.
    """

    @classmethod
    def _missing_(cls, value: object) -> Any:
        if not isinstance(value, str):
            return None
        member = _UNKNOWN_MEMBERS.get((cls, value))
        if member is None:
            member = str.__new__(cls, value)
            member._name_ = value.upper()
            member._value_ = value
            if len(_UNKNOWN_MEMBERS) < _UNKNOWN_LIMIT:  # a babbling API cannot grow it forever
                _UNKNOWN_MEMBERS[(cls, value)] = member
        return member

    @property
    def is_known(self) -> bool:
        """Whether this value is one the SDK was built with."""
        return self._value_ in type(self)._value2member_map_


class BackupStatus(_OpenStrEnum):
    """Where a backup stands. Unknown values keep their text and are never final."""

    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"


class BackupType(_OpenStrEnum):
    """How a backup was made: by a caller (never expires) or by the daily schedule."""

    MANUAL = "manual"
    AUTOMATIC = "automatic"


@attrs.frozen
class ServerRef:
    """The server a backup belongs to, as the API embeds it."""

    id: int
    name: str | None = None


@attrs.frozen
class Backup:
    """One backup, as the API reported it at one moment.

    ``created_at`` and ``expires_at`` are timezone-aware; ``size_mb`` is ``None`` until
    the backup completes; ``expires_at`` is ``None`` for manual backups, which never
    expire; ``message`` is set only on the answer to a create.
    """

    id: int
    server: ServerRef
    backup_type: BackupType
    status: BackupStatus
    size_mb: int | None
    created_at: datetime
    expires_at: datetime | None = None
    description: str | None = None
    message: str | None = None

    @property
    def server_id(self) -> int:
        """The ID of the server this backup belongs to."""
        return self.server.id

    @property
    def is_final(self) -> bool:
        """Whether the status will not change any more (``COMPLETED`` or ``FAILED``)."""
        return self.status is BackupStatus.COMPLETED or self.status is BackupStatus.FAILED


@attrs.frozen
class RestoreResult:
    """What the API answered to a restore: known fields typed, the whole JSON in ``raw``.

    The restore answer is not documented field by field, so every typed field is
    optional and ``raw`` keeps everything the API said.
    """

    raw: dict[str, Any]
    status_code: int = 202
    status: str | None = None
    message: str | None = None
    server_id: int | None = None
    backup_id: int | None = None
