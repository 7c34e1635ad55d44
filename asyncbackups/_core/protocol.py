"""The API's protocol as pure functions: no sockets, no event loop, no aiohttp.

Requests are described by plain values (paths, query parameters, JSON bytes); answers
arrive as :class:`Response` and leave as models or typed exceptions. Everything here is
tested with plain values.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from yarl import URL

from .checks import check_id
from .errors import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    RateLimitError,
    ResponseValidationError,
    ServerError,
)
from .models import BackupType

__all__ = [
    "MAX_KEPT_DEPTH",
    "BACKUPS_PATH",
    "Response",
    "backup_path",
    "decode_json",
    "dump_json",
    "clip",
    "error_from_response",
    "is_blank",
    "list_params",
    "nests_deeper_than",
    "parse_retry_after",
    "request_id_of",
    "restore_path",
    "server_date",
    "snippet",
]

BACKUPS_PATH = "backups/"
# Characters of a body that is not JSON kept as the exception's ``body``.
_SNIPPET = 200
# Characters of server text in one part of an exception message: a message has a few
# such parts, so it stays one readable line whatever the server sends.
_PART = 300
_ELLIPSIS = "..."
# HTTP's delta-seconds is ASCII digits; fractions are tolerated (fakes and some proxies
# send them). float() alone would also take "nan", "1e400", "-0", "1_0" and Arabic digits.
_DELTA_SECONDS = re.compile(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+")
# The three HTTP date forms are 24 to 33 characters; anything much longer is not one.
_HTTP_DATE_CHARS = 64
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Nesting a JSON value kept on a result or an exception may have. The JSON parser reads
# nearly a thousand levels, but copy.deepcopy and pickle recurse per level and fail first;
# no error body or restore answer of this API nests more than a few levels.
MAX_KEPT_DEPTH = 64


class Response:
    """One HTTP answer as the protocol sees it.

    ``repeated`` is set by the transport when aiohttp silently sent the request again
    after a dropped connection (so an earlier copy may have acted). ``after_ambiguous``
    is set by the call when an earlier attempt of it may have reached the server, so
    decoders can read a 404 on a retried delete as "already done".
    """

    __slots__ = ("after_ambiguous", "body", "headers", "method", "repeated", "status", "url")

    def __init__(
        self,
        *,
        method: str,
        url: str,
        status: int,
        headers: Mapping[str, str],
        body: bytes,
        after_ambiguous: bool = False,
        repeated: bool = False,
    ) -> None:
        self.method = method
        self.url = url
        self.status = status
        self.headers = headers
        self.body = body
        self.after_ambiguous = after_ambiguous
        self.repeated = repeated


# -- routes -------------------------------------------------------------------------


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


def clip(text: str, limit: int = _PART) -> str:
    """``text`` as part of a one-line message: control characters escaped, cut to ``limit``."""
    head = text[: limit + 1]
    if not head.isprintable():
        # Newlines would forge log lines; bidi and other format characters would
        # disguise the text; lone surrogates would fail when the message is printed.
        head = "".join(char if char.isprintable() else repr(char)[1:-1] for char in head)
    return head[:limit] + _ELLIPSIS if len(head) > limit else head


def _clip_join(parts: Iterable[str], separator: str, limit: int = _PART) -> str:
    """Join ``parts`` into one clipped line, reading no more of them than it can show."""
    taken: list[str] = []
    size = 0
    for part in parts:
        if size > limit:
            taken.append(_ELLIPSIS)
            break
        taken.append(part)
        size += len(part) + len(separator)
    return clip(separator.join(taken), limit)


def snippet(body: bytes) -> str:
    """The start of a body that is not JSON, as text."""
    # A UTF-8 character takes at most 4 bytes: decode no more than the snippet can use.
    text = body[: _SNIPPET * 4].decode("utf-8", "replace")
    if len(text) > _SNIPPET or len(body) > _SNIPPET * 4:
        return text[:_SNIPPET] + _ELLIPSIS
    return text


def is_blank(body: bytes) -> bool:
    return not body or body.isspace()  # strip() would copy a body that may be huge


def nests_deeper_than(value: Any, limit: int) -> bool:
    """Whether lists and dicts in ``value`` nest more than ``limit`` levels (no recursion)."""
    stack = [(value, 1)] if isinstance(value, list | dict) else []
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True  # also ends a circular value, whose depth grows without end
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, list | dict))
    return False


def _parse_json(body: bytes, loader: Callable[[bytes], Any] | None) -> tuple[Any, str | None]:
    """``(value, None)``, or ``(None, why)`` when the loader cannot read ``body``.

    Callers raise only after this has returned, outside any ``except`` block, so the
    loader's exception never rides along as ``__context__``: ``JSONDecodeError.doc``
    holds the whole body, which may hold what should not travel with an error.
    """
    try:
        return (loader or json.loads)(body), None
    except MemoryError:
        raise
    except Exception as exc:
        # Loaders fail in ways beyond ValueError: RecursionError for deep nesting in the
        # stdlib, TypeError, ... Any of them only means "not JSON we can read".
        return None, clip(f"{type(exc).__name__}: {exc}", _SNIPPET)


def decode_json(
    body: bytes,
    *,
    where: str = "the API's answer",
    loader: Callable[[bytes], Any] | None = None,
) -> Any:
    """Parse a JSON body; ``ResponseValidationError`` with a snippet when it is not JSON.

    ``loader`` replaces the standard library's ``json.loads``; whatever it raises becomes
    the ``ResponseValidationError``. Error bodies, restore answers and the pages and
    backups msgspec left to the general path are parsed here: none is common or large
    enough for a faster parser to pay.
    """
    value, problem = _parse_json(body, loader)
    if problem is None:
        return value
    shown = snippet(body)
    raise ResponseValidationError(
        f"{where} is not valid JSON ({problem}): '{clip(shown)}'", body=shown
    )


def _http_date(value: str) -> datetime | None:
    """An HTTP date (IMF-fixdate, RFC 850 or asctime) as an aware UTC datetime, or ``None``."""
    value = value.strip()
    if len(value) > _HTTP_DATE_CHARS or not value.isascii():
        return None  # int() in email.utils would read Arabic or Thai digits as a year
    try:
        when = parsedate_to_datetime(value)
        when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    except Exception:
        # email.utils raises an undocumented mix for hostile text (ValueError for a
        # year or offset out of range, OverflowError for a huge year, IndexError, ...);
        # each means only "not a date".
        return None
    # No HTTP server's clock predates the epoch; a date near datetime.min would only
    # make the caller's arithmetic overflow.
    return when if when >= _EPOCH else None


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delta-seconds or an HTTP date.

    Fractional seconds are accepted; a date in the past means 0; garbage means ``None``.
    Never raises. The result is finite and never negative; it may be absurdly large
    (delta-seconds too long for a float read as the largest float), so callers cap it.
    """
    if not isinstance(value, str):
        return None
    value = value.strip()
    if _DELTA_SECONDS.fullmatch(value):
        seconds = float(value)
        # Only digits reach here, so infinity means "more than 1e308 seconds": a huge
        # wait, which the caller's cap turns into giving up, not into no hint at all.
        return min(seconds, sys.float_info.max)
    when = _http_date(value)
    if when is None:
        return None
    now = now or datetime.now(UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def server_date(headers: Mapping[str, str]) -> datetime | None:
    """The server's clock as its ``Date`` header states it, in UTC, or ``None``. Never raises."""
    value = headers.get("Date")
    return _http_date(value) if isinstance(value, str) else None


def _as_text(value: Any) -> str:
    """A message from an error body: text as is, anything else as its JSON."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        # Circular, too deep for the encoder, or an int past Python's digit limit.
        return f"<{type(value).__name__}>"


def _field_errors(body: Any) -> dict[str, list[str]]:
    """DRF's ``{"field": ["message", ...]}``, from whatever shape the body has.

    A bare string (or any other value) per field becomes a list of one; values that are
    not text become their JSON. A top-level list is how DRF reports errors of no one
    field, so it becomes ``non_field_errors``.
    """
    if isinstance(body, list):
        return {"non_field_errors": [_as_text(message) for message in body]} if body else {}
    if not isinstance(body, dict):
        return {}
    errors: dict[str, list[str]] = {}
    for field, messages in body.items():
        if field == "detail":
            continue
        key = _as_text(field)
        if isinstance(messages, list):
            errors[key] = [_as_text(message) for message in messages]
        else:
            errors[key] = [_as_text(messages)]
    return errors


def _describe_fields(field_errors: dict[str, list[str]]) -> str:
    def described() -> Iterable[str]:
        for field, messages in field_errors.items():
            said = _clip_join((clip(message) for message in messages), " ")
            yield said if field == "non_field_errors" else f"{clip(field, 100)}: {said}"

    return _clip_join(described(), "; ")


def _describe(body: Any, field_errors: dict[str, list[str]], raw: bytes) -> str:
    if isinstance(body, dict) and isinstance(body.get("detail"), str):
        return clip(body["detail"])
    if field_errors:
        return _describe_fields(field_errors)
    if isinstance(body, str):
        return clip(body)
    if body is None:
        return "no body"
    # Other JSON: the server's own text says it best, and is cheap to cut.
    return clip(snippet(raw))


def _url_path(url: str) -> str:
    try:
        path = URL(url).path
    except (ValueError, TypeError):  # yarl refuses it (UnicodeError is a ValueError)
        path = url
    return clip(path)


def request_id_of(headers: Mapping[str, str]) -> str | None:
    """The API's ID for a request, from ``X-Request-ID`` (or ``Request-Id``), if any."""
    for name in ("X-Request-ID", "X-Request-Id", "Request-Id"):
        value = headers.get(name)
        if value:
            return clip(value, 200) if isinstance(value, str) else None
    return None


def error_from_response(
    response: Response, *, loader: Callable[[bytes], Any] | None = None
) -> APIStatusError:
    """Map an unsuccessful answer to its exception class. The one place statuses map.

    The body is decoded as JSON when it is JSON and kept as a text snippet otherwise,
    so even an HTML error page yields the right class and a readable message. The
    message is one line of bounded length whatever the answer held; ``body`` keeps the
    whole decoded JSON (as text when it nests too deep to copy or pickle). ``loader`` is
    as for :func:`decode_json`. Never raises.
    """
    status = response.status
    raw = response.body
    body: Any = None
    if not is_blank(raw):
        body, problem = _parse_json(raw, loader)
        if problem is not None or nests_deeper_than(body, MAX_KEPT_DEPTH):
            body = snippet(raw)
    field_errors = _field_errors(body) if status == 400 else {}
    request = f"{clip(response.method, 20)} {_url_path(response.url)} -> {status}"
    if 300 <= status < 400:
        location = response.headers.get("Location")
        where = clip(location) if isinstance(location, str) else ""
        message = f"{request}: unexpected redirect to '{where}'"
    else:
        message = f"{request}: {_describe(body, field_errors, raw)}"
    common: dict[str, Any] = {
        "body": body,
        "method": response.method,
        "url": response.url,
        "headers": response.headers,
        "request_id": request_id_of(response.headers),
    }
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
    return APIStatusError(message, status_code=status, **common)
