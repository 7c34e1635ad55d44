"""asyncbackups: the asyncio SDK for the VPS Backups API.

Everything public is re-exported here; every other module is private.
"""

from __future__ import annotations

from ._client import BackupsClient
from ._errors import (
    AmbiguousCreateError,
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BackupFailedError,
    BackupsError,
    BadRequestError,
    NotFoundError,
    RateLimitError,
    ResponseValidationError,
    ServerError,
    WaitTimeoutError,
)
from ._fleet import BackupOutcome, FleetResult
from ._models import Backup, BackupStatus, BackupType, RestoreResult, ServerRef
from ._version import __version__

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AmbiguousCreateError",
    "AuthenticationError",
    "Backup",
    "BackupFailedError",
    "BackupOutcome",
    "BackupStatus",
    "BackupType",
    "BackupsClient",
    "BackupsError",
    "BadRequestError",
    "FleetResult",
    "NotFoundError",
    "RateLimitError",
    "ResponseValidationError",
    "RestoreResult",
    "ServerError",
    "ServerRef",
    "WaitTimeoutError",
    "__version__",
]
