"""How the command line draws: rich on a terminal, plain text without one or without rich."""

from __future__ import annotations

import io
import json
import re
import sys
from collections.abc import Callable, Iterator

import pytest

from asyncbackups._cli import main
from asyncbackups._cli.output.tables import Column, choose_columns
from asyncbackups.testing import FakeBackupsAPI

FAILING = 3


class Terminal(io.StringIO):
    """A captured stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeBackupsAPI]:
    fake = FakeBackupsAPI(backup_seconds=0.05, fleet=4, failing_servers=[FAILING])
    with fake:
        monkeypatch.setenv("ASYNCBACKUPS_TOKEN", fake.token)
        monkeypatch.setenv("ASYNCBACKUPS_BASE_URL", fake.base_url)
        yield fake


OnTerminal = Callable[..., tuple[int, str]]
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")  # colours and cursor moves


@pytest.fixture
def on_terminal(monkeypatch: pytest.MonkeyPatch) -> OnTerminal:
    """Run ``main`` with stdout a terminal 120 columns wide; get its status and text.

    stdout is swapped only around the call: pytest's capture resets it between the
    setup of fixtures and the test.
    """
    monkeypatch.setenv("COLUMNS", "120")
    monkeypatch.setenv("LINES", "40")

    def run(*argv: str) -> tuple[int, str]:
        screen = Terminal()
        with monkeypatch.context() as patch:
            patch.setattr(sys, "stdout", screen)
            code = main(list(argv))
        return code, ANSI_ESCAPE.sub("", screen.getvalue())

    return run


@pytest.fixture
def without_rich(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``import rich`` (and every rich module) fail, as when it is not installed."""
    for name in [name for name in sys.modules if name.startswith("rich.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "rich", None)


def test_fleet_on_a_terminal_draws_a_bar_and_a_failures_table(
    api: FakeBackupsAPI, on_terminal: OnTerminal, capsys: pytest.CaptureFixture[str]
) -> None:
    code, screen = on_terminal("fleet", "1", "2", str(FAILING), "--wait", "--poll-interval", "0.01")

    assert code == 4
    assert "━" in screen  # the progress bar
    assert "3/3" in screen
    assert "2 ok" in screen
    assert "1 failed" in screen
    assert "Failed servers" in screen
    assert "┃ SERVER ┃" in screen  # a rich table, not plain columns
    assert "server 1 ok backup" not in screen  # no plain lines under the bar
    assert capsys.readouterr().err == "error: 1 of 3 server backups failed\n"


def test_list_on_a_terminal_is_a_rich_table(api: FakeBackupsAPI, on_terminal: OnTerminal) -> None:
    code, screen = on_terminal("list", "--server-id", "12345")

    assert code == 0
    assert "┃  ID ┃ SERVER" in screen
    assert "web-server-01" in screen


def test_without_rich_a_terminal_gets_plain_lines(
    api: FakeBackupsAPI, on_terminal: OnTerminal, without_rich: None
) -> None:
    code, screen = on_terminal("fleet", "1", "2", "--wait", "--poll-interval", "0.01")

    lines = screen.splitlines()
    assert code == 0
    assert sorted(line.split(" backup ")[0] for line in lines[:2]) == [
        "server 1 ok",
        "server 2 ok",
    ]
    assert lines[2].startswith("2 of 2 servers ok, 0 failed")
    assert "━" not in screen


def test_without_rich_the_demo_runs_in_plain_text(
    on_terminal: OnTerminal, without_rich: None
) -> None:
    code, screen = on_terminal("demo", "--servers", "6", "--backup-seconds", "0.05")

    assert code == 0
    assert "4 of 6 servers ok, 2 failed" in screen
    assert "Summary\n  servers" in screen


def test_json_on_a_terminal_keeps_stdout_pure_json(
    api: FakeBackupsAPI, on_terminal: OnTerminal, capsys: pytest.CaptureFixture[str]
) -> None:
    code, screen = on_terminal("--json", "fleet", "1", "2", "--wait", "--poll-interval", "0.01")

    assert code == 0
    assert json.loads(screen)["succeeded"] == 2
    assert capsys.readouterr().err == ""  # stderr is no terminal: no bar drawn there


def test_wait_on_a_terminal_ends_with_the_result(
    api: FakeBackupsAPI, on_terminal: OnTerminal
) -> None:
    backup_id = api.state.create_backup(1).id

    code, screen = on_terminal("wait", str(backup_id), "--poll-interval", "0.01")

    assert code == 0
    assert f"backup {backup_id} of server 1 (fleet-0001): completed" in screen


def test_without_rich_a_narrow_terminal_gets_a_table_that_fits(
    api: FakeBackupsAPI,
    on_terminal: OnTerminal,
    without_rich: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    api.state.create_backup(12345, description="a description long enough to fold " * 3)

    code, screen = on_terminal("list", "--server-id", "12345")

    assert code == 0
    lines = screen.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert lines[0].split()[:4] == ["ID", "SERVER", "TYPE", "STATUS"]
    assert "EXPIRES" not in lines[0]
    for backup_id in (501, 499, 495):
        assert any(line.split()[:2] == [str(backup_id), "12345"] for line in lines)
    assert sum("fold" in line for line in lines) == 3  # the description folds, whole


def test_a_table_keeps_the_priority_columns_and_drops_the_rest_by_priority() -> None:
    columns = (
        Column("ID"),
        Column("STATUS"),
        Column("NOTE", priority=2, fold=True, min_width=6),
        Column("SIZE", priority=3),
    )
    rows = [["123456", "in_progress", "x" * 40, "1234567"]]

    def fit(width: int | None) -> list[str] | None:
        keep = choose_columns(columns, rows, width, overhead=lambda n: 2 * (n - 1))
        return None if keep is None else [columns[index].header for index in keep]

    assert fit(None) == ["ID", "STATUS", "NOTE", "SIZE"]
    assert fit(200) == ["ID", "STATUS", "NOTE", "SIZE"]
    assert fit(36) == ["ID", "STATUS", "NOTE", "SIZE"]  # the note folds to 6
    assert fit(35) == ["ID", "STATUS", "NOTE"]
    assert fit(27) == ["ID", "STATUS", "NOTE"]
    assert fit(26) == ["ID", "STATUS"]
    assert fit(19) == ["ID", "STATUS"]
    assert fit(18) is None  # one field a line then
