"""One truth for decoding: the fast decoder and the detailed converter agree on every input.

The fast path (``decode_backup``/``decode_backups``, built on a hand-unrolled hook) and
the detailed cattrs converter (``make_converter(detailed_validation=True)``) must either
both accept a value, giving equal backups field by field (types, offsets and enum
identity included), or both refuse it, naming the same field. The hand-unrolled hook is
also held to it on its own, since ``decode_backup`` falls back to the detailed converter
and would otherwise hide a hook that refuses too much.
"""

from __future__ import annotations

import gc
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import attrs
import cattrs
import pytest
from cattrs.errors import AttributeValidationNote, IterableValidationNote
from conftest import BACKUP_495, BACKUP_499, BACKUP_501, CREATED_502
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from asyncbackups import (
    Backup,
    BackupStatus,
    BackupType,
    ResponseValidationError,
    parse_backups,
)
from asyncbackups._decoding.convert import (
    decode_backup,
    decode_backups,
    make_converter,
)

DETAILED = make_converter(detailed_validation=True)
FAST_HOOK = make_converter().get_structure_hook(Backup)

SEEDS = [BACKUP_501, BACKUP_499, BACKUP_495, CREATED_502]


@attrs.frozen
class Refused:
    """A refusal, and the path of the field it blames."""

    path: str | None


# -- the reference: what the detailed converter says, and whom it blames ------------------


def _blame(error: BaseException, where: str) -> str:
    """The path of the first failure in a detailed converter's error tree.

    Written independently of ``_convert`` (which formats with ``cattrs.transform_error``):
    it walks the exception groups and their notes, depth first, in field order.
    """
    if isinstance(error, cattrs.ClassValidationError | cattrs.IterableValidationError):
        for sub in error.exceptions:
            for note in getattr(sub, "__notes__", ()):
                if isinstance(note, AttributeValidationNote):
                    return _blame(sub, f"{where}.{note.name}")
                if isinstance(note, IterableValidationNote):
                    return _blame(sub, f"{where}[{note.index}]")
    return where


def _detailed(value: Any, kind: Any, where: str) -> Any:
    try:
        return DETAILED.structure(value, kind)
    except Exception as error:
        return Refused(_blame(error, where))


def _fast(decode: Any, value: Any) -> Any:
    try:
        return decode(value)
    except ResponseValidationError as error:
        return Refused(error.path)


def _hook(value: Any) -> Backup | None:
    """The hand-unrolled hook alone: its backup, or None when it raised."""
    try:
        backup: Backup = FAST_HOOK(value, Backup)
    except Exception:
        return None
    return backup


def _exactly(value: Any) -> Any:
    """A value's every detail, for comparisons stricter than ``==``.

    Datetimes compare equal across offsets and enums equal their text; here the offset,
    the exact type and whether an enum member is a known one must match too.
    """
    if attrs.has(type(value)):
        fields = attrs.fields(type(value))
        return (type(value), *((f.name, _exactly(getattr(value, f.name))) for f in fields))
    if isinstance(value, datetime):
        return (datetime, value.replace(tzinfo=None), value.utcoffset())
    if isinstance(value, BackupStatus | BackupType):
        return (type(value), value.value, value.is_known, value.name)
    return (type(value), value)


def _assert_same_backup(got: Any, expected: Backup) -> None:
    assert isinstance(got, Backup), got
    assert got == expected
    assert _exactly(got) == _exactly(expected)
    for name in ("status", "backup_type"):
        if getattr(expected, name).is_known:
            assert getattr(got, name) is getattr(expected, name)


# -- the inputs -------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from(["completed", "manual", "2025-01-16T03:00:00Z", "501", ""]),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=5,
)

integer_like = st.one_of(
    st.integers(min_value=-(2**64), max_value=2**64),
    st.integers(min_value=-(2**60), max_value=2**60).map(float),
    st.floats(),
    st.sampled_from(
        [501, 501.0, 501.5, -0.0, 2.0**53, -(2.0**53), 2.0**53 + 2, 1e300, True, False, "501"]
    ),
    st.sampled_from([float("nan"), float("inf"), float("-inf")]),
)

offsets = st.integers(min_value=-(24 * 60) + 1, max_value=24 * 60 - 1).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
moments = st.datetimes(
    min_value=datetime(1, 1, 1),
    max_value=datetime(9999, 12, 31, 23, 59, 59, 999999),
    timezones=st.none() | st.just(UTC) | offsets,
)


