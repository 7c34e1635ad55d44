"""The API's protocol as pure functions: no sockets, no event loop, no aiohttp.

Requests are described by plain values (paths, query parameters, JSON bytes); answers
arrive as :class:`Response` and leave as models or typed exceptions. Everything here is
tested with plain values.
"""

from __future__ import annotations

import ipaddress
import json
import math
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from yarl import URL

from ._convert import decode_backup, decode_backups
from ._errors import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    RateLimitError,
    ResponseValidationError,
    ServerError,
)
from ._models import Backup, BackupType, RestoreResult

_loads: Callable[[bytes], Any]
try:  # orjson is an optional extra: several times faster on large pages
    from orjson import loads as _loads
except ImportError:  # pragma: no cover - exercised when the extra is absent
    _loads = json.loads

__all__ = [
    "BACKUPS_PATH",
    "DEFAULT_BASE_URL",
    "Response",
    "backup_path",
    "check_id",
    "check_idempotency_key",
    "check_number",
    "decode_backup_response",
    "decode_delete_response",
    "decode_json",
    "decode_page",
    "decode_restore_response",
    "dump_json",
    "error_from_response",
    "is_same_origin",
    "list_params",
    "normalize_base_url",
    "parse_retry_after",
    "restore_path",
    "server_date",
]

DEFAULT_BASE_URL = "https://admin.vps.org/api/v1/"
BACKUPS_PATH = "backups/"
_SNIPPET = 200


class Response:
    """One HTTP answer as the protocol sees it.

    ``after_ambiguous`` is set by the sender when an earlier attempt of the same call
    may have reached the server, so decoders can read a 404 on a retried delete as
    "already done".
    """

    __slots__ = ("after_ambiguous", "body", "headers", "method", "status", "url")

    def __init__(
        self,
        *,
        method: str,
        url: str,
        status: int,
        headers: Mapping[str, str],
        body: bytes,
        after_ambiguous: bool = False,
    ) -> None:
        self.method = method
        self.url = url
        self.status = status
        self.headers = headers
        self.body = body
        self.after_ambiguous = after_ambiguous


# -- caller input ---------------------------------------------------------------------


def check_id(value: object, name: str = "id") -> int:
    """Return ``value`` if it is a positive ``int``.

    Raises ``TypeError`` for anything that is not an ``int`` (``bool`` and numeric
    strings included) and ``ValueError`` for zero or a negative number.
    """
    if type(value) is not int:
        # bool is an int subclass and "12" looks like one; both are caller mistakes here.
        raise TypeError(f"{name} must be an int, not {type(value).__name__} {value!r}")
    if value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value}")
    return value


def check_number(name: str, value: object, *, minimum: float, integer: bool = False) -> None:
    """``TypeError`` unless ``value`` is a real number (an ``int`` if ``integer``; never a
    ``bool``), ``ValueError`` when it is below ``minimum`` or NaN."""
    kinds: tuple[type, ...] = (int,) if integer else (int, float)
    if type(value) not in kinds:
        kind = "an int" if integer else "a number"
        raise TypeError(f"{name} must be {kind}, not {type(value).__name__}")
    if not value >= minimum:  # type: ignore[operator]  # also catches NaN
        raise ValueError(f"{name} must be at least {minimum}, got {value}")


