"""Reconciling a create in doubt against a real (fake) server's state."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from conftest import BACKUP_501, json_response, loopback_client, page, until

from asyncbackups import BackupsClient


async def test_a_create_in_doubt_adopts_the_backup_even_when_the_server_trimmed_its_description(
    fake_api: Any,
) -> None:
    fake_api.honor_idempotency_keys = False
    fake_api.faults.drop_after(method="POST", times=1)

    async with BackupsClient(fake_api.token, base_url=fake_api.base_url, retry_backoff=0) as c:
        backup = await c.backups.create(12345, description="  before deploy  ")

    made = fake_api.backups(server_id=12345, backup_type="manual")
    assert [b.id for b in made if b.description == "before deploy"] == [backup.id]
    assert fake_api.requests[("POST", "backups/")] == 1


async def test_a_create_that_timed_out_but_lands_later_is_adopted_not_made_twice(
    fake_api: Any,
) -> None:
    # The server finishes the first attempt 0.15 s in; the client gave up at 0.1 s.
    fake_api.honor_idempotency_keys = False
    fake_api.faults.delay(0.15, method="POST", path="backups/", times=1)

    async with BackupsClient(
        fake_api.token, base_url=fake_api.base_url, timeout=0.1, retry_backoff=0
    ) as client:
        backup = await client.backups.create(12345, description="late")

    made = [b.id for b in fake_api.backups(server_id=12345) if b.description == "late"]
    assert made == [backup.id]
    assert fake_api.requests[("POST", "backups/")] == 1


async def test_a_create_answered_504_is_given_time_to_land_before_the_check(
    fake_api: Any,
) -> None:
    fake_api.honor_idempotency_keys = False
    fake_api.faults.status_after(504, method="POST", times=1)

    async with BackupsClient(
        fake_api.token, base_url=fake_api.base_url, timeout=0.05, retry_backoff=0
    ) as client:
        backup = await client.backups.create(12345, description="gateway")

    made = [b.id for b in fake_api.backups(server_id=12345) if b.description == "gateway"]
    assert made == [backup.id]


async def test_a_create_in_doubt_never_adopts_the_backup_a_concurrent_create_is_about_to_get(
    loopback: Any,
) -> None:
    # Two creates of one server, same (no) description, on one client. The server makes
    # the first one's backup and holds its answer; the second one's request is dropped,
    # so that create is in doubt and reads the list, where the first one's backup is.
    # Adopting it would hand one backup to both calls and leave the second unmade.
    made: list[dict[str, Any]] = []
    posts = 0
    first_answer = asyncio.Event()
    holding = False
    list_read_while_held = False

    def backup(number: int) -> dict[str, Any]:
        created = datetime.now(UTC).isoformat()
        return {
            **BACKUP_501,
            "id": 700 + number,
            "backup_type": "manual",
            "status": "in_progress",
            "description": "",
            "created_at": created,
        }

    async def handler(request: web.Request, api: Any) -> web.StreamResponse:
        nonlocal posts, holding, list_read_while_held
        if request.method == "POST":
            posts += 1
            if posts == 1:  # made at once, answered only later
                made.append(backup(1))
                holding = True
                with contextlib.suppress(TimeoutError):
                    # Released by the list read of the bug, or after a pause without one.
                    await asyncio.wait_for(first_answer.wait(), 0.3)
                holding = False
                return json_response(made[0], status=201)
            if posts == 2:  # never reaches the service: the answer is lost
                assert request.transport is not None
                request.transport.close()
                return web.Response(status=204)
            made.append(backup(posts))
            return json_response(made[-1], status=201)
        if holding:
            list_read_while_held = True
            first_answer.set()
        return json_response(page(made))

    api = await loopback(handler)
    async with loopback_client(api, timeout=5.0) as client:
        first = asyncio.create_task(client.backups.create(12345))
        await until(lambda: posts == 1)
        second = asyncio.create_task(client.backups.create(12345))
        got = await asyncio.gather(first, second)

    assert not list_read_while_held  # the one in doubt waited for the other's answer
    assert got[0].id == 701
    assert got[1].id == 703  # it found nothing unclaimed, and made its own
    assert [b["id"] for b in made] == [701, 703]
