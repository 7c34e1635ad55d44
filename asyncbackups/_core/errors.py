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
    │   └── ResponseTooLargeError      an answer longer than max_response_bytes
    ├── WaitTimeoutError               wait_until_completed reached its deadline; .backup,
    │                                  .last_error
    ├── BackupFailedError              the backup ended FAILED; .backup
    └── AmbiguousCreateError           a create in doubt, and several backups could be
                                       the one it made; .candidates to inspect

Caller mistakes (a bad ID, no token, a closed client) are not here: they are plain
``TypeError``/``ValueError``/``RuntimeError`` raised before any request is sent.
No exception text ever holds the API token.

Every exception here pickles and deep-copies with all its attributes and notes, so it
crosses process boundaries (``multiprocessing``, ``ProcessPoolExecutor``) intact.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from multidict import CIMultiDict

if TYPE_CHECKING:
    from .models import Backup

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AmbiguousCreateError",
    "AuthenticationError",
    "BackupFailedError",
    "BackupsError",
    "BadRequestError",
    "NotFoundError",
    "RateLimitError",
    "ResponseTooLargeError",
    "ResponseValidationError",
    "ServerError",
    "WaitTimeoutError",
]


class BackupsError(Exception):
    """Root of every error the SDK raises because of the network or the API."""

    def __reduce__(self) -> tuple[Any, ...]:
        # The default rebuilds through __init__ with args alone, which the keyword-only
        # attributes of the subclasses cannot survive; rebuild without __init__ and restore
        # the instance dict instead (every attribute, ``__notes__`` included).
        return (_rebuild, (type(self), self.args), self.__dict__)


def _rebuild(cls: type[BackupsError], args: tuple[Any, ...]) -> BackupsError:
    """Make an instance of ``cls`` with ``args`` and no attributes yet (for unpickling)."""
    return cls.__new__(cls, *args)


class APIStatusError(BackupsError):
    """The API answered with a non-success status.

    ``status_code`` is the HTTP status, ``body`` the decoded JSON body (or the text of a
    body that was not JSON, ``None`` when empty), ``method`` and ``url`` name the request,
    ``retry_after`` is the pause a ``Retry-After`` header asked for, in seconds, or ``None``.
    ``headers`` are the answer's headers (a case-insensitive mapping) and ``request_id``
    the API's ID for the request (``X-Request-ID`` or ``Request-Id``), which ``str()`` ends
    with when known: quote it to the API's support.
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
        headers: Mapping[str, str] | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = self.default_status_code if status_code is None else status_code
        self.body = body
        self.method = method
        self.url = url
        self.retry_after = retry_after
        self.headers: Mapping[str, str] = CIMultiDict(headers or {})
        self.request_id = request_id

    def __str__(self) -> str:
        text = super().__str__()
        if self.request_id:
            return f"{text} (request id: {self.request_id})"
        return text


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
        headers: Mapping[str, str] | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(
            message,
            status_code=status_code,
            body=body,
            method=method,
            url=url,
            headers=headers,
            request_id=request_id,
        )
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


class ResponseTooLargeError(ResponseValidationError):
    """An answer longer than the client's ``max_response_bytes``; never read past it.

    Not retried: the same request would bring the same answer. Catch it as
    :class:`ResponseValidationError`.
    """


class WaitTimeoutError(BackupsError):
    """``wait_until_completed`` reached its deadline; ``backup`` is the last state seen.

    ``backup`` is ``None`` only when the wait was given a bare ID and not a single read
    of it succeeded before the deadline. ``last_error`` is the last poll that failed when
    the API was unreachable or failing near the deadline, else ``None``: it tells a slow
    backup from an API that could not be asked.
    """

    def __init__(
        self,
        message: str,
        *,
        backup: Backup | None,
        last_error: BackupsError | None = None,
    ) -> None:
        super().__init__(message)
        self.backup = backup
        self.last_error = last_error


class BackupFailedError(BackupsError):
    """The backup ended with status ``FAILED``; ``backup`` is that final state."""

    def __init__(self, message: str, *, backup: Backup) -> None:
        super().__init__(message)
        self.backup = backup


class AmbiguousCreateError(BackupsError):
    """A create whose earlier attempt was in doubt matched more than one existing backup.

    An attempt may have reached the server without its answer arriving; reconciling
    found several backups that could each be the one it made, so the SDK neither
    adopts one nor sends the create again. ``candidates`` are those backups, oldest
    first; inspect them (and delete the extra one, if the backup was made twice).
    ``server_id`` is the server, ``idempotency_key`` the key every attempt carried.
    Without a ``message``, one naming the server and the candidates' IDs is written.
    """

    def __init__(
        self,
        message: str | None = None,
        *,
        server_id: int,
        candidates: Iterable[Backup],
        idempotency_key: str,
    ) -> None:
        ordered = sorted(candidates, key=lambda backup: (backup.created_at, backup.id))
        if message is None:
            ids = ", ".join(str(backup.id) for backup in ordered)
            message = (
                f"a create on server {server_id} may have made a backup before its answer "
                f"was lost, and {len(ordered)} existing backups could be it (IDs {ids}); "
                "inspect them and delete the extra one if the backup was made twice"
            )
        super().__init__(message)
        self.server_id = server_id
        self.candidates: list[Backup] = ordered
        self.idempotency_key = idempotency_key
