"""Questions that say what is at stake, checks made before asking, and "no" as an answer.

``delete`` and ``restore`` read the backup first: its server's name, date, size and
description are shown above the question; a backup that is gone, or one of another
server, ends the command before anything is asked or changed. Run in a pseudo-terminal
80 columns wide against the fake API, as an operator would.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_cli_support import environment, run_cli, run_in_terminal

from asyncbackups.testing import FakeBackupsAPI

pytestmark = pytest.mark.skipif(
    sys.platform == "win32", reason="Windows has no pseudo-terminals (pty)"
)

TOKEN = "confirm-token-31337"
LONG = (
    "before the kernel upgrade on the primary database host of the billing cluster; "
    "keep until the quarter closes and the auditors have signed off on the migration"
)
HOSTILE = "wipe \x1b[2J\x1b]0;owned\x07 now"
GET = ("GET", "backups/{id}/")
DELETE = ("DELETE", "backups/{id}/")
RESTORE = ("POST", "servers/{server_id}/restore/")


@pytest.fixture
def api() -> Iterator[FakeBackupsAPI]:
    """Server 12345 (web-server-01) with backups 501, 499, 495; servers 1-3 too."""
    with FakeBackupsAPI(token=TOKEN, backup_seconds=60, fleet=3) as fake:
        yield fake


@pytest.fixture
def env(api: FakeBackupsAPI, tmp_path: Path) -> dict[str, str]:
    return environment(tmp_path, ASYNCBACKUPS_TOKEN=TOKEN, ASYNCBACKUPS_BASE_URL=api.base_url)


def widest(text: str) -> int:
    return max((len(line) for line in text.splitlines()), default=0)


def above_question(screen: str, question: str) -> list[str]:
    """The lines shown before the line that asks ``question``."""
    before, found, _ = screen.partition(question)
    assert found, screen
    return before.splitlines()


# -- delete ---------------------------------------------------------------------------------


def test_delete_shows_the_server_date_size_and_description_before_asking(
    api: FakeBackupsAPI, env: dict[str, str]
) -> None:
    done = run_in_terminal("delete", "499", env=env, answers=[("[y/N]", "y\n")])

    assert done.code == 0, done.out
    context = above_question(done.out, "Delete backup 499? This is permanent. [y/N]")
    assert context == [
        "backup 499 of server 12345 (web-server-01): manual, completed",
        "  created 2025-01-14 10:30 UTC, 4456 MB",
        "  description: Pre-update backup",
    ]
    assert "deleted backup 499" in done.out
    assert 499 not in {backup.id for backup in api.backups()}


def test_answering_no_to_delete_is_no_error_and_deletes_nothing(
    api: FakeBackupsAPI, env: dict[str, str]
) -> None:
    done = run_in_terminal("delete", "499", env=env, answers=[("[y/N]", "n\n")])

    assert done.code == 5  # documented: not confirmed
    assert done.out.splitlines()[-1] == "deleting backup 499 not confirmed; nothing was sent"
    assert "error" not in done.out
    assert dict(api.requests) == {GET: 1}
    assert 499 in {backup.id for backup in api.backups()}


def test_a_gone_backup_is_reported_without_asking(api: FakeBackupsAPI, env: dict[str, str]) -> None:
    done = run_in_terminal("delete", "702", env=env, answers=[("[y/N]", "y\n")])

    assert done.code == 1
    assert "[y/N]" not in done.out
    assert done.out.strip() == (
        "error: backup 702 not found (deleted already?); nothing was deleted"
    )
    assert api.requests[DELETE] == 0


def test_one_gone_backup_among_several_stops_before_asking(
    api: FakeBackupsAPI, env: dict[str, str]
) -> None:
    done = run_in_terminal("delete", "499", "702", "495", env=env, answers=[("[y/N]", "y\n")])

    assert done.code == 1
    assert "[y/N]" not in done.out
    assert "backup 702 not found" in done.out
    assert api.requests[DELETE] == 0
    assert {499, 495} <= {backup.id for backup in api.backups()}


def test_several_backups_are_each_described_above_one_question(
    api: FakeBackupsAPI, env: dict[str, str]
) -> None:
    done = run_in_terminal("delete", "499", "495", env=env, answers=[("[y/N]", "n\n")])

    context = above_question(done.out, "Delete backups 499, 495? This is permanent.")
    assert context[0].startswith("backup 499 of server 12345 (web-server-01)")
    assert "backup 495 of server 12345 (web-server-01): automatic, completed" in context
    assert done.code == 5


def test_a_long_description_folds_within_80_columns(
    api: FakeBackupsAPI, env: dict[str, str]
) -> None:
    backup = api.state.create_backup(1, description=LONG)

    done = run_in_terminal("delete", str(backup.id), env=env, answers=[("[y/N]", "n\n")])

    assert widest(done.out) <= 80
    context = above_question(done.out, f"Delete backup {backup.id}?")
    assert context[0] == f"backup {backup.id} of server 1 (fleet-0001): manual, in_progress"
    assert context[1].endswith(", size unknown")
    assert " ".join(line.strip() for line in context[2:]) == f"description: {LONG}"


def test_a_description_from_the_api_cannot_drive_the_terminal(
    api: FakeBackupsAPI, env: dict[str, str]
) -> None:
    backup = api.state.create_backup(1, description=HOSTILE)

    done = run_in_terminal("delete", str(backup.id), env=env, answers=[("[y/N]", "n\n")])

    assert b"\x1b[2J" not in done.raw
    assert "description: wipe \\x1b[2J\\x1b]0;owned\\x07 now" in done.out


def test_with_yes_delete_reads_nothing_first(api: FakeBackupsAPI, env: dict[str, str]) -> None:
    done = run_cli("delete", "499", "--yes", env=env)

    assert done.code == 0, done.err
    assert dict(api.requests) == {DELETE: 1}  # a script asked for no question: no read


# -- restore --------------------------------------------------------------------------------


def test_restore_shows_the_backup_before_asking(api: FakeBackupsAPI, env: dict[str, str]) -> None:
    done = run_in_terminal("restore", "12345", "501", env=env, answers=[("[y/N]", "y\n")])

    assert done.code == 0, done.out
    context = above_question(done.out, "Restore server 12345 from backup 501?")
    assert context == [
        "backup 501 of server 12345 (web-server-01): automatic, completed",
        "  created 2025-01-16 03:00 UTC, 4523 MB",
        "  description: Automatic daily backup",
    ]
    assert [(r.server_id, r.backup_id) for r in api.restores] == [(12345, 501)]


@pytest.mark.parametrize("yes", [False, True], ids=["asked", "yes"])
def test_restore_from_another_servers_backup_is_refused_before_asking(
    api: FakeBackupsAPI, env: dict[str, str], yes: bool
) -> None:
    [other] = [backup.id for backup in api.backups(server_id=2)]
    argv = ["restore", "12345", str(other), *(["--yes"] if yes else [])]

    done = run_in_terminal(*argv, env=env, answers=[("[y/N]", "y\n")])

    assert done.code == 2
    assert "[y/N]" not in done.out
    assert done.out.strip() == (
        f"error: backup {other} belongs to server 2 (fleet-0002), not to server 12345: "
        "nothing was restored"
    )
    assert api.requests[RESTORE] == 0
    assert api.restores == []


def test_restore_from_a_backup_still_in_progress_is_refused_before_asking(
    api: FakeBackupsAPI, env: dict[str, str]
) -> None:
    running = api.state.create_backup(12345).id

    done = run_in_terminal("restore", "12345", str(running), env=env)

    assert done.code == 2
    assert "[y/N]" not in done.out
    assert f"backup {running} is in_progress, and only a completed backup" in done.out
    assert api.requests[RESTORE] == 0


def test_restore_from_a_gone_backup_says_so_without_asking(
    api: FakeBackupsAPI, env: dict[str, str]
) -> None:
    done = run_in_terminal("restore", "12345", "702", env=env, answers=[("[y/N]", "y\n")])

    assert done.code == 1
    assert "[y/N]" not in done.out
    assert done.out.strip() == "error: backup 702 not found: nothing was restored"
    assert api.requests[RESTORE] == 0


def test_answering_no_to_restore_under_json_leaves_stdout_empty(
    api: FakeBackupsAPI, env: dict[str, str]
) -> None:
    done = run_in_terminal(
        "restore", "12345", "501", "--json", env=env, answers=[("[y/N]", "no\n")]
    )

    assert done.code == 5
    last = done.out.splitlines()[-1]
    assert last == "restoring server 12345 from backup 501 not confirmed; nothing was sent"
    with pytest.raises(json.JSONDecodeError):
        json.loads(last)  # a plain line for the person who answered, not an error object
    assert api.restores == []


def test_without_a_terminal_nothing_is_read_before_refusing(
    api: FakeBackupsAPI, env: dict[str, str]
) -> None:
    done = run_cli("restore", "12345", "501", env=env, stdin="y\n")

    assert done.code == 2
    assert "no terminal" in done.err
    assert sum(api.requests.values()) == 0
