"""``asyncbackups prune`` and ``asyncbackups coverage`` against the fake API.

Most tests call ``main([...])`` in this process (the fake runs in a thread, its clock
frozen at a whole second, so ages are exact); terminals are stand-ins that say they are
one, 80 columns wide (``COLUMNS=80``). One test runs the command in a real
pseudo-terminal of 80 columns and answers its question.
"""

from __future__ import annotations

import io
import json
import re
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from test_cli_support import environment, run_cli, run_in_terminal

from asyncbackups._cli import main
from asyncbackups._cli.params import describe_duration, parse_duration
from asyncbackups.testing import Clock, FakeBackupsAPI

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")  # colours and cursor moves
LONG = "weekly backup before the kernel upgrade on the primary database host"


class Terminal(io.StringIO):
    """A captured stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


class Ran:
    """What one ``main([...])`` call returned and wrote."""

    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeBackupsAPI]:
    """Servers 1-3 with five weekly manual backups each (1 to 29 days old); server 2
    also has one in progress and an automatic one. The environment points at it."""
    fake = FakeBackupsAPI(sample_data=False, clock=Clock(start=NOW, frozen=True))
    for server_id in (1, 2, 3):
        fake.add_server(server_id)
        for week in reversed(range(5)):
            fake.state.add_backup(
                server_id,
                status="completed",
                created_at=NOW - DAY - week * 7 * DAY,
                description=f"{LONG}, week {week}",
            )
    fake.state.add_backup(2, status="in_progress", created_at=NOW - 90 * DAY)
    fake.state.add_backup(2, status="completed", backup_type="automatic", created_at=NOW - DAY)
    for name in ("ASYNCBACKUPS_PROFILE", "ASYNCBACKUPS_TOKEN_FILE", "ASYNCBACKUPS_RATE_LIMIT"):
        monkeypatch.delenv(name, raising=False)
    with fake:
        monkeypatch.setenv("ASYNCBACKUPS_TOKEN", fake.token)
        monkeypatch.setenv("ASYNCBACKUPS_BASE_URL", fake.base_url)
        yield fake


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Any:
    """Call ``main`` with arguments (stdin: ``stdin``, a pipe unless a Terminal)."""

    def run(*argv: str, stdin: io.StringIO | None = None) -> Ran:
        monkeypatch.setattr(sys, "stdin", stdin if stdin is not None else io.StringIO(""))
        code = main(list(argv))
        captured = capsys.readouterr()
        return Ran(code, captured.out, captured.err)

    return run


@pytest.fixture
def on_terminal(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run ``main`` with stdout (and stdin, typed ``answer``) a terminal 80 columns wide."""
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setenv("LINES", "40")

    def run(*argv: str, answer: str = "") -> tuple[int, str, str]:
        screen, errors = Terminal(), io.StringIO()
        with monkeypatch.context() as patch:
            patch.setattr(sys, "stdout", screen)
            patch.setattr(sys, "stderr", errors)
            patch.setattr(sys, "stdin", Terminal(answer))
            code = main(list(argv))
        return code, ANSI.sub("", screen.getvalue()), errors.getvalue()

    return run


