"""asyncbackups: the asyncio SDK for the VPS Backups API.

Everything public is re-exported here; every other module is private.
"""

from __future__ import annotations

from ._client import NOT_GIVEN, BackupsClient
from ._core import logs as _logs
from ._core.errors import (
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
from ._core.logs import ENV_LOG
from ._core.models import Backup, BackupStatus, BackupType, RestoreResult, ServerRef
from ._core.options import DEFAULT_BASE_URL, ENV_BASE_URL, ENV_TOKEN
from ._core.stats import ClientStats
from ._decoding.responses import parse_backups
from ._resources.raw import RawResponse
from ._transport.http import USER_AGENT
from ._version import __version__
from ._waiting.fleet import BackupOutcome, FleetResult

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

_logs.configure_from_environment()
