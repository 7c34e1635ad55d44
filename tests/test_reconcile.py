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
