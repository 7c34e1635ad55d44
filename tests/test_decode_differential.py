"""One truth for decoding: the msgspec fast path gives what the general decoder gives.

The general decoder (cattrs, ``asyncbackups._decoding.convert``) is the reference. The
fast path (``asyncbackups._decoding.fast``) decodes an answer's bytes with msgspec; it
may leave any answer to the general path, but what it takes must come out as the general
path reads it: equal backups field by field (types, offsets and enum identity included),
the same ``next`` link and ``count``. And it must take every usual answer, or the client
would be correct and slow. What the client's decoders give, either way, is the general
path's outcome: the same backups, or a refusal naming the same field.

The general decoder's refusals are held, in turn, to the converter's own error tree.
"""

from __future__ import annotations

import contextlib
import gc
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import attrs
import cattrs
import pytest
from cattrs.errors import AttributeValidationNote, IterableValidationNote
from conftest import BACKUP_495, BACKUP_499, BACKUP_501, CREATED_502
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from asyncbackups import (
    Backup,
    BackupStatus,
    BackupType,
    ResponseValidationError,
    parse_backups,
)
from asyncbackups._core.protocol import Response, decode_json
from asyncbackups._decoding.convert import (
    decode_backup,
    decode_backups,
    make_converter,
)
from asyncbackups._decoding.fast import decode_backup_bytes, decode_page_bytes
from asyncbackups._decoding.responses import (
    decode_backup_response,
    decode_page,
    decode_page_parts,
)

CONVERTER = make_converter()

SEEDS = [BACKUP_501, BACKUP_499, BACKUP_495, CREATED_502]


@attrs.frozen
class Refused:
    """A refusal, and the path of the field it blames."""

    path: str | None


# -- the reference: what the general decoder says, and whom it blames ---------------------


def _blame(error: BaseException, where: str) -> str:
    """The path of the first failure in the converter's error tree.

    Written independently of ``convert`` (which formats with ``cattrs.transform_error``):
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


def _converted(value: Any, kind: Any, where: str) -> Any:
    try:
        return CONVERTER.structure(value, kind)
    except Exception as error:
        return Refused(_blame(error, where))


def _outcome(decode: Any, *args: Any) -> Any:
    """What a decoder gave: its result, or a refusal naming the path it blamed."""
    try:
        return decode(*args)
    except ResponseValidationError as error:
        return Refused(error.path)


def _general_backup(body: bytes) -> Any:
    return _outcome(lambda: decode_backup(decode_json(body)))


def _general_page(body: bytes) -> Any:
    """The general path alone: the page's checks, then the converter."""
    response = Response(method="GET", url="backups/", status=200, headers={}, body=body)

    def decode() -> tuple[list[Backup], str | None, int | None]:
        backups, next_link = decode_page(response)
        return backups, next_link, decode_page_parts(response)[2]

    return _outcome(decode)


def _backups_of(page: Any) -> Any:
    """A general page's backups, or its refusal."""
    return page if isinstance(page, Refused) else page[0]


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


def _assert_same_backups(got: Any, expected: list[Backup]) -> None:
    assert isinstance(got, list), got
    assert len(got) == len(expected)
    for backup, reference in zip(got, expected, strict=True):
        _assert_same_backup(backup, reference)


def _assert_same_outcome(got: Any, expected: Any) -> None:
    if isinstance(expected, Refused):
        assert got == expected
    elif isinstance(expected, list):
        _assert_same_backups(got, expected)
    else:
        _assert_same_backup(got, expected)


# -- the inputs: anything near a backup ---------------------------------------------------

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


def _render(moment: datetime, timespec: str, zulu: bool, finer: str = "") -> str:
    """``moment`` in ISO 8601, with ``finer`` digits past the microsecond if given."""
    text = moment.isoformat(timespec="microseconds" if finer else timespec)
    if finer:
        head, _, tail = text.partition(".")
        text = f"{head}.{tail[:6]}{finer}{tail[6:]}"
    return text.replace("+00:00", "Z") if zulu else text


finer_digits = st.text(alphabet="0123456789", min_size=1, max_size=6)

