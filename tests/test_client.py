"""The client's configuration: token, base URL, headers, concurrency cap and timeouts."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import pytest
from aiohttp import web
from conftest import (
    BACKUP_501,
    BASE_URL,
    SEED_LIST,
    TOKEN,
    LoopbackAPI,
    StartLoopback,
    json_response,
    loopback_client,
)

import asyncbackups
from asyncbackups import APITimeoutError, BackupsClient
from asyncbackups.testing import FakeBackupsAPI


@pytest.fixture(autouse=True)
def _no_ambient_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own environment must not leak into these tests."""
    monkeypatch.delenv("ASYNCBACKUPS_TOKEN", raising=False)
    monkeypatch.delenv("ASYNCBACKUPS_BASE_URL", raising=False)


# -- token --------------------------------------------------------------------------


def test_no_token_and_no_environment_raises_value_error() -> None:
    with pytest.raises(ValueError, match="ASYNCBACKUPS_TOKEN"):
        BackupsClient()


def test_empty_token_environment_variable_counts_as_no_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ASYNCBACKUPS_TOKEN", "")
    with pytest.raises(ValueError, match="token"):
        BackupsClient()


@pytest.mark.parametrize("token", ["", "   ", "two words", "tab\there", "line\nbreak"])
def test_token_that_cannot_be_a_header_raises_value_error(token: str) -> None:
    with pytest.raises(ValueError, match="token"):
        BackupsClient(token)


def test_token_that_is_not_text_raises_type_error() -> None:
    with pytest.raises(TypeError, match="token"):
        BackupsClient(12345)  # type: ignore[arg-type]


async def test_token_from_the_environment_is_sent(
    monkeypatch: pytest.MonkeyPatch, scripted_api: LoopbackAPI
) -> None:
    monkeypatch.setenv("ASYNCBACKUPS_TOKEN", "env-token-9")
    scripted_api.answer("GET", "backups/501/", payload=BACKUP_501)
    async with BackupsClient(base_url=scripted_api.base_url) as client:
        await client.backups.get(501)
    (request,) = scripted_api.seen
    assert request.headers["Authorization"] == "Bearer env-token-9"


async def test_explicit_token_wins_over_the_environment(
    monkeypatch: pytest.MonkeyPatch, scripted_api: LoopbackAPI
) -> None:
    monkeypatch.setenv("ASYNCBACKUPS_TOKEN", "env-token-9")
    scripted_api.answer("GET", "backups/501/", payload=BACKUP_501)
    async with BackupsClient(TOKEN, base_url=scripted_api.base_url) as client:
        await client.backups.get(501)
    (request,) = scripted_api.seen
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"


# -- base URL -----------------------------------------------------------------------


def test_default_base_url_is_the_documented_one() -> None:
    assert BackupsClient(TOKEN).base_url == "https://admin.vps.org/api/v1/"


async def test_base_url_from_the_environment_is_used(
    monkeypatch: pytest.MonkeyPatch, scripted_api: LoopbackAPI
) -> None:
    monkeypatch.setenv("ASYNCBACKUPS_TOKEN", TOKEN)
    monkeypatch.setenv("ASYNCBACKUPS_BASE_URL", scripted_api.origin + "api/v2")
    scripted_api.answer("GET", "/api/v2/backups/501/", payload=BACKUP_501)
    async with BackupsClient() as client:
        assert client.base_url == scripted_api.origin + "api/v2/"
        await client.backups.get(501)
    assert scripted_api.paths() == ["GET /api/v2/backups/501/"]


def test_explicit_base_url_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASYNCBACKUPS_BASE_URL", "https://backups.example.test/")
    client = BackupsClient(TOKEN, base_url="https://other.example.test/api")
    assert client.base_url == "https://other.example.test/api/"


@pytest.mark.parametrize(
    "base_url", ["http://admin.vps.org/api/v1/", "http://192.168.1.10:8000/", "http://[fe80::1]/"]
)
def test_plain_http_to_a_remote_host_raises_value_error(base_url: str) -> None:
    with pytest.raises(ValueError, match="http"):
        BackupsClient(TOKEN, base_url=base_url)


def test_plain_http_in_the_environment_is_refused_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASYNCBACKUPS_BASE_URL", "http://admin.vps.org/api/v1/")
    with pytest.raises(ValueError, match="http"):
        BackupsClient(TOKEN)


@pytest.mark.parametrize(
    ("base_url", "normalized"),
    [
        ("http://127.0.0.1:8080/api/v1", "http://127.0.0.1:8080/api/v1/"),
        ("http://localhost:8080/api/v1/", "http://localhost:8080/api/v1/"),
        ("http://[::1]:8080/api/v1/", "http://[::1]:8080/api/v1/"),
    ],
)
def test_plain_http_to_loopback_is_accepted(base_url: str, normalized: str) -> None:
    assert BackupsClient(TOKEN, base_url=base_url).base_url == normalized


