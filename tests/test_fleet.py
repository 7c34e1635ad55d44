"""create_many: one outcome per server, in order, bounded, exactly once, cancellable."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web
from conftest import CREATED_502, LoopbackAPI, StartLoopback, loopback_client, until

from asyncbackups import (
    Backup,
    BackupFailedError,
    BackupOutcome,
    BackupsClient,
    BackupStatus,
    BackupType,
    FleetResult,
    NotFoundError,
    ServerRef,
)

FAST = {"poll_interval": 0.01, "max_poll_interval": 0.02}


def _sdk_tasks() -> list[asyncio.Task[Any]]:
    """Tasks still running SDK code (the fake server's own connection tasks excluded)."""

    def runs_sdk_code(task: asyncio.Task[Any]) -> bool:
        code = getattr(task.get_coro(), "cr_code", None)
        filename = code.co_filename if code is not None else ""
        return "asyncbackups" in filename and "testing" not in filename

    current = asyncio.current_task()
    return [task for task in asyncio.all_tasks() if task is not current and runs_sdk_code(task)]


def _creates(api: Any) -> int:
    return int(api.requests[("POST", "backups/")])


async def _complete_once_created(api: Any, count: int) -> None:
    """Finish every backup, once the fake has made all ``count`` of them."""
    await until(lambda: _creates(api) >= count)
    api.advance(61)


async def test_every_server_gets_one_outcome_in_input_order(
    fake_api: Any, fake_client: BackupsClient
) -> None:
    fake_api.add_fleet(5)

    result = await fake_client.backups.create_many([5, 3, 999, 1, 4], description="weekly")

    assert [o.server_id for o in result.outcomes] == [5, 3, 999, 1, 4]
    assert [o.ok for o in result.outcomes] == [True, True, False, True, True]
    unknown = result.outcomes[2]
    assert isinstance(unknown.error, NotFoundError)
    assert unknown.backup is None
    assert all(o.backup is not None and o.backup.server_id == o.server_id for o in result.succeeded)
    assert all(o.backup is not None and o.backup.description == "weekly" for o in result.succeeded)
    assert not result.ok
    assert result.failed == [unknown]


async def test_with_wait_each_outcome_is_final_and_failures_keep_their_backup(
    fake_api: Any, fake_client: BackupsClient
) -> None:
    fake_api.add_fleet(4)
    fake_api.set_failing(2)
    advancing = asyncio.create_task(_complete_once_created(fake_api, 4))

    result = await fake_client.backups.create_many([1, 2, 3, 4], wait=True, **FAST)

    await advancing
    by_server = {o.server_id: o for o in result.outcomes}
    assert [o.server_id for o in result.succeeded] == [1, 3, 4]
    assert all(o.backup is not None for o in result.succeeded)
    assert all(o.backup.status is BackupStatus.COMPLETED for o in result.succeeded if o.backup)
    failed = by_server[2]
    assert isinstance(failed.error, BackupFailedError)
    assert failed.backup is not None
    assert failed.backup.status is BackupStatus.FAILED


async def test_on_progress_hears_each_outcome_as_it_lands(
    fake_api: Any, fake_client: BackupsClient
) -> None:
    fake_api.add_fleet(20)
    heard: list[BackupOutcome] = []

    result = await fake_client.backups.create_many([*range(1, 21), 777], on_progress=heard.append)

    assert len(heard) == 21
    assert Counter(o.server_id for o in heard) == Counter(o.server_id for o in result.outcomes)
    assert sum(not o.ok for o in heard) == 1


async def test_async_on_progress_is_awaited(fake_api: Any, fake_client: BackupsClient) -> None:
    fake_api.add_fleet(3)
    heard: list[int] = []

    async def on_progress(outcome: BackupOutcome) -> None:
        await asyncio.sleep(0)
        heard.append(outcome.server_id)

    await fake_client.backups.create_many([1, 2, 3], on_progress=on_progress)

    assert sorted(heard) == [1, 2, 3]


async def test_what_on_progress_raises_reaches_the_caller_and_stops_the_run(
    fake_api: Any, fake_client: BackupsClient
) -> None:
    fake_api.add_fleet(50)

    def on_progress(outcome: BackupOutcome) -> None:
        raise RuntimeError("progress bar crashed")

    with pytest.raises(RuntimeError, match="progress bar crashed"):
        await fake_client.backups.create_many(range(1, 51), concurrency=2, on_progress=on_progress)

    await asyncio.sleep(0.05)  # room for leftover work to show itself
    assert _creates(fake_api) < 50
    assert not _sdk_tasks()


async def test_repeated_server_ids_are_refused_before_any_request(
    fake_api: Any, fake_client: BackupsClient
) -> None:
    with pytest.raises(ValueError, match=r"repeats \[3\]"):
        await fake_client.backups.create_many([1, 3, 2, 3])
    assert sum(fake_api.requests.values()) == 0


@pytest.mark.parametrize("bad", [True, "12", 1.0, None])
async def test_server_ids_that_are_not_ints_are_refused_with_type_error(
    fake_api: Any, fake_client: BackupsClient, bad: object
) -> None:
    with pytest.raises(TypeError):
        await fake_client.backups.create_many([1, bad])  # type: ignore[list-item]
    assert sum(fake_api.requests.values()) == 0


@pytest.mark.parametrize("bad", [0, -4])
async def test_server_ids_that_are_not_positive_are_refused_with_value_error(
    fake_client: BackupsClient, bad: int
) -> None:
    with pytest.raises(ValueError, match="positive"):
        await fake_client.backups.create_many([1, bad])


async def test_an_empty_fleet_is_an_ok_empty_result(fake_client: BackupsClient) -> None:
    result = await fake_client.backups.create_many([])
    assert result == FleetResult([])
    assert result.ok


def creating_until_in_flight(cap: int) -> Any:
    """A create route that holds creates until ``cap`` of them are in flight.

    Only briefly while a fleet's creates ramp up (it starts with two, and adds one as
    each ends): a hold without end would wait for creates the fleet has yet to send.
    """

    async def create(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.05):
                await api.hold_until_in_flight(cap)
        await asyncio.sleep(0.01)  # room for a create over the cap to show up
        server_id = (await request.json())["server_id"]
        created = {**CREATED_502, "id": 1000 + server_id, "server": {"id": server_id, "name": None}}
        return web.json_response(created, status=201)

    return create


async def test_creates_in_flight_never_exceed_the_concurrency(loopback: StartLoopback) -> None:
    api = await loopback(creating_until_in_flight(4))
    async with loopback_client(api) as client:
        result = await client.backups.create_many(range(1, 41), concurrency=4)

    assert result.ok
    assert api.routes() == ["POST backups/"] * 40
    assert api.max_in_flight == 4


async def test_concurrency_defaults_to_the_clients_max_concurrency(
    loopback: StartLoopback,
) -> None:
    api = await loopback(creating_until_in_flight(3))
    async with loopback_client(api, max_concurrency=3) as client:
        await client.backups.create_many(range(1, 31))

    assert api.max_in_flight == 3


async def test_cancelling_create_many_cancels_all_its_work_cleanly(
    fake_api: Any, fake_client: BackupsClient
) -> None:
    fake_api.add_fleet(30)
    run = asyncio.create_task(fake_client.backups.create_many(range(1, 31), wait=True, **FAST))
    await until(lambda: _creates(fake_api) >= 10)  # mid-run: creating, and waiting

    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run

    await until(lambda: not _sdk_tasks())
    # The client is still usable after the cancelled run.
    assert (await fake_client.backups.get(501)).id == 501


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_ambiguous_failures_still_give_exactly_one_backup_per_server(
    seed: int, fake_api: Any
) -> None:
    fake_api.honor_idempotency_keys = False
    fake_api.add_fleet(60)
    fake_api.faults.status_after(500, method="POST", rate=0.15)
    fake_api.faults.drop_after(method="POST", rate=0.15)
    fake_api.faults.status_after(502, method="POST", rate=0.1)
    manual_before = len(fake_api.backups(backup_type="manual"))

    async with BackupsClient(
        fake_api.token, base_url=fake_api.base_url, retry_backoff=0, max_retries=8
    ) as client:
        result = await client.backups.create_many(range(1, 61), description=f"seed {seed}")

    made = Counter(b.server_id for b in fake_api.backups(backup_type="manual"))
    assert len(fake_api.backups(backup_type="manual")) - manual_before == 60
    assert all(made[server] == 1 for server in range(1, 61))
    assert result.ok
    assert {o.backup.id for o in result.outcomes if o.backup} == {
        b.id for b in fake_api.backups(backup_type="manual") if b.server_id <= 60
    }
    assert sum(fake_api.faults.injected.values()) > 0


def test_raise_for_failures_raises_one_group_naming_each_server() -> None:
    missing = NotFoundError("gone", status_code=404)
    other = RuntimeError("boom")
    result = FleetResult(
        [
            BackupOutcome(1, None, missing),
            BackupOutcome(2, None, None),
            BackupOutcome(3, None, other),
        ]
    )

    with pytest.raises(ExceptionGroup) as caught:
        result.raise_for_failures()

    group = caught.value
    assert "3 of 3" in str(group)
    assert group.exceptions[0] is missing
    assert "server 1" in missing.__notes__
    assert "no backup was made" in str(group.exceptions[1])
    assert group.exceptions[2] is other


def test_raise_for_failures_of_an_empty_result_does_nothing() -> None:
    FleetResult([]).raise_for_failures()


def test_raise_for_failures_does_nothing_when_every_server_succeeded() -> None:
    made = [
        Backup(
            id=600 + server_id,
            server=ServerRef(id=server_id, name=None),
            backup_type=BackupType.MANUAL,
            status=BackupStatus.IN_PROGRESS,
            size_mb=None,
            created_at=datetime(2025, 1, 16, 15, 45, tzinfo=UTC),
        )
        for server_id in (1, 2)
    ]
    result = FleetResult([BackupOutcome(backup.server_id, backup, None) for backup in made])

    assert result.ok
    result.raise_for_failures()
