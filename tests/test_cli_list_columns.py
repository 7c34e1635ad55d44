"""``list`` at a terminal: the columns hidden to fit are named, ``--wide`` and ``--columns``
show them, and rows are written as pages arrive.

Most tests run ``python -m asyncbackups`` in a pseudo-terminal 80 columns wide against
the fake API. The streaming tests use a small loopback API of their own whose second
page is held back until the test has seen the first page's rows on the screen.
"""

from __future__ import annotations

import io
import json
import re
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from test_cli_support import ANSI, DEADLINE_SECONDS, environment, run_cli, run_in_terminal

from asyncbackups._cli import main
from asyncbackups.testing import FakeBackupsAPI

pytestmark = pytest.mark.skipif(
    sys.platform == "win32", reason="Windows has no pseudo-terminals (pty)"
)

TOKEN = "columns-token"
LONG = "before the kernel upgrade on the primary database host, keep for a month"
FOOTER = "hidden to fit 80 columns: name, size, expires (show with --wide or --columns)"
NAMES = "id, server, type, status, name, size, created, expires, description"


@pytest.fixture
def api() -> Iterator[FakeBackupsAPI]:
    with FakeBackupsAPI(token=TOKEN, backup_seconds=60) as fake:
        fake.state.create_backup(12345, description=LONG)
        yield fake


@pytest.fixture
def env(api: FakeBackupsAPI, tmp_path: Path) -> dict[str, str]:
    return environment(tmp_path, ASYNCBACKUPS_TOKEN=TOKEN, ASYNCBACKUPS_BASE_URL=api.base_url)


def widest(text: str) -> int:
    return max((len(line) for line in text.splitlines()), default=0)


def header_of(screen: str) -> list[str]:
    """The header's column names, from rich's look (``┃ ID ┃ SERVER ┃``)."""
    line = next(line for line in screen.splitlines() if "ID" in line and "┃" in line)
    return [cell.strip() for cell in line.strip("┃").split("┃")]


# -- which columns, and saying so ------------------------------------------------------


def test_at_80_columns_a_dim_footer_names_the_hidden_columns(
    api: FakeBackupsAPI, env: dict[str, str]
) -> None:
    done = run_in_terminal("list", "--server-id", "12345", env=env, columns=80)

    assert done.code == 0, done.out
    assert widest(done.out) <= 80
    assert header_of(done.out) == ["ID", "SERVER", "TYPE", "STATUS", "CREATED (UTC)", "DESCRIPTION"]
    assert done.out.splitlines()[-1] == FOOTER
    assert b"\x1b[2m" + FOOTER.encode() in done.raw  # dim


def test_a_wide_terminal_hides_nothing_and_says_nothing(
    api: FakeBackupsAPI, env: dict[str, str]
) -> None:
    done = run_in_terminal("list", "--server-id", "12345", env=env, columns=200)

    assert done.code == 0, done.out
    assert "EXPIRES (UTC)" in header_of(done.out)
    assert "hidden" not in done.out


def test_wide_shows_every_column_at_80_columns(api: FakeBackupsAPI, env: dict[str, str]) -> None:
    done = run_in_terminal("list", "--server-id", "12345", "--wide", env=env, columns=80)

    assert done.code == 0, done.out
    assert header_of(done.out) == [
        "ID", "SERVER", "TYPE", "STATUS", "NAME", "SIZE (MB)",
        "CREATED (UTC)", "EXPIRES (UTC)", "DESCRIPTION",
    ]  # fmt: skip
    assert LONG in done.out  # whole: nothing folds under --wide
    assert "hidden" not in done.out


def test_columns_picks_the_columns_and_their_order(
    api: FakeBackupsAPI, env: dict[str, str]
) -> None:
    done = run_in_terminal(
        "list", "--server-id", "12345", "--columns", "status,id,SIZE,description",
        env=env, columns=80,
    )  # fmt: skip

    assert done.code == 0, done.out
    assert widest(done.out) <= 80
    assert header_of(done.out) == ["STATUS", "ID", "SIZE (MB)", "DESCRIPTION"]
    assert re.search(r"│ completed\s+│\s+501 │\s+4523 │ Automatic daily backup", done.out)
    assert "hidden" not in done.out  # the columns asked for are all there is


def test_plain_output_with_columns_is_those_fields_tab_separated(
    api: FakeBackupsAPI, env: dict[str, str]
) -> None:
    done = run_cli(
        "list", "--server-id", "12345", "--columns", "id,size", "--output", "plain", env=env
    )

    assert done.code == 0, done.err
    assert done.out.splitlines()[1:] == ["501\t4523", "499\t4456", "495\t4389"]


def test_a_piped_table_keeps_every_column_and_has_no_footer(
    api: FakeBackupsAPI, env: dict[str, str]
) -> None:
    done = run_cli("list", "--server-id", "12345", env=env)

    assert done.code == 0, done.err
    header, *rows = done.out.splitlines()
    assert "EXPIRES (UTC)" in header
    assert "hidden" not in done.out
    assert [row.split()[0] for row in rows] == [row.split()[0] for row in rows if row[0] != " "]
    assert len(rows) == 4  # one line a backup: a pipe never folds


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("id,sizee", f"unknown column 'sizee'; choose from {NAMES}"),
        ("id,,status", f"an empty column name in 'id,,status'; choose from {NAMES}"),
        ("id,status,id", "column 'id' is named twice"),
    ],
)
def test_a_bad_columns_value_is_a_usage_error_and_nothing_is_sent(
    api: FakeBackupsAPI, env: dict[str, str], value: str, message: str
) -> None:
    done = run_cli("list", "--columns", value, env=env)

    assert done.code == 2
    assert message in done.err
    assert api.request_log == []


