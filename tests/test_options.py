"""``client.with_options(...)``: a cheap copy that shares the parent's machinery.

A copy shares the parent's session (one connection pool), concurrency slots, 429 pause,
poller and statistics; its overrides apply to its own calls only. What is shared and
what is overridden is asserted on what reached the loopback server.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from conftest import (
    BACKUP_501,
    SEED_LIST,
    TOKEN,
    LoopbackAPI,
    StartLoopback,
    json_response,
    loopback_client,
    until,
)

from asyncbackups import (
    APITimeoutError,
    Backup,
    BackupsClient,
    BackupStatus,
    RateLimitError,
    ResponseValidationError,
    ServerError,
)
from asyncbackups.testing import FakeBackupsAPI


@pytest.fixture(autouse=True)
def _no_ambient_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own environment (a token, a base URL, a proxy) must not leak in."""
    for name in (
        "ASYNCBACKUPS_TOKEN",
        "ASYNCBACKUPS_BASE_URL",
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
    ):
        monkeypatch.delenv(name, raising=False)


# -- what a copy shares with its parent ---------------------------------------------


async def test_parent_and_copy_reuse_one_kept_alive_connection(loopback: StartLoopback) -> None:
    peers: list[Any] = []

    async def handler(request: web.Request, api: LoopbackAPI) -> web.Response:
        assert request.transport is not None
        peers.append(request.transport.get_extra_info("peername"))
        return json_response(BACKUP_501)

    api = await loopback(handler)
    async with loopback_client(api) as parent:
        child = parent.with_options(timeout=5.0, headers={"X-Tenant": "a"})
        await parent.backups.get(501)
        await child.backups.get(501)
        await parent.backups.get(501)
        await child.backups.get(501)
    assert len(api.seen) == 4
    # One client port for all four: the copy made no session or connection of its own.
    assert len(set(peers)) == 1


@pytest.mark.parametrize("borrowed", [False, True], ids=["own-session", "borrowed-session"])
async def test_parent_and_copy_share_the_concurrency_cap(
    loopback: StartLoopback, borrowed: bool
) -> None:
    async def handler(request: web.Request, api: LoopbackAPI) -> web.Response:
        await asyncio.sleep(0.02)  # long enough for a third request to arrive if allowed
        return json_response(BACKUP_501)

    api = await loopback(handler)
    # A borrowed session's pool allows 100 connections: only the client's slots cap it.
    async with contextlib.AsyncExitStack() as stack:
        session = None
        if borrowed:
            session = await stack.enter_async_context(
                aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100))
            )
        parent = await stack.enter_async_context(
            loopback_client(api, max_concurrency=2, session=session)
        )
        child = parent.with_options(max_retries=1)
        grandchild = child.with_options(timeout=5.0)
        calls = [client.backups.get(501) for client in (parent, child, grandchild) * 3]
        await asyncio.gather(*calls)
    assert len(api.seen) == 9
    assert api.max_in_flight == 2


async def test_a_rate_limit_seen_by_the_copy_pauses_the_parent(
    scripted_api: LoopbackAPI,
) -> None:
    scripted_api.answer(
        "GET",
        "backups/501/",
        status=429,
        payload={"detail": "slow down"},
        headers={"Retry-After": "0.3"},
    )
    scripted_api.answer("GET", "backups/501/", payload=BACKUP_501)
    async with loopback_client(scripted_api) as parent:
        child = parent.with_options(max_retries=0)
        with pytest.raises(RateLimitError) as caught:
            await child.backups.get(501)
        assert caught.value.retry_after == pytest.approx(0.3)
        await parent.backups.get(501)
        assert parent.stats.rate_limit_pauses == 1
    limited, after = scripted_api.seen
    # The parent's request left only once the copy's Retry-After had passed.
    assert after.arrived - limited.arrived >= 0.25


