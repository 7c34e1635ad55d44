"""asyncbackups: the asyncio SDK for the VPS Backups API.

Everything public is re-exported here; every other module is private.
"""

from __future__ import annotations

from . import _logging
from ._client import NOT_GIVEN, BackupsClient
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
    ResponseTooLargeError,
    ResponseValidationError,
    ServerError,
    WaitTimeoutError,
)
from ._fleet import BackupOutcome, FleetResult
from ._http import USER_AGENT
from ._logging import ENV_LOG
from ._models import Backup, BackupStatus, BackupType, RestoreResult, ServerRef
from ._options import DEFAULT_BASE_URL, ENV_BASE_URL, ENV_TOKEN
from ._protocol import parse_backups
from ._raw import RawResponse
from ._stats import ClientStats
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
    "ClientStats",
    "DEFAULT_BASE_URL",
    "ENV_BASE_URL",
    "ENV_LOG",
    "ENV_TOKEN",
    "FleetResult",
    "NOT_GIVEN",
    "NotFoundError",
    "RateLimitError",
    "RawResponse",
    "ResponseTooLargeError",
    "ResponseValidationError",
    "RestoreResult",
    "ServerError",
    "ServerRef",
    "USER_AGENT",
    "WaitTimeoutError",
    "__version__",
    "parse_backups",
]

_logging.configure_from_environment()
