"""Every SDK call end to end against the fake API on loopback, as a user would run it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from conftest import BACKUP_495, BACKUP_499, BACKUP_501

from asyncbackups import (
    AuthenticationError,
    BackupsClient,
    BackupStatus,
    BackupType,
    BadRequestError,
    NotFoundError,
    RestoreResult,
)


async def test_list_decodes_the_documented_example_exactly(fake_client: BackupsClient) -> None:
    backups = await fake_client.backups.list(server_id=12345)

    assert [b.id for b in backups] == [501, 499, 495]
    first = backups[0]
    assert first.server.id == 12345
    assert first.server.name == "web-server-01"
    assert first.backup_type is BackupType.AUTOMATIC
    assert first.status is BackupStatus.COMPLETED
    assert first.size_mb == BACKUP_501["size_mb"]
    assert first.created_at == datetime(2025, 1, 16, 3, 0, tzinfo=UTC)
    assert first.expires_at == datetime(2025, 2, 16, 3, 0, tzinfo=UTC)
    assert first.description == BACKUP_501["description"]
    assert backups[1].expires_at is None
    assert backups[1].description == BACKUP_499["description"]
    assert backups[2].size_mb == BACKUP_495["size_mb"]


async def test_list_filters_by_type_and_follows_every_page(fake_api: Any) -> None:
    fake_api.page_size = 2
    fake_api.add_fleet(3)
    async with BackupsClient(fake_api.token, base_url=fake_api.base_url) as client:
        manual = await client.backups.list(server_id=12345, backup_type="manual")
        everything = await client.backups.list()
        lazily = [b.id async for b in client.backups.iter(backup_type=BackupType.AUTOMATIC)]

    assert [b.id for b in manual] == [499]
    assert len(everything) == 6
    assert fake_api.requests[("GET", "backups/")] >= 1 + 3 + 3
    assert lazily == [b.id for b in everything if b.backup_type is BackupType.AUTOMATIC]


async def test_create_get_and_delete_round_trip(fake_api: Any, fake_client: BackupsClient) -> None:
    created = await fake_client.backups.create(12345, description="Pre-deployment backup")

    assert created.id == 502
    assert created.status is BackupStatus.IN_PROGRESS
    assert created.backup_type is BackupType.MANUAL
    assert created.size_mb is None
    assert created.expires_at is None
    assert created.message is not None
    assert (await fake_client.backups.get(502)).description == "Pre-deployment backup"

    await fake_client.backups.delete(502)

    with pytest.raises(NotFoundError):
        await fake_client.backups.get(502)
    with pytest.raises(NotFoundError):
        await fake_client.backups.delete(502)


async def test_create_for_an_unknown_server_raises_not_found(fake_client: BackupsClient) -> None:
    with pytest.raises(NotFoundError) as caught:
        await fake_client.backups.create(999_999)
    assert caught.value.status_code == 404


async def test_a_description_the_server_refuses_raises_bad_request_with_the_field(
    fake_client: BackupsClient,
) -> None:
    with pytest.raises(BadRequestError) as caught:
        await fake_client.backups.create(12345, description="x" * 256)

    assert list(caught.value.field_errors) == ["description"]
    assert "255" in caught.value.field_errors["description"][0]


async def test_restore_from_a_completed_backup_returns_the_answer(
    fake_api: Any, fake_client: BackupsClient
) -> None:
    result = await fake_client.servers.restore(12345, 501)

    assert isinstance(result, RestoreResult)
    assert result.status_code == 202
    assert result.server_id == 12345
    assert result.backup_id == 501
    assert result.raw["status"] == result.status
    assert len(fake_api.restores) == 1


async def test_restore_refusals_map_to_typed_errors(
    fake_api: Any, fake_client: BackupsClient
) -> None:
    in_progress = await fake_client.backups.create(12345)
    fake_api.add_server(777)

    with pytest.raises(BadRequestError) as not_completed:
        await fake_client.servers.restore(12345, in_progress.id)
    with pytest.raises(BadRequestError) as other_server:
        await fake_client.servers.restore(777, 501)
    with pytest.raises(NotFoundError):
        await fake_client.servers.restore(12345, 404_404)
    with pytest.raises(NotFoundError):
        await fake_client.servers.restore(404_404, 501)

    assert "backup_id" in not_completed.value.field_errors
    assert "backup_id" in other_server.value.field_errors
    assert fake_api.restores == []


async def test_a_wrong_token_raises_authentication_error_without_retrying(fake_api: Any) -> None:
    async with BackupsClient("not-the-token", base_url=fake_api.base_url) as client:
        with pytest.raises(AuthenticationError) as caught:
            await client.backups.list()

    assert caught.value.status_code == 401
    assert "not-the-token" not in str(caught.value)
    assert fake_api.requests[("GET", "backups/")] == 1


async def test_transient_faults_are_retried_to_success(
    fake_api: Any, fake_client: BackupsClient
) -> None:
    fake_api.faults.status_before(503, retry_after=0.01, method="GET", times=1)
    fake_api.faults.drop_before(method="POST", times=1)
    fake_api.faults.malformed("html", method="GET", path="backups/{id}/", times=1)

    assert len(await fake_client.backups.list(server_id=12345)) == 3
    assert (await fake_client.backups.create(12345)).id == 502
    assert (await fake_client.backups.get(502)).id == 502
    assert len(fake_api.backups(server_id=12345, backup_type="manual")) == 2
