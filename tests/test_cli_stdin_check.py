"""``fleet --from-file -``: stdin is checked whole before anything is sent, unless
``--stream`` asks to start on each line as it comes.

The fake API runs in this process on loopback; the command line runs as
``python -m asyncbackups`` with its stdin a real pipe.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_cli_support import environment, run_cli

from asyncbackups.testing import FakeBackupsAPI

RUN = "c8"


@pytest.fixture
def api() -> Iterator[FakeBackupsAPI]:
    with FakeBackupsAPI(token="stdin-token", backup_seconds=60, fleet=10) as fake:
        yield fake


@pytest.fixture
def env(api: FakeBackupsAPI, tmp_path: Path) -> dict[str, str]:
    return environment(tmp_path, ASYNCBACKUPS_TOKEN=api.token, ASYNCBACKUPS_BASE_URL=api.base_url)


def creates(api: FakeBackupsAPI) -> list[int]:
    """The server of every create that reached the API, in order of arrival."""
    return [
        json.loads(request.body)["server_id"]
        for request in api.request_log
        if request.method == "POST" and request.template == "backups/"
    ]


def made(api: FakeBackupsAPI) -> list[int]:
    """The servers that have a manual backup of this run, sorted."""
    return sorted(
        backup.server_id
        for backup in api.backups(backup_type="manual")
        if backup.description == RUN
    )


# -- by default: read whole, checked, then sent ------------------------------------------


def test_a_bad_line_on_stdin_is_reported_before_any_backup_is_made(
    api: FakeBackupsAPI, env: dict[str, str]
) -> None:
    done = run_cli("fleet", "--from-file", "-", "--description", RUN, env=env, stdin="1\n2\nabc\n")

    assert done.code == 2
    assert done.err == "error: stdin line 3: 'abc' is not a server ID\n"
    assert done.out == ""
    assert creates(api) == []
    assert api.request_log == []  # not even a read


def test_a_bad_line_at_the_very_end_of_a_long_stdin_sends_nothing(
    api: FakeBackupsAPI, env: dict[str, str]
) -> None:
    lines = "".join(f"{server}\n" for server in range(1, 50_001)) + "web-03\n"

    done = run_cli("fleet", "--from-file", "-", env=env, stdin=lines)

    assert done.code == 2
    assert "stdin line 50001: 'web-03' is not a server ID" in done.err
    assert api.request_log == []


def test_a_server_repeated_on_stdin_is_reported_before_anything_is_sent(
    api: FakeBackupsAPI, env: dict[str, str]
) -> None:
    done = run_cli("fleet", "--from-file", "-", env=env, stdin="1\n2\n# again:\n1\n")

    assert done.code == 2
    assert "stdin line 4: server_ids repeats [1]" in done.err
    assert api.request_log == []


def test_bytes_that_are_not_utf8_on_stdin_are_a_bad_line_shown_escaped(
    api: FakeBackupsAPI, env: dict[str, str]
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "asyncbackups", "fleet", "--from-file", "-"],
        input=b"1\n\xff2\n", capture_output=True, env=env, timeout=20, check=False,
    )  # fmt: skip

    assert done.returncode == 2
    assert b"stdin line 2: '" in done.stderr
    assert b"xff2' is not a server ID" in done.stderr
    assert b"\xff" not in done.stderr  # the raw byte never reaches the terminal
    assert api.request_log == []


def test_an_empty_stdin_is_a_usage_error(api: FakeBackupsAPI, env: dict[str, str]) -> None:
    done = run_cli("fleet", "--from-file", "-", env=env, stdin="# nothing yet\n\n")

    assert done.code == 2
    assert done.err == "error: no server IDs in stdin\n"
    assert api.request_log == []


def test_a_good_stdin_backs_up_every_server_in_input_order(
    api: FakeBackupsAPI, env: dict[str, str]
) -> None:
    done = run_cli(
        "fleet", "--from-file", "-", "--description", RUN, "--concurrency", "1",
        "--output", "plain", env=env, stdin="3\n# comment\n1\n\n2  # trailing\n",
    )  # fmt: skip

    assert done.code == 0, done.err
    assert creates(api) == [3, 1, 2]
    assert made(api) == [1, 2, 3]
    assert [line.split("\t")[:2] for line in done.out.splitlines()] == [
        ["3", "ok"],
        ["1", "ok"],
        ["2", "ok"],
    ]


def test_the_json_document_counts_every_server_of_stdin(
    api: FakeBackupsAPI, env: dict[str, str]
) -> None:
    done = run_cli("fleet", "--from-file", "-", "--json", env=env, stdin="4\n5\n6\n")

    assert done.code == 0, done.err
    document = json.loads(done.out)
    assert (document["servers"], document["succeeded"]) == (3, 3)
    assert [outcome["server_id"] for outcome in document["outcomes"]] == [4, 5, 6]


def test_a_dry_run_of_a_bad_stdin_prints_no_request(
    api: FakeBackupsAPI, env: dict[str, str]
) -> None:
    done = run_cli("fleet", "--from-file", "-", "--dry-run", env=env, stdin="1\nx\n")

    assert done.code == 2
    assert "would send" not in done.out
    assert "stdin line 2: 'x' is not a server ID" in done.err


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="the platform has no named pipes")
def test_a_named_pipe_is_checked_whole_like_stdin(
    api: FakeBackupsAPI, env: dict[str, str], tmp_path: Path
) -> None:
    fifo = tmp_path / "servers.fifo"
    os.mkfifo(fifo)

    def feed() -> None:
        with open(fifo, "w") as writer:  # blocks until the command opens it
            writer.write("1\n2\nnope\n")

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    done = run_cli("fleet", "--from-file", str(fifo), env=env)
    feeder.join(timeout=5)

    assert done.code == 2
    assert f"{fifo} line 3: 'nope' is not a server ID" in done.err
    assert api.request_log == []


# -- --stream: start on each line as it comes --------------------------------------------


def test_stream_makes_the_backups_before_a_bad_line_and_says_how_to_resume(
    api: FakeBackupsAPI, env: dict[str, str]
) -> None:
    done = run_cli(
        "fleet", "--from-file", "-", "--stream", "--description", RUN,
        env=env, stdin="1\n2\nabc\n4\n",
    )  # fmt: skip

    assert done.code == 2
    assert made(api) == [1, 2]  # line 4 was never read into the run
    [error] = done.err.splitlines()
    assert error.startswith("error: stdin line 3: 'abc' is not a server ID; ")
    assert "stopped there after sending 2 servers (2 backups made)" in error
    assert "run it again with --resume and the same --description" in error

    # The fix, resumed: the two made are adopted, only the rest is created.
    again = run_cli(
        "fleet", "--from-file", "-", "--stream", "--description", RUN, "--resume",
        "--settle-timeout", "0", env=env, stdin="1\n2\n3\n4\n",
    )  # fmt: skip

    assert again.code == 0, again.err
    assert made(api) == [1, 2, 3, 4]  # one backup each: none made twice


def test_stream_without_a_description_says_the_run_cannot_be_resumed(
    api: FakeBackupsAPI, env: dict[str, str]
) -> None:
    done = run_cli("fleet", "--from-file", "-", "--stream", env=env, stdin="5\nweb\n")

    assert done.code == 2
    assert "stopped there after sending 1 servers (1 backups made)" in done.err
    assert "without a --description a run cannot be resumed" in done.err
    assert creates(api) == [5]


def test_stream_with_a_bad_first_line_makes_nothing_and_says_so(
    api: FakeBackupsAPI, env: dict[str, str]
) -> None:
    done = run_cli("fleet", "--from-file", "-", "--stream", env=env, stdin="web\n1\n")

    assert done.code == 2
    assert "stdin line 1: 'web' is not a server ID" in done.err
    assert "--resume" not in done.err
    assert creates(api) == []


def test_stream_needs_from_file(api: FakeBackupsAPI, env: dict[str, str]) -> None:
    done = run_cli("fleet", "1", "--stream", env=env)

    assert done.code == 2
    assert "--stream reads --from-file as it comes" in done.err
    assert api.request_log == []


def test_a_regular_file_is_checked_first_even_with_stream(
    api: FakeBackupsAPI, env: dict[str, str], tmp_path: Path
) -> None:
    servers = tmp_path / "servers.txt"
    servers.write_text("1\n2\nweb\n")

    done = run_cli("fleet", "--from-file", str(servers), "--stream", env=env)

    assert done.code == 2
    assert f"{servers} line 3: 'web' is not a server ID" in done.err
    assert api.request_log == []


def test_the_help_says_what_stream_does_at_a_bad_line(
    api: FakeBackupsAPI, env: dict[str, str]
) -> None:
    done = run_cli("fleet", "--help", env={**env, "COLUMNS": "80"})

    help_text = " ".join(done.out.split())
    assert "--stream with --from-file - (or a pipe)" in help_text
    assert "A bad line stops the run there" in help_text
    assert "how many backups were made" in help_text
    assert "--resume" in help_text
