"""The general decoder: the API's JSON, already parsed, into models, through cattrs.

It is the reference for every rule below and the path for whatever the msgspec fast
path (:mod:`asyncbackups._decoding.fast`) leaves to it; ``tests/test_decode_differential.py``
holds the fast path to its results. It collects every failure with its path, so a
refusal names the field to blame.

The rules:

- an integer field (``id``, ``server.id``, ``size_mb``) takes an ``int`` (never a
  ``bool``) or a whole-number ``float`` no larger than 2**53 in magnitude (JSON does not
  tell ``501`` from ``501.0``, and some serializers write the latter); ``501.5``, NaN,
  infinities, ``1e300`` and ``"501"`` are refused;
- a string field takes a ``str`` (or ``null`` where the model allows ``None``);
- a timestamp is an ISO 8601 string: read as UTC when it has no offset, rounded to the
  microsecond on its first digit past it, and refused when its instant in UTC falls
  outside what :class:`~datetime.datetime` holds (year 1-9999);
- an enum value the SDK does not know keeps its text (an open enum member);
- an object (the backup, its ``server``) must be a JSON object: anything else is blamed on
  the object's own path; fields the models do not know are ignored, and a missing field is
  refused unless the model gives it a default.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

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
# A fraction finer than datetime holds, and its first digit past the microsecond.
_PAST_MICROSECONDS = re.compile(r"[.,][0-9]{6}([0-9])")
_MICROSECOND = timedelta(microseconds=1)


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
    finer = _PAST_MICROSECONDS.search(value)
    if finer is not None and finer[1] >= "5":
        # fromisoformat cuts what datetime cannot hold; msgspec rounds it, and so do we,
        # so that such timestamps (Go's RFC3339Nano, say) keep the fast path.
        try:
            parsed += _MICROSECOND
        except OverflowError:
            raise ValueError(f"timestamp outside the range of datetime: {value!r}") from None
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
    """A hook factory for attrs classes that refuses anything but a JSON object.

    The generated hooks index whatever they are given, so a string ``server`` was blamed
    on ``server.id`` and a number on ``server``; now any non-object is blamed on itself.
    """
    from cattrs.gen import make_dict_structure_fn

    def factory(cl: type) -> Callable[[Any, type], Any]:
        generated: Callable[..., Any] = make_dict_structure_fn(cl, converter)

        def structure(value: Any, _: type) -> Any:
            if type(value) is not dict:
                raise TypeError(f"expected a JSON object, got {type(value).__name__}")
            return generated(value, cl)

        return structure

    return factory


def _enum_hook(enum_type: type[_Enum]) -> Callable[[Any, type], _Enum]:
    def structure(value: Any, _: type) -> _Enum:
        if type(value) is not str:
            raise TypeError(f"expected a string, got {type(value).__name__}")
        return enum_type(value)

    return structure


def make_converter() -> cattrs.Converter:
    """Build the converter for the API's models, which names every field it refuses."""
    import cattrs

    converter = cattrs.Converter(detailed_validation=True)
    converter.register_structure_hook(int, _structure_int)
    converter.register_structure_hook(str, _structure_str)
    converter.register_structure_hook(datetime, _structure_datetime)
    converter.register_structure_hook(BackupStatus, _enum_hook(BackupStatus))
    converter.register_structure_hook(BackupType, _enum_hook(BackupType))
    # A factory, so the hooks are generated on first use, not at import.
    converter.register_structure_hook_factory(
        lambda cl: cl is Backup or cl is ServerRef, _objects_only(converter)
    )
    return converter


# Built on the first answer the fast path leaves to it: cattrs itself loads only then,
# which keeps `import asyncbackups` light.
_converter = functools.cache(make_converter)


def _refusal(error: Exception, value: Any, where: str) -> ResponseValidationError:
    """The converter's refusal as a ResponseValidationError naming the first field."""
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
        backup: Backup = _converter().structure(value, Backup)
    except Exception as exc:
        error = _refusal(exc, value, where)
    else:
        return backup
    # Raised outside the handler, so that it carries no context from the converter.
    raise error


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
    return [
        decode_backup(item, where=f"{where}[{index}]")
        for index, item in enumerate(values, start=offset)
    ]
