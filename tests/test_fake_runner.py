"""Running the fake: in the loop, in a thread, as a pytest fixture and as a process."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import aiohttp
import pytest

import asyncbackups.testing
from asyncbackups.testing import FakeBackupsAPI, build_parser, fake_from_arguments, serve


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def listening_socket() -> Iterator[int]:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield int(taken.getsockname()[1])


def get_json(api: FakeBackupsAPI, path: str) -> tuple[int, object]:
    request = urllib.request.Request(api.url(path), headers=api.auth_headers)
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.status, json.loads(response.read())


# -- in the running loop ---------------------------------------------------------------


async def test_in_loop_fake_listens_on_loopback_and_reports_its_url() -> None:
    async with FakeBackupsAPI(token="s3cret") as api:
        assert api.running
        assert api.base_url == f"http://127.0.0.1:{api.port}/api/v1/"
        assert api.token == "s3cret"
        assert api.url("/backups/") == api.base_url + "backups/"
        assert "s3cret" not in repr(api)
    assert not api.running


async def test_a_fake_is_not_started_twice_and_stops_twice_harmlessly() -> None:
    api = FakeBackupsAPI()
    with pytest.raises(RuntimeError, match="not been started"):
        _ = api.base_url
    await api.start()
    try:
        with pytest.raises(RuntimeError, match="already running"):
            await api.start()
        with pytest.raises(RuntimeError, match="already running"):
            api.start_in_thread()
    finally:
        await api.stop()
    await api.stop()


async def test_stopping_closes_kept_alive_connections_and_frees_the_port() -> None:
    async with aiohttp.ClientSession() as http:
        async with FakeBackupsAPI() as api, http.get(api.url("backups/")) as response:
            assert response.status == 401
        with pytest.raises(aiohttp.ClientConnectionError):
            await http.get(api.url("backups/"))


async def test_stopping_with_a_request_in_flight_is_quick_and_quiet(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession() as http:
        api = FakeBackupsAPI()
        await api.start()
        api.faults.delay(30)
        pending = asyncio.ensure_future(http.post(api.url("backups/"), json={"server_id": 12345}))
        for _ in range(100):
            if api.faults.injected:
                break
            await asyncio.sleep(0.005)
        started = loop.time()
        await api.stop()
        assert loop.time() - started < 0.2
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await pending
    assert api.backups(backup_type="manual")[0].id == 499
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_a_taken_port_raises_oserror() -> None:
    with listening_socket() as port:
        with pytest.raises(OSError, match="in use"):
            await FakeBackupsAPI(port=port).start()
        with pytest.raises(OSError, match="in use"):
            FakeBackupsAPI(port=port).start_in_thread()


async def test_a_fixed_port_is_used_as_given() -> None:
    port = free_port()
    async with FakeBackupsAPI(port=port) as api:
        assert api.base_url == f"http://127.0.0.1:{port}/api/v1/"


async def test_serve_runs_until_cancelled_and_tells_when_ready() -> None:
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    api = FakeBackupsAPI()
    task = asyncio.create_task(
        serve(api, on_ready=lambda fake: ready.set_result(fake.base_url), handle_signals=False)
    )
    base_url = await asyncio.wait_for(ready, 5)
    async with (
        aiohttp.ClientSession(headers=api.auth_headers) as http,
        http.get(base_url + "backups/") as response,
    ):
        assert response.status == 200
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not api.running


# -- in a background thread --------------------------------------------------------------


def test_threaded_fake_serves_a_synchronous_test_without_any_event_loop() -> None:
    with FakeBackupsAPI(backup_seconds=2) as api:
        request = urllib.request.Request(
            api.url("backups/"),
            data=json.dumps({"server_id": 12345}).encode(),
            headers={**api.auth_headers, "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 201
        api.advance(2)
        status, backup = get_json(api, "backups/502/")
        assert (status, backup["status"]) == (200, "completed")  # type: ignore[index]
    assert not api.running


def test_threaded_fake_takes_control_calls_from_the_test_thread() -> None:
    with FakeBackupsAPI() as api:
        api.add_server(7, "db-01")
        api.set_failing(7)
        api.page_size = 1
        api.faults.status_before(503, times=1)
        with pytest.raises(urllib.error.HTTPError) as raised:
            get_json(api, "backups/")
        assert raised.value.code == 503
        raised.value.close()
        _, body = get_json(api, "backups/")
        assert body["next"] == api.url("backups/?page=2")  # type: ignore[index]
        assert api.requests[("GET", "backups/")] == 2


def test_a_page_size_below_one_is_refused_at_construction_and_later() -> None:
    with pytest.raises(ValueError, match="page_size must be >= 1, got 0"):
        FakeBackupsAPI(page_size=0)
    api = FakeBackupsAPI(page_size=3)
    with pytest.raises(ValueError, match="page_size must be >= 1, got -1"):
        api.page_size = -1
    assert api.page_size == 3


async def test_threaded_fake_serves_an_async_test_from_its_own_loop() -> None:
    with FakeBackupsAPI() as api:
        async with (
            aiohttp.ClientSession(headers=api.auth_headers) as http,
            http.get(api.url("backups/")) as response,
        ):
            assert (await response.json())["count"] == 3


def test_threaded_fake_stops_twice_harmlessly_and_can_start_again() -> None:
    api = FakeBackupsAPI()
    api.start_in_thread()
    api.stop_in_thread()
    api.stop_in_thread()
    with api:
        assert get_json(api, "backups/")[0] == 200


# -- as a pytest fixture -----------------------------------------------------------------


def test_fixture_gives_a_running_fake_with_the_defaults(fake_backups_api: FakeBackupsAPI) -> None:
    assert fake_backups_api.running
    assert fake_backups_api.token == "test-token"
    assert get_json(fake_backups_api, "backups/")[0] == 200


@pytest.mark.fake_backups_api(backup_seconds=1, fleet=10, page_size=4)
async def test_fixture_is_configured_by_the_marker(fake_backups_api: FakeBackupsAPI) -> None:
    assert fake_backups_api.backup_seconds == 1
    assert len(fake_backups_api.servers()) == 11
    async with (
        aiohttp.ClientSession(headers=fake_backups_api.auth_headers) as http,
        http.get(fake_backups_api.url("backups/")) as response,
    ):
        body = await response.json()
    assert (body["count"], len(body["results"])) == (13, 4)


USER_TESTS = """
import json
import urllib.request