async def test_a_retry_after_longer_than_the_copys_max_retry_after_raises_without_pausing(
    scripted_api: LoopbackAPI,
) -> None:
    scripted_api.answer(
        "GET",
        "backups/501/",
        status=429,
        payload={"detail": "slow down"},
        headers={"Retry-After": "30"},
    )
    scripted_api.answer("GET", "backups/501/", payload=BACKUP_501)
    async with loopback_client(scripted_api) as parent:
        child = parent.with_options(max_retry_after=1.0)
        with pytest.raises(RateLimitError) as caught:
            await child.backups.get(501)
        assert caught.value.retry_after == 30.0
        assert (await parent.backups.get(501)).id == 501
        assert parent.stats.rate_limit_pauses == 0  # the parent was never held back
    assert scripted_api.routes() == ["GET backups/501/", "GET backups/501/"]


async def test_waits_through_parent_and_copy_share_one_poller() -> None:
    async with (
        FakeBackupsAPI(backup_seconds=60) as api,
        BackupsClient(
            api.token, base_url=api.base_url, retry_backoff=0, max_retry_backoff=0
        ) as parent,
    ):
        child = parent.with_options(timeout=5.0)
        first = await parent.backups.create(12345, description="first")
        second = await child.backups.create(12345, description="second")
        heard: list[int] = []

        def seen(backup: Backup) -> None:
            heard.append(backup.id)

        waits = [
            asyncio.create_task(
                client.backups.wait_until_completed(backup, poll_interval=0.02, on_update=seen)
            )
            for client, backup in ((parent, first), (child, second))
        ]
        await until(lambda: len(heard) >= 2)  # both waits had their first read
        api.advance(60)
        done = await asyncio.gather(*waits)
        stats = parent.stats
    assert [backup.status for backup in done] == [BackupStatus.COMPLETED] * 2
    polls = api.requests[("GET", "backups/")]
    # Each round read the list once for both waits: one poller, not one per client.
    assert stats.poll_rounds >= 2
    assert polls == stats.poll_rounds
    assert api.requests[("GET", "backups/{id}/")] == 0


async def test_stats_of_parent_and_copy_count_both(scripted_api: LoopbackAPI) -> None:
    scripted_api.answer("GET", "backups/501/", payload=BACKUP_501)
    async with loopback_client(scripted_api) as parent:
        child = parent.with_options(max_retries=0)
        await parent.backups.get(501)
        await child.backups.get(501)
        await child.backups.get(501)
        assert parent.stats.requests == {"GET backups/{id}/": 3}
        assert child.stats == parent.stats


# -- overrides apply to the copy's calls only ---------------------------------------


async def test_max_retries_zero_on_the_copy_does_not_retry_but_the_parent_does(
    scripted_api: LoopbackAPI,
) -> None:
    scripted_api.answer("GET", "backups/501/", status=503, payload={"detail": "busy"})
    scripted_api.answer("GET", "backups/501/", status=503, payload={"detail": "busy"})
    scripted_api.answer("GET", "backups/501/", payload=BACKUP_501)
    async with loopback_client(scripted_api, max_retries=3) as parent:
        child = parent.with_options(max_retries=0)
        with pytest.raises(ServerError):
            await child.backups.get(501)
        assert len(scripted_api.seen) == 1
        assert (await parent.backups.get(501)).id == 501
    # The copy's one attempt, then the parent's 503 and its successful retry.
    assert scripted_api.routes() == ["GET backups/501/"] * 3


async def test_timeout_of_the_copy_applies_to_its_calls_only(loopback: StartLoopback) -> None:
    async def slow(request: web.Request, api: LoopbackAPI) -> web.Response:
        await asyncio.sleep(0.3)
        return json_response(BACKUP_501)

    api = await loopback(slow)
    async with loopback_client(api, timeout=2.0, max_retries=0) as parent:
        child = parent.with_options(timeout=0.05)
        with pytest.raises(APITimeoutError):
            await child.backups.get(501)
        assert (await parent.backups.get(501)).id == 501
    assert len(api.seen) == 2


