"""The cattrs converters that turn the API's JSON into models.

Two converters come from one factory: a fast one for the success path, and a detailed
one that is only run after the fast one failed, to name the field to blame. Both are
strict where the API is typed (an ``int`` is never a ``bool`` or a numeric string),
ignore fields they do not know, and keep enum values they do not know.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import attrs
import cattrs

from ._errors import ResponseValidationError
from ._models import Backup, BackupStatus, BackupType, ServerRef

__all__ = ["decode_backup", "decode_backups", "make_converter"]

_Enum = TypeVar("_Enum", BackupStatus, BackupType)


def _structure_int(value: Any, _: type) -> int:
    if type(value) is int:
        return value
    if type(value) is float and value.is_integer():
        return int(value)
    raise TypeError(f"expected an integer, got {type(value).__name__}")


def _structure_str(value: Any, _: type) -> str:
    if type(value) is str:
        return value
    raise TypeError(f"expected a string, got {type(value).__name__}")


def _structure_datetime(value: Any, _: type) -> datetime:
    if type(value) is not str:
        raise TypeError(f"expected an ISO 8601 timestamp, got {type(value).__name__}")
    parsed = datetime.fromisoformat(value)
    # The API documents UTC; a timestamp without an offset is read as UTC rather than
    # handed out naive, because naive and aware datetimes cannot even be compared.
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _enum_hook(enum_type: type[_Enum]) -> Callable[[Any, type], _Enum]:
    known = enum_type._value2member_map_

    def structure(value: Any, _: type) -> _Enum:
        member = known.get(value) if type(value) is str else None
        if member is not None:
            return member  # type: ignore[return-value]
        if type(value) is not str:
            raise TypeError(f"expected a string, got {type(value).__name__}")
        return enum_type(value)

    return structure


def _backup_hook() -> Callable[[Any, type], Backup]:
    """A hand-unrolled structure function for :class:`Backup`, the hot path of every list.

    It accepts exactly what the generated hooks accept (the detailed converter still
    explains any refusal), in well under half the time the generated hooks take.
    """
    # The frozen classes' attrs __init__ goes through object.__setattr__ per field; on a
    # fresh instance the slots can be filled directly, which is what decoding does
    # thousands of times a page. (No validators or converters are skipped: there are none.)
    for model in (Backup, ServerRef):
        if any(f.validator or f.converter for f in attrs.fields(model)):
            raise TypeError(f"{model.__name__} has validators: build it through __init__ here")
    new = object.__new__
    slot = {name: getattr(Backup, name).__set__ for name in attrs.fields_dict(Backup)}
    set_id, set_server, set_type, set_status = (
        slot["id"],
        slot["server"],
        slot["backup_type"],
        slot["status"],
    )
    set_size, set_created, set_expires = slot["size_mb"], slot["created_at"], slot["expires_at"]
    set_description, set_message = slot["description"], slot["message"]
    server_slot = {name: getattr(ServerRef, name).__set__ for name in attrs.fields_dict(ServerRef)}
    set_server_id, set_name = server_slot["id"], server_slot["name"]
    known_status = BackupStatus._value2member_map_
    known_type = BackupType._value2member_map_
    status_of = _enum_hook(BackupStatus)
    type_of = _enum_hook(BackupType)
    parse_datetime = datetime.fromisoformat
    text = str

    def aware(value: Any) -> datetime:
        if type(value) is not text:
            raise TypeError("expected an ISO 8601 timestamp")
        parsed = parse_datetime(value)
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)

    # Written out inline, since a function call per field is a fifth of the cost here;
    # anything unusual (an unknown enum value, a naive timestamp, a float size) takes
    # the slower general path, and anything wrong raises for the detailed explanation.
    def structure(data: Any, _: type) -> Backup:
        server = data["server"]
        server_id = server["id"]
        backup_id = data["id"]
        size = data["size_mb"]
        name = server.get("name")
        description = data.get("description")
        message = data.get("message")
        if type(backup_id) is not int or type(server_id) is not int:
            raise TypeError("expected an integer id")
        if size is not None and type(size) is not int:
            size = _structure_int(size, int)
        if (
            (name is not None and type(name) is not text)
            or (description is not None and type(description) is not text)
            or (message is not None and type(message) is not text)
        ):
            raise TypeError("expected a string or null")
        raw_status = data["status"]
        raw_type = data["backup_type"]
        status = known_status.get(raw_status) if type(raw_status) is text else None
        kind = known_type.get(raw_type) if type(raw_type) is text else None
        created = data["created_at"]
        created_at = parse_datetime(created) if type(created) is text else aware(created)
        if created_at.tzinfo is None:
            created_at = created_at.replace(tzinfo=UTC)
        expires = data.get("expires_at")
        server_ref = new(ServerRef)
        set_server_id(server_ref, server_id)
        set_name(server_ref, name)
        backup = new(Backup)
        set_id(backup, backup_id)
        set_server(backup, server_ref)
        set_type(backup, kind if kind is not None else type_of(raw_type, BackupType))
        set_status(backup, status if status is not None else status_of(raw_status, BackupStatus))
        set_size(backup, size)
        set_created(backup, created_at)
        set_expires(backup, None if expires is None else aware(expires))
        set_description(backup, description)
        set_message(backup, message)
        return backup

    return structure


def make_converter(*, detailed_validation: bool = False) -> cattrs.Converter:
    """Build a converter for the API's models.

    ``detailed_validation=True`` collects every failure with its path (slower); the
    SDK only uses it to explain a body the fast converter could not decode.
    """
    converter = cattrs.Converter(detailed_validation=detailed_validation)
    converter.register_structure_hook(int, _structure_int)
    converter.register_structure_hook(str, _structure_str)
    converter.register_structure_hook(datetime, _structure_datetime)
    converter.register_structure_hook(BackupStatus, _enum_hook(BackupStatus))
    converter.register_structure_hook(BackupType, _enum_hook(BackupType))
    if not detailed_validation:
        converter.register_structure_hook(Backup, _backup_hook())
    return converter


_FAST = make_converter()
_DETAILED = make_converter(detailed_validation=True)
_structure_backup: Callable[[Any, type], Backup] = _FAST.get_structure_hook(Backup)


def _explain(value: Any, where: str) -> ResponseValidationError:
    """Describe why ``value`` is not a backup, naming the first field to blame."""
    try:
        _DETAILED.structure(value, Backup)
    except cattrs.BaseValidationError as exc:
        problems = cattrs.transform_error(exc, path=where)
        first = problems[0] if problems else f"invalid backup @ {where}"
        message, _, path = first.rpartition(" @ ")
        return ResponseValidationError(
            f"unexpected backup in the API's answer: {message} at {path}", path=path, body=value
        )
    except Exception as exc:  # the detailed pass can fail in ways the fast one did not
        return ResponseValidationError(
            f"unexpected backup in the API's answer at {where}: {exc}", path=where, body=value
        )
    # The fast converter refused what the detailed one accepts: still a refusal.
    return ResponseValidationError(f"unexpected backup in the API's answer at {where}", path=where)


def decode_backup(value: Any, *, where: str = "$") -> Backup:
    """Structure one decoded JSON value into a :class:`Backup`.

    Raises :class:`ResponseValidationError` naming the field when it does not fit.
    """
    if type(value) is not dict:
        raise ResponseValidationError(
            f"expected a backup object at {where}, got {type(value).__name__}",
            path=where,
            body=value,
        )
    try:
        return _structure_backup(value, Backup)
    except Exception:
        pass
    # Raised outside the handler, so that it carries no context from the converter.
    raise _explain(value, where)


def decode_backups(values: Any, *, where: str = "$.results", offset: int = 0) -> list[Backup]:
    """Structure a decoded JSON list into backups, in the order given.

    ``offset`` is the index of the first value in the whole list, for error paths.
    """
    if type(values) is not list:
        raise ResponseValidationError(
            f"expected a list of backups at {where}, got {type(values).__name__}",
            path=where,
            body=values,
        )
    structure = _structure_backup
    try:
        return [structure(item, Backup) for item in values]
    except Exception:
        pass
    # Slow path, only for a body that failed: find the first offending item.
    return [
        decode_backup(item, where=f"{where}[{index}]")
        for index, item in enumerate(values, start=offset)
    ]