def _render(moment: datetime, timespec: str, zulu: bool) -> str:
    text = moment.isoformat(timespec=timespec)
    return text.replace("+00:00", "Z") if zulu else text


timestamps = st.one_of(
    st.builds(
        _render,
        moments,
        st.sampled_from(["auto", "seconds", "milliseconds", "microseconds"]),
        st.booleans(),
    ),
    st.sampled_from(
        [
            "2025-01-16T03:00:00Z",
            "2025-01-16T03:00:00",
            "2025-01-16T05:00:00+02:00",
            "2025-01-16",
            "20250116T030000Z",
            "2025-01-16 03:00:00Z",
            "2025-01-16T03:00:00.123456789Z",
            "2025-01-16t03:00:00z",
            "2025-01-16t03:00:00Z",
            "2025-01-16T03:00:00z",
            "2025-01-16T03:00:60Z",
            "2025-01-16T03:00:00.1Z",
            "2025-01-16T03:00Z",
            "2025-01-16T03:00:00+0000",
            "2025-01-16T03:00:00-00:00",
            "9999-12-31T23:59:59Z",
            "9999-12-31T23:59:59",
            "9999-12-31T23:59:59+01:00",
            "9999-12-31T23:59:59-01:00",
            "10000-01-01T00:00:00Z",
            "0001-01-01T00:00:00Z",
            "0001-01-01T00:00:00+01:00",
            "0001-01-01T00:00:00-01:00",
            "0000-01-01T00:00:00Z",
            "2025-13-01T00:00:00Z",
            "2025-01-16T03:00:00+24:00",
            "yesterday",
            "Z",
            "",
        ]
    ),
)

statuses = st.sampled_from(["in_progress", "completed", "failed", "restoring", "COMPLETED", ""])
types = st.sampled_from(["manual", "automatic", "snapshot", "Manual"])
texts = st.none() | st.text(max_size=20)

# Values for every field: right, oddly right (a whole float, a naive or offset timestamp,
# an unknown enum value, null), or wrong in a way that is near.
PLAUSIBLE: dict[str, st.SearchStrategy[Any]] = {
    "id": integer_like,
    "backup_type": types | st.text(max_size=10),
    "status": statuses | st.text(max_size=10),
    "size_mb": st.none() | integer_like,
    "created_at": timestamps,
    "expires_at": st.none() | timestamps,
    "description": texts,
    "message": texts,
    "server.id": integer_like,
    "server.name": texts,
}
FIELDS = [*PLAUSIBLE, "server"]
# Keys the models do not know: near misses, and the server's keys at the wrong level.
_EXTRA_KEYS = st.sampled_from(["region", "checksum", "ip", "ID", "Id", "server_id", "name", ""])
_MISSING = object()


@st.composite
def backup_like(draw: st.DrawFn) -> dict[str, Any]:
    """One of the documentation's backups with a few fields changed, dropped or added.

    Each changed field takes a value of its own kind (see PLAUSIBLE) or any JSON value;
    the ``server`` as a whole may become any JSON value, or go.
    """
    value = {**draw(st.sampled_from(SEEDS))}
    server = {**value.pop("server")}
    server_value: Any = server
    for field in draw(st.sets(st.sampled_from(FIELDS), max_size=4)):
        kinds = [json_values, st.just(_MISSING)]
        if field in PLAUSIBLE:
            kinds.append(PLAUSIBLE[field])
        changed = draw(st.one_of(kinds))
        if field == "server":
            server_value = changed
            continue
        owner, name = (server, field[7:]) if field.startswith("server.") else (value, field)
        if changed is _MISSING:
            owner.pop(name, None)
        else:
            owner[name] = changed
    server.update(draw(st.dictionaries(_EXTRA_KEYS, json_values, max_size=1)))
    if server_value is not _MISSING:
        value["server"] = server_value
    value.update(draw(st.dictionaries(_EXTRA_KEYS, json_values, max_size=2)))
    return value


# -- the properties -----------------------------------------------------------------------