@pytest.mark.parametrize("flag", [["--wide"], ["--columns", "id"]])
def test_json_with_a_table_flag_is_a_usage_error(
    api: FakeBackupsAPI, env: dict[str, str], flag: list[str]
) -> None:
    done = run_cli("list", "--json", *flag, env=env)

    assert done.code == 2
    assert "shapes a table; JSON output keeps every field" in done.err
    assert api.request_log == []


def test_the_help_names_every_column(api: FakeBackupsAPI, env: dict[str, str]) -> None:
    done = run_in_terminal("list", "--help", env=env, columns=80)

    assert widest(done.out) <= 80
    assert f"Columns: {NAMES}." in " ".join(done.out.split())


# -- rows as pages arrive ----------------------------------------------------------------


def _backup(backup_id: int, *, name: str = "web-01", status: str = "completed") -> dict[str, Any]:
    return {
        "id": backup_id,
        "server": {"id": 7, "name": name},
        "backup_type": "automatic",
        "status": status,
        "size_mb": 100,
        "created_at": "2025-01-16T03:00:00Z",
        "expires_at": None,
        "description": "nightly",
    }


class HeldPages:
    """A loopback API of two list pages; the second waits for ``release``."""

    def __init__(self, first: list[dict[str, Any]], second: list[dict[str, Any]]) -> None:
        self.release = threading.Event()
        self.asked: list[str] = []
        pages = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                pages.asked.append(self.path)
                body: dict[str, Any] = {"count": len(first) + len(second)}
                if "page=2" in self.path:
                    pages.release.wait(DEADLINE_SECONDS)
                    body.update(next=None, results=second)
                else:
                    following = f"http://127.0.0.1:{pages.port}/api/v1/backups/?page=2"
                    body.update(next=following, results=first)
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v1/"

    def __enter__(self) -> HeldPages:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def text_of(raw: bytes) -> str:
    """The screen's lines: escapes taken out, and a line written over after a carriage
    return (the count line, erased) kept as it was last written."""
    text = ANSI.sub("", raw.decode("utf-8", "replace").replace("\r\n", "\n"))
    return "\n".join(line.rsplit("\r", 1)[-1] for line in text.split("\n"))


def test_the_first_pages_rows_show_while_the_next_page_is_read(tmp_path: Path) -> None:
    first = [_backup(backup_id) for backup_id in range(300, 200, -1)]
    second = [_backup(backup_id) for backup_id in range(200, 150, -1)]
    seen_before_release: list[str] = []

    with HeldPages(first, second) as api:
        env = environment(tmp_path, ASYNCBACKUPS_TOKEN=TOKEN, ASYNCBACKUPS_BASE_URL=api.base_url)

        def on_count(screen: bytes) -> None:
            seen_before_release.append(text_of(screen))
            api.release.set()

        done = run_in_terminal(
            "list", env=env, columns=80, when=[(b"reading\xe2\x80\xa6 100 backups", on_count)]
        )
        code, raw = done.code, done.raw

    assert code == 0, raw
    [before] = seen_before_release
    assert "│ 300 │" in before  # the whole first page was on the screen...
    assert "│ 201 │" in before
    assert "│ 200 │" not in before  # ...while the second was still held
    assert len(api.asked) == 2
    screen = text_of(raw)
    ids = [int(match) for match in re.findall(r"^│ (\d+) │", screen, flags=re.MULTILINE)]
    assert ids == list(range(300, 150, -1))  # every row once, in the API's order
    assert screen.rstrip("\n").splitlines()[-2].startswith("└")  # the box is closed
    # The count line was taken away each time: nothing follows it but an erase.
    last = raw.rindex("reading…".encode())
    assert raw.index(b"\r\x1b[2K", last) < raw.index(b"\xe2\x94\x82", last)  # before a "│"


def test_a_later_wider_cell_folds_inside_its_column(tmp_path: Path) -> None:
    first = [_backup(10, name="web-01")]
    second = [_backup(9, name="a-much-longer-server-name-than-any-before")]

    with HeldPages(first, second) as api:
        api.release.set()
        env = environment(tmp_path, ASYNCBACKUPS_TOKEN=TOKEN, ASYNCBACKUPS_BASE_URL=api.base_url)
        done = run_in_terminal("list", "--columns", "id,name,status", env=env, columns=80)

    assert done.code == 0, done.out
    box = [line for line in done.out.splitlines() if line[:1] in "┏┃┡│└"]
    assert len({len(line) for line in box}) == 1  # every line of the box as wide
    names = "".join(line.split("│")[2].strip() for line in box if line.startswith("│"))
    assert "a-much-longer-server-name-than-any-before" in names  # folded, not cut


# -- a terminal without rich -------------------------------------------------------------


class _Terminal(io.StringIO):
    """A captured stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def test_without_rich_a_terminal_gets_aligned_columns_and_the_footer(
    api: FakeBackupsAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [name for name in sys.modules if name == "rich" or name.startswith("rich.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "rich", None)  # as when rich is not installed
    monkeypatch.setenv("ASYNCBACKUPS_TOKEN", TOKEN)
    monkeypatch.setenv("ASYNCBACKUPS_BASE_URL", api.base_url)
    monkeypatch.setenv("COLUMNS", "80")
    screen = _Terminal()

    with monkeypatch.context() as patch:
        patch.setattr(sys, "stdout", screen)
        code = main(["list", "--server-id", "12345"])

    lines = screen.getvalue().splitlines()
    assert code == 0
    assert lines[0].split()[:4] == ["ID", "SERVER", "TYPE", "STATUS"]
    assert max(len(line) for line in lines) <= 80
    assert lines[-1] == FOOTER
    assert "\x1b[" not in screen.getvalue()  # no rich, no styles
