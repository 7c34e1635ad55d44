"""The rules of a resumed run as plain functions: run keys, what a read found, when it stops.

No I/O: backups are built from the seed's example payload.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from conftest import BACKUP_499

from asyncbackups import Backup, BackupStatus
from asyncbackups._core.checks import check_idempotency_key
from asyncbackups._core.resume import (
    CLOCK_SKEW,
    ReadWindow,
    RunBackups,
    run_idempotency_key,
)
from asyncbackups._decoding.convert import decode_backups

RUN = "weekly 2026-W48"
SINCE = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def _backup(
    backup_id: int,
    server_id: int = 7,
    *,
    status: str = "completed",
    description: str | None = RUN,
    created_at: datetime = SINCE,
) -> Backup:
    payload = {
        **BACKUP_499,
        "id": backup_id,
        "server": {"id": server_id, "name": f"web-{server_id}"},
        "status": status,
        "description": description,
        "created_at": created_at.isoformat().replace("+00:00", "Z"),
    }
    (backup,) = decode_backups([payload])
    return backup


# -- the run's Idempotency-Key -------------------------------------------------------------


def test_a_run_key_is_the_documented_hash_and_passes_the_sdks_own_key_check() -> None:
    key = run_idempotency_key(RUN, 12345, 0)

    digest = hashlib.sha256(f"v1\0{RUN}\0{12345}\0{0}".encode()).hexdigest()
    assert key == "asyncbackups-run-" + digest[:32]
    assert len(key) == 49
    assert check_idempotency_key(key) == key


def test_a_run_key_is_the_same_in_another_process() -> None:
    code = (
        "from asyncbackups._core.resume import run_idempotency_key\n"
        f"print(run_idempotency_key({RUN!r}, 12345, 2))"
    )
    # Another hash seed: nothing of str.__hash__ may leak into the key.
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )

    assert done.stdout.strip() == run_idempotency_key(RUN, 12345, 2)


@pytest.mark.parametrize(
    "other",
    [
        ("weekly 2026-W49", 12345, 0),
        ("Weekly 2026-W48", 12345, 0),
        (RUN, 12346, 0),
        (RUN, 12345, 1),
    ],
    ids=["another-run", "another-case", "another-server", "after-a-failure"],
)
def test_a_run_key_changes_with_the_description_the_server_and_the_generation(
    other: tuple[str, int, int],
) -> None:
    assert run_idempotency_key(*other) != run_idempotency_key(RUN, 12345, 0)


def test_a_run_key_ignores_the_whitespace_the_api_trims_from_descriptions() -> None:
    assert run_idempotency_key(f"  {RUN}\n", 12345) == run_idempotency_key(RUN, 12345, 0)


def test_a_run_key_takes_any_description_text() -> None:
    # A lone surrogate is a str the caller may pass; the key is still plain ASCII.
    key = run_idempotency_key("wöchentlich \ud800 🙂", 1)

    assert check_idempotency_key(key) == key


# -- what a read found of the run ----------------------------------------------------------


def test_the_backup_adopted_is_completed_before_in_progress_then_the_newest() -> None:
    found = RunBackups(RUN)
    found.add(
        [
            _backup(3, status="in_progress", created_at=SINCE + timedelta(minutes=2)),
            _backup(2, status="completed", created_at=SINCE + timedelta(minutes=1)),
            _backup(1, status="completed", created_at=SINCE),
        ]
    )

    taken = found.take(7)
    assert taken is not None
    assert taken.id == 2
    assert found.take(7) is None  # handed out once


def test_failed_backups_are_never_adopted_and_count_each_once_as_generations() -> None:
    found = RunBackups(RUN)
    failed = [_backup(1, status="failed"), _backup(2, status="failed")]
    found.add(failed)
    found.add(failed[1:])  # a page shifted by a new backup shows one again

    assert found.take(7) is None
    assert found.generation(7) == 2
    assert found.generation(8) == 0
    assert found.seen  # failed or not, an earlier attempt ran


def test_other_runs_other_servers_and_automatic_backups_are_not_the_runs() -> None:
    found = RunBackups(RUN, servers={7})
    automatic = {**BACKUP_499, "backup_type": "automatic", "description": RUN}
    found.add(
        [
            _backup(1, description="weekly 2026-W47"),
            _backup(2, server_id=8),
            *decode_backups([automatic]),
        ]
    )

    assert not found.seen
    assert found.take(7) is None
    assert found.take(8) is None  # another server's, even with the run's description


def test_descriptions_match_once_trimmed() -> None:
    found = RunBackups(f" {RUN} ")
    found.add([_backup(1, description=f"{RUN}\n")])

    taken = found.take(7)
    assert taken is not None
    assert taken.status is BackupStatus.COMPLETED


# -- when a newest-first read may stop -----------------------------------------------------


def _page(*minutes: float) -> list[Backup]:
    return [
        _backup(index, created_at=SINCE + timedelta(minutes=offset))
        for index, offset in enumerate(minutes, start=1)
    ]


def test_a_newest_first_read_stops_at_the_first_page_wholly_older_than_the_horizon() -> None:
    window = ReadWindow(SINCE)
    horizon = -CLOCK_SKEW.total_seconds() / 60

    assert not window.passed(_page(30, 20, 10))
    assert not window.passed(_page(0, -5, horizon - 1))  # straddles the horizon
    assert window.passed(_page(horizon - 2, horizon - 60))


def test_a_page_within_the_clock_skew_margin_does_not_stop_the_read() -> None:
    window = ReadWindow(SINCE)

    assert not window.passed(_page(-1, -5, -9))  # older than since, younger than the margin


def test_a_list_seen_out_of_order_once_is_read_to_the_end() -> None:
    window = ReadWindow(SINCE)

    assert not window.passed(_page(10, 20))  # oldest first on this page
    assert not window.passed(_page(-600, -700))
    assert not window.passed(_page(-800))


def test_an_order_broken_between_pages_is_caught_too() -> None:
    window = ReadWindow(SINCE)

    assert not window.passed(_page(10, 5))
    assert not window.passed(_page(6))  # newer than the last of the page before
    assert not window.passed(_page(-600))


def test_an_empty_page_does_not_stop_the_read() -> None:
    assert not ReadWindow(SINCE).passed([])
