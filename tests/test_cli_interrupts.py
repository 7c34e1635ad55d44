"""Ctrl-C: what is still running on the server, and how to follow it; a clean screen.

Each test runs ``python -m asyncbackups`` as a real process against the fake API (in
this process, on loopback). Pipes get a SIGINT; a pseudo-terminal gets a real Ctrl-C:
the byte ``\\x03`` typed on it, which the terminal driver echoes as ``^C`` and turns
into SIGINT for the foreground process, as an operator's keyboard does.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from test_cli_support import DEADLINE_SECONDS, Lines, environment, wait_until

from asyncbackups.testing import FakeBackupsAPI

pytestmark = pytest.mark.skipif(
    sys.platform == "win32", reason="Windows has no SIGINT for a child, nor pseudo-terminals"
)

TOKEN = "interrupts-token-0123456789abcdef"
# Starts the command line with SIGINT at its default, whatever this test process
# inherited (a shell ignores it for background jobs, and "ignored" survives exec), and,
# on a pseudo-terminal, with that terminal as its controlling one, so that a typed
# Ctrl-C reaches it.
BOOT = """
import fcntl, os, signal, sys, termios
signal.signal(signal.SIGINT, signal.SIG_DFL)
if sys.argv[1] == "tty":
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
os.execv(sys.executable, [sys.executable, "-m", "asyncbackups", *sys.argv[2:]])
"""


@pytest.fixture
def api() -> Iterator[FakeBackupsAPI]:
    """Servers 1-100 whose backups take an hour: whatever is created stays running."""
    with FakeBackupsAPI(token=TOKEN, backup_seconds=3600, fleet=100, sample_data=False) as fake:
        yield fake


@pytest.fixture
def env(api: FakeBackupsAPI, tmp_path: Path) -> dict[str, str]:
    return environment(tmp_path, ASYNCBACKUPS_TOKEN=TOKEN, ASYNCBACKUPS_BASE_URL=api.base_url)


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes a test started; any still running at its end are killed."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate()


def start(
    processes: list[subprocess.Popen[bytes]], *argv: str, env: Mapping[str, str]
) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-c", BOOT, "pipes", *argv],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(env),
    )
    processes.append(process)
    return process


def interrupt(process: subprocess.Popen[bytes]) -> tuple[int, str, str]:
    """SIGINT, then the exit status and what is left of stdout and stderr."""
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=DEADLINE_SECONDS)
    return process.returncode, out.decode(), err.decode()


def manual_backups(api: FakeBackupsAPI) -> dict[int, int]:
    """Server ID -> the ID of its manual backup, for those that have one."""
    return {backup.server_id: backup.id for backup in api.backups(backup_type="manual")}


def polls_since_the_last_create(api: FakeBackupsAPI) -> int:
    """Reads of the backups list since the last create reached the API.

    A wait polls only once the command has the create's answer; a few polls after the
    last create, the command has had every answer (its one event loop read them first).
    """
    log = api.request_log
    creates = [index for index, request in enumerate(log) if request.method == "POST"]
    after = log[creates[-1] + 1 :] if creates else log
    return sum(1 for request in after if request.method == "GET")


# -- create --wait ------------------------------------------------------------------------


def test_ctrl_c_during_create_wait_names_the_backup_and_how_to_follow_it(
    api: FakeBackupsAPI, env: dict[str, str], processes: list[subprocess.Popen[bytes]]
) -> None:
    process = start(processes, "create", "7", "--wait", "--poll-interval", "0.05", env=env)
    assert Lines(process).next().startswith("backup ")  # created: the wait has begun

    code, _, err = interrupt(process)

    [(server_id, backup_id)] = manual_backups(api).items()
    assert (code, server_id) == (130, 7)
    assert err == (
        f"error: interrupted; backup {backup_id} is still being created: "
        f"asyncbackups wait {backup_id}\n"
    )
    assert api.backup(backup_id).status == "in_progress"  # Ctrl-C stopped the wait only


def test_the_follow_hint_carries_the_connection_flags_but_never_the_token(
    api: FakeBackupsAPI, tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    env = environment(tmp_path)
    argv = ["--base-url", api.base_url, "--token", TOKEN, "create", "7", "--wait"]
    process = start(processes, *argv, "--poll-interval", "0.05", env=env)
    assert Lines(process).next().startswith("backup ")

    code, _, err = interrupt(process)

    [backup_id] = manual_backups(api).values()
    assert code == 130
    assert err.endswith(f"asyncbackups --base-url {api.base_url} wait {backup_id}\n")
    assert TOKEN not in err


def test_ctrl_c_during_create_wait_under_json_prints_the_running_backup(
    api: FakeBackupsAPI, env: dict[str, str], processes: list[subprocess.Popen[bytes]]
) -> None:
    argv = ["create", "7", "--wait", "--json", "--poll-interval", "0.05"]
    process = start(processes, *argv, env=env)
    wait_until(lambda: polls_since_the_last_create(api) >= 1)  # it has the answer: it waits

    code, out, err = interrupt(process)

    [backup_id] = manual_backups(api).values()
    assert code == 130
    backup = json.loads(out)
    assert (backup["id"], backup["server"]["id"], backup["status"]) == (
        backup_id,
        7,
        "in_progress",
    )
    error = json.loads(err)["error"]
    assert error["exit_code"] == 130
    assert f"asyncbackups wait {backup_id}" in error["message"]


# -- fleet --wait -------------------------------------------------------------------------


def test_an_interrupted_fleet_json_lists_every_running_backup_with_its_server(
    api: FakeBackupsAPI, env: dict[str, str], processes: list[subprocess.Popen[bytes]]
) -> None:
    servers = [str(server_id) for server_id in range(1, 21)]
    argv = ["fleet", *servers, "999", "--wait", "--json", "--poll-interval", "0.05"]
    process = start(processes, *argv, env=env)
    wait_until(lambda: len(manual_backups(api)) == 20)
    wait_until(lambda: polls_since_the_last_create(api) >= 3)

    code, out, err = interrupt(process)

    assert code == 130
    assert json.loads(err) == {"error": {"message": "interrupted", "exit_code": 130}}
    report = json.loads(out)
    assert report["interrupted"] is True
    made = manual_backups(api)
    running = {entry["server_id"]: entry["backup"] for entry in report["running"]}
    assert {server: backup["id"] for server, backup in running.items()} == made
    assert all(backup["status"] == "in_progress" for backup in running.values())
    assert [entry["server_id"] for entry in report["running"]] == list(range(1, 21))
    assert report["unfinished"] == len(report["running"]) == 20  # the count stays
    assert [outcome["server_id"] for outcome in report["outcomes"]] == [999]  # 404: landed


def test_an_interrupted_fleet_json_lines_ends_with_a_record_per_running_backup(
    api: FakeBackupsAPI, env: dict[str, str], processes: list[subprocess.Popen[bytes]]
) -> None:
    argv = ["fleet", "4", "5", "6", "--wait", "--json-lines", "--poll-interval", "0.05"]
    process = start(processes, *argv, env=env)
    wait_until(lambda: len(manual_backups(api)) == 3)
    wait_until(lambda: polls_since_the_last_create(api) >= 3)

    code, out, _ = interrupt(process)

    assert code == 130
    records = [json.loads(line) for line in out.splitlines()]
    made = manual_backups(api)
    assert sorted((r["server_id"], r["backup"]["id"]) for r in records) == sorted(made.items())
    for record in records:
        # The shape of an outcome (a script reading outcomes still can), marked running.
        assert record["running"] is True
        assert record["ok"] is False
        assert record["error"]["type"] == "Interrupted"


def test_an_interrupted_fleet_in_text_tables_what_is_still_running(
    api: FakeBackupsAPI, env: dict[str, str], processes: list[subprocess.Popen[bytes]]
) -> None:
    process = start(processes, "fleet", "9", "8", "--wait", "--poll-interval", "0.05", env=env)
    wait_until(lambda: len(manual_backups(api)) == 2)
    wait_until(lambda: polls_since_the_last_create(api) >= 3)

    code, out, _ = interrupt(process)

    made = manual_backups(api)
    assert code == 130
    assert "interrupted: 0 of 2 servers finished" in out
    table = out.split("Still running\n", 1)[1].splitlines()
    assert table[0].split() == ["SERVER", "BACKUP", "STATUS"]
    assert table[1].split() == ["8", str(made[8]), "in_progress"]  # by server
    assert table[2].split() == ["9", str(made[9]), "in_progress"]


# -- a real Ctrl-C on a terminal -----------------------------------------------------------


def ctrl_c_in_terminal(
    *argv: str, env: Mapping[str, str], after: bytes, columns: int = 80
) -> tuple[int, bytes]:
    """Run the command in a pseudo-terminal; type Ctrl-C once ``after`` is on screen.

    Returns the exit status and every byte written to the terminal.
    """
    master, slave = pty_pair(columns)
    environment = {**env, "COLUMNS": str(columns), "LINES": "40", "TERM": "xterm-256color"}
    try:
        process = subprocess.Popen(
            [sys.executable, "-c", BOOT, "tty", *argv],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=environment,
            start_new_session=True,  # a session of its own, for the terminal to lead
        )
    finally:
        os.close(slave)
    screen = b""
    typed = False
    deadline = time.monotonic() + DEADLINE_SECONDS
    try:
        while True:
            left = deadline - time.monotonic()
            assert left > 0, f"the command did not end in time; screen so far: {screen!r}"
            ready, _, _ = select.select([master], [], [], min(left, 0.1))
            if ready:
                try:
                    chunk = os.read(master, 65_536)
                except OSError:  # EIO: the command and its terminal are gone
                    chunk = b""
                if not chunk:
                    break
                screen += chunk
            if not typed and after in screen:
                os.write(master, b"\x03")
                typed = True
            if not ready and process.poll() is not None:
                break
        code = process.wait(timeout=max(deadline - time.monotonic(), 1))
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(master)
    assert typed, f"never saw {after!r}: {screen!r}"
    return code, screen


def pty_pair(columns: int) -> tuple[int, int]:
    import pty

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    return master, slave


_TOKEN = re.compile(
    r"\x1b\[(?P<arg>[0-9;?]*)(?P<cmd>[A-Za-z])|\x1b\][^\x07]*\x07|\x1b[()][A-Z0-9]"
    r"|\x1b[=>78]|[\r\n]|[^\x1b\r\n]+"
)


def rendered(raw: bytes, columns: int = 80) -> list[str]:
    """The screen's lines once ``raw`` has been drawn, as a terminal would show them.

    Enough of a terminal for rich's live displays: text wraps at the last column (only
    when the next character comes, as xterm does), ``\\r``, ``\\n``, cursor up, and
    erase line; colours are dropped.
    """
    lines: list[list[str]] = [[]]
    row = column = 0
    for token in _TOKEN.finditer(raw.decode("utf-8", "replace")):
        text, command = token.group(), token.group("cmd")
        if command is not None:
            argument = token.group("arg")
            count = int(argument) if argument.isdigit() else 1
            if command == "A":
                row = max(row - count, 0)
            elif command == "K" and argument == "2":
                lines[row] = []
            elif command == "K":
                del lines[row][column:]
            continue
        if text.startswith("\x1b"):
            continue
        if text == "\r":
            column = 0
            continue
        if text == "\n":
            row += 1
            lines.extend([] for _ in range(row + 1 - len(lines)))
            continue
        for char in text:
            if column >= columns:  # the pending wrap, taken by this character
                row, column = row + 1, 0
                lines.extend([] for _ in range(row + 1 - len(lines)))
            line = lines[row]
            line.extend(" " for _ in range(column - len(line)))
            if column < len(line):
                line[column] = char
            else:
                line.append(char)
            column += 1
    return ["".join(line).rstrip() for line in lines]


def test_ctrl_c_leaves_one_copy_of_each_fleet_bar_at_80_columns(
    api: FakeBackupsAPI, env: dict[str, str]
) -> None:
    # 100 servers, ten unknown (they fail at once): "finished ... 10/100 0 ok 10 failed
    # 0:00:00" nearly fills 80 columns, so the echoed "^C" would wrap it.
    servers = [str(server_id) for server_id in range(1, 91)]
    unknown = [str(server_id) for server_id in range(9001, 9011)]
    code, raw = ctrl_c_in_terminal(
        "fleet", *servers, *unknown, "--wait", env=env, after=b"10 failed"
    )

    screen = rendered(raw)
    assert code == 130, screen
    assert len([line for line in screen if line.startswith("created ")]) == 1, screen
    assert len([line for line in screen if line.startswith("finished ")]) == 1, screen
    assert max(len(line) for line in screen) <= 80
    assert "interrupted: 10 of 100 servers finished, 0 ok, 10 failed" in "\n".join(screen)


def test_ctrl_c_leaves_no_spinner_behind_after_create_wait(
    api: FakeBackupsAPI, env: dict[str, str]
) -> None:
    code, raw = ctrl_c_in_terminal(
        "create", "7", "--wait", "--poll-interval", "0.05", env=env, after=b"(in_progress)"
    )

    screen = [line for line in rendered(raw) if line]
    [backup_id] = manual_backups(api).values()
    assert code == 130
    assert not [line for line in screen if "waiting for backup" in line], screen
    assert screen[-1] == (
        f"error: interrupted; backup {backup_id} is still being created: "
        f"asyncbackups wait {backup_id}"
    )


def test_the_rendering_helper_shows_the_duplicate_a_wrapped_line_leaves() -> None:
    # What rich did before: two lines drawn, "^C" wraps the second, and the redraw
    # goes up one line from the wrapped row instead of two.
    bar = "x" * 79
    raw = f"first\r\n{bar}^C\r\x1b[2K\x1b[1A\x1b[2Kfirst\r\n{bar}\r\n".encode()

    assert rendered(raw)[:3] == ["first", "first", bar]


def test_ctrl_c_while_the_create_is_on_the_wire_says_where_to_look(
    api: FakeBackupsAPI, env: dict[str, str], processes: list[subprocess.Popen[bytes]]
) -> None:
    delayed = api.faults.delay(5.0, method="POST", path="backups/")
    process = start(processes, "create", "7", "--wait", env=env)
    wait_until(lambda: delayed.fired == 1)  # the create reached the API, unanswered

    code, out, err = interrupt(process)

    assert (code, out) == (130, "")
    assert err == (
        "error: interrupted; a backup of server 7 may have been started: "
        "asyncbackups list --server-id 7\n"
    )
