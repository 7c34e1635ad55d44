"""Reconciling a create in doubt against a real (fake) server's state."""

from __future__ import annotations

from typing import Any

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
