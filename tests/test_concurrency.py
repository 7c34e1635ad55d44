"""The cap on requests in flight: queued calls keep their order and never leak a slot."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web
from conftest import SEED_LIST, LoopbackAPI, StartLoopback, json_response, loopback_client


@pytest.fixture
def gate() -> asyncio.Event:
    """Opened by the test; until then the gated API holds every request."""
    return asyncio.Event()


@pytest.fixture
async def gated_api(loopback: StartLoopback, gate: asyncio.Event) -> LoopbackAPI:
    """A loopback API whose list route holds every request until the gate opens."""

    async def listing(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        await asyncio.wait_for(gate.wait(), 5)
        return json_response(SEED_LIST)

    return await loopback(listing)


def servers_asked(api: LoopbackAPI) -> list[str]:
    """The ``server_id`` of each list request, in the order the server received them."""
    return [seen.path_qs.rsplit("server_id=", 1)[-1] for seen in api.seen]


async def test_a_call_cancelled_while_queued_for_a_slot_does_not_leak_it(
    gated_api: LoopbackAPI, gate: asyncio.Event
) -> None:
    async with loopback_client(gated_api, max_concurrency=1) as client:
        holder = asyncio.create_task(client.backups.list(server_id=1))
        queued = asyncio.create_task(client.backups.list(server_id=2))
        # The holder's request is at the server, so the other call is queued for the slot.
        await gated_api.arrived.wait()
        assert servers_asked(gated_api) == ["1"]

        queued.cancel()
        gate.set()
        await holder
        # The slot the cancelled call queued for is free again: a new call goes through.
        assert len(await asyncio.wait_for(client.backups.list(server_id=3), 5)) == 3

    assert queued.cancelled()
    assert servers_asked(gated_api) == ["1", "3"]


async def test_calls_queued_for_a_slot_are_sent_in_the_order_they_came(
    gated_api: LoopbackAPI, gate: asyncio.Event
) -> None:
    async with loopback_client(gated_api, max_concurrency=1) as client:
        calls = []
        for server_id in range(1, 6):
            calls.append(asyncio.create_task(client.backups.list(server_id=server_id)))
            await asyncio.sleep(0)  # each call starts, and queues, before the next one
        # The first call holds the slot at the server; the other four wait in line.
        await gated_api.arrived.wait()
        assert servers_asked(gated_api) == ["1"]
        gate.set()
        await asyncio.gather(*calls)

    assert servers_asked(gated_api) == ["1", "2", "3", "4", "5"]