@pytest.fixture
def without_rich(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``import rich`` fail, as when it is not installed."""
    for name in [name for name in sys.modules if name.startswith("rich.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "rich", None)


def manual_ids(api: FakeBackupsAPI, server_id: int) -> list[int]:
    """The server's completed manual backups, newest first."""
    backups = api.backups(server_id=server_id, backup_type="manual")
    newest_first = sorted(backups, key=lambda b: b.created_at, reverse=True)
    return [b.id for b in newest_first if b.status == "completed"]


def deletes(api: FakeBackupsAPI) -> int:
    return api.requests[("DELETE", "backups/{id}/")]


def widest(text: str) -> int:
    return max((len(line) for line in text.splitlines()), default=0)


# -- prune: the plan -------------------------------------------------------------------------


def test_prune_dry_run_shows_the_plan_and_deletes_nothing(api: FakeBackupsAPI, cli: Any) -> None:
    before = {server_id: manual_ids(api, server_id) for server_id in (1, 2, 3)}

    run = cli("prune", "--keep-last", "2", "--dry-run")

    assert run.code == 0, run.err
    lines = run.out.splitlines()
    assert lines[0] == "Backups to delete"
    header = ["SERVER", "BACKUP", "CREATED", "(UTC)", "STATUS", "SIZE", "(MB)", "DESCRIPTION"]
    assert lines[1].split() == header
    for server_id in (1, 2, 3):
        for backup_id in before[server_id][2:]:
            assert any(line.split()[:2] == [str(server_id), str(backup_id)] for line in lines)
    assert "total: 9 backups of 3 servers" in run.out
    assert "keeping: each server's newest 2 completed manual backups" in run.out
    assert run.out.rstrip().endswith("dry run: nothing was deleted")
    assert deletes(api) == 0
    assert {server_id: manual_ids(api, server_id) for server_id in (1, 2, 3)} == before


@pytest.mark.parametrize("rich", [True, False], ids=["rich", "without_rich"])
def test_prune_plan_table_fits_80_columns_on_a_terminal(
    api: FakeBackupsAPI, on_terminal: Any, request: pytest.FixtureRequest, rich: bool
) -> None:
    if not rich:
        request.getfixturevalue("without_rich")

    code, screen, _ = on_terminal("prune", "--keep-last", "3", "--older-than", "10d", "--dry-run")

    assert code == 0
    assert widest(screen) <= 80
    for word in ("SERVER", "BACKUP", "CREATED", "SIZE", "DESCRIPTION"):
        assert word in screen
    for server_id in (1, 2, 3):
        for backup_id in manual_ids(api, server_id)[3:]:
            assert str(backup_id) in screen
    assert "kernel upgrade" in screen  # the description folds, it is not cut
    assert "total: 6 backups of 3 servers" in screen
    assert "deleting: only backups older than 10 days (as of 2026-03-02 12:00 UTC)" in screen


def test_prune_asks_on_a_terminal_and_a_yes_deletes_the_plan(
    api: FakeBackupsAPI, on_terminal: Any
) -> None:
    kept = {server_id: manual_ids(api, server_id)[:2] for server_id in (1, 3)}

    code, screen, errors = on_terminal(
        "prune", "--keep-last", "2", "--server-id", "1", "--server-id", "3", answer="y\n"
    )

    assert code == 0, errors
    assert "Delete these 6 backups of 2 servers? This is permanent. [y/N]" in errors
    assert "deleted 6 backups" in screen
    for server_id, ids in kept.items():
        assert manual_ids(api, server_id) == ids
    assert len(manual_ids(api, 2)) == 5  # not asked for: untouched


@pytest.mark.parametrize("answer", ["n\n", "\n", ""], ids=["no", "enter", "eof"])
def test_prune_not_confirmed_deletes_nothing(
    api: FakeBackupsAPI, on_terminal: Any, answer: str
) -> None:
    code, screen, errors = on_terminal("prune", "--keep-last", "1", answer=answer)

    assert code == 5
    assert "Backups to delete" in screen  # shown before the question
    assert "not confirmed; nothing was sent" in errors
    assert deletes(api) == 0


def test_prune_without_a_terminal_refuses_before_reading_anything(
    api: FakeBackupsAPI, cli: Any
) -> None:
    run = cli("prune", "--keep-last", "1", stdin=io.StringIO("y\n"))  # echo y | ...

    assert run.code == 2
    assert run.out == ""
    [line] = run.err.splitlines()
    assert line.startswith("error: pruning needs a yes")
    assert "no terminal" in line
    assert "--yes" in line
    assert "--dry-run" in line
    assert sum(api.requests.values()) == 0


def test_prune_with_yes_deletes_without_a_terminal(api: FakeBackupsAPI, cli: Any) -> None:
    run = cli("prune", "--keep-last", "4", "--yes")

    assert run.code == 0, run.err
    assert "deleted 3 backups" in run.out
    assert deletes(api) == 3
    for server_id in (1, 3):
        assert len(manual_ids(api, server_id)) == 4
    assert len(manual_ids(api, 2)) == 4
    assert len(api.backups(server_id=2)) == 6  # and the ones in progress and automatic


def test_prune_again_finds_nothing_and_sends_no_delete(api: FakeBackupsAPI, cli: Any) -> None:
    assert cli("prune", "--keep-last", "2", "--yes").code == 0
    api.journal.reset_counts()

    run = cli("prune", "--keep-last", "2", "--yes")

    assert run.code == 0
    assert run.out.startswith("nothing to prune: no manual backup of 3 servers matches")
    assert deletes(api) == 0


def test_prune_takes_server_ids_as_arguments_too(api: FakeBackupsAPI, cli: Any) -> None:
    run = cli("prune", "--keep-last", "2", "--server-id", "1", "3", "--dry-run", "--json")

    assert run.code == 0
    plan = run.json()["plan"]
    assert [entry["server_id"] for entry in plan["per_server"]] == [1, 3]
    assert {backup["server"]["id"] for backup in plan["to_delete"]} == {1, 3}


def test_prune_json_dry_run_is_one_document(api: FakeBackupsAPI, cli: Any) -> None:
    run = cli("prune", "--keep-last", "3", "--older-than", "20d", "--dry-run", "--json")

    assert run.code == 0
    document = run.json()
    assert document["dry_run"] is True
    plan = document["plan"]
    assert plan["as_of"] == "2026-03-02T12:00:00Z"
    assert plan["rules"] == {"keep_last": 3, "older_than_seconds": 20 * 86_400, "keep_none": False}
    assert plan["backups"] == len(plan["to_delete"]) == 6
    assert {entry["server_id"]: entry["delete"] for entry in plan["per_server"]} == {
        1: 2,
        2: 2,
        3: 2,
    }
    assert all(backup["backup_type"] == "manual" for backup in plan["to_delete"])


def test_prune_json_with_yes_reports_each_outcome(api: FakeBackupsAPI, cli: Any) -> None:
    gone = manual_ids(api, 1)[-1]
    failing = manual_ids(api, 3)[-1]
    api.faults.status_before(500, method="DELETE", path=f"backups/{failing}/")
    api.faults.status_before(404, method="DELETE", path=f"backups/{gone}/")

    run = cli("prune", "--keep-last", "4", "--yes", "--json", "--max-retries", "0")

    assert run.code == 1
    document = run.json()
    assert document["already_gone"] == [gone]
    assert [entry["id"] for entry in document["failed"]] == [failing]
    assert document["failed"][0]["error"]["status_code"] == 500
    assert len(document["deleted"]) == 1
    error = json.loads(run.err)["error"]
    assert error["exit_code"] == 1
    assert "1 of 3 deletes failed" in error["message"]


def test_prune_reports_a_failed_delete_with_status_1_and_deletes_the_rest(
    api: FakeBackupsAPI, cli: Any
) -> None:
    failing = manual_ids(api, 2)[-1]
    api.faults.status_before(500, method="DELETE", path=f"backups/{failing}/")

    run = cli("prune", "--keep-last", "4", "--yes", "--max-retries", "0")

    assert run.code == 1
    assert "deleted 2 backups, 1 failed" in run.out
    assert "Failed deletes" in run.out
    [line] = run.err.splitlines()
    assert line.startswith("error: 1 of 3 deletes failed")
    assert "run the same prune again" in line
    assert failing in manual_ids(api, 2)
    assert len(manual_ids(api, 1)) == len(manual_ids(api, 3)) == 4


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["prune", "--dry-run"], "--keep-last N, --older-than SPAN or both"),
        (["prune", "--keep-last", "-1", "--dry-run"], "--keep-last"),
        (["prune", "--keep-last", "x", "--dry-run"], "--keep-last"),
        (["prune", "--older-than", "30", "--dry-run"], "like 30d, 12h or 90m"),
        (["prune", "--older-than", "0d", "--dry-run"], "more than 0"),
        (["prune", "--keep-last", "1", "--server-id", "0", "--dry-run"], "positive"),
        (["prune", "--keep-last", "1", "--server-id", "2", "2", "--dry-run"], "repeat"),
    ],
)
def test_prune_usage_errors_exit_2_and_send_nothing(
    api: FakeBackupsAPI, cli: Any, argv: list[str], words: str
) -> None:
    run = cli(*argv)

    assert run.code == 2
    assert words in run.err
    assert len(run.err.splitlines()) == 1
    assert sum(api.requests.values()) == 0


