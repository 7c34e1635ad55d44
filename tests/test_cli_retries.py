"""A hung or failing API on the command line: each retry said as it happens on a
terminal, and a call that ran out of attempts says how many it made, in how long.

The hung API is a loopback socket that accepts connections and never answers; the
command runs as ``python -m asyncbackups`` in a pseudo-terminal 80 columns wide (or
with pipes), with a short ``--timeout`` so that its attempts run out in about a second.
"""

from __future__ import annotations

import json
import re
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_cli_support import environment, run_cli, run_in_terminal

from asyncbackups.testing import FakeBackupsAPI

pytestmark = pytest.mark.skipif(
    sys.platform == "win32", reason="Windows has no pseudo-terminals (pty)"
)

TOKEN = "retry-token"
GAVE_UP = re.compile(r"gave up after (\d+) attempts in [0-9.]+ s")


@pytest.fixture
def hung_api() -> Iterator[str]:
    """The base URL of a server that accepts every connection and never answers."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.05)  # so that the accepting thread sees the end of the test
    held: list[socket.socket] = []
    over = threading.Event()

    def accept() -> None:
        while not over.is_set():
            try:
                connection, _ = server.accept()
            except TimeoutError:
                continue
            held.append(connection)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}/api/v1/"
    finally:
        over.set()
        thread.join(timeout=5)
        server.close()
        for connection in held:
            connection.close()


@pytest.fixture
def hung_env(hung_api: str, tmp_path: Path) -> dict[str, str]:
    return environment(tmp_path, ASYNCBACKUPS_TOKEN=TOKEN, ASYNCBACKUPS_BASE_URL=hung_api)


@pytest.fixture
def api() -> Iterator[FakeBackupsAPI]:
    with FakeBackupsAPI(token=TOKEN, backup_seconds=60) as fake:
        yield fake


@pytest.fixture
def env(api: FakeBackupsAPI, tmp_path: Path) -> dict[str, str]:
    return environment(tmp_path, ASYNCBACKUPS_TOKEN=TOKEN, ASYNCBACKUPS_BASE_URL=api.base_url)


def retry_lines(screen: str) -> list[str]:
    return [line for line in screen.splitlines() if "retrying (" in line]


# -- a hung API ----------------------------------------------------------------------------


def test_a_hung_api_on_a_terminal_shows_each_retry_and_how_it_gave_up(
    hung_env: dict[str, str],
) -> None:
    done = run_in_terminal("list", "--timeout", "0.2", "--max-retries", "2", env=hung_env)

    assert done.code == 1, done.out
    assert retry_lines(done.out) == [
        "no answer in 0.2 s; retrying (2 of 3)…",
        "no answer in 0.2 s; retrying (3 of 3)…",
    ]
    assert all(len(line) <= 80 for line in retry_lines(done.out))
    [error] = [line for line in done.out.splitlines() if line.startswith("error: ")]
    assert "did not answer in time (0.2 s per request; gave up after 3 attempts in" in error
    assert GAVE_UP.search(error)


def test_a_hung_api_in_a_pipe_prints_no_retry_lines_but_says_how_it_gave_up(
    hung_env: dict[str, str],
) -> None:
    done = run_cli("list", "--timeout", "0.1", "--max-retries", "1", env=hung_env)

    assert done.code == 1
    assert done.out == ""
    [error] = done.err.splitlines()  # one line: nothing but the error
    match = GAVE_UP.search(error)
    assert match is not None, error
    assert match.group(1) == "2"


def test_with_debug_the_log_tells_the_retries_and_no_retry_line_repeats_it(
    hung_env: dict[str, str],
) -> None:
    done = run_in_terminal(
        "list", "--timeout", "0.1", "--max-retries", "1", "--debug", env=hung_env
    )

    assert done.code == 1
    assert retry_lines(done.out) == []
    assert "(attempt 2 of 2)" in done.out  # the SDK's own log line


def test_without_retries_a_hung_api_says_nothing_of_attempts(hung_env: dict[str, str]) -> None:
    done = run_in_terminal("list", "--timeout", "0.1", "--max-retries", "0", env=hung_env)

    assert done.code == 1
    assert retry_lines(done.out) == []
    assert "gave up after" not in done.out
    assert "did not answer in time (0.1 s per request)" in done.out


def test_json_on_a_terminal_gives_each_retry_as_a_json_line(hung_env: dict[str, str]) -> None:
    done = run_in_terminal("list", "--json", "--timeout", "0.1", "--max-retries", "1", env=hung_env)

    assert done.code == 1
    documents = [json.loads(line) for line in done.out.splitlines() if line.strip()]
    assert documents[0] == {
        "retry": {"message": "no answer in 0.1 s; retrying (2 of 2)…", "attempt": 2, "of": 2}
    }
    assert GAVE_UP.search(documents[-1]["error"]["message"])


# -- an API that fails, then answers --------------------------------------------------------


def test_a_503_then_an_answer_shows_the_retry_and_lists(
    api: FakeBackupsAPI, env: dict[str, str]
) -> None:
    api.faults.status_before(503, method="GET", path="backups/", times=1)

    done = run_in_terminal("list", "--server-id", "12345", env=env)

    assert done.code == 0, done.out
    assert retry_lines(done.out) == ["the API answered 503; retrying (2 of 4)…"]
    assert " 501 " in done.out
    assert api.requests[("GET", "backups/")] == 2


def test_a_404_after_a_retried_read_is_no_give_up(api: FakeBackupsAPI, env: dict[str, str]) -> None:
    api.faults.status_before(503, method="GET", times=1)

    done = run_in_terminal("get", "999999", env=env)

    assert done.code == 1
    assert retry_lines(done.out) == ["the API answered 503; retrying (2 of 4)…"]
    [error] = [line for line in done.out.splitlines() if line.startswith("error: ")]
    assert "backup 999999 not found" in error
    assert "gave up" not in error


def test_a_refused_connection_names_the_reason_in_its_retry_lines(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = environment(
        tmp_path, ASYNCBACKUPS_TOKEN=TOKEN, ASYNCBACKUPS_BASE_URL=f"http://127.0.0.1:{port}/api/v1/"
    )

    done = run_in_terminal("get", "501", "--max-retries", "1", env=env)

    assert done.code == 1
    assert retry_lines(done.out) == ["connection refused; retrying (2 of 2)…"]
    [error] = [line for line in done.out.splitlines() if line.startswith("error: ")]
    assert "connection refused; gave up after 2 attempts in" in error