import aiohttp
import pytest

pytestmark = pytest.mark.fake_backups_api(token="module-token", backup_seconds=60)


def create(api):
    request = urllib.request.Request(
        api.url("backups/"),
        data=json.dumps({"server_id": 12345}).encode(),
        headers={**api.auth_headers, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read())


def test_sync_user_test(fake_backups_api):
    assert fake_backups_api.token == "module-token"
    assert create(fake_backups_api)["id"] == 502


def test_each_test_gets_a_fresh_fake(fake_backups_api):
    assert create(fake_backups_api)["id"] == 502


@pytest.mark.fake_backups_api(backup_seconds=1, fleet=10)
async def test_async_user_test(fake_backups_api):
    assert fake_backups_api.backup_seconds == 1
    assert fake_backups_api.token == "module-token"
    async with aiohttp.ClientSession(headers=fake_backups_api.auth_headers) as http:
        async with http.get(fake_backups_api.url("backups/?server_id=10")) as response:
            body = await response.json()
    assert body["results"][0]["server"]["name"] == "fleet-0010"


@pytest.mark.fake_backups_api(pages=3)
def test_misconfigured_marker(fake_backups_api):
    pass
"""


def test_plugin_works_in_a_user_project_with_strict_markers(tmp_path: Path) -> None:
    (tmp_path / "test_user.py").write_text(USER_TESTS)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-W",
            "error",
            "--strict-markers",
            "-p",
            "no:cacheprovider",
            "-o",
            "asyncio_mode=auto",
            "-o",
            "asyncio_default_fixture_loop_scope=function",
            str(tmp_path),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert "3 passed, 1 error" in output, output
    assert "@pytest.mark.fake_backups_api: FakeBackupsAPI.__init__() got an unexpected" in output
    assert "During handling" not in output


def test_plugin_import_does_not_load_the_server() -> None:
    code = (
        "import sys, asyncbackups.testing.plugin, asyncbackups.testing as t; "
        "print('aiohttp.web' in sys.modules, 'asyncbackups.testing._fake_api' in sys.modules, "
        "t.FakeBackupsAPI.__name__)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.split() == ["False", "False", "FakeBackupsAPI"]


# -- as a process ----------------------------------------------------------------------


@asynccontextmanager
async def standalone(*args: str) -> AsyncIterator[tuple[asyncio.subprocess.Process, list[str]]]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "asyncbackups.testing",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        lines = [
            (await asyncio.wait_for(process.stdout.readline(), 30)).decode().strip()
            for _ in range(4)
        ]
        yield process, lines
    finally:
        if process.returncode is None:
            process.kill()
        await process.communicate()


async def test_standalone_process_serves_and_stops_on_sigterm_within_a_second() -> None:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}/api/v1/"
    options = ["--port", str(port), "--token", "cli-token", "--servers", "3"]
    options += ["--failing-servers", "2", "--backup-seconds", "0", "--page-size", "2"]
    async with standalone(*options) as (process, lines):
        assert lines[0].startswith(f"Fake Backups API listening on {base_url}")
        assert lines[1:] == [
            f"export ASYNCBACKUPS_BASE_URL={base_url}",
            "export ASYNCBACKUPS_TOKEN=cli-token",
            f"# stats (no token needed): curl http://127.0.0.1:{port}/_fake/stats",
        ]
        async with aiohttp.ClientSession(headers={"Authorization": "Bearer cli-token"}) as http:
            async with http.get(base_url + "backups/") as response:
                body = await response.json()
            assert (body["count"], len(body["results"])) == (6, 2)
            async with http.post(base_url + "backups/", json={"server_id": 2}) as response:
                created = await response.json()
            async with http.get(base_url + f"backups/{created['id']}/") as response:
                assert (await response.json())["status"] == "failed"
        loop = asyncio.get_running_loop()
        started = loop.time()
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 5) == 0
        assert loop.time() - started < 1.0


async def test_standalone_process_on_port_zero_stops_on_sigint() -> None:
    async with standalone("--port", "0") as (process, lines):
        base_url = lines[1].removeprefix("export ASYNCBACKUPS_BASE_URL=")
        async with (
            aiohttp.ClientSession(headers={"Authorization": "Bearer test-token"}) as http,
            http.get(base_url + "backups/?server_id=12345") as response,
        ):
            assert (await response.json())["count"] == 3
        process.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(process.wait(), 5) == 0


async def test_standalone_process_is_measured_through_its_stats_route() -> None:
    options = ["--port", "0", "--servers", "3", "--failing-servers", "3", "--backup-seconds", "0"]
    async with standalone(*options) as (process, lines):
        base_url = lines[1].removeprefix("export ASYNCBACKUPS_BASE_URL=")
        stats_url = lines[3].removeprefix("# stats (no token needed): curl ")
        assert stats_url == base_url.removesuffix("/api/v1/") + "/_fake/stats"
        async with aiohttp.ClientSession(headers={"Authorization": "Bearer test-token"}) as http:
            for _ in range(2):
                async with http.get(base_url + "backups/") as response:
                    assert response.status == 200
            for server_id in (1, 3):
                async with http.post(base_url + "backups/", json={"server_id": server_id}) as r:
                    created = await r.json()
            async with http.get(base_url + f"backups/{created['id']}/") as response:
                assert (await response.json())["status"] == "failed"
        async with aiohttp.ClientSession() as anonymous:
            for _ in range(2):
                async with anonymous.get(stats_url) as response:
                    assert response.status == 200
                    stats = await response.json()
                assert stats == {
                    "requests": {"GET backups/": 2, "GET backups/{id}/": 1, "POST backups/": 2},
                    "faults": {},
                    "throttled": 0,
                    "servers": 4,
                    "backups": {"in_progress": 0, "completed": 7, "failed": 1},
                    "restores": 0,
                    "rate_limit": None,
                }
            async with anonymous.post(stats_url.replace("stats", "reset-stats")) as response:
                assert (await response.json())["requests"] == stats["requests"]
            async with anonymous.get(stats_url) as response:
                assert (await response.json())["requests"] == {}
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 5) == 0


async def test_standalone_serves_a_fleet_of_20000_beside_the_sample_data() -> None:
    async with standalone("--port", "0", "--servers", "20000") as (process, lines):
        base_url = lines[1].removeprefix("export ASYNCBACKUPS_BASE_URL=")
        async with aiohttp.ClientSession(headers={"Authorization": "Bearer test-token"}) as http:
            async with http.get(base_url + "backups/?server_id=12345") as response:
                sample = await response.json()
            async with http.get(base_url + "backups/?server_id=20001") as response:
                [last] = (await response.json())["results"]
            async with http.get(base_url.removesuffix("api/v1/") + "_fake/stats") as response:
                stats = await response.json()
        assert [backup["id"] for backup in sample["results"]] == [501, 499, 495]
        assert sample["results"][0]["server"] == {"id": 12345, "name": "web-server-01"}
        assert last["server"] == {"id": 20_001, "name": "fleet-20001"}
        assert last["id"] not in (495, 499, 501)
        assert (stats["servers"], stats["backups"]["completed"]) == (20_001, 20_003)
        process.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(process.wait(), 5) == 0


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--failing-servers", "x,y"], 2, "expected IDs"),
        (["--failing-servers", "99"], 2, "no server 99"),
        (["--page-size", "0"], 2, "page_size"),
        (["--port", "70000"], 2, "expected a port from 0 to 65535"),
        (["--backup-seconds", "nan"], 2, "expected a non-negative number of seconds"),
        (["--chaos", "1.5"], 2, "rate must be between 0 and 1"),
    ],
)
def test_standalone_refuses_bad_options(args: list[str], code: int, message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "asyncbackups.testing", "--port", "0", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == code
    assert message in result.stderr


def test_standalone_on_a_taken_port_exits_1_with_one_line() -> None:
    with listening_socket() as port:
        result = subprocess.run(
            [sys.executable, "-m", "asyncbackups.testing", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr


def test_fake_from_arguments_applies_every_option() -> None:
    args = build_parser().parse_args(
        [
            "--host", "::1", "--port", "0", "--token", "arg-token", "--backup-seconds", "2",
            "--servers", "3", "--failing-servers", "2", "--page-size", "7", "--seed", "3",
            "--chaos", "0.25", "--ignore-idempotency-keys", "--no-sample-data",
        ]
    )  # fmt: skip

    api = fake_from_arguments(args)

    assert (api.host, api.token, api.backup_seconds, api.page_size) == ("::1", "arg-token", 2, 7)
    assert not api.honor_idempotency_keys
    assert [(server.id, server.failing) for server in api.servers()] == [
        (1, False),
        (2, True),
        (3, False),
    ]
    assert api.faults.seed == 3
    [chaos] = api.faults.rules
    assert chaos.rate == 0.25


def test_fake_from_arguments_without_options_is_the_documented_example() -> None:
    api = fake_from_arguments(build_parser().parse_args([]))

    assert (api.host, api.token, api.page_size) == ("127.0.0.1", "test-token", 100)
    assert api.honor_idempotency_keys
    assert [backup.id for backup in api.backups(server_id=12345)] == [501, 499, 495]
    assert api.faults.rules == ()


# -- the public surface ----------------------------------------------------------------


def test_public_names_are_sorted_complete_and_importable() -> None:
    names = asyncbackups.testing.__all__
    assert names == sorted(names)
    for name in names:
        assert getattr(asyncbackups.testing, name) is not None
    assert set(names) <= set(dir(asyncbackups.testing))
    with pytest.raises(AttributeError):
        _ = asyncbackups.testing.NoSuchThing


def test_the_fake_does_not_import_the_sdk() -> None:
    package = Path(asyncbackups.testing.__file__).parent
    for module in package.glob("*.py"):
        source = module.read_text()
        for line in source.splitlines():
            stripped = line.strip()
            if stripped.startswith(("import asyncbackups", "from asyncbackups")):
                assert stripped.startswith("from asyncbackups.testing"), (module.name, line)
            assert not stripped.startswith("from .."), (module.name, line)
