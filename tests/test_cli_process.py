"""The command line as a real process: ``python -m asyncbackups``, ``serve``, and Ctrl-C."""

from __future__ import annotations

import asyncio
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from asyncbackups import BackupsClient
from asyncbackups.testing import FakeBackupsAPI

pytestmark = pytest.mark.skipif(
    sys.platform == "win32", reason="Windows cannot send SIGINT to a child process"
)

# Guards against a hang, far past what a loaded machine takes: these tests check what a
# process printed and how it exited, never how quickly.
STARTUP_SECONDS = 30.0
STOP_SECONDS = 30.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def start(*argv: str, **env: str) -> subprocess.Popen[bytes]:
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("ASYNCBACKUPS_")
    }
    # Unbuffered, so lines arrive as printed; warnings shown, so a leak would be seen.
    environment.update(PYTHONUNBUFFERED="1", PYTHONWARNINGS="default", **env)
    return subprocess.Popen(
        [sys.executable, "-m", "asyncbackups", *argv],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environment,
    )


class Lines:
    """Reads a process's stdout a line at a time, never blocking past a deadline.

    Reads the pipe unbuffered, so that ``select`` tells the truth about what is left
    and ``communicate`` later gets the rest.
    """

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        self._fd = process.stdout.fileno()
        self._buffer = b""

    def next(self) -> str:
        deadline = time.monotonic() + STARTUP_SECONDS
        while b"\n" not in self._buffer:
            ready, _, _ = select.select([self._fd], [], [], max(0, deadline - time.monotonic()))
            assert ready, "the process printed no line in time"
            chunk = os.read(self._fd, 65_536)
            assert chunk, "the process closed its output"
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.decode()


def interrupt(process: subprocess.Popen[bytes]) -> tuple[int, str, str]:
    """Send SIGINT; return the exit status and the rest of stdout and stderr."""
    process.send_signal(signal.SIGINT)
    try:
        out, err = process.communicate(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise
    return process.returncode, out.decode(), err.decode()


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes a test started; any still running at its end are killed."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_python_m_asyncbackups_help() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "asyncbackups", "--help"],
        capture_output=True,
        text=True,
        timeout=STARTUP_SECONDS,
        check=False,
    )

    assert done.returncode == 0
    assert done.stdout.startswith("usage: asyncbackups ")
    assert "exit status:" in done.stdout
    assert done.stderr == ""


def test_serve_answers_the_sdk_and_stops_on_sigint(
    processes: list[subprocess.Popen[bytes]],
) -> None:
    port = free_port()
    process = start("serve", "--port", str(port), "--servers", "3", "--token", "serve-token")
    processes.append(process)

    lines = Lines(process)
    announced = [lines.next() for _ in range(3)]
    base_url = f"http://127.0.0.1:{port}/api/v1/"
    assert announced[0].startswith(f"Fake Backups API listening on {base_url}")
    assert announced[1] == f"export ASYNCBACKUPS_BASE_URL={base_url}"
    assert announced[2] == "export ASYNCBACKUPS_TOKEN=serve-token"

    async def query() -> list[int]:
        async with BackupsClient("serve-token", base_url=base_url) as client:
            created = await client.backups.create(2)
            listed = await client.backups.list(server_id=2)
            assert created.id in [backup.id for backup in listed]
            return [backup.server_id for backup in await client.backups.list()]

    assert set(asyncio.run(query())) == {1, 2, 3, 12345}

    code, _, err = interrupt(process)
    assert code in (0, 130)
    assert "Traceback" not in err


def test_serve_takes_the_standalone_fakes_options_and_stops_on_sigint(
    processes: list[subprocess.Popen[bytes]],
) -> None:
    process = start(
        "serve",
        "--chaos", "0.1", "--seed", "3", "--ignore-idempotency-keys", "--no-sample-data",
        "--host", "127.0.0.1", "--port", "0",
    )  # fmt: skip
    processes.append(process)

    lines = Lines(process)
    announced = [lines.next() for _ in range(3)]
    assert announced[0].startswith("Fake Backups API listening on http://127.0.0.1:")
    base_url = announced[1].removeprefix("export ASYNCBACKUPS_BASE_URL=")
    assert base_url.startswith("http://127.0.0.1:")
    assert announced[2] == "export ASYNCBACKUPS_TOKEN=test-token"

    async def server_ids() -> list[int]:
        # Retries see the seeded chaos through; no sample data means no backups at all.
        async with BackupsClient("test-token", base_url=base_url, max_retries=10) as client:
            return [backup.server_id for backup in await client.backups.list()]

    assert asyncio.run(server_ids()) == []

    code, _, err = interrupt(process)
    assert code in (0, 130)
    assert "Traceback" not in err


def test_serve_json_announces_one_line(processes: list[subprocess.Popen[bytes]]) -> None:
    port = free_port()
    process = start("serve", "--port", str(port), "--json")
    processes.append(process)

    assert Lines(process).next() == (
        f'{{"base_url": "http://127.0.0.1:{port}/api/v1/", "token": "test-token"}}'
    )
    code, out, err = interrupt(process)
    assert code in (0, 130)
    assert (out, err) == ("", "")


def test_ctrl_c_during_a_wait_exits_130_cleanly(processes: list[subprocess.Popen[bytes]]) -> None:
    with FakeBackupsAPI(backup_seconds=3600, fleet=1) as api:
        backup_id = api.state.create_backup(1).id
        process = start(
            "wait",
            str(backup_id),
            "--poll-interval",
            "0.05",
            ASYNCBACKUPS_TOKEN=api.token,
            ASYNCBACKUPS_BASE_URL=api.base_url,
        )
        processes.append(process)
        # Interrupt only once it is really waiting: it has read the backup.
        assert Lines(process).next().startswith(f"backup {backup_id} of server 1")

        code, out, err = interrupt(process)

    assert code == 130
    assert out == ""
    # The wait stops; the backup does not: the line says how to follow it again.
    assert err == (
        f"error: interrupted; backup {backup_id} is still being created: "
        f"asyncbackups wait {backup_id}\n"
    )
