"""What a create's reconcile can know, against a server that ignores Idempotency-Key.

Each test shows one documented behaviour of the README's "What the SDK guarantees":
the cases where the call's own backup can be told apart, and the limits where it can
only be reported.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
from aiohttp import web
from conftest import TOKEN, LoopbackAPI, json_response, loopback_client

from asyncbackups import AmbiguousCreateError, APITimeoutError, BackupsClient
from asyncbackups.testing import FakeBackupsAPI

SERVER = 12345


@pytest.fixture
async def keyless_api() -> AsyncIterator[FakeBackupsAPI]:
    """The fake API acting as a server that ignores Idempotency-Key."""
    async with FakeBackupsAPI(backup_seconds=60, honor_idempotency_keys=False) as api:
        yield api


def client_of(api: FakeBackupsAPI, **options: Any) -> BackupsClient:
    options.setdefault("retry_backoff", 0)
    options.setdefault("max_retry_backoff", 0)
    return BackupsClient(api.token, base_url=api.base_url, **options)


def manual_backups(api: FakeBackupsAPI, description: str) -> list[int]:
    return sorted(
        backup.id
        for backup in api.backups(server_id=SERVER, backup_type="manual")
        if backup.description == description
    )


async def test_two_clients_in_doubt_about_identical_creates_both_report_instead_of_sharing(
    keyless_api: FakeBackupsAPI,
) -> None:
    # Both POSTs land, both answers are lost: each client sees two backups that could
    # be its own, and neither hands out the other's.
    keyless_api.faults.drop_after(method="POST", path="backups/", times=2)
    async with client_of(keyless_api) as first, client_of(keyless_api) as second:
        outcomes = await asyncio.gather(
            first.backups.create(SERVER, description="nightly"),
            second.backups.create(SERVER, description="nightly"),
            return_exceptions=True,
        )
    made = manual_backups(keyless_api, "nightly")
    assert len(made) == 2
    for outcome in outcomes:
        assert isinstance(outcome, AmbiguousCreateError)
        assert [backup.id for backup in outcome.candidates] == made
        assert outcome.server_id == SERVER
        assert all(str(backup_id) in str(outcome) for backup_id in made)
    # Nothing was sent again: reporting is not resending.
    assert keyless_api.requests[("POST", "backups/")] == 2


async def test_identical_creates_in_doubt_in_one_client_each_adopt_their_own_backup(
    keyless_api: FakeBackupsAPI,
) -> None:
    keyless_api.faults.drop_after(method="POST", path="backups/", times=2)
    async with client_of(keyless_api) as client:
        first, second = await asyncio.gather(
            client.backups.create(SERVER, description="nightly"),
            client.backups.create(SERVER, description="nightly"),
        )
    assert sorted([first.id, second.id]) == manual_backups(keyless_api, "nightly")
    assert keyless_api.requests[("POST", "backups/")] == 2


async def test_an_identical_backup_made_a_second_before_the_call_is_not_adopted(
    keyless_api: FakeBackupsAPI,
) -> None:
    # The server's clock stands at half past a second, so its whole-second Date header
    # is half a second behind it: the window still opens after the other backup.
    keyless_api.clock.freeze(datetime(2026, 11, 30, 12, 0, 0, 500_000, tzinfo=UTC))
    async with client_of(keyless_api) as other:
        earlier = await other.backups.create(SERVER, description="nightly")
    keyless_api.advance(1.0)
    keyless_api.faults.drop_before(method="POST", path="backups/", times=1)
    async with client_of(keyless_api) as client:
        backup = await client.backups.create(SERVER, description="nightly")
    assert backup.id != earlier.id
    assert manual_backups(keyless_api, "nightly") == sorted([earlier.id, backup.id])


async def test_a_create_whose_request_lands_after_the_settle_wait_makes_a_second_backup(
    keyless_api: FakeBackupsAPI,
) -> None:
    # The documented limit: a POST that reaches the server later than the call waits
    # for it cannot be seen in time, and a server that ignores the key makes it twice.
    keyless_api.faults.delay(0.4, method="POST", path="backups/", times=1)
    async with client_of(keyless_api, timeout=0.1) as client:
        backup = await client.backups.create(SERVER, description="nightly")
        await asyncio.sleep(0.45)
    made = manual_backups(keyless_api, "nightly")
    assert backup.id in made
    assert len(made) == 2


async def test_a_late_request_makes_no_second_backup_on_a_server_that_honours_the_key() -> None:
    async with FakeBackupsAPI(backup_seconds=60) as api:
        api.faults.delay(0.4, method="POST", path="backups/", times=1)
        async with client_of(api, timeout=0.1) as client:
            backup = await client.backups.create(SERVER, description="nightly")
            await asyncio.sleep(0.45)
        assert manual_backups(api, "nightly") == [backup.id]


class _SkewedDateServer:
    """A server whose Date header is off from the clock that stamps ``created_at``."""

    def __init__(self, skew: timedelta) -> None:
        self.skew = skew
        self.backups: list[dict[str, Any]] = []

    def _backup(self, body: dict[str, Any]) -> dict[str, Any]:
        stamped = datetime.now(UTC)
        return {
            "id": 900 + len(self.backups),
            "server": {"id": body["server_id"], "name": "web"},
            "backup_type": "manual",
            "status": "in_progress",
            "size_mb": None,
            "created_at": stamped.isoformat().replace("+00:00", "Z"),
            "expires_at": None,
            "description": body.get("description"),
        }

    async def handle(self, request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        date = {"Date": format_datetime(datetime.now(UTC) + self.skew, usegmt=True)}
        if request.method == "POST":
            self.backups.append(self._backup(json.loads(await request.read())))
            if len(self.backups) == 1:
                return api.drop(request)  # made, but the answer is lost
            return json_response(self.backups[-1], status=201, **date)
        results = list(reversed(self.backups))
        return json_response({"count": len(results), "next": None, "results": results}, **date)


@pytest.mark.parametrize("skew_hours", [1, -1], ids=["date-an-hour-ahead", "date-an-hour-behind"])
async def test_a_date_header_an_hour_off_the_stamping_clock_still_finds_the_backup(
    loopback: Any, skew_hours: int
) -> None:
    server = _SkewedDateServer(timedelta(hours=skew_hours))
    api = await loopback(server.handle)
    async with loopback_client(api) as client:
        backup = await client.backups.create(SERVER, description="nightly")
    assert len(server.backups) == 1
    assert backup.id == server.backups[0]["id"]
    assert [seen.method for seen in api.seen] == ["POST", "GET"]


async def test_a_create_against_a_server_that_never_answers_is_bounded_in_requests_and_time(
    loopback: Any,
) -> None:
    async def never(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        return await api.stall()

    api = await loopback(never)
    started = time.monotonic()
    async with loopback_client(api, timeout=0.05, max_retries=2) as client:
        with pytest.raises(APITimeoutError) as caught:
            await client.backups.create(SERVER, description="nightly")
    elapsed = time.monotonic() - started
    # 2 x (max_retries + 1) requests at most, and within the README's time bound:
    # (2 x (max_retries + 1) + 1) x timeout plus backoffs (none here).
    assert len(api.seen) <= 6
    assert elapsed < (2 * 3 + 1) * 0.05 + 0.5
    assert TOKEN not in str(caught.value)
