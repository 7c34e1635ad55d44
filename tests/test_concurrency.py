"""The cap on requests in flight: queued calls keep their order and never leak a slot."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from conftest import SEED_LIST

from asyncbackups import BackupsClient


@pytest.fixture
async def gated_api() -> AsyncIterator[tuple[str, asyncio.Event, list[str]]]:
    """A loopback API whose list route holds every request until the gate opens."""
    gate = asyncio.Event()
    seen: list[str] = []

    async def listing(request: web.Request) -> web.Response:
        seen.append(request.query.get("server_id", ""))
        await gate.wait()
        return web.json_response(SEED_LIST)

    app = web.Application()
    app.router.add_get("/api/v1/backups/", listing)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/api/v1/", gate, seen
    finally:
        gate.set()
        await runner.cleanup()


async def test_a_call_cancelled_while_queued_for_a_slot_does_not_leak_it(
    gated_api: tuple[str, asyncio.Event, list[str]],
) -> None:
    base_url, gate, seen = gated_api
    async with BackupsClient("t", base_url=base_url, max_concurrency=1) as client:
        holder = asyncio.create_task(client.backups.list(server_id=1))
        queued = asyncio.create_task(client.backups.list(server_id=2))
        await asyncio.sleep(0.05)
        assert seen == ["1"]

        queued.cancel()
        gate.set()
        await holder
        # The slot the cancelled call queued for is free again: a new call goes through.
        assert len(await asyncio.wait_for(client.backups.list(server_id=3), 2)) == 3

    assert queued.cancelled()
    assert seen == ["1", "3"]


async def test_calls_queued_for_a_slot_are_sent_in_the_order_they_came(
    gated_api: tuple[str, asyncio.Event, list[str]],
) -> None:
    base_url, gate, seen = gated_api
    async with BackupsClient("t", base_url=base_url, max_concurrency=1) as client:
        calls = []
        for server_id in range(1, 6):
            calls.append(asyncio.create_task(client.backups.list(server_id=server_id)))
            await asyncio.sleep(0)
        await asyncio.sleep(0.02)
        gate.set()
        await asyncio.gather(*calls)

    assert seen == ["1", "2", "3", "4", "5"]
