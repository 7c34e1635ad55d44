"""Answers decoded into models: one backup, a page, a restore, or a typed error.

A page or a backup is first offered to msgspec (:mod:`asyncbackups._decoding.fast`),
which takes the usual answer; what it leaves goes through the general path: the JSON and
the protocol's rules of :mod:`asyncbackups._core.protocol`, then the converter of
:mod:`asyncbackups._decoding.convert`, which accepts it or names the field to blame.
"""

from __future__ import annotations

import sys
from typing import Any

from .._core.errors import ResponseValidationError
from .._core.models import Backup, RestoreResult
from .._core.protocol import (
    BACKUPS_PATH,
    MAX_KEPT_DEPTH,
    Response,
    decode_json,
    error_from_response,
    is_blank,
    nests_deeper_than,
    snippet,
)
from .convert import decode_backup, decode_backups
from .fast import decode_backup_bytes, decode_page_bytes

__all__ = [
    "decode_backup_response",
    "decode_delete_response",
    "decode_page",
    "decode_page_parts",
    "decode_restore_response",
    "parse_backups",
]


def _expect(response: Response, *statuses: int) -> None:
    if response.status not in statuses:
        raise error_from_response(response)


def decode_backup_response(response: Response) -> Backup:
    """A 200 or 201 carrying one backup; anything else becomes its typed error."""
    _expect(response, 200, 201)
    backup = decode_backup_bytes(response.body)
    if backup is not None:
        return backup
    return decode_backup(decode_json(response.body))


def decode_delete_response(response: Response) -> None:
    """Any 2xx; also a 404 that follows an attempt which may have deleted it already."""
    if 200 <= response.status < 300:
        return
    if response.status == 404 and response.after_ambiguous:
        return
    raise error_from_response(response)


def _page(response: Response) -> tuple[list[Any], str | None, int | None, str]:
    _expect(response, 200)
    data = decode_json(response.body)
    if type(data) is list:
        return data, None, None, "$"
    if type(data) is not dict:
        raise ResponseValidationError(
            f"expected a page object, got {type(data).__name__}", path="$", body=data
        )
    if "results" not in data:
        raise ResponseValidationError(
            "the page has no 'results' field", path="$.results", body=data
        )
    results = data["results"]
    if type(results) is not list:
        raise ResponseValidationError(
            f"expected a list of backups at $.results, got {type(results).__name__}",
            path="$.results",
            body=data,
        )
    next_link = data.get("next")
    if next_link is not None and type(next_link) is not str:
        raise ResponseValidationError(
            f"'next' must be a URL or null, got {type(next_link).__name__}",
            path="$.next",
            body=data,
        )
    count = data.get("count")
    if type(count) is not int or not 0 <= count <= sys.maxsize:
        count = None
    return results, next_link or None, count, "$.results"


def decode_page_parts(response: Response) -> tuple[list[Any], str | None, int | None]:
    """One page of the list route, checked but not yet structured into backups.

    Gives the raw ``results`` list, the ``next`` link (``None`` on the last page) and
    ``count`` when it is usable: an ``int`` from 0 to ``sys.maxsize``, else ``None``,
    as the count is only a hint (a huge one would overflow the caller's arithmetic).
    Accepts DRF's paginated object and, for servers without pagination, a bare list.
    """
    results, next_link, count, _ = _page(response)
    return results, next_link, count


def parse_backups(body: bytes | str) -> list[Backup]:
    """The backups of a list answer you fetched yourself: a DRF page or a bare list.

    Validates exactly as the client does; raises :class:`ResponseValidationError`
    naming the field to blame.
    """
    if isinstance(body, str):
        body = body.encode()
    if not isinstance(body, bytes):
        raise TypeError(f"body must be bytes or str, not {type(body).__name__}")
    fast = decode_page_bytes(body)
    if fast is not None:
        return fast[0]
    response = Response(method="GET", url=BACKUPS_PATH, status=200, headers={}, body=body)
    backups, _ = decode_page(response)
    return backups


def decode_page(response: Response) -> tuple[list[Backup], str | None]:
    """One page of the list route: its backups and the raw ``next`` link, if any.

    Accepts DRF's paginated object and, for servers without pagination, a bare list.
    This is the general path alone, for a page the fast path left to it.
    """
    results, next_link, _, where = _page(response)
    return decode_backups(results, where=where), next_link


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
    data: Any = {} if is_blank(response.body) else decode_json(response.body)
    if type(data) is not dict:
        raise ResponseValidationError(
            f"expected a JSON object from restore, got {type(data).__name__}", path="$", body=data
        )
    if nests_deeper_than(data, MAX_KEPT_DEPTH):
        raise ResponseValidationError(
            f"the restore answer nests deeper than {MAX_KEPT_DEPTH} levels",
            path="$",
            body=snippet(response.body),
        )
    return RestoreResult(
        raw=data,
        status_code=response.status,
        status=_optional(data, "status", str),
        message=_optional(data, "message", str),
        server_id=_optional(data, "server_id", int),
        backup_id=_optional(data, "backup_id", int),
    )
