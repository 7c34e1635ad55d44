"""Small things an operator trips over: limits checked before sending, labels, sentences,
orders, and words that say what happened ("started", not "ok", for a running backup)."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from test_cli_support import environment, run_in_terminal

from asyncbackups._cli import main
from asyncbackups.testing import FakeBackupsAPI

TOKEN = "small-things-token-42"


@dataclass
class Run:
    code: int
    out: str
    err: str


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeBackupsAPI]:
    with FakeBackupsAPI(token=TOKEN, fleet=4) as fake:
        for name in ("ASYNCBACKUPS_TOKEN_FILE", "ASYNCBACKUPS_PROFILE"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
        monkeypatch.setenv("ASYNCBACKUPS_TOKEN", TOKEN)
        monkeypatch.setenv("ASYNCBACKUPS_BASE_URL", fake.base_url)
        monkeypatch.setenv("COLUMNS", "80")
        yield fake


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Any:
    def run(*argv: str) -> Run:
        code = main(list(argv))
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


# -- limits checked before anything is sent --------------------------------------------------


@pytest.mark.parametrize("argv", [["create", "1"], ["fleet", "1", "2"]], ids=["create", "fleet"])
def test_a_301_character_description_is_refused_before_sending(
    api: FakeBackupsAPI, cli: Any, argv: list[str]
) -> None:
    run = cli(*argv, "--description", "d" * 301)

    assert run.code == 2
    assert run.out == ""
    assert run.err.startswith("error: ")
    assert "301 characters; the API takes at most 255 (nothing was sent)" in run.err
    assert len(run.err.splitlines()) == 1
    assert sum(api.requests.values()) == 0


def test_a_255_character_description_is_sent(api: FakeBackupsAPI, cli: Any) -> None:
    run = cli("create", "1", "--description", "d" * 255, "--json")

    assert run.code == 0, run.err
    assert json.loads(run.out)["description"] == "d" * 255


def test_the_description_limit_counts_characters_not_bytes(api: FakeBackupsAPI, cli: Any) -> None:
    run = cli("create", "1", "--description", "é" * 255, "--json")  # 510 bytes in UTF-8

    assert run.code == 0, run.err


@pytest.mark.parametrize("command", ["create", "fleet"])
def test_help_states_the_description_limit(cli: Any, command: str) -> None:
    run = cli(command, "--help")

    assert "at most 255 characters" in " ".join(run.out.split())


@pytest.mark.parametrize("limit", ["0", "+0", "00"])
def test_limit_0_gets_a_human_message(api: FakeBackupsAPI, cli: Any, limit: str) -> None:
    run = cli("list", "--limit", limit)

    assert run.code == 2
    assert "is not in the range" not in run.err
    assert "0 would show nothing: give 1 or more, or leave it out for all" in run.err
    assert sum(api.requests.values()) == 0


@pytest.mark.parametrize("limit", ["-1", "two", "1.5"])
def test_a_limit_that_is_no_count_is_refused(api: FakeBackupsAPI, cli: Any, limit: str) -> None:
    run = cli("list", "--limit", limit)

    assert run.code == 2
    assert "expected a whole number of 1 or more" in run.err


def test_limit_1_lists_one_backup(api: FakeBackupsAPI, cli: Any) -> None:
    run = cli("list", "--server-id", "12345", "--limit", "1", "--json")

    assert run.code == 0, run.err
    assert [backup["id"] for backup in json.loads(run.out)] == [501]


# -- words and labels ------------------------------------------------------------------------


def test_get_labels_units_in_capitals(api: FakeBackupsAPI, cli: Any) -> None:
    run = cli("get", "501")

    assert run.code == 0
    names = [line.strip().split("  ")[0] for line in run.out.splitlines()]
    assert "size (MB)" in run.out
    assert "created (UTC)" in run.out
    assert "expires (UTC)" in run.out
    assert "size (mb)" not in run.out
    assert names[:2] == ["id", "server"]


def test_get_on_a_terminal_labels_units_in_capitals(api: FakeBackupsAPI, tmp_path: Path) -> None:
    env = environment(tmp_path, ASYNCBACKUPS_TOKEN=TOKEN, ASYNCBACKUPS_BASE_URL=api.base_url)

    done = run_in_terminal("get", "501", env=env, columns=80)

    assert done.code == 0, done.out
    assert "size (MB)" in done.out
    assert "(mb)" not in done.out
    assert max(len(line) for line in done.out.splitlines()) <= 80


def test_restore_says_in_a_sentence_what_the_api_answered(api: FakeBackupsAPI, cli: Any) -> None:
    run = cli("restore", "12345", "499", "--yes")

    assert run.code == 0, run.err
    assert run.out.splitlines() == [
        "restore of server 12345 from backup 499 accepted (status: restoring)",
        "the API says: Server restore has been started.",
    ]


def test_the_failed_servers_table_is_sorted_by_server(api: FakeBackupsAPI, cli: Any) -> None:
    # Unknown servers fail at once, in the order sent: 225 lands before 75.
    run = cli("fleet", "225", "75", "1", "--concurrency", "1")

    assert run.code == 4
    table = run.out.split("Failed servers\n", 1)[1].splitlines()
    assert table[0].split() == ["SERVER", "BACKUP", "STATUS", "ERROR"]
    assert [row.split()[0] for row in table[1:] if row.split()[0].isdigit()] == ["75", "225"]


def test_fleet_without_wait_says_started_for_a_backup_still_running(
    api: FakeBackupsAPI, cli: Any
) -> None:
    api.backup_seconds = 3600
    run = cli("fleet", "1", "2", "9999")

    made = {b.server_id: b.id for b in api.backups(backup_type="manual")}
    lines = run.out.splitlines()
    assert run.code == 4
    assert f"server 1 started backup {made[1]}" in lines
    assert f"server 2 started backup {made[2]}" in lines
    assert not [line for line in lines if " ok " in f"{line} "]
    assert "2 of 3 servers started a backup, 1 failed in " in run.out


def test_fleet_with_wait_still_says_ok_once_a_backup_completed(
    api: FakeBackupsAPI, cli: Any
) -> None:
    api.backup_seconds = 0.05
    run = cli("fleet", "1", "2", "--wait", "--poll-interval", "0.01")

    assert run.code == 0, run.err
    assert sorted(line.split(" backup ")[0] for line in run.out.splitlines()[:2]) == [
        "server 1 ok",
        "server 2 ok",
    ]
    assert "2 of 2 servers ok, 0 failed in " in run.out


def test_fleet_json_lines_keep_their_fields_for_a_started_backup(
    api: FakeBackupsAPI, cli: Any
) -> None:
    api.backup_seconds = 3600
    run = cli("fleet", "1", "--json-lines")

    [outcome] = [json.loads(line) for line in run.out.splitlines()]
    assert run.code == 0
    # The contract's shape, unchanged: ok means the backup was made; its status says
    # it is still running.
    assert set(outcome) == {"server_id", "ok", "adopted", "backup", "error"}
    assert outcome["ok"] is True
    assert outcome["backup"]["status"] == "in_progress"


def test_fleet_plain_lines_keep_their_ok_column(api: FakeBackupsAPI, cli: Any) -> None:
    api.backup_seconds = 3600
    run = cli("fleet", "1", "--output", "plain")

    [backup_id] = [b.id for b in api.backups(server_id=1, backup_type="manual")]
    assert run.out.splitlines() == [f"1\tok\t{backup_id}"]


@pytest.mark.skipif(sys.platform == "win32", reason="Windows has no pseudo-terminals (pty)")
def test_the_create_wait_spinner_shows_the_time_waited(api: FakeBackupsAPI, tmp_path: Path) -> None:
    api.backup_seconds = 1.0
    env = environment(tmp_path, ASYNCBACKUPS_TOKEN=TOKEN, ASYNCBACKUPS_BASE_URL=api.base_url)

    done = run_in_terminal("create", "1", "--wait", "--poll-interval", "0.05", env=env)

    assert done.code == 0, done.out
    assert re.search(r"waiting for backup \d+ \(in_progress\)  \d+:\d\d:\d\d", done.out)
    assert ": completed" in done.out.splitlines()[-1]
