"""The command line in a real pseudo-terminal: widths, questions, and hostile text.

Each test runs ``python -m asyncbackups`` in a pty of a set width against the fake API,
served from this process on loopback.
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

HOSTILE = "wipe \x1b[2J\x1b]0;owned\x07 then \u202eevil\u202c\nnext line"
LONG = "before the kernel upgrade on the primary database host, keep for a month"


@pytest.fixture
def api() -> Iterator[FakeBackupsAPI]:
    """Server 12345 with its three documented backups, plus servers 1-4 (3 fails)."""
    with FakeBackupsAPI(token="terminal-token", backup_seconds=60, fleet=4) as fake:
        fake.state.set_failing(3)
        yield fake


@pytest.fixture
def env(api: FakeBackupsAPI, tmp_path: Path) -> dict[str, str]:
    return environment(tmp_path, ASYNCBACKUPS_TOKEN=api.token, ASYNCBACKUPS_BASE_URL=api.base_url)


def widest(text: str) -> int:
    return max((len(line) for line in text.splitlines()), default=0)


def rows_with(screen: str, *cells: str) -> list[str]:
    return [line for line in screen.splitlines() if all(cell in line for cell in cells)]


# -- tables at any width ------------------------------------------------------------------


def test_list_at_80_columns_keeps_ids_servers_and_statuses_whole(
    api: FakeBackupsAPI, env: dict[str, str]
) -> None:
    created = api.state.create_backup(12345, description=LONG).id

    done = run_in_terminal("list", "--server-id", "12345", env=env, columns=80)

    assert done.code == 0, done.out
    assert widest(done.out) <= 80
    assert "…" not in done.out  # nothing cut short
    for backup_id, status in [(created, "in_progress"), (501, "completed"), (499, "completed")]:
        assert rows_with(done.out, f" {backup_id} ", " 12345 ", f" {status} "), done.out
    assert "DESCRIPTION" in done.out  # the free text folds instead of dropping
    assert "before the" in done.out
    assert "for a month" in done.out
    assert "EXPIRES" not in done.out  # lower priority: dropped at this width
    assert "SIZE" not in done.out


@pytest.mark.parametrize("columns", [60, 40])
def test_narrow_terminals_drop_low_priority_columns_first(
    api: FakeBackupsAPI, env: dict[str, str], columns: int
) -> None:
    done = run_in_terminal("list", "--server-id", "12345", env=env, columns=columns)

    assert done.code == 0, done.out
    assert widest(done.out) <= columns
    header = next(line for line in done.out.splitlines() if "ID" in line and "STATUS" in line)
    assert "SERVER" in header
    assert "DESCRIPTION" not in header
    for backup_id in (501, 499, 495):
        assert rows_with(done.out, f" {backup_id} ", " 12345 ", " completed ")


def test_a_terminal_too_narrow_for_a_table_gets_one_field_a_line(
    api: FakeBackupsAPI, env: dict[str, str]
) -> None:
    done = run_in_terminal("list", "--server-id", "12345", env=env, columns=24)

    assert done.code == 0
    assert "ID: 501" in done.out
    assert "SERVER: 12345" in done.out
    assert "STATUS: completed" in done.out


def test_fleet_and_its_failures_table_fit_80_columns(
    api: FakeBackupsAPI, env: dict[str, str]
) -> None:
    api.backup_seconds = 0.05
    done = run_in_terminal(
        "fleet", "1", "2", "3", "4", "--wait", "--poll-interval", "0.02", env=env, columns=80
    )

    assert done.code == 4, done.out
    assert widest(done.out) <= 80
    assert "created" in done.out  # both phases have a bar
    assert "finished" in done.out
    assert "3 of 4 servers ok, 1 failed" in done.out
    assert rows_with(done.out, " 3 ", " failed ", "the backup ended failed")


def test_fleet_without_wait_lists_the_backups_it_created_above_its_bar(
    api: FakeBackupsAPI, env: dict[str, str]
) -> None:
    done = run_in_terminal("fleet", "1", "2", "4", env=env, columns=80)

    assert done.code == 0, done.out
    for server_id in (1, 2, 4):
        [backup] = api.backups(server_id=server_id, backup_type="manual")
        assert f"server {server_id} started backup {backup.id}" in done.out


def test_the_demos_tables_fit_80_columns(tmp_path: Path) -> None:
    done = run_in_terminal(
        "demo", "--servers", "12", "--backup-seconds", "0.05", env=environment(tmp_path)
    )

    assert done.code == 0, done.out
    assert widest(done.out) <= 80
    assert "10 of 12 servers ok, 2 failed" in done.out
    assert "Backups of server 1" in done.out
    assert rows_with(done.out, " 1 ", "completed")
    assert "Summary" in done.out


COMMANDS = [
    "list",
    "get",
    "create",
    "wait",
    "delete",
    "restore",
    "fleet",
    "serve",
    "demo",
    "completion",
    "help",
]


@pytest.mark.parametrize(
    "argv",
    [["--help"], *([command, "--help"] for command in COMMANDS)],
    ids=lambda argv: argv[0],
)
def test_every_help_fits_80_columns(tmp_path: Path, argv: list[str]) -> None:
    piped = run_cli(*argv, env=environment(tmp_path))  # no terminal: click's default width

    assert piped.code == 0
    assert piped.out.startswith("usage: asyncbackups")
    assert widest(piped.out) <= 80


def test_help_in_a_wide_terminal_still_fits_80_columns(tmp_path: Path) -> None:
    done = run_in_terminal("fleet", "--help", env=environment(tmp_path), columns=200)

    assert done.code == 0
    assert widest(done.out) <= 80


# -- asking on the terminal ---------------------------------------------------------------


def test_restore_asks_on_the_terminal_and_a_yes_restores(
    api: FakeBackupsAPI, env: dict[str, str]
) -> None:
    done = run_in_terminal("restore", "12345", "501", env=env, answers=[("[y/N]", "y\n")])

    assert done.code == 0, done.out
    assert "Restore server 12345 from backup 501?" in done.out
    assert "restore of server 12345 from backup 501" in done.out
    assert [(r.server_id, r.backup_id) for r in api.restores] == [(12345, 501)]


@pytest.mark.parametrize("typed", ["n\n", "\n"], ids=["no", "enter"])
def test_restore_answered_no_on_the_terminal_sends_nothing(
    api: FakeBackupsAPI, env: dict[str, str], typed: str
) -> None:
    done = run_in_terminal("restore", "12345", "501", env=env, answers=[("[y/N]", typed)])

    assert done.code == 5
    assert "not confirmed; nothing was sent" in done.out
    assert "error" not in done.out  # a "no" is an answer, not a failure
    assert api.restores == []
    assert dict(api.requests) == {("GET", "backups/{id}/"): 1}  # read to show it, only


def test_delete_asks_once_for_several_backups_and_deletes_them_all(
    api: FakeBackupsAPI, env: dict[str, str]
) -> None:
    done = run_in_terminal(
        "delete", "499", "495", env=env, answers=[("This is permanent. [y/N]", "yes\n")]
    )

    assert done.code == 0, done.out
    assert "Delete backups 499, 495? This is permanent. [y/N]" in done.out
    assert "deleted backup 499" in done.out
    assert "deleted backup 495" in done.out
    assert {backup.id for backup in api.backups(server_id=12345)} == {501}


@pytest.mark.parametrize(
    "argv", [["restore", "12345", "501"], ["delete", "499"]], ids=["restore", "delete"]
)
def test_yes_piped_in_is_refused_with_status_2_and_nothing_sent(
    api: FakeBackupsAPI, env: dict[str, str], argv: list[str]
) -> None:
    done = run_cli(*argv, env=env, stdin="y\n")

    assert done.code == 2
    assert done.out == ""
    assert done.err.startswith("error: ")
    assert "no terminal" in done.err
    assert "--yes" in done.err
    assert len(done.err.splitlines()) == 1
    assert sum(api.requests.values()) == 0


@pytest.mark.parametrize(
    "argv", [["restore", "12345", "501"], ["delete", "499"]], ids=["restore", "delete"]
)
def test_yes_flag_acts_without_a_terminal(
    api: FakeBackupsAPI, env: dict[str, str], argv: list[str]
) -> None:
    done = run_cli(*argv, "--yes", env=env)

    assert done.code == 0, done.err
    assert len(api.restores) + (499 not in [b.id for b in api.backups()]) == 1


# -- hostile text from the API ------------------------------------------------------------


@pytest.mark.parametrize(
    "argv", [["list", "--server-id", "1"], ["get", "{id}"]], ids=["list", "get"]
)
def test_control_characters_from_the_api_are_shown_escaped(
    api: FakeBackupsAPI, env: dict[str, str], argv: list[str]
) -> None:
    backup_id = api.state.create_backup(1, description=HOSTILE).id
    argv = [arg.format(id=backup_id) for arg in argv]

    shown = run_in_terminal(*argv, env=env, columns=200)
    plain = run_cli(*argv, "--output", "plain", env=env)

    assert shown.code == plain.code == 0
    for raw in (shown.raw, plain.out.encode()):
        assert b"\x1b[2J" not in raw
        assert b"\x1b]0;" not in raw
        assert "\u202e".encode() not in raw
    for text in (shown.out, plain.out):
        assert "\\x1b[2J" in text
        assert "\\u202e" in text
        assert "\\n" in text  # one record stays one line


def test_json_keeps_the_exact_text_of_the_api(api: FakeBackupsAPI, env: dict[str, str]) -> None:
    backup_id = api.state.create_backup(1, description=HOSTILE).id

    done = run_cli("get", str(backup_id), "--json", env=env)

    assert done.code == 0
    assert json.loads(done.out)["description"] == HOSTILE
    assert "\x1b" not in done.out  # escaped as JSON, the exact text once decoded
    assert "\u202e" not in done.out