@settings(max_examples=500, deadline=None)
@given(st.one_of(backup_like(), json_values))
@example({**BACKUP_501, "id": 501.0})  # the case
@example({**BACKUP_501, "server": "web-server-01"})
@example({**BACKUP_501, "created_at": "9999-12-31T23:59:59-01:00"})
def test_fast_decoder_and_detailed_converter_agree_on_any_backup(value: Any) -> None:
    expected = _detailed(value, Backup, "$")
    got = _fast(decode_backup, value)
    hooked = _hook(value)
    if isinstance(expected, Refused):
        assert got == expected
        assert hooked is None, "the fast hook accepts what the detailed converter refuses"
    else:
        _assert_same_backup(got, expected)
        assert hooked is not None, "the fast hook refuses what the detailed converter accepts"
        _assert_same_backup(hooked, expected)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(SEEDS), backup_like(), json_values), max_size=3))
def test_fast_list_decoder_and_detailed_converter_agree_naming_the_first_bad_index(
    values: list[Any],
) -> None:
    expected = _detailed(values, list[Backup], "$.results")
    got = _fast(decode_backups, values)
    if isinstance(expected, Refused):
        assert got == expected
        assert expected.path is not None
        assert expected.path.startswith("$.results[")
    else:
        assert isinstance(got, list)
        assert len(got) == len(expected) == len(values)
        for backup, reference in zip(got, expected, strict=True):
            _assert_same_backup(backup, reference)


# -- the optional msgspec fast path for list pages ------------------------------------


def _beyond_64_bits(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_beyond_64_bits(item) for item in value.values())
    if isinstance(value, list):
        return any(_beyond_64_bits(item) for item in value)
    return type(value) is int and not -(2**63) <= value < 2**63


def _general_page(body: bytes) -> Any:
    from asyncbackups._core.protocol import Response
    from asyncbackups._decoding.responses import decode_page_parts

    response = Response(method="GET", url="backups/", status=200, headers={}, body=body)
    try:
        raw, next_link, count = decode_page_parts(response)
        return decode_backups(raw), next_link, count
    except ResponseValidationError:
        return None


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    values=st.lists(backup_like(), max_size=4),
    next_link=st.none() | st.just("") | st.text(max_size=10) | st.integers(),
    count=st.none() | st.integers(min_value=-5, max_value=2**70) | st.text(max_size=3),
)
def test_the_fast_page_path_accepts_only_what_the_general_path_accepts_alike(
    values: list[Any], next_link: Any, count: Any
) -> None:
    from asyncbackups._decoding.fast import decode_page_bytes

    # Integers past 64 bits are the one known difference, and it is orjson's: it reads
    # them as floats where msgspec and the standard library keep them exact.
    assume(not any(_beyond_64_bits(value) for value in values))
    body = json.dumps({"count": count, "next": next_link, "results": values}).encode()
    fast = decode_page_bytes(body)
    if fast is None:
        return  # the general path decides alone
    general = _general_page(body)
    assert general is not None, "the fast path accepted a page the general path refuses"
    assert fast[1:] == general[1:]
    assert len(fast[0]) == len(general[0])
    for got, expected in zip(fast[0], general[0], strict=True):
        _assert_same_backup(got, expected)


# -- the collector pause around a large page ---------------------------------------------


def _large_page(length: int = 1000, **changes: Any) -> bytes:
    """A DRF page past the size the fast path decodes with the collector paused."""
    results = [{**BACKUP_501, "id": 10_000 + index, **changes} for index in range(length)]
    body = json.dumps({"count": length, "next": None, "results": results}).encode()
    assert len(body) > 64 * 1024
    return body


def test_a_large_page_decodes_and_leaves_the_garbage_collector_enabled() -> None:
    assert gc.isenabled()
    backups = parse_backups(_large_page())
    assert [backup.id for backup in backups] == list(range(10_000, 11_000))
    assert gc.isenabled()


def test_a_large_page_msgspec_refuses_still_decodes_with_the_collector_enabled() -> None:
    # An unknown status is refused by msgspec's enum and read by the general path.
    backups = parse_backups(_large_page(status="restoring"))
    assert {backup.status for backup in backups} == {"restoring"}
    assert gc.isenabled()


def test_a_large_broken_page_is_refused_with_the_collector_enabled() -> None:
    with pytest.raises(ResponseValidationError):
        parse_backups(_large_page()[:-2])
    assert gc.isenabled()


def test_a_caller_who_disabled_the_collector_finds_it_still_disabled_after_a_page() -> None:
    gc.disable()
    try:
        assert len(parse_backups(_large_page())) == 1000
        assert not gc.isenabled()
    finally:
        gc.enable()
