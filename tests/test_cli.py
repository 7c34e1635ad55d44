"""The command line, command by command, through ``main([...])`` against the fake API.

The fake runs in a background thread (``main`` runs its own event loop), so these are
plain synchronous tests. Time is driven with ``api.advance`` or kept to tiny backup
durations and poll intervals.
"""

from __future__ import annotations

import argparse
import ast
import io
import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import asyncbackups._cli
import asyncbackups.testing
from asyncbackups import DEFAULT_BASE_URL, ENV_BASE_URL, ENV_TOKEN
from asyncbackups._cli import main
from asyncbackups._cli.commands.serve import serve_namespace
from asyncbackups.testing import FakeBackupsAPI

TOKEN = "cli-test-token-5f3a"
FAILING = 3  # the fleet server whose backups fail
SAMPLE_IDS = [501, 499, 495]  # server 12345's backups in the documentation, newest first


@dataclass
class Run:
    """What one ``main([...])`` call returned and wrote."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    def error_json(self) -> Any:
        return json.loads(self.err)


@pytest.fixture(autouse=True)
def _no_ambient_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ASYNCBACKUPS_TOKEN", raising=False)
    monkeypatch.delenv("ASYNCBACKUPS_BASE_URL", raising=False)


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeBackupsAPI]:
    """The fake with server 12345 (backups 501/499/495) and servers 1-5, 3 failing.

    The environment points the command line at it; backups take 5 s of its clock.
    """
    fake = FakeBackupsAPI(token=TOKEN, backup_seconds=5, fleet=5, failing_servers=[FAILING])
    with fake:
        monkeypatch.setenv("ASYNCBACKUPS_TOKEN", fake.token)
        monkeypatch.setenv("ASYNCBACKUPS_BASE_URL", fake.base_url)
        yield fake


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Any:
    """Call ``main`` with arguments; get back its status and what it wrote."""

    def run(*argv: str) -> Run:
        code = main(list(argv))
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


def assert_one_error_line(run: Run, *fragments: str) -> None:
    lines = run.err.splitlines()
    assert len(lines) == 1, run.err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in run.err
    for fragment in fragments:
        assert fragment in lines[0]


def manual_backups(api: FakeBackupsAPI, server_id: int) -> list[int]:
    return [backup.id for backup in api.backups(server_id=server_id, backup_type="manual")]


def sent(api: FakeBackupsAPI, method: str, route: str) -> int:
    return api.requests[(method, route)]


# -- list ---------------------------------------------------------------------------------


def test_list_prints_a_table_of_every_backup(api: FakeBackupsAPI, cli: Any) -> None:
    run = cli("list", "--server-id", "12345")

    assert run.code == 0
    assert run.err == ""
    header, *rows = run.out.splitlines()
    assert header.split()[:4] == ["ID", "SERVER", "TYPE", "STATUS"]
    assert [int(row.split()[0]) for row in rows] == SAMPLE_IDS
    assert "web-server-01" in rows[0]
    assert "Pre-update backup" in rows[1]


def test_list_filters_by_type(api: FakeBackupsAPI, cli: Any) -> None:
    run = cli("list", "--server-id", "12345", "--type", "manual")

    assert run.code == 0
    assert [int(row.split()[0]) for row in run.out.splitlines()[1:]] == [499]


def test_list_json_is_the_api_shape(api: FakeBackupsAPI, cli: Any) -> None:
    run = cli("list", "--server-id", "12345", "--json")

    assert run.code == 0
    backups = run.json()
    assert [backup["id"] for backup in backups] == SAMPLE_IDS
    assert backups[1] == {
        "id": 499,
        "server": {"id": 12345, "name": "web-server-01"},
        "backup_type": "manual",
        "status": "completed",
        "size_mb": 4456,
        "created_at": "2025-01-14T10:30:00Z",
        "expires_at": None,
        "description": "Pre-update backup",
    }


def test_global_options_work_before_the_command(api: FakeBackupsAPI, cli: Any) -> None:
    run = cli("--json", "--timeout", "5", "--max-retries", "0", "list", "--server-id", "12345")

    assert run.code == 0
    assert len(run.json()) == 3


def test_flags_override_the_environment(
    api: FakeBackupsAPI, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASYNCBACKUPS_TOKEN", "stale-token")
    monkeypatch.setenv("ASYNCBACKUPS_BASE_URL", "http://127.0.0.1:9/api/v1/")

    run = cli("list", "--token", api.token, "--base-url", api.base_url, "--json")

    assert run.code == 0
    assert {backup["id"] for backup in run.json()} >= set(SAMPLE_IDS)


def test_list_with_nothing_to_show(api: FakeBackupsAPI, cli: Any) -> None:
    run = cli("list", "--server-id", "1", "--type", "manual")

    assert (run.code, run.out) == (0, "no backups\n")


# -- create -------------------------------------------------------------------------------


def test_create_starts_a_backup(api: FakeBackupsAPI, cli: Any) -> None:
    run = cli("create", "1", "--description", "before upgrade")

    assert run.code == 0
    [created] = manual_backups(api, 1)
    assert f"backup {created} of server 1" in run.out
    assert "in_progress" in run.out
    assert api.backup(created).description == "before upgrade"


def test_create_json_is_the_new_backup(api: FakeBackupsAPI, cli: Any) -> None:
    run = cli("create", "2", "--json")

    assert run.code == 0
    backup = run.json()
    assert backup["server"]["id"] == 2
    assert backup["status"] == "in_progress"
    assert backup["message"]
    assert manual_backups(api, 2) == [backup["id"]]


def test_create_wait_returns_the_completed_backup(api: FakeBackupsAPI, cli: Any) -> None:
    api.backup_seconds = 0.05

    run = cli("create", "1", "--wait", "--poll-interval", "0.01", "--json")

    assert run.code == 0
    assert run.json()["status"] == "completed"
    assert run.json()["size_mb"] > 0


def test_create_wait_on_a_failing_server_exits_3(api: FakeBackupsAPI, cli: Any) -> None:
    api.backup_seconds = 0.05

    run = cli("create", str(FAILING), "--wait", "--poll-interval", "0.01")

    assert run.code == 3
    [created] = manual_backups(api, FAILING)
    assert_one_error_line(run, f"backup {created}", "failed")


def test_create_on_an_unknown_server_exits_1(api: FakeBackupsAPI, cli: Any) -> None:
    run = cli("create", "999")

    assert run.code == 1
    assert run.out == ""
    assert_one_error_line(run, "404")


def test_a_description_the_api_would_refuse_is_refused_before_sending(
    api: FakeBackupsAPI, cli: Any
) -> None:
    run = cli("create", "1", "--description", "x" * 300, "--json")

    assert run.code == 2
    error = run.error_json()["error"]
    assert "300 characters; the API takes at most 255" in error["message"]
    assert sum(api.requests.values()) == 0


# -- delete -------------------------------------------------------------------------------


def test_delete_removes_the_backup(api: FakeBackupsAPI, cli: Any) -> None:
    run = cli("delete", "499", "--yes")

    assert (run.code, run.out) == (0, "deleted backup 499\n")
    assert 499 not in [backup.id for backup in api.backups()]


def test_delete_json(api: FakeBackupsAPI, cli: Any) -> None:
    run = cli("delete", "495", "--json", "--yes")

    assert run.code == 0
    assert run.json() == {"id": 495, "deleted": True}


def test_delete_of_a_missing_backup_exits_1_with_one_line(api: FakeBackupsAPI, cli: Any) -> None:
    run = cli("delete", "9999", "--yes")

    assert run.code == 1
    assert_one_error_line(run, "backup 9999 not found", "404")


def test_a_json_error_is_one_json_line_on_stderr(api: FakeBackupsAPI, cli: Any) -> None:
    run = cli("--json", "delete", "9999", "--yes")

    assert run.code == 1
    assert run.out == ""
    assert len(run.err.splitlines()) == 1
    assert run.error_json()["error"] == {
        "message": "backup 9999 not found (DELETE /api/v1/backups/9999/ -> 404: Not found.)",
        "exit_code": 1,
        "type": "NotFoundError",
        "status_code": 404,
    }


# -- restore ------------------------------------------------------------------------------


def test_restore_with_yes_sends_it(api: FakeBackupsAPI, cli: Any) -> None:
    run = cli("restore", "12345", "501", "--yes")

    assert run.code == 0
    assert "restore of server 12345 from backup 501" in run.out
    assert [(r.server_id, r.backup_id) for r in api.restores] == [(12345, 501)]


class TypedAnswer(io.StringIO):
    """stdin as a terminal on which ``answer`` is typed."""

    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("answer", ["y\n", "YES\n"])
def test_restore_asks_on_a_terminal_and_a_yes_sends_it(
    api: FakeBackupsAPI, cli: Any, monkeypatch: pytest.MonkeyPatch, answer: str
) -> None:
    monkeypatch.setattr("sys.stdin", TypedAnswer(answer))

    run = cli("restore", "12345", "499")

    assert run.code == 0
    assert (
        "Restore server 12345 from backup 499? This overwrites the server's disk. [y/N]" in run.err
    )
    assert [(r.server_id, r.backup_id) for r in api.restores] == [(12345, 499)]


@pytest.mark.parametrize("answer", ["n\n", "\n", "yep\n", ""], ids=["no", "enter", "other", "eof"])
def test_restore_without_a_yes_on_the_terminal_sends_nothing(
    api: FakeBackupsAPI, cli: Any, monkeypatch: pytest.MonkeyPatch, answer: str
) -> None:
    monkeypatch.setattr("sys.stdin", TypedAnswer(answer))

    run = cli("restore", "12345", "501")

    assert run.code == 5
    assert run.out == ""
    # A terminal echoes the typed Enter; this stand-in does not. A "no" is no error.
    prompt, answer = run.err.rsplit("[y/N] ", 1)
    assert prompt.endswith("from backup 501? This overwrites the server's disk. ")
    assert answer.lstrip("\n") == (
        "restoring server 12345 from backup 501 not confirmed; nothing was sent\n"
    )
    assert "error" not in run.err
    assert api.restores == []
    assert dict(api.requests) == {("GET", "backups/{id}/"): 1}  # read to show it, only


@pytest.mark.parametrize("command", [["restore", "12345", "501"], ["delete", "499", "495"]])
def test_a_yes_piped_in_is_refused_without_a_terminal(
    api: FakeBackupsAPI, cli: Any, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))  # echo y | asyncbackups ...

    run = cli(*command)

    assert run.code == 2
    assert run.out == ""
    assert_one_error_line(run, "no terminal", "nothing was sent", "--yes")
    assert sum(api.requests.values()) == 0
    assert api.restores == []
    assert {501, 499, 495} <= {backup.id for backup in api.backups()}


def test_restore_json_is_the_api_answer(api: FakeBackupsAPI, cli: Any) -> None:
    run = cli("restore", "12345", "501", "--yes", "--json")

    assert run.code == 0
    result = run.json()
    assert result["status_code"] == 202
    assert result["response"]["status"] == "restoring"
    assert (result["server_id"], result["backup_id"]) == (12345, 501)


def test_restore_from_another_servers_backup_is_refused(api: FakeBackupsAPI, cli: Any) -> None:
    [fleet_backup] = [backup.id for backup in api.backups(server_id=1)]

    run = cli("restore", "12345", str(fleet_backup), "--yes")

    assert run.code == 2
    assert_one_error_line(run, f"backup {fleet_backup} belongs to server 1", "not to server 12345")
    assert api.restores == []
    assert sent(api, "POST", "servers/{server_id}/restore/") == 0


# -- wait ---------------------------------------------------------------------------------


def test_wait_on_a_completed_backup(api: FakeBackupsAPI, cli: Any) -> None:
    run = cli("wait", "501")

    assert run.code == 0
    assert run.out == "backup 501 of server 12345 (web-server-01): completed, 4523 MB\n"


def test_wait_json(api: FakeBackupsAPI, cli: Any) -> None:
    run = cli("wait", "499", "--json")

    assert run.code == 0
    assert run.json()["status"] == "completed"


def test_wait_follows_a_backup_until_it_completes(api: FakeBackupsAPI, cli: Any) -> None:
    api.backup_seconds = 0.1
    backup_id = cli("create", "1", "--json").json()["id"]

    run = cli("wait", str(backup_id), "--poll-interval", "0.01")

    assert run.code == 0
    assert run.out.splitlines()[-1].startswith(
        f"backup {backup_id} of server 1 (fleet-0001): completed, "
    )


def test_wait_sees_a_backup_the_clock_finished(api: FakeBackupsAPI, cli: Any) -> None:
    backup_id = cli("create", "1", "--json").json()["id"]
    api.advance(5)

    run = cli("wait", str(backup_id), "--json")

    assert run.code == 0
    assert run.json()["status"] == "completed"


def test_wait_on_a_failed_backup_exits_3(api: FakeBackupsAPI, cli: Any) -> None:
    backup_id = cli("create", str(FAILING), "--json").json()["id"]
    api.advance(5)

    run = cli("wait", str(backup_id), "--json")

    assert run.code == 3
    error = run.error_json()["error"]
    assert error["type"] == "BackupFailedError"
    assert error["backup"]["status"] == "failed"


def test_wait_that_times_out_exits_3(api: FakeBackupsAPI, cli: Any) -> None:
    backup_id = cli("create", "1", "--json").json()["id"]

    run = cli("wait", str(backup_id), "--wait-timeout", "0.05", "--poll-interval", "0.01")

    assert run.code == 3
    assert f"backup {backup_id} of server 1 (fleet-0001): in_progress" in run.out
    assert_one_error_line(run, str(backup_id), "in_progress")


def test_timeout_is_per_request_and_wait_timeout_the_whole_wait(
    api: FakeBackupsAPI, cli: Any
) -> None:
    run = cli("--timeout", "5", "wait", "501", "--wait-timeout", "60", "--timeout", "5")
    legacy = cli("wait", "501", "--request-timeout", "5")

    assert (run.code, legacy.code) == (0, 0)


@pytest.mark.parametrize(
    "argv",
    [["wait", "501"], ["create", "1", "--wait"], ["fleet", "1", "2", "--wait"]],
    ids=["wait", "create", "fleet"],
)
def test_a_poll_interval_above_the_sdks_longest_is_taken_as_given(
    api: FakeBackupsAPI, cli: Any, argv: list[str]
) -> None:
    api.backup_seconds = 0  # each wait ends at its first read, long before a second poll

    run = cli(*argv, "--poll-interval", "45")

    assert run.code == 0, run.err


def test_wait_on_a_missing_backup_exits_1(api: FakeBackupsAPI, cli: Any) -> None:
    run = cli("wait", "9999")

    assert run.code == 1
    assert_one_error_line(run, "404")


# -- fleet --------------------------------------------------------------------------------


def test_fleet_prints_a_line_per_server_when_not_a_terminal(api: FakeBackupsAPI, cli: Any) -> None:
    run = cli("fleet", "1", "2", "4")

    assert run.code == 0
    lines = run.out.splitlines()
    created = {server_id: manual_backups(api, server_id) for server_id in (1, 2, 4)}
    assert sorted(lines[:3]) == sorted(
        f"server {server_id} started backup {backup_id}"
        for server_id, [backup_id] in created.items()
    )
    assert lines[3].startswith("3 of 3 servers started a backup, 0 failed in ")
    assert run.err == ""


def test_fleet_wait_with_a_failing_server_exits_4_with_a_summary(
    api: FakeBackupsAPI, cli: Any
) -> None:
    api.backup_seconds = 0.05

    run = cli("fleet", "1", "2", str(FAILING), "--wait", "--poll-interval", "0.01")

    assert run.code == 4
    [failed_backup] = manual_backups(api, FAILING)
    lines = run.out.splitlines()
    assert f"server {FAILING} failed backup {failed_backup}: the backup ended failed" in lines
    assert "2 of 3 servers ok, 1 failed in " in run.out
    summary = lines[lines.index("Failed servers") + 1 :]
    assert summary[0].split() == ["SERVER", "BACKUP", "STATUS", "ERROR"]
    assert summary[1].split()[:3] == [str(FAILING), str(failed_backup), "failed"]
    assert_one_error_line(run, "1 of 3 server backups failed")


def test_fleet_json_has_every_outcome_in_input_order(api: FakeBackupsAPI, cli: Any) -> None:
    api.backup_seconds = 0.05

    run = cli("--json", "fleet", "5", str(FAILING), "1", "--wait", "--poll-interval", "0.01")

    assert run.code == 4
    result = run.json()
    assert (result["servers"], result["succeeded"], result["failed"]) == (3, 2, 1)
    assert [o["server_id"] for o in result["outcomes"]] == [5, FAILING, 1]
    assert [o["ok"] for o in result["outcomes"]] == [True, False, True]
    assert result["outcomes"][1]["error"]["type"] == "BackupFailedError"
    assert result["outcomes"][0]["backup"]["status"] == "completed"
    assert run.error_json()["error"]["exit_code"] == 4


def test_fleet_with_an_unknown_server_reports_it_and_backs_up_the_rest(
    api: FakeBackupsAPI, cli: Any
) -> None:
    run = cli("fleet", "1", "999")

    assert run.code == 4
    assert "server 999 failed: " in run.out
    assert len(manual_backups(api, 1)) == 1


def test_fleet_from_file_skips_blanks_and_comments(
    api: FakeBackupsAPI, cli: Any, tmp_path: Path
) -> None:
    servers = tmp_path / "servers.txt"
    servers.write_text("# web tier\n1\n\n  2  # db\n#4\n5\n", encoding="utf-8")

    run = cli("fleet", "--from-file", str(servers), "--concurrency", "2", "--json")

    assert run.code == 0
    assert [o["server_id"] for o in run.json()["outcomes"]] == [1, 2, 5]


def test_fleet_from_stdin(api: FakeBackupsAPI, cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("4\n2\n"))

    run = cli("fleet", "--from-file", "-", "--description", "nightly", "--json")

    assert run.code == 0
    assert [o["server_id"] for o in run.json()["outcomes"]] == [4, 2]
    assert run.json()["outcomes"][0]["backup"]["description"] == "nightly"


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("1\nweb-01\n", "line 2: 'web-01' is not a server ID"),
        ("1\n0\n", "line 2: '0' is not a server ID"),
        ("# nothing\n\n", "no server IDs in"),
        ("1\n2\n1\n", "repeats [1]"),
    ],
    ids=["name", "zero", "empty", "repeated"],
)
def test_fleet_from_a_bad_file_is_a_usage_error(
    api: FakeBackupsAPI, cli: Any, tmp_path: Path, content: str, fragment: str
) -> None:
    servers = tmp_path / "servers.txt"
    servers.write_text(content, encoding="utf-8")

    run = cli("fleet", "--from-file", str(servers))

    assert run.code == 2
    assert_one_error_line(run, fragment)
    assert sum(api.requests.values()) == 0


def test_fleet_from_a_missing_file_is_a_usage_error(cli: Any, tmp_path: Path) -> None:
    run = cli("--token", TOKEN, "fleet", "--from-file", str(tmp_path / "nope.txt"))

    assert run.code == 2
    assert_one_error_line(run, "cannot read", "No such file")


@pytest.mark.parametrize(
    "argv",
    [["fleet"], ["fleet", "1", "--from-file", "-"]],
    ids=["no-servers", "both-sources"],
)
def test_fleet_needs_exactly_one_source_of_ids(cli: Any, argv: list[str]) -> None:
    run = cli("--token", TOKEN, *argv)

    assert run.code == 2
    assert_one_error_line(run)


# -- usage errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["delete", "abc"],
        ["delete", "0"],
        ["delete", "-5"],
        ["delete", "1.5"],
        ["restore", "12345"],
        ["list", "--type", "weekly"],
        ["list", "--server-id", "x"],
        ["fleet", "1", "two"],
        ["wait", "501", "--timeout", "soon"],
        ["list", "--max-retries", "-1"],
        ["frobnicate"],
        ["wait", "501", "--timeout", "0"],
    ],
)
def test_usage_errors_exit_2_with_one_line(api: FakeBackupsAPI, cli: Any, argv: list[str]) -> None:
    run = cli(*argv)

    assert run.code == 2
    assert run.out == ""
    assert_one_error_line(run, "--help")
    assert sum(api.requests.values()) == 0


def test_a_usage_error_under_json_is_json(cli: Any) -> None:
    run = cli("delete", "abc", "--json")

    assert run.code == 2
    assert run.error_json()["error"]["exit_code"] == 2


def test_no_token_is_a_usage_error(cli: Any) -> None:
    run = cli("list")

    assert run.code == 2
    assert_one_error_line(run, "no API token", "--token", "ASYNCBACKUPS_TOKEN")


def test_plain_http_to_another_host_is_a_usage_error(cli: Any) -> None:
    run = cli("--token", TOKEN, "--base-url", "http://backups.example.com/api/v1/", "list")

    assert run.code == 2
    assert_one_error_line(run, "http")


def test_a_wrong_token_exits_1_and_is_never_printed(api: FakeBackupsAPI, cli: Any) -> None:
    wrong = "not-the-token-8c1d"

    run = cli("list", "--token", wrong)
    json_run = cli("--json", "list", "--token", wrong)

    assert run.code == json_run.code == 1
    assert_one_error_line(run, "401")
    assert json_run.error_json()["error"]["type"] == "AuthenticationError"
    for output in (run.out, run.err, json_run.out, json_run.err):
        assert wrong not in output
        assert TOKEN not in output


def test_no_connection_exits_1(cli: Any) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]  # nothing listens on it

    run = cli(
        "--token", TOKEN, "--base-url", f"http://127.0.0.1:{port}/api/v1/",
        "--max-retries", "0", "list",
    )  # fmt: skip

    assert run.code == 1
    assert_one_error_line(run, "connect")


# -- help ---------------------------------------------------------------------------------


def test_help_lists_the_exit_statuses(cli: Any) -> None:
    run = cli("--help")

    assert run.code == 0
    for line in ("0    success", "2    usage error", "4    fleet", "130  interrupted"):
        assert line in run.out
    assert "ASYNCBACKUPS_TOKEN" in run.out


@pytest.mark.parametrize(
    "command",
    ["list", "get", "create", "delete", "restore", "wait", "fleet", "serve", "demo", "completion"],
)
def test_every_command_has_help_with_an_example(cli: Any, command: str) -> None:
    run = cli(command, "--help")

    assert run.code == 0
    assert f"usage: asyncbackups {command}" in run.out
    assert f"examples:\n  asyncbackups {command}" in run.out


def test_help_names_the_sdks_environment_variables_and_default_url(cli: Any) -> None:
    top = cli("--help")
    listing = cli("list", "--help")

    assert f"  {ENV_TOKEN}       API token (--token wins)" in top.out
    assert f"  {ENV_BASE_URL}    API base URL (--base-url wins)" in top.out
    assert f"(default: ${ENV_TOKEN})" in listing.out
    assert f"(default: ${ENV_BASE_URL}, else {DEFAULT_BASE_URL})" in " ".join(listing.out.split())


def test_version(cli: Any) -> None:
    run = cli("--version")

    assert run.code == 0
    assert run.out.startswith("asyncbackups ")


# -- demo and serve -----------------------------------------------------------------------


def test_demo_runs_end_to_end(cli: Any) -> None:
    run = cli("demo", "--servers", "20", "--backup-seconds", "0.1")

    assert run.code == 0
    assert run.err == ""
    lines = run.out.splitlines()
    assert sum(line.startswith("server ") for line in lines) == 20
    assert "server 5 failed backup " in run.out
    assert "18 of 20 servers ok, 2 failed in " in run.out
    assert "Backups of server 1" in run.out
    assert "restore of server 1 from backup " in run.out
    assert "deleted backup " in run.out
    summary = dict(line.split(None, 1) for line in lines[lines.index("Summary") + 1 :])
    assert summary["servers"] == "20"
    assert summary["succeeded"] == "18"
    assert summary["failed"] == "2 (5, 15)"
    assert "wall time" in run.out
    assert "requests per server" in run.out


def test_demo_json(cli: Any) -> None:
    run = cli("demo", "--servers", "8", "--backup-seconds", "0.1", "--json")

    assert run.code == 0
    report = run.json()
    assert (report["servers"], report["succeeded"], report["failed"]) == (8, 6, 2)
    assert report["failing_servers"] == [2, 6]
    assert report["restored"]["status"] == "restoring"
    assert report["requests"] == sum(report["requests_by_route"].values())
    assert report["requests_by_route"]["POST backups/"] == 8
    assert report["requests_per_server"] == round(report["requests"] / 8, 2)
    assert report["deleted"] == report["fleet"]["failures"][0]["backup"]["id"]


def test_serve_on_a_taken_port_exits_1(cli: Any) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        run = cli("serve", "--port", str(port))

    assert run.code == 1
    assert_one_error_line(run, f"cannot listen on 127.0.0.1:{port}")


def standalone_options() -> set[str]:
    return {
        option
        for action in asyncbackups.testing.build_parser()._actions
        for option in action.option_strings
    }


def test_serve_help_is_the_standalone_fakes_with_the_global_options(cli: Any) -> None:
    served = cli("serve", "--help")

    assert served.code == 0
    assert {"--chaos", "--seed", "--ignore-idempotency-keys", "--no-sample-data"} <= (
        standalone_options()
    )
    for option in standalone_options() | {"--output", "--json", "--json-lines", "--debug"}:
        assert option in served.out
    assert "address to listen on (default: 127.0.0.1)" in served.out  # the fake's own words
    assert cli("help", "serve").out == served.out


def test_serve_parses_options_as_the_standalone_fake_does() -> None:
    argv = [
        "--host", "::1", "--port", "0", "--token", "t0k", "--backup-seconds", "0.5",
        "--servers", "4", "--failing-servers", "2,3", "--page-size", "9", "--seed", "3",
        "--chaos", "0.1", "--ignore-idempotency-keys", "--no-sample-data",
    ]  # fmt: skip
    standalone = vars(asyncbackups.testing.build_parser().parse_args(argv))

    assert vars(serve_namespace(argv)) == standalone


@pytest.mark.parametrize(
    "argv",
    [
        ["--port=0", "--chaos=0.25"],
        ["--json", "--port", "0", "-v", "--chaos", "0.25"],
        ["--port", "0", "--output", "plain", "--chaos", "0.25", "--json-lines"],
    ],
    ids=["equals", "global-options-between", "global-options-around"],
)
def test_serve_hands_the_fake_its_arguments_as_given(argv: list[str]) -> None:
    expected = vars(
        asyncbackups.testing.build_parser().parse_args(["--port", "0", "--chaos", "0.25"])
    )

    assert vars(serve_namespace(argv)) == expected


def test_serve_defaults_are_the_standalone_fakes() -> None:
    standalone = vars(asyncbackups.testing.build_parser().parse_args([]))

    assert vars(serve_namespace([])) == standalone


def test_an_option_the_fake_gains_works_in_serve_unchanged(
    cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_serve_arguments = asyncbackups.testing.add_serve_arguments

    def with_a_new_option(parser: argparse.ArgumentParser) -> None:
        add_serve_arguments(parser)
        parser.add_argument("--region", default="eu", help="where the fake pretends to be")

    monkeypatch.setattr(asyncbackups.testing, "add_serve_arguments", with_a_new_option)

    assert vars(serve_namespace(["--region", "us", "--port", "0"]))["region"] == "us"
    assert "where the fake pretends to be" in cli("serve", "--help").out


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--port", "70000", "expected a port from 0 to 65535"),
        ("--backup-seconds", "inf", "expected a non-negative number of seconds"),
        ("--chaos", "2", "rate must be between 0 and 1"),
        ("--page-size", "0", "page_size must be >= 1"),
    ],
)
def test_serve_refuses_a_bad_fake_option_as_a_usage_error(
    cli: Any, option: str, value: str, message: str
) -> None:
    run = cli("serve", "--port", "0", option, value)

    assert run.code == 2
    assert_one_error_line(run, message)


def test_serve_with_an_unknown_failing_server_is_a_usage_error(cli: Any) -> None:
    run = cli("serve", "--port", "0", "--servers", "3", "--failing-servers", "2,99")

    assert run.code == 2
    assert_one_error_line(run, "99")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--frobnicate"], "unrecognized arguments: --frobnicate"),
        (["--port"], "argument --port: expected one argument"),
        (["--port", "x"], "argument --port: expected a port number, got 'x'"),
    ],
    ids=["unknown", "missing-value", "bad-value"],
)
def test_the_fakes_parser_reports_a_mistake_in_one_line(
    cli: Any, argv: list[str], message: str
) -> None:
    run = cli("serve", *argv)

    assert (run.code, run.out) == (2, "")
    assert_one_error_line(run, message, "asyncbackups serve --help")


def test_the_fakes_parser_reports_a_mistake_as_json_under_json(cli: Any) -> None:
    run = cli("serve", "--json", "--port", "x")

    assert (run.code, run.out) == (2, "")
    error = run.error_json()["error"]
    assert "expected a port number, got 'x'" in error["message"]
    assert error["exit_code"] == 2


# -- the command line's walls -------------------------------------------------------------


def test_the_command_line_imports_only_the_public_api() -> None:
    package = Path(asyncbackups._cli.__file__).parent
    modules = sorted(package.rglob("*.py"))
    assert {"commands", "output"} <= {module.parent.name for module in modules}
    for module in modules:
        # How many levels a relative import may climb and stay inside _cli.
        depth = len(module.relative_to(package).parts)
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                assert node.level <= depth, (module.name, node.lineno)
                if node.level:
                    continue
                modules_named, names = [node.module or ""], [alias.name for alias in node.names]
            elif isinstance(node, ast.Import):
                modules_named, names = [alias.name for alias in node.names], []
            else:
                continue
            for name in modules_named:
                parts = name.split(".")
                if parts[0] == "asyncbackups":
                    assert not any(part.startswith("_") for part in parts), (module.name, name)
                    private = [n for n in names if n.startswith("_") and not n.endswith("__")]
                    assert not private, (module.name, name, private)