timestamps = st.one_of(
    st.builds(
        _render,
        moments,
        st.sampled_from(["auto", "seconds", "milliseconds", "microseconds"]),
        st.booleans(),
        st.just("") | finer_digits,
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
            "2025-01-16T03:00:00.1234565Z",
            "2025-01-16T03:00:00.1234564999Z",
            "2025-01-16T23:59:59.9999995Z",
            "2025-01-16T23:59:59.9999995+05:00",
            "2025-01-16T03:00:00,1234567Z",
            "2025-01-16t03:00:00z",
            "2025-01-16t03:00:00Z",
            "2025-01-16T03:00:00z",
            "2025-01-16T03:00:60Z",
            "2025-01-16T03:00:00.1Z",
            "2025-01-16T03:00:00.Z",
            "2025-01-16T03:00Z",
            "2025-01-16T03:00:00+0000",
            "2025-01-16T03:00:00-00:00",
            "9999-12-31T23:59:59Z",
            "9999-12-31T23:59:59",
            "9999-12-31T23:59:59+01:00",
            "9999-12-31T23:59:59-01:00",
            "9999-12-31T23:59:59.9999995Z",
            "9999-12-31T23:59:59.9999994-01:00",
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


# -- the inputs: backups as an API writes them, which the fast path must take ------------

ids = st.integers(min_value=-(2**63), max_value=2**63 - 1)
usual_moments = st.datetimes(
    min_value=datetime(2, 1, 1),
    max_value=datetime(9998, 12, 31, 23, 59, 59, 999999),
    timezones=st.just(UTC) | offsets,
)
usual_timestamps = st.builds(
    _render,
    usual_moments,
    st.sampled_from(["auto", "seconds", "milliseconds", "microseconds"]),
    st.booleans(),
    st.just("") | finer_digits,
)
# Any text JSON can carry as UTF-8 (a lone surrogate cannot be encoded).
usual_texts = st.none() | st.text(st.characters(exclude_categories=["Cs"]), max_size=20)
# What JSON holds (no NaN or infinity, which only Python's json writes and reads).
usual_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | usual_texts,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(usual_texts.filter(bool), children, max_size=3)
    ),
    max_leaves=5,
)
unknown_keys = st.sampled_from(["region", "checksum", "ip", "ID", "Id", "server_id", "previous"])


@st.composite
def usual_backup(draw: st.DrawFn) -> dict[str, Any]:
    """A backup as an API writes it: any values of the right types, offsets in UTC or not,
    enum values the SDK may not know, fields it does not know, optional ones left out."""
    server: dict[str, Any] = {"id": draw(ids)}
    value: dict[str, Any] = {
        "id": draw(ids),
        "backup_type": draw(types | st.text(max_size=10)),
        "status": draw(statuses | st.text(max_size=10)),
        "size_mb": draw(st.none() | ids),
        "created_at": draw(usual_timestamps),
    }
    optional = {
        "expires_at": st.none() | usual_timestamps,
        "description": usual_texts,
        "message": usual_texts,
    }
    for name in draw(st.sets(st.sampled_from(sorted(optional)))):
        value[name] = draw(optional[name])
    if draw(st.booleans()):
        server["name"] = draw(usual_texts)
    server.update(draw(st.dictionaries(unknown_keys, usual_values, max_size=1)))
    value["server"] = server
    value.update(draw(st.dictionaries(unknown_keys, usual_values, max_size=2)))
    return value


def _encode(value: Any, ascii_only: bool = True) -> bytes:
    return json.dumps(value, ensure_ascii=ascii_only).encode()


# -- the general decoder against the converter's own error tree ---------------------------


@settings(max_examples=300, deadline=None)
@given(st.one_of(backup_like(), json_values))
@example({**BACKUP_501, "id": 501.0})
@example({**BACKUP_501, "server": "web-server-01"})
@example({**BACKUP_501, "created_at": "9999-12-31T23:59:59-01:00"})
def test_the_general_decoder_names_the_field_the_converter_blames(value: Any) -> None:
    expected = _converted(value, Backup, "$")
    got = _outcome(decode_backup, value)
    if type(value) is not dict:  # refused before the converter, at the root
        assert got == Refused("$")
    else:
        _assert_same_outcome(got, expected)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(SEEDS), backup_like(), json_values), max_size=3))
def test_the_general_list_decoder_names_the_first_bad_index(values: list[Any]) -> None:
    expected = _converted(values, list[Backup], "$.results")
    got = _outcome(decode_backups, values)
    _assert_same_outcome(got, expected)
    if isinstance(expected, Refused):
        assert expected.path is not None
        assert expected.path.startswith("$.results[")


# -- the fast path against the general one ------------------------------------------------


