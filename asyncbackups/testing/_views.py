"""What each route answers, worded the way a Django REST Framework service words it.

Pure: an ``ApiRequest`` goes in, a ``Reply`` with its rendered body comes out, so the
whole protocol (auth, routing, validation, pagination, idempotency) is testable without
a socket. The aiohttp layer only moves bytes and injects faults around this.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ._idempotency import IdempotencyKeyReusedError, IdempotencyStore
from ._state import (
    BACKUP_TYPES,
    BackupsState,
    FakeBackup,
    RestoreRefusedError,
    UnknownBackupError,
    UnknownServerError,
)

__all__ = [
    "API_PREFIX",
    "JSON_CONTENT_TYPE",
    "ApiRequest",
    "BackupsViews",
    "Reply",
    "Resolved",
    "Route",
    "resolve",
]

API_PREFIX: Final = "/api/v1/"
JSON_CONTENT_TYPE: Final = "application/json"
CREATE_MESSAGE: Final = (
    "Backup is being created. This may take several minutes depending on server size."
)
RESTORE_MESSAGE: Final = "Server restore has been started."
DESCRIPTION_MAX_LENGTH: Final = 255

_WWW_AUTHENTICATE: Final = ("WWW-Authenticate", 'Bearer realm="api"')
_REPLAYED: Final = ("Idempotent-Replayed", "true")
# Digits, signed or not. Django's IntegerField would also take surrounding blanks and a
# zero fraction ("12.0"); the documented API (docs/openapi.yaml) takes an integer, and
# the fake holds clients to it, as Schemathesis holds the fake to the document.
_WHOLE_NUMBER: Final = re.compile(r"([+-]?\d{1,30})")
# IDs are 64-bit, as a Django BigAutoField's: a filter outside is refused, as Django's
# range validators refuse it.
_ID_LOW: Final = -(2**63)
_ID_HIGH: Final = 2**63 - 1


@dataclass(frozen=True, slots=True)
class ApiRequest:
    """What the views need from an HTTP request; ``url`` is absolute, as addressed."""

    method: str
    url: str
    query: Mapping[str, str]
    body: bytes = b""
    authorization: str | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class Reply:
    """An answer: status, rendered body and headers; ``replayed`` marks an idempotent replay."""

    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    content_type: str | None = JSON_CONTENT_TYPE
    replayed: bool = False


def _render(data: object) -> bytes:
    # DRF's JSONRenderer: compact separators, UTF-8 rather than \u escapes.
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


def _reply(status: int, data: object, *headers: tuple[str, str]) -> Reply:
    return Reply(status, _render(data), headers)


def _detail(status: int, detail: str, *headers: tuple[str, str]) -> Reply:
    return _reply(status, {"detail": detail}, *headers)


def _not_found() -> Reply:
    return _detail(404, "Not found.")


class _BadRequest(Exception):
    """A 400 answer raised from deep inside a view."""

    def __init__(self, data: object) -> None:
        super().__init__(data)
        self.reply = _reply(400, data)


_ViewHandler = Callable[["BackupsViews", ApiRequest, Mapping[str, str]], Reply]


@dataclass(frozen=True, slots=True)
class Route:
    """One URL pattern relative to ``/api/v1/``, its name, and its view per method."""

    template: str
    pattern: re.Pattern[str]
    name: str
    views: Mapping[str, _ViewHandler]

    @property
    def allow(self) -> str:
        """The ``Allow`` header DRF would send for this route."""
        methods = list(self.views)
        if "GET" in methods:
            methods.append("HEAD")
        return ", ".join([*methods, "OPTIONS"])


@dataclass(frozen=True, slots=True)
class Resolved:
    """A request path resolved: relative to ``/api/v1/``, with its route if any."""

    path: str
    route: Route | None
    params: Mapping[str, str]

    @property
    def template(self) -> str | None:
        """The route's template, like ``"backups/{id}/"``; ``None`` if no route matched."""
        return None if self.route is None else self.route.template


def _parse_json_body(body: bytes) -> object:
    """Decode a request body as DRF's JSONParser would; empty means an empty form."""
    if not body.strip():
        return {}

    def reject_constant(name: str) -> object:
        raise ValueError(f"Out of range float values are not JSON compliant: {name!r}")

    try:
        return json.loads(body.decode("utf-8"), parse_constant=reject_constant)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError alike
        raise _BadRequest({"detail": f"JSON parse error - {exc}"}) from None


