"""The exception tree: everything the network or the API can do to a call.

::

    BackupsError                       root: catch this to catch everything below
    ├── APIStatusError                 the API answered with an error status
    │   ├── BadRequestError            400; .field_errors holds DRF's {field: [messages]}
    │   ├── AuthenticationError        401
    │   ├── NotFoundError              404
    │   ├── RateLimitError             429; .retry_after in seconds, when the API said
    │   └── ServerError                5xx
    ├── APIConnectionError             no usable answer: refused, dropped, reset
    │   └── APITimeoutError            an attempt outlived the client's timeout
    ├── ResponseValidationError        an answer that does not have the documented shape
    ├── WaitTimeoutError               wait_until_completed reached its deadline; .backup
    └── BackupFailedError              the backup ended FAILED; .backup

Caller mistakes (a bad ID, no token, a closed client) are not here: they are plain
``TypeError``/``ValueError``/``RuntimeError`` raised before any request is sent.
No exception text ever holds the API token.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._models import Backup

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BackupFailedError",
    "BackupsError",
    "BadRequestError",
    "NotFoundError",
    "RateLimitError",
    "ResponseValidationError",
    "ServerError",
    "WaitTimeoutError",
]


class BackupsError(Exception):
    """Root of every error the SDK raises because of the network or the API."""


class APIStatusError(BackupsError):
    """The API answered with a non-success status.

    ``status_code`` is the HTTP status, ``body`` the decoded JSON body (or the text of a
    body that was not JSON, ``None`` when empty), ``method`` and ``url`` name the request,
    ``retry_after`` is the pause a ``Retry-After`` header asked for, in seconds, or ``None``.
    """

    default_status_code = 0

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        body: Any = None,
        method: str | None = None,
        url: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = self.default_status_code if status_code is None else status_code
        self.body = body
        self.method = method
        self.url = url
        self.retry_after = retry_after


class BadRequestError(APIStatusError):
    """400: the API refused the request's content.

    ``field_errors`` maps each refused field to its messages, as Django REST Framework
    reports them (``{"description": ["Ensure this field has no more than 255 characters."]}``);
    it is empty when the API gave only a ``detail``.
    """

    default_status_code = 400

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        body: Any = None,
        method: str | None = None,
        url: str | None = None,
        field_errors: dict[str, list[str]] | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code, body=body, method=method, url=url)
        self.field_errors: dict[str, list[str]] = field_errors or {}


class AuthenticationError(APIStatusError):
    """401: the token is missing, wrong or revoked. Never retried."""

    default_status_code = 401


class NotFoundError(APIStatusError):
    """404: the server or backup does not exist (or no longer does)."""

    default_status_code = 404


class RateLimitError(APIStatusError):
    """429 that outlasted the retries, or asked for a pause longer than the client accepts.

    ``retry_after`` is the pause the API asked for, in seconds, or ``None``.
    """

    default_status_code = 429


class ServerError(APIStatusError):
    """5xx: the API failed. 500, 502, 503 and 504 are retried before this is raised."""

    default_status_code = 500


class APIConnectionError(BackupsError):
    """No usable answer arrived: the connection was refused, dropped or reset.

    ``request_may_have_reached_server`` is ``False`` only when the request certainly
    never left (the connection could not be opened); otherwise the API may have acted
    on it, which is why writes reconcile before trying again.
    """

    def __init__(self, message: str, *, request_may_have_reached_server: bool = True) -> None:
        super().__init__(message)
        self.request_may_have_reached_server = request_may_have_reached_server


class APITimeoutError(APIConnectionError):
    """An attempt took longer than the client's ``timeout`` seconds."""


class ResponseValidationError(BackupsError):
    """An answer did not have the documented shape (bad JSON, a missing or mistyped field).

    ``path`` names the offending field (``"results[2].created_at"``) when one is to blame.
    """

    def __init__(self, message: str, *, path: str | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.path = path
        self.body = body


class WaitTimeoutError(BackupsError):
    """``wait_until_completed`` reached its deadline; ``backup`` is the last state seen.

    ``backup`` is ``None`` only when the wait was given a bare ID and not a single read
    of it succeeded before the deadline.
    """

    def __init__(self, message: str, *, backup: Backup | None) -> None:
        super().__init__(message)
        self.backup = backup


class BackupFailedError(BackupsError):
    """The backup ended with status ``FAILED``; ``backup`` is that final state."""

    def __init__(self, message: str, *, backup: Backup) -> None:
        super().__init__(message)
        self.backup = backup
