"""wait_until_completed: outcomes, deadlines, callbacks, and polls shared between waits."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from conftest import BACKUP, LoopbackAPI, page, until

from asyncbackups import (
    AuthenticationError,
    Backup,
    BackupFailedError,
    BackupsClient,
    BackupStatus,
    BackupType,
    NotFoundError,
    ServerRef,
    WaitTimeoutError,
)

FAST = {"poll_interval": 0.01, "max_poll_interval": 0.02}
FAST_MAX = {"max_poll_interval": 0.01}


def _reads(api: Any) -> int:
    """How many times the fake was asked for backups, by list or by detail."""
    requests = api.requests
    return int(requests[("GET", "backups/")] + requests[("GET", "backups/{id}/")])


async def _complete_once(api: Any, condition: Callable[[], bool]) -> None:
    """Finish the fake's backups once ``condition()`` holds: on events, not on a timer."""
    await until(condition)
    api.advance(61)


async def test_wait_returns_the_completed_backup_once_the_server_finishes_it(
    fake_api: Any, fake_client: BackupsClient
) -> None:
    backup = await fake_client.backups.create(12345, description="nightly")
    # The wait reads the backup in progress at least once before the server finishes it.
    advancing = asyncio.create_task(_complete_once(fake_api, lambda: _reads(fake_api) >= 1))

    done = await fake_client.backups.wait_until_completed(backup, **FAST)

    await advancing
    assert done.id == backup.id
    assert done.status is BackupStatus.COMPLETED
    assert done.size_mb is not None
    assert done.is_final


async def test_wait_by_id_reads_the_detail_route_first(
    fake_api: Any, fake_client: BackupsClient
) -> None:
    backup = await fake_client.backups.create(12345)
    fake_api.advance(61)

    done = await fake_client.backups.wait_until_completed(backup.id, **FAST)

    assert done.status is BackupStatus.COMPLETED
    assert fake_api.requests[("GET", "backups/{id}/")] == 1
    assert fake_api.requests[("GET", "backups/")] == 0


async def test_wait_on_an_already_completed_backup_returns_without_a_request(
    fake_api: Any, fake_client: BackupsClient
) -> None:
    completed = await fake_client.backups.get(501)
    before = sum(fake_api.requests.values())

    done = await fake_client.backups.wait_until_completed(completed)

    assert done is completed
    assert sum(fake_api.requests.values()) == before


async def test_wait_raises_backup_failed_error_carrying_the_failed_backup(
    fake_api: Any, fake_client: BackupsClient
) -> None:
    fake_api.set_failing(12345)
    backup = await fake_client.backups.create(12345)
    fake_api.advance(61)

    with pytest.raises(BackupFailedError) as caught:
        await fake_client.backups.wait_until_completed(backup, **FAST)

    assert caught.value.backup.id == backup.id
    assert caught.value.backup.status is BackupStatus.FAILED


async def test_wait_on_an_already_failed_backup_raises_at_once(
    scripted_api: LoopbackAPI, scripted_client: BackupsClient
) -> None:
    failed = _backup(BackupStatus.FAILED)
    with pytest.raises(BackupFailedError) as caught:
        await scripted_client.backups.wait_until_completed(failed)
    assert caught.value.backup is failed
    assert scripted_api.seen == []


async def test_wait_deadline_raises_wait_timeout_error_with_the_last_backup_seen(
    fake_client: BackupsClient,
) -> None:
    backup = await fake_client.backups.create(12345)
    started = time.monotonic()

    with pytest.raises(WaitTimeoutError) as caught:
        await fake_client.backups.wait_until_completed(backup, timeout=0.15, **FAST)

    # Not before the deadline (tests/test_poller.py shows it exactly, on a driven clock).
    assert time.monotonic() - started >= 0.15
    assert caught.value.backup is not None
    assert caught.value.backup.id == backup.id
    assert caught.value.backup.status is BackupStatus.IN_PROGRESS


async def test_wait_deadline_counts_time_spent_in_requests(
    fake_api: Any, fake_client: BackupsClient
) -> None:
    backup = await fake_client.backups.create(12345)
    # Each read takes an hour: a deadline that let the request run would never end
    # this test (tests/test_poller.py shows the same on a driven clock).
    fake_api.faults.delay(3600, method="GET")

    with pytest.raises(WaitTimeoutError) as caught:
        await fake_client.backups.wait_until_completed(backup, timeout=0.1, **FAST)

    assert caught.value.backup == backup
    assert fake_api.faults.injected["delay"] >= 1  # a read was in flight at the deadline