async def test_max_response_bytes_of_the_copy_applies_to_its_calls_only(
    scripted_api: LoopbackAPI,
) -> None:
    scripted_api.answer("GET", "backups/", payload=SEED_LIST)
    async with loopback_client(scripted_api) as parent:
        child = parent.with_options(max_response_bytes=100, max_retries=0)
        with pytest.raises(ResponseValidationError):
            await child.backups.list()
        assert [backup.id for backup in await parent.backups.list()] == [501, 499, 495]


async def test_extra_headers_of_the_copy_are_sent_by_it_and_not_by_the_parent(
    scripted_api: LoopbackAPI,
) -> None:
    scripted_api.answer("GET", "backups/501/", payload=BACKUP_501)
    async with loopback_client(scripted_api) as parent:
        child = parent.with_options(headers={"X-Tenant": "a"})
        await child.backups.get(501)
        await parent.backups.get(501)
    from_child, from_parent = scripted_api.seen
    assert from_child.headers["X-Tenant"] == "a"
    assert "X-Tenant" not in from_parent.headers
    for request in (from_child, from_parent):
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"


async def test_extra_headers_of_a_copy_add_to_the_parents(scripted_api: LoopbackAPI) -> None:
    scripted_api.answer("GET", "backups/501/", payload=BACKUP_501)
    async with loopback_client(scripted_api, headers={"X-App": "nightly"}) as parent:
        child = parent.with_options(headers={"X-Tenant": "a"})
        grandchild = child.with_options(headers={"X-Trace": "t-1"})
        await grandchild.backups.get(501)
        await parent.backups.get(501)
    from_grandchild, from_parent = scripted_api.seen
    assert from_grandchild.headers["X-App"] == "nightly"
    assert from_grandchild.headers["X-Tenant"] == "a"
    assert from_grandchild.headers["X-Trace"] == "t-1"
    assert from_parent.headers["X-App"] == "nightly"
    assert "X-Tenant" not in from_parent.headers
    assert "X-Trace" not in from_parent.headers


async def test_extra_headers_given_to_the_client_are_sent_on_every_call(
    scripted_api: LoopbackAPI,
) -> None:
    scripted_api.answer("GET", "backups/501/", payload=BACKUP_501)
    scripted_api.answer("POST", "backups/", status=201, payload={**BACKUP_501, "id": 502})
    scripted_api.answer("DELETE", "backups/501/", status=204)
    async with loopback_client(scripted_api, headers={"X-Tenant": "acme"}) as client:
        await client.backups.get(501)
        await client.backups.create(12345, description="x")
        await client.backups.delete(501)
    assert [request.headers.get("X-Tenant") for request in scripted_api.seen] == ["acme"] * 3
    create = scripted_api.seen[1]
    assert create.headers["Content-Type"] == "application/json"
    assert create.headers["Authorization"] == f"Bearer {TOKEN}"


# -- refused before any request -----------------------------------------------------


@pytest.mark.parametrize("name", ["Authorization", "authorization", "AUTHORIZATION"])
async def test_an_authorization_header_in_with_options_raises_value_error(
    scripted_api: LoopbackAPI, name: str
) -> None:
    async with loopback_client(scripted_api) as client:
        with pytest.raises(ValueError, match=r"(?i)authorization"):
            client.with_options(headers={name: "Bearer stolen"})
    assert scripted_api.seen == []


def test_an_authorization_header_given_to_the_client_raises_value_error() -> None:
    with pytest.raises(ValueError, match=r"(?i)authorization"):
        BackupsClient(TOKEN, base_url="http://127.0.0.1:9/api/v1/", headers={"Authorization": "x"})