def test_prune_in_a_real_terminal_80_columns_wide_asks_and_deletes(
    api: FakeBackupsAPI, tmp_path: Path
) -> None:
    env = environment(tmp_path, ASYNCBACKUPS_TOKEN=api.token, ASYNCBACKUPS_BASE_URL=api.base_url)

    done = run_in_terminal(
        "prune",
        "--keep-last",
        "2",
        env=env,
        columns=80,
        answers=[("This is permanent. [y/N]", "y\n")],
    )

    assert done.code == 0, done.out
    assert widest(done.out) <= 80
    assert "Delete these 9 backups of 3 servers? This is permanent. [y/N]" in done.out
    assert "deleted 9 backups" in done.out
    assert [len(manual_ids(api, server_id)) for server_id in (1, 2, 3)] == [2, 2, 2]


def test_prune_piped_to_a_process_without_yes_refuses(api: FakeBackupsAPI, tmp_path: Path) -> None:
    env = environment(tmp_path, ASYNCBACKUPS_TOKEN=api.token, ASYNCBACKUPS_BASE_URL=api.base_url)

    done = run_cli("prune", "--keep-last", "1", env=env, stdin="y\n")

    assert done.code == 2
    assert "no terminal" in done.err
    assert sum(api.requests.values()) == 0


