"""The cattrs converters that turn the API's JSON into models.

Two converters come from one factory: a fast one for the success path, and a detailed
one that is only run after the fast one failed, to name the field to blame. The detailed
converter is the one truth: the fast hook must accept exactly what it accepts and give the
same values (``tests/test_decode_differential.py`` holds them to it), and when the fast
hook refuses, the detailed converter's verdict is what the caller gets.

The rules, the same in both:

- an integer field (``id``, ``server.id``, ``size_mb``) takes an ``int`` (never a
  ``bool``) or a whole-number ``float`` no larger than 2**53 in magnitude (JSON does not
  tell ``501`` from ``501.0``, and some serializers write the latter); ``501.5``, NaN,
  infinities, ``1e300`` and ``"501"`` are refused;
- a string field takes a ``str`` (or ``null`` where the model allows ``None``);
- a timestamp is an ISO 8601 string: read as UTC when it has no offset, and refused when
  its instant in UTC falls outside what :class:`~datetime.datetime` holds (year 1-9999);
- an enum value the SDK does not know keeps its text (an open enum member);
- an object (the backup, its ``server``) must be a JSON object: anything else is blamed on
  the object's own path; fields the models do not know are ignored, and a missing field is
  refused unless the model gives it a default.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from .._core.errors import ResponseValidationError
from .._core.models import (
    Backup,
    BackupStatus,
    BackupType,
    ServerRef,
)

if TYPE_CHECKING:
    import cattrs

__all__ = ["decode_backup", "decode_backups", "make_converter"]

_Enum = TypeVar("_Enum", BackupStatus, BackupType)


# The largest magnitude up to which every whole float is exactly the integer meant; past
# it a float is an approximation (2.0**53 + 1 == 2.0**53), not an ID.
_WHOLE_FLOAT_LIMIT = 2.0**53


def _structure_int(value: Any, _: type) -> int:
    if type(value) is int:
        return value
    if type(value) is float:
        if value.is_integer() and -_WHOLE_FLOAT_LIMIT <= value <= _WHOLE_FLOAT_LIMIT:
            return int(value)
        raise ValueError(f"expected a whole number within +/-2**53, got {value!r}")
    raise TypeError(f"expected an integer, got {type(value).__name__}")


def _structure_str(value: Any, _: type) -> str:
    if type(value) is str:
        return value
    raise TypeError(f"expected a string, got {type(value).__name__}")


def _structure_datetime(value: Any, _: type) -> datetime:
    if type(value) is not str:
        raise TypeError(f"expected an ISO 8601 timestamp, got {type(value).__name__}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        # RFC 3339 allows "t" and "z" in lower case, which fromisoformat refuses before
        # Python 3.12 and msgspec (the fast path) reads: read them the same way.
        if "t" not in value and "z" not in value:
            raise
        parsed = datetime.fromisoformat(value.replace("t", "T").replace("z", "Z"))
    if parsed.tzinfo is None:
        # The API documents UTC; a timestamp without an offset is read as UTC rather than
        # handed out naive, because naive and aware datetimes cannot even be compared.
        return parsed.replace(tzinfo=UTC)
    if parsed.year == 1 or parsed.year == 9999:
        # "9999-12-31T23:59:59-01:00" parses, but its instant is in year 10000 in UTC,
        # and every .astimezone(UTC) of it (the CLI's, a caller's) would overflow.
        try:
            parsed.astimezone(UTC)
        except OverflowError:
            raise ValueError(f"timestamp outside the range of datetime in UTC: {value!r}") from None
    return parsed


def _objects_only(converter: cattrs.Converter) -> Callable[[type], Callable[[Any, type], Any]]:
    from cattrs.gen import make_dict_structure_fn

    """A hook factory for attrs classes that refuses anything but a JSON object.

    The generated hooks index whatever they are given, so a string ``server`` was blamed
    on ``server.id`` and a number on ``server``; now any non-object is blamed on itself.
    """

    def factory(cl: type) -> Callable[[Any, type], Any]:
        generated: Callable[..., Any] = make_dict_structure_fn(cl, converter)

        def structure(value: Any, _: type) -> Any:
            if type(value) is not dict:
                raise TypeError(f"expected a JSON object, got {type(value).__name__}")
            return generated(value, cl)

        return structure

    return factory


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

    It accepts exactly what the detailed converter accepts, with the same values, in well
    under half the time the generated hooks take: the common case (an ``int``, a ``str``,
    a known enum value, a timestamp in UTC) is written out here, and everything
    else goes through the very hooks the converters use, so each rule lives in one place.
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
    integer = _structure_int
    timestamp = _structure_datetime
    parse_datetime = datetime.fromisoformat
    utc = UTC
    text = str

    # Written out inline, since a function call per field is a fifth of the cost here.
    # A timestamp is taken as parsed only when it is in UTC (the API writes "Z", which
    # fromisoformat gives as the UTC singleton): a naive one or one with another offset
    # (possibly past the end of datetime's range in UTC) is handed to the shared hook.
    # A ``server`` that is not a dict fails at ``server["id"]`` (no JSON value but an
    # object takes a string index), as the detailed converter refuses it.
    def structure(data: Any, _: type) -> Backup:
        server = data["server"]
        server_id = server["id"]
        backup_id = data["id"]
        size = data["size_mb"]
        name = server.get("name")
        description = data.get("description")
        message = data.get("message")
        if type(backup_id) is not int:
            backup_id = integer(backup_id, int)
        if type(server_id) is not int:
            server_id = integer(server_id, int)
        if size is not None and type(size) is not int:
            size = integer(size, int)
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
        if type(created) is text:
            try:  # free when nothing is raised; lower-case "t"/"z" take the general rule
                created_at = parse_datetime(created)
            except ValueError:
                created_at = timestamp(created, datetime)
            if created_at.tzinfo is not utc:
                created_at = timestamp(created, datetime)
        else:
            created_at = timestamp(created, datetime)
        expires = data.get("expires_at")
        if expires is None:
            expires_at = None
        elif type(expires) is text:
            try:
                expires_at = parse_datetime(expires)
            except ValueError:
                expires_at = timestamp(expires, datetime)
            if expires_at.tzinfo is not utc:
                expires_at = timestamp(expires, datetime)
        else:
            expires_at = timestamp(expires, datetime)
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
        set_expires(backup, expires_at)
        set_description(backup, description)
        set_message(backup, message)
        return backup

    return structure


def make_converter(*, detailed_validation: bool = False) -> cattrs.Converter:
    """Build a converter for the API's models.

    ``detailed_validation=True`` collects every failure with its path (slower); the
    SDK only uses it to decide, and explain, a body the fast hook did not decode.
    """
    import cattrs

    converter = cattrs.Converter(detailed_validation=detailed_validation)
    converter.register_structure_hook(int, _structure_int)
    converter.register_structure_hook(str, _structure_str)
    converter.register_structure_hook(datetime, _structure_datetime)
    converter.register_structure_hook(BackupStatus, _enum_hook(BackupStatus))
    converter.register_structure_hook(BackupType, _enum_hook(BackupType))
    # A factory, so the hooks are generated on first use, not at import.
    converter.register_structure_hook_factory(
        lambda cl: cl is Backup or cl is ServerRef, _objects_only(converter)
    )
    if not detailed_validation:
        converter.register_structure_hook(Backup, _backup_hook())
    return converter


# The success path needs only the hand-written hook: cattrs itself (and its converters)
# load on the first body that hook refuses, which keeps `import asyncbackups` light.
_structure_backup: Callable[[Any, type], Backup] = _backup_hook()
_detailed: list[cattrs.Converter] = []


def _detailed_converter() -> cattrs.Converter:
    if not _detailed:
        _detailed.append(make_converter(detailed_validation=True))
    return _detailed[0]


def _refusal(error: Exception, value: Any, where: str) -> ResponseValidationError:
    """The detailed converter's refusal as a ResponseValidationError naming the first field."""
    import cattrs

    if isinstance(error, cattrs.BaseValidationError):
        problems = cattrs.transform_error(error, path=where)
        first = problems[0] if problems else f"invalid backup @ {where}"
        message, _, path = first.rpartition(" @ ")
        return ResponseValidationError(
            f"unexpected backup in the API's answer: {message} at {path}", path=path, body=value
        )
    return ResponseValidationError(
        f"unexpected backup in the API's answer at {where}: {error}", path=where, body=value
    )


def _decode_in_detail(value: Any, where: str) -> Backup:
    """Decode ``value`` with the detailed converter, whose verdict is final.

    Only reached when the fast hook refused. Should the two ever disagree (the
    differential test is there so that they do not), the value is still decoded rather
    than refused with no field named: a drifted fast hook costs time, not correctness.
    """
    try:
        return _detailed_converter().structure(value, Backup)
    except Exception as exc:
        error = _refusal(exc, value, where)
    # Raised outside the handler, so that it carries no context from the converter.
    raise error


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
    return _decode_in_detail(value, where)


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