@pytest.mark.parametrize(
    "options",
    [
        {"max_concurrency": 3},
        {"base_url": "http://127.0.0.1:9/"},
        {"session": None},
        {"tiemout": 1},
    ],
)
async def test_an_unknown_option_raises_type_error(
    scripted_api: LoopbackAPI, options: dict[str, Any]
) -> None:
    async with loopback_client(scripted_api) as client:
        with pytest.raises(TypeError):
            client.with_options(**options)
    assert scripted_api.seen == []


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"timeout": -1}, ValueError),
        ({"timeout": 0}, ValueError),
        ({"timeout": float("nan")}, ValueError),
        ({"max_retries": -1}, ValueError),
        ({"max_retries": True}, TypeError),
        ({"max_retries": "3"}, TypeError),
        ({"max_retries": 1.5}, TypeError),
        ({"retry_backoff": -0.1}, ValueError),
        ({"max_retry_backoff": "1"}, TypeError),
        ({"max_retry_after": -5}, ValueError),
        ({"max_response_bytes": 0}, ValueError),
        ({"headers": "X-Tenant: a"}, TypeError),
        ({"headers": {"X-Tenant": 1}}, TypeError),
        ({"headers": {"X-Tenant": "a\r\nX-Evil: 1"}}, ValueError),
    ],
)
async def test_a_bad_option_value_is_refused_before_any_request(
    scripted_api: LoopbackAPI, options: dict[str, Any], error: type[Exception]
) -> None:
    async with loopback_client(scripted_api) as client:
        with pytest.raises(error):
            client.with_options(**options)
    assert scripted_api.seen == []


# -- cheap, and closed with the parent ----------------------------------------------


async def test_with_options_starts_no_task_and_sends_nothing(scripted_api: LoopbackAPI) -> None:
    scripted_api.answer("GET", "backups/501/", payload=BACKUP_501)
    async with loopback_client(scripted_api) as client:
        await client.backups.get(501)  # the parent's session exists now
        tasks = len(asyncio.all_tasks())
        copies = [client.with_options(timeout=1.0 + n % 7, max_retries=n % 3) for n in range(1000)]
        assert len(asyncio.all_tasks()) == tasks
        assert len(scripted_api.seen) == 1
        await copies[-1].backups.get(501)
    assert len(scripted_api.seen) == 2


async def test_closing_the_copy_leaves_the_parent_working(scripted_api: LoopbackAPI) -> None:
    scripted_api.answer("GET", "backups/501/", payload=BACKUP_501)
    async with loopback_client(scripted_api) as parent:
        child = parent.with_options(max_retries=0)
        await child.backups.get(501)
        await child.aclose()
        async with parent.with_options(timeout=1.0) as other:
            await other.backups.get(501)
        assert not parent.closed
        assert (await parent.backups.get(501)).id == 501
    assert len(scripted_api.seen) == 3


async def test_closing_the_parent_makes_the_copys_calls_raise_runtime_error(
    scripted_api: LoopbackAPI,
) -> None:
    scripted_api.answer("GET", "backups/501/", payload=BACKUP_501)
    parent = loopback_client(scripted_api)
    child = parent.with_options(max_retries=0)
    await child.backups.get(501)
    await parent.aclose()
    assert child.closed
    with pytest.raises(RuntimeError, match="closed"):
        await child.backups.get(501)
    with pytest.raises(RuntimeError, match="closed"):
        await child.backups.list()
    with pytest.raises(RuntimeError, match="closed"):
        await child.with_options(timeout=1.0).backups.get(501)
    assert len(scripted_api.seen) == 1


def test_a_copy_is_set_up_as_the_constructor_sets_up_a_client() -> None:
    # One setup for both: a field the constructor gains, a copy gains too.
    client = BackupsClient("copy-check")
    copy = client.with_options(timeout=1.0)
    assert vars(copy).keys() == vars(client).keys()
    assert copy.base_url == client.base_url
    assert copy.max_concurrency == client.max_concurrency