# -- coverage --------------------------------------------------------------------------------


def test_coverage_of_covered_servers_exits_0(api: FakeBackupsAPI, cli: Any) -> None:
    run = cli("coverage", "--server-id", "1", "--server-id", "2", "--within", "7d")

    assert run.code == 0, run.err
    assert run.out.startswith("all 2 servers have a completed backup from the last 7 days")
    assert run.err == ""


def test_coverage_lists_missing_servers_and_exits_6(api: FakeBackupsAPI, cli: Any) -> None:
    api.add_server(7)
    api.state.add_backup(7, status="failed", created_at=NOW - DAY)
    api.add_server(8)

    run = cli("coverage", "1", "7", "2", "8", "--within", "2d")

    assert run.code == 6
    assert run.out.splitlines() == [
        "missing: 2 of 4 servers have no completed backup from the last 2 days",
        "  7, 8",
        "covered: 2 (as of 2026-03-02 12:00 UTC)",
    ]
    [line] = run.err.splitlines()
    assert line == "error: 2 of 4 servers have no completed backup from the last 2 days"


def test_coverage_window_edge_counts_a_backup_exactly_that_old(
    api: FakeBackupsAPI, cli: Any
) -> None:
    api.add_server(7)
    api.state.add_backup(7, status="completed", created_at=NOW - 3 * DAY)
    api.add_server(8)
    api.state.add_backup(8, status="completed", created_at=NOW - 3 * DAY - timedelta(seconds=1))

    run = cli("coverage", "7", "8", "--within", "3d", "--output", "plain")

    assert run.code == 6
    assert run.out == "8\n"


def test_coverage_json_is_one_document_and_still_exits_6(api: FakeBackupsAPI, cli: Any) -> None:
    api.add_server(9)

    run = cli("coverage", "3", "9", "--within", "36h", "--output", "json")

    assert run.code == 6
    document = run.json()
    assert document["as_of"] == "2026-03-02T12:00:00Z"
    assert document["within_seconds"] == 36 * 3600
    assert document["servers"] == 2
    assert document["missing"] == [9]
    [covered] = document["covered"]
    assert covered["server_id"] == 3
    assert covered["backup"]["status"] == "completed"
    assert json.loads(run.err)["error"]["exit_code"] == 6