def _json_object(body: bytes) -> dict[str, Any]:
    data = _parse_json_body(body)
    if not isinstance(data, dict):
        kind = type(data).__name__
        raise _BadRequest(
            {"non_field_errors": [f"Invalid data. Expected a dictionary, but got {kind}."]}
        )
    return data


_MISSING: Final = object()


def _integer_field(data: Mapping[str, Any], name: str, errors: dict[str, list[str]]) -> int:
    value = data.get(name, _MISSING)
    if value is _MISSING:
        errors[name] = ["This field is required."]
    elif value is None:
        errors[name] = ["This field may not be null."]
    elif isinstance(value, bool) or not isinstance(value, int):
        # Stricter than DRF, which would take "12": the SDK must send real integers.
        errors[name] = ["A valid integer is required."]
    else:
        return value
    return 0


def _description_field(data: Mapping[str, Any], errors: dict[str, list[str]]) -> str | None:
    value = data.get("description", _MISSING)
    if value is _MISSING:
        return None
    if value is None:
        # DRF's CharField without allow_null; leaving the field out means "none".
        errors["description"] = ["This field may not be null."]
        return None
    if not isinstance(value, str):
        # Stricter than DRF, which would turn a number into text: the API documents a
        # string, and the SDK must send one.
        errors["description"] = ["Not a valid string."]
        return None
    # DRF's CharField trims surrounding whitespace.
    text = value.strip()
    if len(text) > DESCRIPTION_MAX_LENGTH:
        errors["description"] = [
            f"Ensure this field has no more than {DESCRIPTION_MAX_LENGTH} characters."
        ]
    return text


def _with_page(url: str, page: int | None) -> str:
    """The URL with its ``page`` parameter set (or removed), other parameters sorted."""
    scheme, netloc, path, query, fragment = urlsplit(url)
    params = dict(parse_qsl(query, keep_blank_values=True))
    params.pop("page", None)
    if page is not None:
        params["page"] = str(page)
    return urlunsplit((scheme, netloc, path, urlencode(sorted(params.items())), fragment))


