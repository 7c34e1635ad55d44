"""Lifecycle: async with, aclose, borrowed and owned sessions, cancellation, nothing leaked."""

from __future__ import annotations

import asyncio
import gc
import logging
import warnings
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from conftest import (
    BACKUP,
    BACKUP_501,
    BASE_URL,
    TOKEN,
    LoopbackAPI,
    StartLoopback,
    json_response,
    loopback_client,
    until,
)

from asyncbackups import BackupsClient


def backup_for(request: web.Request) -> web.Response:
    backup_id = int(request.path.rstrip("/").rsplit("/", 1)[-1])
    return json_response({**BACKUP, "id": backup_id})


def assert_nothing_left_unclosed(caplog: pytest.LogCaptureFixture) -> None:
    """Collect garbage and check that no session or connector complained about it."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []
    assert not [r for r in caplog.records if "Unclosed" in r.getMessage()]


def _runs_in_the_loopback_server(task: asyncio.Task[Any]) -> bool:
    code = getattr(task.get_coro(), "cr_code", None)
    return code is not None and "aiohttp/web_" in code.co_filename


def assert_no_client_tasks_left() -> None:
    """Only this test's task and the loopback server's own handlers may still run."""
    others = asyncio.all_tasks() - {asyncio.current_task()}
    assert {task for task in others if not _runs_in_the_loopback_server(task)} == set()


# -- async with and aclose ----------------------------------------------------------


async def test_async_with_gives_the_client_and_closes_it_on_exit(
    scripted_api: LoopbackAPI,
) -> None:
    scripted_api.answer("GET", "backups/501/", payload=BACKUP_501)
    client = BackupsClient(TOKEN, base_url=scripted_api.base_url)
    async with client as entered:
        assert entered is client
        assert not client.closed
        await client.backups.get(501)
    assert client.closed
    assert scripted_api.routes() == ["GET backups/501/"]


async def test_async_with_closes_the_client_when_the_body_raises() -> None:
    client = BackupsClient(TOKEN)
    with pytest.raises(KeyError):
        async with client:
            raise KeyError("caller's own error")
    assert client.closed


async def test_aclose_is_safe_to_call_twice_and_before_any_use() -> None:
    client = BackupsClient(TOKEN)
    await client.aclose()
    await client.aclose()
    assert client.closed


CALLS: list[tuple[str, Callable[[BackupsClient], Awaitable[Any]]]] = [
    ("list", lambda client: client.backups.list()),
    ("get", lambda client: client.backups.get(501)),
    ("create", lambda client: client.backups.create(12345)),
    ("delete", lambda client: client.backups.delete(501)),
    ("restore", lambda client: client.servers.restore(12345, 501)),
]


@pytest.mark.parametrize("call", [call for _, call in CALLS], ids=[name for name, _ in CALLS])
async def test_every_call_after_aclose_raises_runtime_error_without_a_request(
    scripted_api: LoopbackAPI, call: Callable[[BackupsClient], Awaitable[Any]]
) -> None:
    client = BackupsClient(TOKEN, base_url=scripted_api.base_url)
    await client.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await call(client)
    assert scripted_api.seen == []


async def test_iterating_after_aclose_raises_runtime_error(scripted_api: LoopbackAPI) -> None:
    client = BackupsClient(TOKEN, base_url=scripted_api.base_url)
    await client.aclose()
    iterator = client.backups.iter()
    with pytest.raises(RuntimeError, match="closed"):
        await anext(iterator)
    assert scripted_api.seen == []


async def test_a_used_client_refuses_calls_after_aclose(scripted_api: LoopbackAPI) -> None:
    scripted_api.answer("GET", "backups/501/", payload=BACKUP_501)
    async with BackupsClient(TOKEN, base_url=scripted_api.base_url) as client:
        await client.backups.get(501)
    with pytest.raises(RuntimeError):
        await client.backups.get(501)
    assert scripted_api.routes() == ["GET backups/501/"]


async def test_entering_a_closed_client_raises_runtime_error() -> None:
    client = BackupsClient(TOKEN)
    await client.aclose()
    with pytest.raises(RuntimeError):
        async with client:
            pass  # pragma: no cover


# -- sessions -----------------------------------------------------------------------


async def test_borrowed_session_is_used_and_left_open(loopback: StartLoopback) -> None:
    async def answer(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        return backup_for(request)

    api = await loopback(answer)
    async with aiohttp.ClientSession(headers={"X-Caller-Session": "yes"}) as session:
        async with BackupsClient(TOKEN, base_url=api.base_url, session=session) as client:
            assert (await client.backups.get(501)).id == 501
        assert client.closed
        assert not session.closed
        async with session.get(api.base_url + "backups/499/") as response:
            assert response.status == 200
    assert api.seen[0].headers["X-Caller-Session"] == "yes"
    assert api.seen[0].headers["Authorization"] == f"Bearer {TOKEN}"


async def test_owned_session_is_closed_by_aclose(
    loopback: StartLoopback, caplog: pytest.LogCaptureFixture
) -> None:
    async def answer(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        return backup_for(request)

    api = await loopback(answer)
    client = loopback_client(api)
    await client.backups.get(501)
    await client.aclose()
    del client
    assert_nothing_left_unclosed(caplog)


async def test_a_client_never_used_makes_no_session(caplog: pytest.LogCaptureFixture) -> None:
    client = BackupsClient(TOKEN, base_url=BASE_URL)
    del client
    assert_nothing_left_unclosed(caplog)


# -- cancellation -------------------------------------------------------------------


async def test_cancelling_mid_request_raises_cancelled_and_the_client_still_works(
    loopback: StartLoopback, caplog: pytest.LogCaptureFixture
) -> None:
    async def stall_first(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        if len(api.seen) == 1:
            return await api.stall()
        return backup_for(request)

    api = await loopback(stall_first)
    # One request at a time: a slot leaked by the cancelled call would hang the next one.
    client = loopback_client(api, max_concurrency=1)
    call = asyncio.create_task(client.backups.get(501))
    await api.arrived.wait()
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    backup = await asyncio.wait_for(client.backups.get(499), timeout=10)
    assert backup.id == 499
    await client.aclose()
    del client, call
    assert_no_client_tasks_left()
    assert_nothing_left_unclosed(caplog)


async def test_cancelling_a_create_mid_request_does_not_reconcile_or_resend(
    loopback: StartLoopback, caplog: pytest.LogCaptureFixture
) -> None:
    async def stall(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        return await api.stall()

    api = await loopback(stall)
    async with loopback_client(api) as client:
        call = asyncio.create_task(client.backups.create(12345))
        await api.arrived.wait()
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        await asyncio.sleep(0.02)
    assert api.paths() == ["POST /api/v1/backups/"]
    del call
    assert_no_client_tasks_left()
    assert_nothing_left_unclosed(caplog)


def logged(caplog: pytest.LogCaptureFixture, text: str) -> bool:
    return any(text in record.getMessage() for record in caplog.records)


async def ends_in_a_few_loop_turns(*tasks: asyncio.Task[Any]) -> bool:
    """Whether the tasks end within a few passes of the event loop: "at once", counted
    in what the loop did rather than in seconds, so a loaded machine cannot fail it."""
    for _ in range(20):
        if all(task.done() for task in tasks):
            return True
        await asyncio.sleep(0)
    return all(task.done() for task in tasks)


async def test_cancelling_during_a_retry_after_wait_stops_at_once(
    scripted_api: LoopbackAPI, scripted_client: BackupsClient, caplog: pytest.LogCaptureFixture
) -> None:
    scripted_api.answer("GET", "backups/501/", status=503, headers={"Retry-After": "30"})
    scripted_api.answer("GET", "backups/501/", payload=BACKUP_501)
    caplog.set_level(logging.INFO, logger="asyncbackups")
    call = asyncio.create_task(scripted_client.backups.get(501))
    await until(lambda: logged(caplog, "retrying"))  # the 30 s wait has begun
    call.cancel()
    assert await ends_in_a_few_loop_turns(call)  # not after the 30 s the wait would last
    with pytest.raises(asyncio.CancelledError):
        await call
    assert (await scripted_client.backups.get(501)).id == 501
    assert scripted_api.routes() == ["GET backups/501/"] * 2


async def test_cancelling_a_call_held_by_the_client_wide_pause_stops_at_once(
    scripted_api: LoopbackAPI, caplog: pytest.LogCaptureFixture
) -> None:
    scripted_api.answer("GET", "backups/501/", status=429, headers={"Retry-After": "30"})
    scripted_api.answer("GET", "backups/499/", payload={**BACKUP, "id": 499})
    caplog.set_level(logging.INFO, logger="asyncbackups")
    # A timeout long enough that the call waits out the pause rather than failing fast.
    scripted_client = BackupsClient(TOKEN, base_url=scripted_api.base_url, timeout=60)
    limited = asyncio.create_task(scripted_client.backups.get(501))
    await until(lambda: logged(caplog, "rate limited"))  # the client-wide pause has begun
    held = asyncio.create_task(scripted_client.backups.get(499))
    await asyncio.sleep(0.05)  # room for the held call to go out, were it not held
    assert not held.done()
    held.cancel()
    limited.cancel()
    # Not after the 30 s the pause would last.
    assert await ends_in_a_few_loop_turns(held, limited)
    for task in (held, limited):
        with pytest.raises(asyncio.CancelledError):
            await task
    assert scripted_api.routes() == ["GET backups/501/"]
    await scripted_client.aclose()


async def test_client_is_unusable_in_a_second_event_loop_once_bound(
    scripted_api: LoopbackAPI,
) -> None:
    scripted_api.answer("GET", "backups/501/", payload=BACKUP_501)
    client = BackupsClient(TOKEN, base_url=scripted_api.base_url)
    await client.backups.get(501)

    def in_another_loop() -> None:
        async def use() -> None:
            await client.backups.get(501)

        asyncio.run(use())

    with pytest.raises(RuntimeError, match="event loop"):
        await asyncio.to_thread(in_another_loop)
    await client.aclose()
    assert scripted_api.routes() == ["GET backups/501/"]
