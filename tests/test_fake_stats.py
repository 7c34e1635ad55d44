"""Measuring the fake: ``GET /_fake/stats``, ``FakeBackupsAPI.stats()``, and large fleets."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from asyncbackups.testing import FakeBackupsAPI

NO_BACKUPS = {"in_progress": 0, "completed": 0, "failed": 0}


@pytest.fixture
async def api() -> AsyncIterator[FakeBackupsAPI]:
    async with FakeBackupsAPI(fleet=2, backup_seconds=60) as fake:
        yield fake


@pytest.fixture
async def http(api: FakeBackupsAPI) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(headers=api.auth_headers) as session:
        yield session


async def read_stats(url: str, **headers: str) -> tuple[int, Any, Any]:
    async with aiohttp.ClientSession() as anonymous, anonymous.get(url, headers=headers) as answer:
        return answer.status, answer.headers, json.loads(await answer.read())


async def status_of(http: aiohttp.ClientSession, method: str, url: str, **kwargs: Any) -> int:
    async with http.request(method, url, **kwargs) as response:
        await response.read()
        return response.status


async def test_stats_route_needs_no_token_and_counts_requests_by_route_but_not_itself(
    api: FakeBackupsAPI, http: aiohttp.ClientSession
) -> None:
    assert await status_of(http, "GET", api.url("backups/")) == 200
    assert await status_of(http, "GET", api.url("backups/?server_id=1")) == 200
    assert await status_of(http, "POST", api.url("backups/"), json={"server_id": 1}) == 201
    assert await status_of(http, "GET", api.url("backups/504/")) == 200
    assert await status_of(http, "GET", api.url("nothing/")) == 404
    async with aiohttp.ClientSession() as anonymous:
        assert await status_of(anonymous, "GET", api.url("backups/")) == 401

    for _ in range(2):
        status, headers, body = await read_stats(api.stats_url)
        assert status == 200
        assert headers["Content-Type"] == "application/json"
        assert headers["Cache-Control"] == "no-store"
        assert body == {
            "requests": {
                "GET backups/": 3,
                "GET backups/{id}/": 1,
                "GET nothing/": 1,
                "POST backups/": 1,
            },
            "faults": {},
            "throttled": 0,
            "servers": 3,
            "backups": {"in_progress": 1, "completed": 5, "failed": 0},
            "restores": 0,
            "rate_limit": None,
        }
    assert api.stats() == body
    assert len(api.request_log) == 6


async def test_stats_name_routes_exactly_as_the_requests_counter_does(
    api: FakeBackupsAPI, http: aiohttp.ClientSession
) -> None:
    await status_of(http, "POST", api.url("servers/12345/restore/"), json={"backup_id": 501})
    await status_of(http, "DELETE", api.url("backups/495/"))
    await status_of(http, "GET", api.url("backups/"))

    _, _, body = await read_stats(api.stats_url)

    assert body["requests"] == {
        f"{method} {route}": n for (method, route), n in api.requests.items()
    }
    assert body["requests"]["POST servers/{server_id}/restore/"] == 1
    assert body["restores"] == 1
    assert body["backups"] == {"in_progress": 0, "completed": 4, "failed": 0}


@pytest.mark.parametrize("authorization", ["Bearer test-token", "Bearer wrong", "Basic eDp5"])
async def test_stats_route_ignores_any_authorization_it_is_sent(
    api: FakeBackupsAPI, authorization: str
) -> None:
    status, _, body = await read_stats(api.stats_url, Authorization=authorization)
    assert (status, body["servers"], body["requests"]) == (200, 3, {})


async def test_stats_route_is_never_faulted_and_counts_the_faults_others_met(
    api: FakeBackupsAPI, http: aiohttp.ClientSession
) -> None:
    api.faults.status_before(503, retry_after=1)
    api.faults.drop_before(path="/_fake/stats")

    assert await status_of(http, "GET", api.url("backups/")) == 503
    status, _, body = await read_stats(api.stats_url)

    assert status == 200
    assert body["requests"] == {"GET backups/": 1}
    assert body["faults"] == {"status_before": 1}
    assert [record.path for record in api.request_log] == ["backups/"]


async def test_reset_stats_answers_the_counts_as_they_stood_and_zeroes_only_counters(
    api: FakeBackupsAPI, http: aiohttp.ClientSession
) -> None:
    api.faults.status_before(503, times=1)
    await status_of(http, "GET", api.url("backups/"))
    await status_of(http, "POST", api.url("backups/"), json={"server_id": 2})

    async with http.post(f"{api.stats_url.removesuffix('stats')}reset-stats") as answer:
        assert answer.status == 200
        before = await answer.json()
    _, _, after = await read_stats(api.stats_url)

    assert before["requests"] == {"GET backups/": 1, "POST backups/": 1}
    assert before["faults"] == {"status_before": 1}
    in_progress = {"in_progress": 1, "completed": 5, "failed": 0}
    assert (before["backups"], after["backups"]) == (in_progress, in_progress)
    assert (after["requests"], after["faults"], after["servers"]) == ({}, {}, 3)
    assert len(api.request_log) == 2
    assert api.requests == {}


async def test_reset_stats_in_process_returns_the_stats_before_it() -> None:
    async with FakeBackupsAPI(sample_data=False) as api, aiohttp.ClientSession() as http:
        await status_of(http, "GET", api.url("backups/"))
        assert api.reset_stats() == {
            "requests": {"GET backups/": 1},
            "faults": {},
            "throttled": 0,
            "servers": 0,
            "backups": NO_BACKUPS,
            "restores": 0,
            "rate_limit": None,
        }
        assert api.stats()["requests"] == {}


@pytest.mark.parametrize(
    ("method", "path", "status", "allow"),
    [
        ("POST", "/_fake/stats", 405, "GET, HEAD"),
        ("DELETE", "/_fake/stats", 405, "GET, HEAD"),
        ("GET", "/_fake/reset-stats", 405, "POST"),
        ("GET", "/_fake/nothing", 404, None),
        ("GET", "/_fake/", 404, None),
        ("GET", "/_fake/stats/", 200, None),
        ("HEAD", "/_fake/stats", 200, None),
    ],
)
async def test_fake_routes_answer_other_methods_and_paths_without_being_counted(
    api: FakeBackupsAPI, method: str, path: str, status: int, allow: str | None
) -> None:
    url = api.stats_url.removesuffix("/_fake/stats") + path
    async with aiohttp.ClientSession() as http, http.request(method, url) as answer:
        assert answer.status == status
        assert answer.headers.get("Allow") == allow
        if method == "HEAD":
            assert await answer.read() == b""
    assert api.requests == {}
    assert api.request_log == []


async def test_stats_url_is_beside_the_api_root() -> None:
    async with FakeBackupsAPI() as api:
        assert api.stats_url == f"http://127.0.0.1:{api.port}/_fake/stats"
        assert not api.stats_url.startswith(api.base_url)


def test_threaded_fake_reports_stats_to_a_synchronous_caller() -> None:
    with FakeBackupsAPI(sample_data=False, fleet=3, failing_servers=[3], backup_seconds=0) as api:
        api.state.create_backup(3)
        assert api.stats() == {
            "requests": {},
            "faults": {},
            "throttled": 0,
            "servers": 3,
            "backups": {"in_progress": 0, "completed": 3, "failed": 1},
            "restores": 0,
            "rate_limit": None,
        }


# -- fleets of any size ---------------------------------------------------------------


async def test_a_fleet_of_20000_keeps_the_sample_data_and_gets_all_its_servers() -> None:
    async with (
        FakeBackupsAPI(fleet=20_000) as api,
        aiohttp.ClientSession(headers=api.auth_headers) as http,
    ):
        fleet = [server for server in api.servers() if server.name.startswith("fleet-")]
        assert len(fleet) == 20_000
        assert 12345 not in {server.id for server in fleet}
        async with http.get(api.url("backups/"), params={"server_id": "12345"}) as answer:
            sample = await answer.json()
        assert [backup["id"] for backup in sample["results"]] == [501, 499, 495]
        assert {backup["server"]["name"] for backup in sample["results"]} == {"web-server-01"}
        async with http.get(api.url("backups/"), params={"server_id": "20001"}) as answer:
            [last] = (await answer.json())["results"]
        assert last["server"] == {"id": 20_001, "name": "fleet-20001"}
        fleet_backups = {backup.id for backup in api.backups() if backup.server_id != 12345}
        assert len(fleet_backups) == 20_000
        assert fleet_backups.isdisjoint({495, 499, 501})
        async with http.post(api.url("backups/"), json={"server_id": 20_001}) as answer:
            assert (await answer.json())["id"] == 20_502
        stats = api.stats()
        assert (stats["servers"], stats["backups"]["completed"]) == (20_001, 20_003)