async def test_wait_on_a_backup_that_vanished_raises_not_found(
    fake_api: Any, fake_client: BackupsClient
) -> None:
    backup = await fake_client.backups.create(12345)
    await fake_client.backups.delete(backup.id)

    with pytest.raises(NotFoundError):
        await fake_client.backups.wait_until_completed(backup, **FAST)

    # Missing from the list, then confirmed gone by its detail route before giving up.
    assert fake_api.requests[("GET", "backups/{id}/")] >= 1


async def test_wait_fails_at_once_when_the_token_is_refused(fake_api: Any) -> None:
    backup_in_progress = _backup(BackupStatus.IN_PROGRESS)
    async with BackupsClient("wrong-token", base_url=fake_api.base_url) as wrong:
        with pytest.raises(AuthenticationError):
            await wrong.backups.wait_until_completed(backup_in_progress, timeout=5, **FAST)


async def test_on_update_hears_the_first_read_and_every_change_but_no_repeats(
    fake_api: Any, fake_client: BackupsClient
) -> None:
    backup = await fake_client.backups.create(12345)
    heard: list[BackupStatus] = []
    advancing = asyncio.create_task(
        _complete_once(fake_api, lambda: fake_api.requests[("GET", "backups/")] >= 3)
    )

    await fake_client.backups.wait_until_completed(
        backup, on_update=lambda update: heard.append(update.status), **FAST
    )

    await advancing
    # Several rounds read the same in-progress state; the callback heard it once.
    assert fake_api.requests[("GET", "backups/")] > 2
    assert heard == [BackupStatus.IN_PROGRESS, BackupStatus.COMPLETED]


async def test_async_on_update_is_awaited(fake_api: Any, fake_client: BackupsClient) -> None:
    backup = await fake_client.backups.create(12345)
    heard: list[BackupStatus] = []

    async def on_update(update: Backup) -> None:
        await asyncio.sleep(0)
        heard.append(update.status)
        fake_api.advance(61)

    await fake_client.backups.wait_until_completed(backup, on_update=on_update, **FAST)

    assert heard == [BackupStatus.IN_PROGRESS, BackupStatus.COMPLETED]


async def test_what_on_update_raises_reaches_the_caller(fake_client: BackupsClient) -> None:
    backup = await fake_client.backups.create(12345)

    def on_update(update: Backup) -> None:
        raise LookupError("the bot's channel is gone")

    with pytest.raises(LookupError, match="channel is gone"):
        await fake_client.backups.wait_until_completed(backup, on_update=on_update, **FAST)


async def test_unknown_status_keeps_waiting_warns_once_and_is_never_success(
    scripted_api: LoopbackAPI, scripted_client: BackupsClient, caplog: pytest.LogCaptureFixture
) -> None:
    restoring = {**BACKUP, "status": "restoring"}
    scripted_api.answer("GET", "backups/501/", payload=restoring)
    listing = "backups/?backup_type=automatic&server_id=12345"
    scripted_api.answer("GET", listing, payload=page([restoring]))
    scripted_api.answer("GET", listing, payload=page([restoring]))
    scripted_api.answer("GET", listing, payload=page([BACKUP]))
    heard: list[Backup] = []
    caplog.set_level(logging.WARNING, logger="asyncbackups")

    done = await scripted_client.backups.wait_until_completed(
        501, on_update=heard.append, timeout=5, **FAST
    )

    assert done.status is BackupStatus.COMPLETED
    assert scripted_api.routes() == ["GET backups/501/", *[f"GET {listing}"] * 3]
    assert heard[0].status == "restoring"
    assert not heard[0].is_final
    warnings = [r for r in caplog.records if "restoring" in r.getMessage()]
    assert len(warnings) == 1


async def test_retry_after_while_polling_is_never_undercut(
    fake_api: Any, fake_client: BackupsClient
) -> None:
    backup = await fake_client.backups.create(12345)
    fake_api.advance(61)
    fake_api.faults.status_before(429, retry_after=0.2, method="GET", times=1)
    started = time.monotonic()

    done = await fake_client.backups.wait_until_completed(backup, poll_interval=0, **FAST_MAX)

    assert done.status is BackupStatus.COMPLETED
    assert time.monotonic() - started >= 0.2


