"""``ASYNCBACKUPS_LOG=debug|info|warning``: the SDK's logs on stderr, only when asked for.

Each case runs a fresh interpreter (the handler is added at import), making calls
against a fake API started in that process or against a loopback server of this test,
and reads its stderr. The in-process way, ``logging.getLogger("asyncbackups")`` under
caplog, gives the same records.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import sys
from dataclasses import dataclass

import pytest
from aiohttp import web
from conftest import BACKUP_501, LoopbackAPI, StartLoopback, json_response

from asyncbackups import BackupsClient, NotFoundError

# Distinctive, so that any trace of it in a log line is found.
SECRET = "tok-Zq8vK3mW9xR2pL7n"

# A fake API in the child process: a 503 first (echoing the token), then a get and a list.
FAKE_SCRIPT = """
import asyncio, logging, sys
from asyncbackups import BackupsClient
from asyncbackups.testing import FakeBackupsAPI

TOKEN = sys.argv[1]

async def main():
    async with FakeBackupsAPI(token=TOKEN) as api:
        api.faults.status_before(503, times=1, body={"detail": f"busy; your token {TOKEN}"})
        async with BackupsClient(
            TOKEN, base_url=api.base_url, retry_backoff=0, max_retry_backoff=0
        ) as client:
            await client.backups.get(501)
            await client.backups.list(server_id=12345)
        print("requests", len(api.request_log))
    print("handlers", len(logging.getLogger("asyncbackups").handlers))

asyncio.run(main())
"""

# Against this test's loopback server, which sends request IDs and echoes the token.
LOOPBACK_SCRIPT = """
import asyncio, sys
from asyncbackups import BackupsClient, NotFoundError

TOKEN, BASE_URL = sys.argv[1], sys.argv[2]

async def main():
    async with BackupsClient(TOKEN, base_url=BASE_URL, max_retries=0) as client:
        await client.backups.get(501)
        try:
            await client.backups.get(9)
        except NotFoundError:
            pass