# -- other options ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"timeout": 0}, ValueError),
        ({"timeout": -1.0}, ValueError),
        ({"timeout": float("nan")}, ValueError),
        ({"timeout": "30"}, TypeError),
        ({"max_retries": -1}, ValueError),
        ({"max_retries": 1.5}, TypeError),
        ({"max_retries": True}, TypeError),
        ({"max_concurrency": 0}, ValueError),
        ({"max_concurrency": None}, TypeError),
        ({"session": object()}, TypeError),
    ],
)
def test_bad_options_fail_at_construction(options: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        BackupsClient(TOKEN, **options)


def test_client_is_constructed_outside_a_running_loop_and_used_inside_one() -> None:
    # The fake API serves from its own thread: this test has no loop of its own.
    with FakeBackupsAPI() as api:
        client = BackupsClient(api.token, base_url=api.base_url)

        async def use() -> int:
            async with client:
                return (await client.backups.get(501)).id

        assert asyncio.run(use()) == 501
        assert api.requests[("GET", "backups/{id}/")] == 1


# -- what every request carries ------------------------------------------------------


async def test_every_request_carries_bearer_token_and_a_user_agent_naming_the_sdk(
    scripted_api: LoopbackAPI, scripted_client: BackupsClient
) -> None:
    scripted_api.answer("GET", "backups/", payload=SEED_LIST)
    scripted_api.answer("GET", "backups/501/", payload=BACKUP_501)
    scripted_api.answer("DELETE", "backups/501/", status=204)
    await scripted_client.backups.list()
    await scripted_client.backups.get(501)
    await scripted_client.backups.delete(501)
    assert scripted_api.routes() == ["GET backups/", "GET backups/501/", "DELETE backups/501/"]
    for request in scripted_api.seen:
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"
        assert request.headers["User-Agent"].startswith(f"asyncbackups/{asyncbackups.__version__}")
        assert "Idempotency-Key" not in request.headers


async def test_repr_names_the_base_url_and_state(client: BackupsClient) -> None:
    assert BASE_URL in repr(client)
    assert "open" in repr(client)
    await client.aclose()
    assert "closed" in repr(client)


# -- the concurrency cap and the timeout, against a real server ----------------------


async def test_max_concurrency_caps_requests_in_flight(loopback: StartLoopback) -> None:
    async def slow(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        await api.hold_until_in_flight(3)  # the first three meet: the cap is reached
        await asyncio.sleep(0.01)  # room for a request over the cap to show up
        return json_response(BACKUP_501)

    api = await loopback(slow)
    async with loopback_client(api, max_concurrency=3) as client:
        backups = await asyncio.gather(*(client.backups.get(501) for _ in range(9)))
    assert len(backups) == 9
    assert len(api.seen) == 9
    assert api.max_in_flight == 3


async def test_the_cap_also_bounds_the_connections_opened_even_through_cancels(
    loopback: StartLoopback,
) -> None:
    # The client's own session leaves counting connections to the cap: aiohttp's limit
    # is off. Whatever happens to the requests, no more than the cap may be open.
    open_connections: set[Any] = set()
    most_open = 0
    pace = random.Random(7)

    async def varied(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        nonlocal most_open
        assert request.transport is not None
        open_connections.add(request.transport)
        for transport in list(open_connections):
            if transport.is_closing():
                open_connections.discard(transport)
        most_open = max(most_open, len(open_connections))
        await asyncio.sleep(pace.uniform(0, 0.01))
        return json_response(BACKUP_501)

    api = await loopback(varied)
    async with loopback_client(api, max_concurrency=4) as client:
        tasks = [asyncio.ensure_future(client.backups.get(501)) for _ in range(200)]
        await asyncio.sleep(0.05)
        for task in tasks[::7]:
            task.cancel()  # some mid-flight, dropping their connection; some queued
        ends = await asyncio.gather(*tasks, return_exceptions=True)
        # Kept-alive connections: far fewer than the requests, never more than the cap.
        assert (await client.backups.get(501)).id == 501
    assert {type(end).__name__ for end in ends} <= {"Backup", "CancelledError"}
    assert api.max_in_flight <= 4
    assert most_open <= 4


async def test_timeout_bounds_an_attempt_and_raises_api_timeout_error(
    loopback: StartLoopback,
) -> None:
    async def stall(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        return await api.stall()

    api = await loopback(stall)
    started = time.monotonic()
    async with loopback_client(api, timeout=0.05, max_retries=0) as client:
        with pytest.raises(APITimeoutError) as caught:
            await client.backups.get(501)
    # The server never answers: only the timeout ends the call, and never before it.
    assert time.monotonic() - started >= 0.05
    assert caught.value.request_may_have_reached_server is True
    assert len(api.seen) == 1


async def test_timeout_applies_to_each_attempt_not_to_the_whole_call(
    loopback: StartLoopback,
) -> None:
    async def stall(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        return await api.stall()

    api = await loopback(stall)
    started = time.monotonic()
    async with loopback_client(api, timeout=0.05, max_retries=2) as client:
        with pytest.raises(APITimeoutError):
            await client.backups.get(501)
    elapsed = time.monotonic() - started
    assert len(api.seen) == 3
    # Three whole attempts of 0.05 s each, one after the other.
    assert elapsed >= 0.15


async def test_answer_within_the_timeout_succeeds(loopback: StartLoopback) -> None:
    async def prompt(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        await asyncio.sleep(0.02)
        return json_response(BACKUP_501)

    api = await loopback(prompt)
    async with loopback_client(api, timeout=0.5, max_retries=0) as client:
        assert (await client.backups.get(501)).id == 501


async def test_time_spent_queued_behind_the_concurrency_cap_does_not_count_as_timeout(
    loopback: StartLoopback,
) -> None:
    async def slowish(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        await asyncio.sleep(0.15)  # well within the timeout, for each request alone
        return json_response(BACKUP_501)

    api = await loopback(slowish)
    started = time.monotonic()
    async with loopback_client(api, max_concurrency=1, timeout=0.5, max_retries=0) as client:
        backups = await asyncio.gather(*(client.backups.get(501) for _ in range(5)))
    assert len(backups) == 5
    assert api.max_in_flight == 1
    # The last call waited its turn longer than the timeout, and still succeeded.
    assert api.seen[-1].arrived - started > 0.5
