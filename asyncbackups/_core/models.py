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
    """Where a backup stands. Unknown values keep their text and are never final.

    A string enum: each member equals its text (``BackupStatus.COMPLETED == "completed"``).
    A status the SDK does not know yet (say ``"restoring"``) decodes to a value that
    equals its text, is none of the members below, and has ``is_known`` false.
    """

    IN_PROGRESS = "in_progress"
    """``"in_progress"``: being made; ``size_mb`` is ``None`` until it completes."""
    COMPLETED = "completed"
    """``"completed"``: done and restorable (final)."""
    FAILED = "failed"
    """``"failed"``: it did not complete and never will (final)."""


class BackupType(_OpenStrEnum):
    """How a backup was made: by a caller (never expires) or by the daily schedule.

    A string enum like [`BackupStatus`][asyncbackups.BackupStatus]: members equal their
    text, and a type the SDK does not know yet keeps its text with ``is_known`` false.
    """

    MANUAL = "manual"
    """``"manual"``: made by a create call; never expires (``expires_at`` is ``None``)."""
    AUTOMATIC = "automatic"
    """``"automatic"``: made by the provider's daily schedule; expires at ``expires_at``."""


@attrs.frozen
class ServerRef:
    """The server a backup belongs to, as the API embeds it."""

    id: int
    """The server's ID, the ``server_id`` of the API's filters and restores."""
    name: str | None = None
    """The server's name (``"web-server-01"``); ``None`` when the API sent none."""


@attrs.frozen
class Backup:
    """One backup, as the API reported it at one moment.

    ``created_at`` and ``expires_at`` are timezone-aware; ``size_mb`` is ``None`` until
    the backup completes; ``expires_at`` is ``None`` for manual backups, which never
    expire; ``message`` is set only on the answer to a create.
    """

    id: int
    """The backup's ID, unique across servers (``501``)."""
    server: ServerRef
    """The server it belongs to: its ID and name (``server_id`` is the ID alone)."""
    backup_type: BackupType
    """``MANUAL`` (a create made it) or ``AUTOMATIC`` (the daily schedule did)."""
    status: BackupStatus
    """``IN_PROGRESS``, ``COMPLETED`` or ``FAILED``, as of this answer (see ``is_final``)."""
    size_mb: int | None
    """The backup's size in megabytes; ``None`` while it is in progress."""
    created_at: datetime
    """When the backup was started, timezone-aware (the API sends UTC)."""
    expires_at: datetime | None = None
    """When the provider deletes it, timezone-aware; ``None`` for a manual backup."""
    description: str | None = None
    """The text given at creation, as the API returns it.

    A backup created without one reads ``""`` from some services and ``None`` (JSON
    ``null``) from others; treat both as "no description".
    """
    message: str | None = None
    """The API's note on a create's answer ("Backup is being created..."); else ``None``."""

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
    """The whole JSON object the API answered, unchanged."""
    status_code: int = 202
    """The HTTP status of the answer (``202 Accepted`` when the restore started)."""
    status: str | None = None
    """The restore's state as the API words it (``"restoring"``), if it said."""
    message: str | None = None
    """The API's note (``"Server restore has been started."``), if any."""
    server_id: int | None = None
    """The server being restored, if the answer named it."""
    backup_id: int | None = None
    """The backup it is restored from, if the answer named it."""