asyncio.run(main())
"""

RELOAD_SCRIPT = """
import importlib, logging, sys
import asyncbackups
importlib.reload(asyncbackups)
importlib.reload(asyncbackups)
import asyncbackups
print("handlers", len(logging.getLogger("asyncbackups").handlers))
"""

# A line per HTTP request: "... GET .../backups/501/ attempt 1 -> 200 ... in 1.2 ms".
REQUEST_LINE = re.compile(r"\d+(?:\.\d+)?\s*ms\b")


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[str]:
        return self.stderr.splitlines()

    def request_lines(self) -> list[str]:
        return [line for line in self.lines if REQUEST_LINE.search(line)]

    def retry_lines(self) -> list[str]:
        return [line for line in self.lines if "retrying" in line]

    def printed(self, name: str) -> int:
        (line,) = [line for line in self.stdout.splitlines() if line.startswith(name + " ")]
        return int(line.split()[1])


async def _run(script: str, *args: str, level: str | None) -> Run:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("ASYNCBACKUPS_") and not name.lower().endswith("_proxy")
    }
    if level is not None:
        env["ASYNCBACKUPS_LOG"] = level
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        script,
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    run = Run(process.returncode or 0, stdout.decode(), stderr.decode())
    assert run.returncode == 0, run.stderr
    return run


def _assert_no_token(run: Run) -> None:
    assert SECRET not in run.stderr
    assert SECRET[:8] not in run.stderr


# -- levels, in a fresh interpreter -----------------------------------------------------


async def test_debug_logs_one_line_per_request_with_its_attempt_status_and_time() -> None:
    run = await _run(FAKE_SCRIPT, SECRET, level="debug")
    requests = run.printed("requests")
    assert requests == 3  # a 503 and its retry, then the list
    lines = run.request_lines()
    assert len(lines) == requests
    first, second, third = lines
    assert re.search(r"\bGET\b.*/api/v1/backups/501/", first)
    assert re.search(r"attempt\D{0,3}1\b", first)
    assert re.search(r"\b503\b", first)
    assert re.search(r"attempt\D{0,3}2\b", second)
    assert re.search(r"\b200\b", second)
    assert re.search(r"\bGET\b.*/api/v1/backups/", third)
    assert re.search(r"\b200\b", third)
    assert all("DEBUG" in line for line in lines)
    assert len(run.retry_lines()) == 1  # INFO shows under debug too
    _assert_no_token(run)


async def test_debug_lines_carry_the_request_id_the_server_sent(
    loopback: StartLoopback,
) -> None:
    async def handler(request: web.Request, api: LoopbackAPI) -> web.Response:
        if request.path.endswith("/501/"):
            return json_response(BACKUP_501, **{"X-Request-ID": "req-ok-501"})
        # An error that echoes the token in its body and a header.
        return json_response(
            {"detail": f"No backup 9 for token {SECRET}."},
            status=404,
            **{"X-Request-ID": "req-missing-9", "X-Echo": SECRET},
        )

    api = await loopback(handler)
    run = await _run(LOOPBACK_SCRIPT, SECRET, api.base_url, level="debug")
    lines = run.request_lines()
    assert len(lines) == len(api.seen) == 2
    found, missing = lines
    assert "/api/v1/backups/501/" in found
    assert "req-ok-501" in found
    assert "/api/v1/backups/9/" in missing
    assert re.search(r"\b404\b", missing)
    assert "req-missing-9" in missing
    _assert_no_token(run)


async def test_info_logs_retries_but_not_each_request() -> None:
    run = await _run(FAKE_SCRIPT, SECRET, level="info")
    (retry,) = run.retry_lines()
    assert "/api/v1/backups/501/" in retry
    assert "INFO" in retry
    assert run.request_lines() == []
    assert "DEBUG" not in run.stderr
    _assert_no_token(run)


async def test_warning_logs_neither_requests_nor_retries() -> None:
    run = await _run(FAKE_SCRIPT, SECRET, level="WARNING")
    assert run.retry_lines() == []
    assert run.request_lines() == []
    assert run.stderr == ""
    assert run.printed("handlers") == 1


async def test_unset_adds_no_handler_and_writes_nothing_to_stderr() -> None:
    run = await _run(FAKE_SCRIPT, SECRET, level=None)
    assert run.stderr == ""
    assert run.printed("handlers") == 0
    assert run.printed("requests") == 3


async def test_importing_again_keeps_one_handler() -> None:
    run = await _run(RELOAD_SCRIPT, level="debug")
    assert run.printed("handlers") == 1


async def test_an_unknown_level_warns_once_and_logs_warnings_only() -> None:
    run = await _run(FAKE_SCRIPT, SECRET, level="loud")
    assert "ASYNCBACKUPS_LOG" in run.stderr
    assert run.request_lines() == []
    assert run.retry_lines() == []
    _assert_no_token(run)


# -- in process: the "asyncbackups" logger ------------------------------------------------


async def test_the_asyncbackups_logger_gives_the_same_records_in_process(
    caplog: pytest.LogCaptureFixture, scripted_api: LoopbackAPI
) -> None:
    caplog.set_level(logging.DEBUG, logger="asyncbackups")
    scripted_api.answer(
        "GET",
        "backups/501/",
        status=503,
        payload={"detail": f"busy; your token {SECRET}"},
        headers={"X-Request-ID": "req-busy"},
    )
    scripted_api.answer("GET", "backups/501/", payload=BACKUP_501, headers={"X-Request-ID": "r-2"})
    scripted_api.answer("GET", "backups/9/", status=404, payload={"detail": f"no; {SECRET}"})
    async with BackupsClient(
        SECRET, base_url=scripted_api.base_url, retry_backoff=0, max_retry_backoff=0
    ) as client:
        await client.backups.get(501)
        with pytest.raises(NotFoundError):
            await client.backups.get(9)
    records = [record for record in caplog.records if record.name == "asyncbackups"]
    attempts = [
        record.getMessage() for record in records if REQUEST_LINE.search(record.getMessage())
    ]
    assert len(attempts) == len(scripted_api.seen) == 3
    assert all(
        record.levelno == logging.DEBUG
        for record in records
        if REQUEST_LINE.search(record.getMessage())
    )
    busy, ok, missing = attempts
    assert "/api/v1/backups/501/" in busy
    assert re.search(r"attempt\D{0,3}1\b", busy)
    assert "req-busy" in busy
    assert re.search(r"attempt\D{0,3}2\b", ok)
    assert "r-2" in ok
    assert "/api/v1/backups/9/" in missing
    retries = [record for record in records if "retrying" in record.getMessage()]
    assert [record.levelno for record in retries] == [logging.INFO]
    for record in records:
        assert SECRET not in record.getMessage()
        assert SECRET[:8] not in record.getMessage()
