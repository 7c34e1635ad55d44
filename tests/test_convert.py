"""The converter: the API's JSON into models, strictly, with errors that name the field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from conftest import BACKUP, BACKUP_495, BACKUP_499, BACKUP_501, CREATED_502
from hypothesis import given, settings
from hypothesis import strategies as st

from asyncbackups import (
    Backup,
    BackupStatus,
    BackupType,
    ResponseValidationError,
    ServerRef,
)
from asyncbackups._decoding.convert import decode_backup, decode_backups

WEB_01 = ServerRef(id=12345, name="web-server-01")

EXPECTED_501 = Backup(
    id=501,
    server=WEB_01,
    backup_type=BackupType.AUTOMATIC,
    status=BackupStatus.COMPLETED,
    size_mb=4523,
    created_at=datetime(2025, 1, 16, 3, 0, tzinfo=UTC),
    expires_at=datetime(2025, 2, 16, 3, 0, tzinfo=UTC),
    description="Automatic daily backup",
    message=None,
)
EXPECTED_499 = Backup(
    id=499,
    server=WEB_01,
    backup_type=BackupType.MANUAL,
    status=BackupStatus.COMPLETED,
    size_mb=4456,
    created_at=datetime(2025, 1, 14, 10, 30, tzinfo=UTC),
    expires_at=None,
    description="Pre-update backup",
    message=None,
)
EXPECTED_495 = Backup(
    id=495,
    server=WEB_01,
    backup_type=BackupType.AUTOMATIC,
    status=BackupStatus.COMPLETED,
    size_mb=4389,
    created_at=datetime(2025, 1, 15, 3, 0, tzinfo=UTC),
    expires_at=datetime(2025, 2, 15, 3, 0, tzinfo=UTC),
    description="Automatic daily backup",
    message=None,
)
EXPECTED_502 = Backup(
    id=502,
    server=WEB_01,
    backup_type=BackupType.MANUAL,
    status=BackupStatus.IN_PROGRESS,
    size_mb=None,
    created_at=datetime(2025, 1, 16, 15, 45, 0, tzinfo=UTC),
    expires_at=None,
    description="Pre-deployment backup",
    message="Backup is being created. This may take several minutes depending on server size.",
)


# -- the seed's examples, exactly ---------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (BACKUP_501, EXPECTED_501),
        (BACKUP_499, EXPECTED_499),
        (BACKUP_495, EXPECTED_495),
        (CREATED_502, EXPECTED_502),
    ],
    ids=["501", "499", "495", "created-502"],
)
def test_seed_examples_decode_to_every_documented_field(
    payload: dict[str, Any], expected: Backup
) -> None:
    backup = decode_backup(payload)
    assert backup == expected
    assert type(backup.backup_type) is BackupType
    assert type(backup.status) is BackupStatus
    assert backup.backup_type is expected.backup_type
    assert backup.status is expected.status


def test_seed_timestamps_are_timezone_aware_utc() -> None:
    backup = decode_backup(BACKUP_501)
    assert backup.created_at.utcoffset() == timedelta(0)
    assert backup.expires_at is not None
    assert backup.expires_at.utcoffset() == timedelta(0)


def test_seed_manual_backup_never_expires_and_in_progress_has_no_size() -> None:
    assert decode_backup(BACKUP_499).expires_at is None
    created = decode_backup(CREATED_502)
    assert created.size_mb is None
    assert created.expires_at is None


def test_seed_list_keeps_the_apis_order() -> None:
    backups = decode_backups([BACKUP_501, BACKUP_499, BACKUP_495])
    assert [backup.id for backup in backups] == [501, 499, 495]
    assert backups == [EXPECTED_501, EXPECTED_499, EXPECTED_495]


# -- tolerance: what the API may add ------------------------------------------------


def test_unknown_fields_are_ignored_at_every_level() -> None:
    payload = {
        **BACKUP_501,
        "region": "eu-west",
        "checksum": {"sha256": "abc"},
        "server": {**BACKUP_501["server"], "ip": "203.0.113.7"},
    }
    assert decode_backup(payload) == EXPECTED_501


def test_unknown_status_keeps_its_text_and_is_not_final() -> None:
    backup = decode_backup({**BACKUP, "status": "restoring"})
    assert backup.status == "restoring"
    assert isinstance(backup.status, BackupStatus)
    assert backup.status is not BackupStatus.COMPLETED
    assert backup.is_final is False


def test_unknown_backup_type_keeps_its_text() -> None:
    backup = decode_backup({**BACKUP, "backup_type": "snapshot"})
    assert backup.backup_type == "snapshot"
    assert backup.backup_type not in (BackupType.MANUAL, BackupType.AUTOMATIC)


def test_optional_fields_may_be_absent() -> None:
    payload = {key: value for key, value in BACKUP.items() if key not in ("description",)}
    payload = {**payload, "server": {"id": 12345}}
    backup = decode_backup({key: value for key, value in payload.items() if key != "expires_at"})
    assert backup.description is None
    assert backup.expires_at is None
    assert backup.server == ServerRef(id=12345, name=None)


def test_timestamp_without_offset_is_read_as_utc() -> None:
    backup = decode_backup({**BACKUP, "created_at": "2025-01-16T03:00:00"})
    assert backup.created_at == datetime(2025, 1, 16, 3, tzinfo=UTC)
    assert backup.created_at.tzinfo is not None


def test_timestamp_with_an_offset_keeps_the_instant() -> None:
    backup = decode_backup({**BACKUP, "created_at": "2025-01-16T05:00:00+02:00"})
    assert backup.created_at == datetime(2025, 1, 16, 3, tzinfo=UTC)
    assert backup.created_at.utcoffset() == timezone(timedelta(hours=2)).utcoffset(None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("9999-12-31T23:59:59Z", datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)),
        ("9999-12-31T23:59:59", datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)),
        ("9999-12-31T23:59:59+01:00", datetime(9999, 12, 31, 22, 59, 59, tzinfo=UTC)),
        ("0001-01-01T00:00:00Z", datetime(1, 1, 1, tzinfo=UTC)),
        ("0001-01-01T00:00:00-01:00", datetime(1, 1, 1, 1, tzinfo=UTC)),
    ],
)
def test_timestamp_at_the_edge_of_the_range_decodes(text: str, expected: datetime) -> None:
    backup = decode_backup({**BACKUP, "created_at": text, "expires_at": text})
    assert backup.created_at == expected
    assert backup.expires_at == expected
    assert backup.created_at.astimezone(UTC) == expected


@pytest.mark.parametrize(
    "text",
    [
        "10000-01-01T00:00:00Z",
        "9999-12-31T23:59:59-01:00",  # year 10000 in UTC
        "0001-01-01T00:00:00+01:00",  # year 0 in UTC
        "0000-01-01T00:00:00Z",
        "2025-13-01T00:00:00Z",
        "2025-01-16T03:00:00+24:00",
        "",
    ],
)
@pytest.mark.parametrize("field", ["created_at", "expires_at"])
def test_timestamp_outside_the_range_in_utc_or_invalid_is_refused_naming_it(
    text: str, field: str
) -> None:
    with pytest.raises(ResponseValidationError) as caught:
        decode_backup({**BACKUP, field: text})
    assert caught.value.path == f"$.{field}"


@pytest.mark.parametrize("value", [1737000000, 1737000000.0, True, [], {}])
def test_timestamp_that_is_not_a_string_is_refused_naming_it(value: Any) -> None:
    with pytest.raises(ResponseValidationError) as caught:
        decode_backup({**BACKUP, "expires_at": value})
    assert caught.value.path == "$.expires_at"


def test_timestamp_with_fractional_seconds_decodes() -> None:
    backup = decode_backup({**BACKUP, "created_at": "2025-01-16T03:00:00.123456Z"})
    assert backup.created_at == datetime(2025, 1, 16, 3, 0, 0, 123456, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-01-16T03:00:00.1234564999Z", datetime(2025, 1, 16, 3, 0, 0, 123456, tzinfo=UTC)),
        ("2025-01-16T03:00:00.1234565Z", datetime(2025, 1, 16, 3, 0, 0, 123457, tzinfo=UTC)),
        ("2025-01-16T03:00:00.123456789Z", datetime(2025, 1, 16, 3, 0, 0, 123457, tzinfo=UTC)),
        ("2025-01-16T23:59:59.9999995Z", datetime(2025, 1, 17, tzinfo=UTC)),
        ("2025-01-16T03:00:00.9999999", datetime(2025, 1, 16, 3, 0, 1, tzinfo=UTC)),
    ],
)
def test_timestamp_finer_than_a_microsecond_rounds_on_the_first_digit_past_it(
    text: str, expected: datetime
) -> None:
    # As msgspec, the fast path, reads them: Go's RFC3339Nano writes nanoseconds.
    assert decode_backup({**BACKUP, "created_at": text}).created_at == expected


def test_timestamp_rounded_past_the_end_of_datetime_is_refused_naming_it() -> None:
    with pytest.raises(ResponseValidationError) as caught:
        decode_backup({**BACKUP, "expires_at": "9999-12-31T23:59:59.9999995Z"})
    assert caught.value.path == "$.expires_at"


def test_integral_float_is_accepted_where_an_int_is_expected() -> None:
    assert decode_backup({**BACKUP, "size_mb": 4523.0}).size_mb == 4523


@pytest.mark.parametrize(
    ("payload", "read", "expected"),
    [
        ({**BACKUP, "id": 501.0}, lambda backup: backup.id, 501),
        ({**BACKUP, "server": {"id": 12345.0}}, lambda backup: backup.server.id, 12345),
        ({**BACKUP, "size_mb": 4523.0}, lambda backup: backup.size_mb, 4523),
    ],
    ids=["id", "server.id", "size_mb"],
)
def test_whole_number_float_decodes_to_an_int_in_every_integer_field(
    payload: dict[str, Any], read: Any, expected: int
) -> None:
    # The case: 501.0 for "id" was refused by the fast decoder, accepted by the
    # detailed one, and the error named no field.
    value = read(decode_backup(payload))
    assert value == expected
    assert type(value) is int


def test_whole_number_float_decodes_the_same_in_a_list() -> None:
    backups = decode_backups([{**BACKUP_501, "id": 501.0}, {**BACKUP_499, "size_mb": 4456.0}])
    assert backups == [EXPECTED_501, EXPECTED_499]
    assert [type(backup.id) for backup in backups] == [int, int]


@pytest.mark.parametrize("value", [2.0**53, -(2.0**53), -0.0, 0.0])
def test_whole_number_float_up_to_2_pow_53_is_accepted(value: float) -> None:
    backup = decode_backup({**BACKUP, "id": value})
    assert backup.id == int(value)
    assert type(backup.id) is int


@pytest.mark.parametrize(
    "value",
    [501.5, 0.1, float("nan"), float("inf"), float("-inf"), 2.0**53 + 2, 1e300, True, False, "501"],
)
@pytest.mark.parametrize(
    ("place", "path"),
    [("id", "$.id"), ("server.id", "$.server.id"), ("size_mb", "$.size_mb")],
)
def test_integer_field_refuses_fractions_nonfinite_huge_floats_bools_and_strings(
    value: Any, place: str, path: str
) -> None:
    payload: dict[str, Any] = {**BACKUP, "server": {**BACKUP["server"]}}
    if place == "server.id":
        payload["server"]["id"] = value
    else:
        payload[place] = value
    with pytest.raises(ResponseValidationError) as caught:
        decode_backup(payload)
    assert caught.value.path == path
    with pytest.raises(ResponseValidationError) as caught:
        decode_backups([BACKUP_499, payload])
    assert caught.value.path == path.replace("$", "$.results[1]")


# -- wrong shapes: ResponseValidationError naming the field -------------------------


def _without(payload: dict[str, Any], key: str) -> dict[str, Any]:
    return {name: value for name, value in payload.items() if name != key}


@pytest.mark.parametrize(
    ("payload", "path"),
    [
        ({**BACKUP, "id": "501"}, "$.id"),
        ({**BACKUP, "id": True}, "$.id"),
        ({**BACKUP, "id": None}, "$.id"),
        (_without(BACKUP, "id"), "$.id"),
        (_without(BACKUP, "created_at"), "$.created_at"),
        ({**BACKUP, "created_at": "yesterday"}, "$.created_at"),
        ({**BACKUP, "created_at": 1737000000}, "$.created_at"),
        ({**BACKUP, "expires_at": 12}, "$.expires_at"),
        ({**BACKUP, "size_mb": 4.5}, "$.size_mb"),
        ({**BACKUP, "size_mb": "4523"}, "$.size_mb"),
        ({**BACKUP, "status": 3}, "$.status"),
        ({**BACKUP, "status": None}, "$.status"),
        ({**BACKUP, "backup_type": ["manual"]}, "$.backup_type"),
        ({**BACKUP, "description": 7}, "$.description"),
        ({**BACKUP, "description": ["Automatic daily backup"]}, "$.description"),
        ({**BACKUP, "message": 7}, "$.message"),
        ({**BACKUP, "message": {}}, "$.message"),
        (_without(BACKUP, "size_mb"), "$.size_mb"),
        (_without(BACKUP, "status"), "$.status"),
        (_without(BACKUP, "backup_type"), "$.backup_type"),
        (_without(BACKUP, "server"), "$.server"),
        ({**BACKUP, "server": {"name": "web-server-01"}}, "$.server.id"),
        ({**BACKUP, "server": {"id": "12345"}}, "$.server.id"),
        ({**BACKUP, "server": {"id": 12345, "name": 5}}, "$.server.name"),
    ],
)
def test_wrong_field_raises_response_validation_error_naming_it(
    payload: dict[str, Any], path: str
) -> None:
    with pytest.raises(ResponseValidationError) as caught:
        decode_backup(payload)
    assert caught.value.path == path
    assert path in str(caught.value)


@pytest.mark.parametrize("server", ["web-server-01", "", [], [12345], 12345, 12345.0, None, True])
def test_server_that_is_not_an_object_is_blamed_on_the_server_field(server: Any) -> None:
    # Not on "$.server.id", as a string or a list once was: they are not objects at all.
    with pytest.raises(ResponseValidationError) as caught:
        decode_backup({**BACKUP, "server": server})
    assert caught.value.path == "$.server"
    assert "$.server" in str(caught.value)


def test_bad_item_past_an_offset_is_named_by_its_index_in_the_whole_list() -> None:
    with pytest.raises(ResponseValidationError) as caught:
        decode_backups([BACKUP_501, {**BACKUP_499, "status": None}], offset=1000)
    assert caught.value.path == "$.results[1001].status"


@pytest.mark.parametrize("value", [None, [], "backup", 501, 1.5, True, [BACKUP]])
def test_backup_that_is_not_an_object_raises_at_the_root(value: Any) -> None:
    with pytest.raises(ResponseValidationError) as caught:
        decode_backup(value)
    assert caught.value.path == "$"


def test_bad_item_in_a_list_is_named_by_its_index() -> None:
    with pytest.raises(ResponseValidationError) as caught:
        decode_backups([BACKUP_501, {**BACKUP_499, "created_at": None}, BACKUP_495])
    assert caught.value.path == "$.results[1].created_at"


@pytest.mark.parametrize("value", [None, {"results": []}, "[]", 3])
def test_list_that_is_not_a_list_raises(value: Any) -> None:
    with pytest.raises(ResponseValidationError) as caught:
        decode_backups(value)
    assert caught.value.path == "$.results"


# -- properties: anything either decodes or raises ResponseValidationError -----------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=30)
    | st.sampled_from(["completed", "manual", "2025-01-16T03:00:00Z", "Z", ""]),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)

_MISSING = object()


def _field(valid: Any) -> st.SearchStrategy[Any]:
    return st.one_of(st.just(valid), json_values, st.just(_MISSING))


@st.composite
def backup_like(draw: st.DrawFn) -> dict[str, Any]:
    server = {
        key: value
        for key, value in {
            "id": draw(_field(12345)),
            "name": draw(_field("web-server-01")),
        }.items()
        if value is not _MISSING
    }
    fields = {key: draw(_field(value)) for key, value in CREATED_502.items()}
    fields["server"] = draw(st.one_of(st.just(server), json_values, st.just(_MISSING)))
    extra = draw(st.dictionaries(st.text(max_size=8), json_values, max_size=2))
    return {**extra, **{key: value for key, value in fields.items() if value is not _MISSING}}


def _assert_well_typed(backup: Backup) -> None:
    assert type(backup.id) is int
    assert type(backup.server.id) is int
    assert isinstance(backup.status, BackupStatus)
    assert isinstance(backup.backup_type, BackupType)
    assert backup.size_mb is None or type(backup.size_mb) is int
    assert backup.created_at.tzinfo is not None
    assert backup.expires_at is None or backup.expires_at.tzinfo is not None
    assert backup.description is None or type(backup.description) is str


def _outcome(decode: Any, value: Any) -> Any:
    """What decoding gave: its result, or the ResponseValidationError it raised."""
    try:
        return decode(value)
    except ResponseValidationError as error:
        return error


@settings(max_examples=200)
@given(json_values)
def test_any_json_value_decodes_or_raises_response_validation_error(value: Any) -> None:
    outcome = _outcome(decode_backup, value)
    if isinstance(outcome, ResponseValidationError):
        assert outcome.path is not None
    else:
        _assert_well_typed(outcome)


@settings(max_examples=200)
@given(backup_like())
def test_backup_shaped_values_decode_or_raise_naming_a_field(value: dict[str, Any]) -> None:
    outcome = _outcome(decode_backup, value)
    if isinstance(outcome, ResponseValidationError):
        assert outcome.path is not None
        assert outcome.path.startswith("$")
    else:
        _assert_well_typed(outcome)


@settings(max_examples=100)
@given(st.lists(st.one_of(backup_like(), st.just(BACKUP_501)), max_size=4))
def test_lists_of_backup_shaped_values_decode_or_raise(values: list[Any]) -> None:
    outcome = _outcome(decode_backups, values)
    if isinstance(outcome, ResponseValidationError):
        assert outcome.path is not None
        assert outcome.path.startswith("$.results[")
    else:
        assert len(outcome) == len(values)
        for backup in outcome:
            _assert_well_typed(backup)
