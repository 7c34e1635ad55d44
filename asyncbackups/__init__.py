"""asyncbackups: the asyncio SDK for the VPS Backups API.

Everything public is re-exported here; every other module is private. Beside the client,
its models and its errors, these names are public because a program needs them:

- ``BackupsAPI``, ``ServersAPI``: the types of ``client.backups`` and ``client.servers``,
  for annotating code that takes one; ``RawResponse`` and ``ClientStats``: what
  ``with_raw_response`` calls and ``client.stats`` return.
- ``NOT_GIVEN`` and its type ``NotGiven``: the default of ``with_options``' arguments
  ("keep this client's value", told apart from ``None``), for wrappers that forward them.
- ``AmbiguousCreateError``, ``ResponseTooLargeError``: what a create in doubt and the
  body cap raise, to be caught by name.
- ``DEFAULT_BASE_URL``, ``ENV_BASE_URL``, ``ENV_TOKEN``, ``ENV_LOG``: the default and the
  environment variables the client reads, so a program (the command line among them)
  names them without copying strings; ``USER_AGENT``: the header every request carries,
  for a proxy's or server's allow-list.
- ``RetryEvent``: what a client's ``on_retry`` hears before each retry, to show them.
- ``parse_backups``: the backups of a list answer fetched some other way (a cache, a
  webhook), validated exactly as the client validates its own.
"""

from __future__ import annotations

from ._client import NOT_GIVEN, BackupsClient, NotGiven
from ._core import logs as _logs
from ._core.callbacks import RetryEvent
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
from ._core.retention import CoverageReport, PrunePlan, PruneResult
from ._core.stats import ClientStats
from ._decoding.responses import parse_backups
from ._resources.backups import BackupsAPI
from ._resources.raw import RawResponse
from ._resources.servers import ServersAPI
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
    "BackupsAPI",
    "BackupsClient",
    "BackupsError",
    "BadRequestError",
    "ClientStats",
    "CoverageReport",
    "DEFAULT_BASE_URL",
    "ENV_BASE_URL",
    "ENV_LOG",
    "ENV_TOKEN",
    "FleetResult",
    "NOT_GIVEN",
    "NotFoundError",
    "NotGiven",
    "PrunePlan",
    "PruneResult",
    "RateLimitError",
    "RawResponse",
    "ResponseTooLargeError",
    "ResponseValidationError",
    "RestoreResult",
    "RetryEvent",
    "ServerError",
    "ServerRef",
    "ServersAPI",
    "USER_AGENT",
    "WaitTimeoutError",
    "__version__",
    "parse_backups",
]

_logs.configure_from_environment()