@settings(max_examples=500, deadline=None)
@given(st.one_of(backup_like(), json_values), st.booleans())
@example({**BACKUP_501, "id": 501.0}, True)
@example({**BACKUP_501, "created_at": "2025-01-16T03:00:00"}, True)
@example({**BACKUP_501, "created_at": "9999-12-31T23:59:59-01:00"}, True)
@example({**BACKUP_501, "created_at": "9999-12-31T23:59:59.9999995Z"}, True)
@example({**BACKUP_501, "status": "restoring"}, True)
def test_a_backup_the_fast_path_takes_is_the_general_paths_backup(
    value: Any, ascii_only: bool
) -> None:
    body = _encode(value, ascii_only)
    expected = _general_backup(body)
    fast = decode_backup_bytes(body)
    if fast is not None:
        assert not isinstance(expected, Refused), "the fast path took what the general refuses"
        _assert_same_backup(fast, expected)
    answer = Response(method="GET", url="backups/501/", status=200, headers={}, body=body)
    _assert_same_outcome(_outcome(decode_backup_response, answer), expected)


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    values=st.lists(st.one_of(st.sampled_from(SEEDS), backup_like()), max_size=4),
    next_link=st.none() | st.just("") | st.text(max_size=10) | st.integers(),
    count=st.none() | st.integers(min_value=-5, max_value=2**70) | st.text(max_size=3),
    bare=st.booleans(),
)
def test_a_page_the_fast_path_takes_is_the_general_paths_page(
    values: list[Any], next_link: Any, count: Any, bare: bool
) -> None:
    body = _encode(values if bare else {"count": count, "next": next_link, "results": values})
    expected = _general_page(body)
    fast = decode_page_bytes(body)
    if fast is not None:
        assert not isinstance(expected, Refused), "the fast path took what the general refuses"
        assert fast[1:] == expected[1:]
        _assert_same_backups(fast[0], expected[0])
    _assert_same_outcome(_outcome(parse_backups, body), _backups_of(expected))


@settings(max_examples=300, deadline=None)
@given(usual_backup(), st.booleans())
@example(BACKUP_501, True)
@example(CREATED_502, True)
def test_the_fast_path_takes_every_usual_backup(value: dict[str, Any], ascii_only: bool) -> None:
    body = _encode(value, ascii_only)
    fast = decode_backup_bytes(body)
    assert fast is not None, "the fast path left a usual backup to the general path"
    _assert_same_backup(fast, _general_backup(body))


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    values=st.lists(usual_backup(), max_size=5),
    next_link=st.none() | st.just("https://admin.vps.org/api/v1/backups/?page=2"),
    count=st.none() | st.integers(min_value=0, max_value=2**40),
    bare=st.booleans(),
)
def test_the_fast_path_takes_every_usual_page(
    values: list[dict[str, Any]], next_link: str | None, count: int | None, bare: bool
) -> None:
    body = _encode(values if bare else {"count": count, "next": next_link, "results": values})
    fast = decode_page_bytes(body)
    assert fast is not None, "the fast path left a usual page to the general path"
    expected = _general_page(body)
    assert fast[1:] == expected[1:]
    _assert_same_backups(fast[0], expected[0])


@pytest.mark.parametrize(
    "body",
    [
        b"\xef\xbb\xbf" + _encode(BACKUP_501),  # a byte-order mark
        _encode(BACKUP_501).replace(b'"size_mb": 4523', b'"size_mb": NaN'),
        _encode(BACKUP_501).replace(b'"id": 501', b'"id": "x", "id": 501'),  # the last wins
        _encode(BACKUP_501).replace(b"Automatic", b"\\ud800"),  # a lone surrogate
        json.dumps(BACKUP_501).encode("utf-16"),
    ],
    ids=["bom", "nan", "duplicate-key", "lone-surrogate", "utf-16"],
)
def test_json_msgspec_refuses_but_the_stdlib_reads_decodes_as_the_general_path_says(
    body: bytes,
) -> None:
    assert decode_backup_bytes(body) is None
    answer = Response(method="GET", url="backups/501/", status=200, headers={}, body=body)
    _assert_same_outcome(_outcome(decode_backup_response, answer), _general_backup(body))
    page = b'{"results": [' + body + b"]}"
    _assert_same_outcome(_outcome(parse_backups, page), _backups_of(_general_page(page)))


# -- the garbage collector is left alone ----------------------------------------------


def _large_page(length: int = 1000, **changes: Any) -> bytes:
    results = [{**BACKUP_501, "id": 10_000 + index, **changes} for index in range(length)]
    return _encode({"count": length, "next": None, "results": results})


@pytest.mark.parametrize(
    "body",
    [_large_page(), _large_page(status="restoring"), _large_page(id=1.0), _large_page()[:-2]],
    ids=["usual", "unknown-status", "float-id", "broken"],
)
@pytest.mark.parametrize("enabled", [True, False], ids=["collector-on", "collector-off"])
def test_decoding_a_large_page_leaves_the_garbage_collector_as_it_was(
    body: bytes, enabled: bool
) -> None:
    if not enabled:
        gc.disable()
    try:
        with contextlib.suppress(ResponseValidationError):
            parse_backups(body)
        assert gc.isenabled() is enabled
    finally:
        gc.enable()