def test_coverage_reads_servers_from_a_file_and_from_stdin(
    api: FakeBackupsAPI, cli: Any, tmp_path: Path
) -> None:
    listed = tmp_path / "servers.txt"
    listed.write_text("# production\n1\n\n3  # db\n44\n")

    from_file = cli("coverage", "--from-file", str(listed), "--within", "7d", "-o", "plain")
    from_stdin = cli(
        "coverage",
        "--from-file",
        "-",
        "--within",
        "7d",
        "-o",
        "plain",
        stdin=io.StringIO("44\n2\n"),
    )

    assert (from_file.code, from_file.out) == (6, "44\n")
    assert (from_stdin.code, from_stdin.out) == (6, "44\n")


def test_coverage_without_servers_checks_every_server_seen(api: FakeBackupsAPI, cli: Any) -> None:
    api.add_server(5)
    api.state.add_backup(5, status="completed", created_at=NOW - 40 * DAY)

    run = cli("coverage", "--within", "7d", "--json")

    assert run.code == 6
    assert run.json()["missing"] == [5]
    assert run.json()["servers"] == 4


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["coverage", "1"], "--within"),
        (["coverage", "1", "--within", "0m"], "more than 0"),
        (["coverage", "1", "--within", "week"], "like 30d, 12h or 90m"),
        (["coverage", "1", "--from-file", "x.txt", "--within", "1d"], "not both"),
        (["coverage", "--from-file", "/nonexistent/ids", "--within", "1d"], "cannot read"),
    ],
)
def test_coverage_usage_errors_exit_2_and_send_nothing(
    api: FakeBackupsAPI, cli: Any, argv: list[str], words: str
) -> None:
    run = cli(*argv)

    assert run.code == 2
    assert words in run.err
    assert sum(api.requests.values()) == 0


def test_coverage_on_a_terminal_fits_80_columns(api: FakeBackupsAPI, on_terminal: Any) -> None:
    for server_id in range(100, 130):
        api.add_server(server_id)

    code, screen, errors = on_terminal("coverage", *map(str, range(100, 130)), "--within", "1d")

    assert code == 6
    assert widest(screen) <= 80
    assert "missing: 30 of 30 servers" in screen
    assert "  100, 101, 102" in screen
    assert "error: 30 of 30 servers" in errors


# -- help --------------------------------------------------------------------------------------


def test_both_commands_are_listed_with_coverages_exit_status(cli: Any) -> None:
    run = cli("--help")

    assert "prune" in run.out
    assert "coverage" in run.out
    assert "6    coverage: some servers have no completed backup in the window" in run.out


@pytest.mark.parametrize(("command", "span"), [("prune", "30d"), ("coverage", "7d")])
def test_help_fits_80_columns(
    cli: Any, monkeypatch: pytest.MonkeyPatch, command: str, span: str
) -> None:
    monkeypatch.setenv("COLUMNS", "80")

    run = cli(command, "--help")

    assert run.code == 0
    assert widest(run.out) <= 80
    assert span in run.out


# -- spans -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "span"),
    [
        ("30d", timedelta(days=30)),
        ("12h", timedelta(hours=12)),
        ("90m", timedelta(minutes=90)),
        ("2w", timedelta(weeks=2)),
        ("1d12h", timedelta(days=1, hours=12)),
        ("45s", timedelta(seconds=45)),
        ("0.5d", timedelta(hours=12)),
        (" 7D ", timedelta(days=7)),
    ],
)
def test_spans_are_read_with_their_unit(text: str, span: timedelta) -> None:
    assert parse_duration(text) == span


@pytest.mark.parametrize(
    "text", ["30", "", "d", "-1d", "0d", "1x", "1d 2h", "1.d", "\uff13d", "9" * 20 + "d"]
)
def test_a_span_without_a_unit_or_out_of_range_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("span", "words"),
    [
        (timedelta(days=30), "30 days"),
        (timedelta(days=1), "1 day"),
        (timedelta(hours=36), "36 hours"),
        (timedelta(minutes=90), "90 minutes"),
        (timedelta(days=3, hours=4), "3 days 4 hours"),
    ],
)
def test_spans_are_said_in_words(span: timedelta, words: str) -> None:
    assert describe_duration(span) == words