class BackupsViews:
    """The Backups API's views over a ``BackupsState``: auth, validation, pagination.

    ``handle`` answers one request. With ``honor_idempotency_keys`` a POST carrying an
    ``Idempotency-Key`` header is answered once per (token, key): a repeat with the same
    path and body gets the first successful answer again, flagged
    ``Idempotent-Replayed: true``, and changes nothing; a repeat with a different request
    gets 422. Answers that were not successful are not remembered, so a corrected
    request may reuse its key. A backup made without a description is rendered with
    ``"description": ""``, as the API's documentation shows it, or ``null`` with
    ``null_descriptions``. ``page_size``, ``honor_idempotency_keys`` and
    ``null_descriptions`` may be changed at any time.
    """

    def __init__(
        self,
        state: BackupsState,
        *,
        token: str,
        page_size: int = 100,
        honor_idempotency_keys: bool = True,
        null_descriptions: bool = False,
    ) -> None:
        """Serve ``state`` to holders of ``token``."""
        self.page_size = page_size
        self.null_descriptions = null_descriptions
        if not token or any(char.isspace() for char in token):
            raise ValueError("token must be a non-empty string without whitespace")
        self.state = state
        self.token = token
        self.honor_idempotency_keys = honor_idempotency_keys
        self.idempotency: IdempotencyStore[Reply] = IdempotencyStore()

    @property
    def page_size(self) -> int:
        """Backups per list page; setting one below 1 raises ``ValueError``."""
        return self._page_size

    @page_size.setter
    def page_size(self, value: int) -> None:
        if value < 1:
            raise ValueError(f"page_size must be >= 1, got {value}")
        self._page_size = value

    def handle(self, request: ApiRequest, resolved: Resolved) -> Reply:
        """Answer ``request``, whose path resolved to ``resolved`` (see ``resolve``)."""
        route = resolved.route
        if route is None:
            return _not_found()
        # DRF authenticates before it looks at the method, so a stranger learns nothing.
        denied = self._authenticate(request.authorization)
        if denied is not None:
            return denied
        method = "GET" if request.method == "HEAD" else request.method
        allow = ("Allow", route.allow)
        if method == "OPTIONS":
            return _reply(
                200,
                {
                    "name": route.name,
                    "description": "",
                    "renders": [JSON_CONTENT_TYPE],
                    "parses": [JSON_CONTENT_TYPE],
                },
                allow,
            )
        view = route.views.get(method)
        if view is None:
            return _detail(405, f'Method "{request.method}" not allowed.', allow)

        key = request.idempotency_key
        if not (key and method == "POST" and self.honor_idempotency_keys):
            return self._run(view, request, resolved.params, allow)
        fingerprint = self._fingerprint(request, resolved)
        try:
            first = self.idempotency.lookup(self.token, key, fingerprint)
        except IdempotencyKeyReusedError:
            return _detail(422, f'Idempotency-Key "{key}" was already used for another request.')
        if first is not None:
            return replace(first, headers=(*first.headers, _REPLAYED), replayed=True)
        reply = self._run(view, request, resolved.params, allow)
        if 200 <= reply.status < 300:
            self.idempotency.remember(self.token, key, fingerprint, reply)
        return reply

    # -- the views -----------------------------------------------------------------

    def list_backups(self, request: ApiRequest, params: Mapping[str, str]) -> Reply:
        """``GET backups/``: filtered, newest first, DRF page-number pagination."""
        errors: dict[str, list[str]] = {}
        server_id: int | None = None
        raw_server = request.query.get("server_id")
        # A blank filter is refused, where Django's filters would ignore it: the API
        # document (docs/openapi.yaml) takes an ID or nothing.
        if raw_server is not None:
            match = _WHOLE_NUMBER.fullmatch(raw_server)
            if match is None:
                errors["server_id"] = ["Enter a whole number."]
            elif not _ID_LOW <= int(match.group(1)) <= _ID_HIGH:
                bound, value = (
                    ("greater", _ID_LOW) if int(match.group(1)) < 0 else ("less", _ID_HIGH)
                )
                errors["server_id"] = [f"Ensure this value is {bound} than or equal to {value}."]
            else:
                server_id = int(match.group(1))
        backup_type = request.query.get("backup_type")
        if backup_type is not None and backup_type not in BACKUP_TYPES:
            errors["backup_type"] = [
                f"Select a valid choice. {backup_type} is not one of the available choices."
            ]
        if errors:
            return _reply(400, errors)

        raw_page = request.query.get("page") or "1"
        total = self.state.count(server_id=server_id, backup_type=backup_type)
        last_page = max(1, math.ceil(total / self.page_size))
        try:
            page = last_page if raw_page == "last" else int(raw_page)
        except ValueError:
            return _detail(404, "Invalid page.")
        if not 1 <= page <= last_page:
            return _detail(404, "Invalid page.")
        total, backups = self.state.page(
            server_id=server_id,
            backup_type=backup_type,
            offset=(page - 1) * self.page_size,
            limit=self.page_size,
        )
        # Pages may have moved between the count and the read if another thread wrote.
        last_page = max(1, math.ceil(total / self.page_size))
        has_next = page < last_page
        has_previous = page > 1
        body = {
            "count": total,
            "next": _with_page(request.url, page + 1) if has_next else None,
            "previous": (
                _with_page(request.url, page - 1 if page > 2 else None) if has_previous else None
            ),
            "results": [self._render(backup) for backup in backups],
        }
        return _reply(200, body)

    def create_backup(self, request: ApiRequest, params: Mapping[str, str]) -> Reply:
        """``POST backups/``: start a manual backup; 201 with it and a ``message``."""
        data = _json_object(request.body)
        errors: dict[str, list[str]] = {}
        server_id = _integer_field(data, "server_id", errors)
        description = _description_field(data, errors)
        if errors:
            return _reply(400, errors)
        try:
            backup = self.state.create_backup(server_id, description)
        except UnknownServerError:
            return _not_found()
        return _reply(201, {**self._render(backup), "message": CREATE_MESSAGE})

    def get_backup(self, request: ApiRequest, params: Mapping[str, str]) -> Reply:
        """``GET backups/{id}/``: one backup as of now."""
        try:
            return _reply(200, self._render(self.state.backup(int(params["id"]))))
        except UnknownBackupError:
            return _not_found()

    def delete_backup(self, request: ApiRequest, params: Mapping[str, str]) -> Reply:
        """``DELETE backups/{id}/``: 204 with no body."""
        try:
            self.state.delete_backup(int(params["id"]))
        except UnknownBackupError:
            return _not_found()
        return Reply(204, content_type=None)

    def restore_server(self, request: ApiRequest, params: Mapping[str, str]) -> Reply:
        """``POST servers/{server_id}/restore/``: 202 once the restore is accepted."""
        server_id = int(params["server_id"])
        # As a DRF detail action: the server is looked up before the body is read.
        if not self.state.has_server(server_id):
            return _not_found()
        data = _json_object(request.body)
        errors: dict[str, list[str]] = {}
        backup_id = _integer_field(data, "backup_id", errors)
        if errors:
            return _reply(400, errors)
        try:
            self.state.restore(server_id, backup_id)
        except (UnknownServerError, UnknownBackupError):
            return _not_found()
        except RestoreRefusedError as exc:
            return _reply(400, {"backup_id": [str(exc)]})
        return _reply(
            202,
            {
                "server_id": server_id,
                "backup_id": backup_id,
                "status": "restoring",
                "message": RESTORE_MESSAGE,
            },
        )

    # -- internals -----------------------------------------------------------------

    def _render(self, backup: FakeBackup) -> dict[str, Any]:
        return backup.to_json(null_description=self.null_descriptions)

    def _run(
        self,
        view: _ViewHandler,
        request: ApiRequest,
        params: Mapping[str, str],
        allow: tuple[str, str],
    ) -> Reply:
        try:
            reply = view(self, request, params)
        except _BadRequest as exc:
            reply = exc.reply
        # DRF puts the route's Allow header on every answer of its views.
        return replace(reply, headers=(*reply.headers, allow))

    def _authenticate(self, header: str | None) -> Reply | None:
        """``None`` if the header carries our token, else DRF's 401 answer."""
        parts = (header or "").split()
        if not parts or parts[0].lower() != "bearer":
            detail = "Authentication credentials were not provided."
        elif len(parts) == 1:
            detail = "Invalid token header. No credentials provided."
        elif len(parts) > 2:
            detail = "Invalid token header. Token string should not contain spaces."
        elif hmac.compare_digest(parts[1].encode(), self.token.encode()):
            return None
        else:
            detail = "Invalid token."
        return _detail(401, detail, _WWW_AUTHENTICATE)

    @staticmethod
    def _fingerprint(request: ApiRequest, resolved: Resolved) -> bytes:
        try:
            # Key order and spacing are not part of the request's meaning.
            canonical = json.dumps(json.loads(request.body or b"{}"), sort_keys=True).encode()
        except ValueError:
            canonical = request.body
        digest = hashlib.sha256(f"{request.method} {resolved.path}\n".encode())
        digest.update(canonical)
        return digest.digest()


ROUTES: Final = (
    Route(
        "backups/",
        re.compile(r"backups/"),
        "Backup List",
        {"GET": BackupsViews.list_backups, "POST": BackupsViews.create_backup},
    ),
    Route(
        "backups/{id}/",
        re.compile(r"backups/(?P<id>[0-9]{1,30})/"),
        "Backup Instance",
        {"GET": BackupsViews.get_backup, "DELETE": BackupsViews.delete_backup},
    ),
    Route(
        "servers/{server_id}/restore/",
        re.compile(r"servers/(?P<server_id>[0-9]{1,30})/restore/"),
        "Server Restore",
        {"POST": BackupsViews.restore_server},
    ),
)


def resolve(path: str) -> Resolved:
    """Resolve an absolute request path (``/api/v1/backups/``) against the routes."""
    if not path.startswith(API_PREFIX):
        return Resolved(path, None, {})
    relative = path[len(API_PREFIX) :]
    for route in ROUTES:
        match = route.pattern.fullmatch(relative)
        if match is not None:
            return Resolved(relative, route, match.groupdict())
    return Resolved(relative, None, {})
