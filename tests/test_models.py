"""The models: frozen attrs classes, open string enums, and their derived properties."""

from __future__ import annotations

from datetime import UTC, datetime

import attrs
import pytest

from asyncbackups import Backup, BackupStatus, BackupType, RestoreResult, ServerRef


def make_backup(status: BackupStatus | str = BackupStatus.COMPLETED) -> Backup:
    return Backup(
        id=501,
        server=ServerRef(id=12345, name="web-server-01"),
        backup_type=BackupType.AUTOMATIC,
        status=BackupStatus(status),
        size_mb=4523,
        created_at=datetime(2025, 1, 16, 3, tzinfo=UTC),
        expires_at=datetime(2025, 2, 16, 3, tzinfo=UTC),
        description="Automatic daily backup",
    )


def test_backup_is_frozen() -> None:
    backup = make_backup()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        backup.status = BackupStatus.FAILED  # type: ignore[misc]


def test_equal_backups_compare_equal_and_hash_alike() -> None:
    assert make_backup() == make_backup()
    assert len({make_backup(), make_backup()}) == 1


def test_server_id_is_the_embedded_servers_id() -> None:
    assert make_backup().server_id == 12345


def test_message_defaults_to_none_outside_a_create_answer() -> None:
    assert make_backup().message is None


@pytest.mark.parametrize(
    ("status", "final"),
    [
        (BackupStatus.IN_PROGRESS, False),
        (BackupStatus.COMPLETED, True),
        (BackupStatus.FAILED, True),
        ("restoring", False),
    ],
)
def test_is_final_only_for_completed_and_failed(status: str, final: bool) -> None:
    assert make_backup(status).is_final is final


def test_status_enum_members_are_their_api_text() -> None:
    assert BackupStatus.IN_PROGRESS == "in_progress"
    assert BackupStatus.COMPLETED == "completed"
    assert BackupStatus.FAILED == "failed"
    assert BackupType.MANUAL == "manual"
    assert BackupType.AUTOMATIC == "automatic"
    assert isinstance(BackupStatus.COMPLETED, str)
    assert str(BackupType.MANUAL) == "manual"


def test_unknown_status_keeps_its_text_and_is_no_known_member() -> None:
    status = BackupStatus("restoring")
    assert status == "restoring"
    assert str(status) == "restoring"
    assert status.value == "restoring"
    assert isinstance(status, BackupStatus)
    assert status not in (BackupStatus.IN_PROGRESS, BackupStatus.COMPLETED, BackupStatus.FAILED)
    assert status is BackupStatus("restoring")


def test_unknown_backup_type_keeps_its_text() -> None:
    backup_type = BackupType("snapshot")
    assert backup_type == "snapshot"
    assert backup_type not in (BackupType.MANUAL, BackupType.AUTOMATIC)


def test_unknown_enum_values_do_not_become_members_of_the_enum() -> None:
    BackupStatus("archived")
    assert list(BackupStatus) == [
        BackupStatus.IN_PROGRESS,
        BackupStatus.COMPLETED,
        BackupStatus.FAILED,
    ]


def test_server_ref_name_is_optional() -> None:
    assert ServerRef(id=7).name is None


def test_restore_result_keeps_raw_and_types_are_optional() -> None:
    result = RestoreResult(raw={"anything": [1, 2]})
    assert result.raw == {"anything": [1, 2]}
    assert result.status is None
    assert result.message is None
    assert result.server_id is None
    assert result.backup_id is None


def test_is_known_tells_the_sdks_own_values_from_new_ones() -> None:
    assert BackupStatus.COMPLETED.is_known
    assert not BackupStatus("restoring").is_known
    assert not BackupType("snapshot").is_known


@pytest.mark.parametrize("value", [1, None, b"completed"])
def test_a_status_that_is_not_text_is_refused(value: object) -> None:
    with pytest.raises(ValueError, match="BackupStatus"):
        BackupStatus(value)