def check_idempotency_key(key: str | None) -> str:
    """The caller's key after checking it fits in a header, or a fresh uuid4."""
    if key is None:
        return str(uuid.uuid4())
    if not isinstance(key, str):
        raise TypeError(f"idempotency_key must be a str, not {type(key).__name__}")
    if not key or len(key) > 255 or not key.isascii() or not key.isprintable():
        raise ValueError("idempotency_key must be 1-255 printable ASCII characters")
    return key


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def normalize_base_url(raw: str) -> URL:
    """Validate the API's base URL and give it a trailing slash.

    Raises ``ValueError`` for anything but an absolute ``https://`` URL, or ``http://``
    to a loopback host (127.0.0.0/8, ::1, localhost), and for URLs carrying
    credentials, a query or a fragment.
    """
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError("base_url must be a non-empty URL string")
    try:
        url = URL(raw.strip())
    except (ValueError, TypeError) as exc:
        raise ValueError(f"base_url is not a valid URL: {raw!r}") from exc
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(f"base_url must be an absolute http(s) URL, got {raw!r}")
    if url.user is not None or url.password is not None:
        raise ValueError("base_url must not carry credentials; pass the token instead")
    if url.query_string or url.fragment:
        raise ValueError("base_url must not have a query or a fragment")
    if url.scheme == "http" and not _is_loopback(url.host):
        raise ValueError(
            f"refusing plain http:// to {url.host}: the token would travel unencrypted; "
            "use https:// (plain http is allowed only for loopback hosts)"
        )
    if not url.path.endswith("/"):
        url = url.with_path(url.path + "/")
    return url


def is_same_origin(url: URL, base: URL) -> bool:
    """Whether ``url`` has the scheme, host and port of ``base`` (where the token may go)."""
    return (
        url.scheme == base.scheme
        and (url.host or "").lower() == (base.host or "").lower()
        and url.port == base.port
    )


def backup_path(backup_id: int) -> str:
    """The detail route of one backup, relative to the base URL."""
    return f"{BACKUPS_PATH}{backup_id}/"


def restore_path(server_id: int) -> str:
    """The restore route of one server, relative to the base URL."""
    return f"servers/{server_id}/restore/"


def list_params(server_id: int | None, backup_type: BackupType | str | None) -> dict[str, str]:
    """Query parameters for the list route; ``ValueError``/``TypeError`` for bad filters."""
    params: dict[str, str] = {}
    if server_id is not None:
        params["server_id"] = str(check_id(server_id, "server_id"))
    if backup_type is not None:
        if not isinstance(backup_type, str):
            raise TypeError(
                f"backup_type must be a BackupType or str, not {type(backup_type).__name__}"
            )
        if backup_type not in BackupType._value2member_map_:
            raise ValueError(f"backup_type must be 'manual' or 'automatic', got {backup_type!r}")
        params["backup_type"] = str(backup_type)
    return params


def dump_json(payload: Mapping[str, Any]) -> bytes:
    """Serialize a request body once, so every retry sends the very same bytes."""
    return json.dumps(payload, separators=(",", ":")).encode()


# -- answers -------------------------------------------------------------------------


def decode_json(body: bytes, *, where: str = "the API's answer") -> Any:
    """Parse a JSON body; ``ResponseValidationError`` with a snippet when it is not JSON."""
    try:
        return _loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ResponseValidationError(
            f"{where} is not valid JSON ({exc}): {_snippet(body)!r}", body=_snippet(body)
        ) from None


def _snippet(body: bytes) -> str:
    text = body[:_SNIPPET].decode("utf-8", "replace")
    return text + ("..." if len(body) > _SNIPPET else "")


def _expect(response: Response, *statuses: int) -> None:
    if response.status not in statuses:
        raise error_from_response(response)


def decode_backup_response(response: Response) -> Backup:
    """A 200 or 201 carrying one backup; anything else becomes its typed error."""
    _expect(response, 200, 201)
    return decode_backup(decode_json(response.body))


def decode_delete_response(response: Response) -> None:
    """Any 2xx; also a 404 that follows an attempt which may have deleted it already."""
    if 200 <= response.status < 300:
        return
    if response.status == 404 and response.after_ambiguous:
        return
    raise error_from_response(response)


def decode_page(response: Response) -> tuple[list[Backup], str | None]:
    """One page of the list route: its backups and the raw ``next`` link, if any.

    Accepts DRF's paginated object and, for servers without pagination, a bare list.
    """
    _expect(response, 200)
    data = decode_json(response.body)
    if type(data) is list:
        return decode_backups(data, where="$"), None
    if type(data) is not dict:
        raise ResponseValidationError(
            f"expected a page object, got {type(data).__name__}", path="$", body=data
        )
    if "results" not in data:
        raise ResponseValidationError(
            "the page has no 'results' field", path="$.results", body=data
        )
    next_link = data.get("next")
    if next_link is not None and type(next_link) is not str:
        raise ResponseValidationError(
            f"'next' must be a URL or null, got {type(next_link).__name__}",
            path="$.next",
            body=data,
        )
    return decode_backups(data["results"]), next_link or None