async def test_cancelling_one_wait_leaves_the_others_running(
    fake_api: Any, fake_client: BackupsClient
) -> None:
    fake_api.add_fleet(3)
    first, second, third = [await fake_client.backups.create(s) for s in (1, 2, 3)]
    waits = [
        asyncio.create_task(fake_client.backups.wait_until_completed(b, **FAST))
        for b in (first, second, third)
    ]
    await until(lambda: _reads(fake_api) >= 1)  # the poller is serving all three
    waits[1].cancel()
    fake_api.advance(61)

    done = await asyncio.gather(waits[0], waits[2])

    assert [b.id for b in done] == [first.id, third.id]
    assert waits[1].cancelled()


async def test_the_poller_stops_when_the_last_wait_leaves(
    fake_api: Any, fake_client: BackupsClient
) -> None:
    backup = await fake_client.backups.create(12345)
    waiting = asyncio.create_task(fake_client.backups.wait_until_completed(backup, **FAST))
    await until(lambda: _reads(fake_api) >= 1)
    pollers = [t for t in asyncio.all_tasks() if t.get_name() == "asyncbackups-poller"]
    assert pollers
    fake_api.advance(61)
    await waiting

    # Ended with the wait, within a few turns of the loop (counted in turns, not seconds).
    for _ in range(20):
        if all(poller.done() for poller in pollers):
            break
        await asyncio.sleep(0)
    assert all(poller.done() for poller in pollers)


async def test_a_thousand_concurrent_waits_share_their_poll_rounds(
    fake_api: Any, fake_client: BackupsClient
) -> None:
    fake_api.add_fleet(1000)
    created = await fake_client.backups.create_many(range(1, 1001))
    assert created.ok
    before = sum(fake_api.requests.values())
    rounds_before = fake_client.stats.poll_rounds
    waits = [
        fake_client.backups.wait_until_completed(b, poll_interval=0.02, max_poll_interval=0.05)
        for b in created.backups
    ]
    # Several rounds (at 10 list pages a round) read every backup in progress first.
    advancing = asyncio.create_task(_complete_once(fake_api, lambda: _reads(fake_api) >= 30))

    done = await asyncio.gather(*waits)

    await advancing
    polls = sum(fake_api.requests.values()) - before
    rounds = fake_client.stats.poll_rounds - rounds_before
    assert all(b.status is BackupStatus.COMPLETED for b in done)
    # Each round read the list once for every wait due in it: its 10 pages (page size
    # 100), a few more when backups finishing meanwhile shift the pages, nowhere near a
    # request per wait (1000 a round). How many rounds it took depends on the machine's
    # speed; what a round costs does not.
    assert 0 < polls <= 20 * rounds


async def test_wait_rejects_bad_arguments_before_any_request(
    scripted_api: LoopbackAPI, scripted_client: BackupsClient
) -> None:
    client = scripted_client
    with pytest.raises(TypeError):
        await client.backups.wait_until_completed(True)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await client.backups.wait_until_completed("501")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="positive"):
        await client.backups.wait_until_completed(0)
    with pytest.raises(ValueError, match="timeout"):
        await client.backups.wait_until_completed(501, timeout=-1)
    with pytest.raises(ValueError, match="max_poll_interval"):
        await client.backups.wait_until_completed(501, max_poll_interval=-1)
    with pytest.raises(TypeError, match="on_update"):
        await client.backups.wait_until_completed(501, on_update="print")  # type: ignore[arg-type]
    assert scripted_api.seen == []


async def test_a_max_poll_interval_below_poll_interval_is_raised_to_it(
    fake_api: Any, fake_client: BackupsClient
) -> None:
    backup = await fake_client.backups.create(12345)
    fake_api.advance(60)
    done = await fake_client.backups.wait_until_completed(
        backup, poll_interval=0.01, max_poll_interval=0.001
    )
    assert done.status is BackupStatus.COMPLETED


def _backup(status: BackupStatus) -> Backup:
    return Backup(
        id=501,
        server=ServerRef(id=12345, name="web-server-01"),
        backup_type=BackupType.MANUAL,
        status=status,
        size_mb=None,
        created_at=datetime(2025, 1, 16, 3, 0, tzinfo=UTC),
    )