def _optional(data: dict[str, Any], key: str, kind: type) -> Any:
    value = data.get(key)
    if value is None:
        return None
    if type(value) is not kind:
        raise ResponseValidationError(
            f"restore answer field {key!r} must be {kind.__name__}, got {type(value).__name__}",
            path=f"$.{key}",
            body=data,
        )
    return value


def decode_restore_response(response: Response) -> RestoreResult:
    """Any 2xx with a JSON object (or no body); other statuses become typed errors."""
    if not 200 <= response.status < 300:
        raise error_from_response(response)
    data: Any = decode_json(response.body) if response.body.strip() else {}
    if type(data) is not dict:
        raise ResponseValidationError(
            f"expected a JSON object from restore, got {type(data).__name__}", path="$", body=data
        )
    return RestoreResult(
        raw=data,
        status_code=response.status,
        status=_optional(data, "status", str),
        message=_optional(data, "message", str),
        server_id=_optional(data, "server_id", int),
        backup_id=_optional(data, "backup_id", int),
    )


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delta-seconds or an HTTP date.

    Fractional seconds are accepted; a date in the past means 0; garbage means ``None``.
    """
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return seconds if 0 <= seconds < math.inf else None  # also refuses NaN
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def server_date(headers: Mapping[str, str]) -> datetime | None:
    """The server's clock as its ``Date`` header states it, or ``None``."""
    value = headers.get("Date")
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _field_errors(body: Any) -> dict[str, list[str]]:
    """DRF's ``{"field": ["message", ...]}`` (also a bare string per field)."""
    if type(body) is not dict:
        return {}
    errors: dict[str, list[str]] = {}
    for field, messages in body.items():
        if field == "detail":
            continue
        if isinstance(messages, str):
            errors[str(field)] = [messages]
        elif isinstance(messages, list):
            errors[str(field)] = [str(message) for message in messages]
        else:
            errors[str(field)] = [json.dumps(messages)]
    return errors


def _describe(body: Any, field_errors: dict[str, list[str]]) -> str:
    if type(body) is dict and isinstance(body.get("detail"), str):
        return str(body["detail"])
    if field_errors:
        return "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in field_errors.items())
    if isinstance(body, str):
        return body
    if body is None:
        return "no body"
    return json.dumps(body)[:_SNIPPET]


def error_from_response(response: Response) -> APIStatusError:
    """Map an unsuccessful answer to its exception class. The one place statuses map.

    The body is decoded as JSON when it is JSON and kept as a text snippet otherwise,
    so even an HTML error page yields the right class and a readable message.
    """
    status = response.status
    body: Any
    if not response.body.strip():
        body = None
    else:
        try:
            body = _loads(response.body)
        except (ValueError, UnicodeDecodeError):
            body = _snippet(response.body)
    field_errors = _field_errors(body) if status == 400 else {}
    path = URL(response.url).path
    message = f"{response.method} {path} -> {status}: {_describe(body, field_errors)}"
    common: dict[str, Any] = {"body": body, "method": response.method, "url": response.url}
    if status == 400:
        return BadRequestError(message, field_errors=field_errors, **common)
    if status == 401:
        return AuthenticationError(message, status_code=status, **common)
    if status == 404:
        return NotFoundError(message, status_code=status, **common)
    if status == 429:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return RateLimitError(message, status_code=status, retry_after=retry_after, **common)
    if status >= 500:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return ServerError(message, status_code=status, retry_after=retry_after, **common)
    if 300 <= status < 400:
        location = response.headers.get("Location", "")
        message = f"{response.method} {path} -> {status}: unexpected redirect to {location!r}"
    return APIStatusError(message, status_code=status, **common)
