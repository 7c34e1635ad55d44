"""The rate governor over the wire: fleets pace themselves and never fail for a 429.

Against the fake API with its token bucket (``FakeBackupsAPI(rate_limit=...)``) and a
scripted loopback server for header forms. Assertions are on what the server saw and
on outcomes; elapsed time is only ever bounded from below.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest
from aiohttp import web
from conftest import LoopbackAPI, StartLoopback, json_response, loopback_client, until

from asyncbackups import BackupsClient, RateLimitError
from asyncbackups._transport.governor import (
    Governor,
    Lane,
)
from asyncbackups.testing import FakeBackupsAPI

BACKUP = {
    "id": 501,
    "server": {"id": 12345, "name": "web-server-01"},
    "backup_type": "manual",
    "status": "completed",
    "size_mb": 4523,
    "created_at": "2025-01-16T03:00:00Z",
    "expires_at": None,
    "description": "x",
}


def _backups_per_server(api: FakeBackupsAPI, server_ids: list[int]) -> Counter[int]:
    made = Counter(backup.server_id for backup in api.backups(backup_type="manual"))
    return Counter({server_id: made[server_id] for server_id in server_ids})


async def test_a_throttled_fleet_backs_up_every_server_exactly_once() -> None:
    async with FakeBackupsAPI(rate_limit=300, burst=10, backup_seconds=0) as api:
        api.add_fleet(60)
        ids = list(range(1, 61))
        async with BackupsClient(api.token, base_url=api.base_url) as client:
            result = await client.backups.create_many(ids, description="nightly")
            stats = client.stats
        assert result.ok, [repr(outcome.error) for outcome in result.failed]
        assert set(_backups_per_server(api, ids).values()) == {1}
        assert stats.rate_limit is not None  # it learned a limit from the headers
        # Pacing to the stated budget keeps throttling rare.
        assert api.stats()["throttled"] <= 0.25 * sum(api.stats()["requests"].values())


async def test_a_fleet_against_bare_429s_still_succeeds_everywhere() -> None:
    async with FakeBackupsAPI(
        rate_limit=300, burst=5, rate_limit_headers=False, backup_seconds=0
    ) as api:
        api.add_fleet(20)
        ids = list(range(1, 21))
        async with BackupsClient(api.token, base_url=api.base_url, max_retries=1) as client:
            result = await client.backups.create_many(ids, description="nightly")
            stats = client.stats
        assert result.ok, [repr(outcome.error) for outcome in result.failed]
        assert set(_backups_per_server(api, ids).values()) == {1}
        assert stats.throttled == api.stats()["throttled"] > 0
        assert stats.rate_limit is not None  # it adapted to the 429s


async def test_two_clients_sharing_one_limit_both_finish_without_failures() -> None:
    async with FakeBackupsAPI(rate_limit=300, burst=10, backup_seconds=0) as api:
        api.add_fleet(30)
        first, second = list(range(1, 16)), list(range(16, 31))
        async with (
            BackupsClient(api.token, base_url=api.base_url) as one,
            BackupsClient(api.token, base_url=api.base_url) as two,
        ):
            results = await asyncio.gather(
                one.backups.create_many(first, description="shared"),
                two.backups.create_many(second, description="shared"),
            )
        assert all(result.ok for result in results)
        assert set(_backups_per_server(api, first + second).values()) == {1}


async def test_a_wait_whose_polls_are_throttled_does_not_fail() -> None:
    async with FakeBackupsAPI(backup_seconds=0.3) as api:
        async with BackupsClient(api.token, base_url=api.base_url) as client:
            backup = await client.backups.create(12345, description="polled")
            api.faults.status_before(429, retry_after=0.02, times=3, method="GET")
            done = await client.backups.wait_until_completed(
                backup, poll_interval=0.02, max_poll_interval=0.05, timeout=10
            )
        assert done.status == "completed"
        assert client.stats.throttled >= 3


async def test_a_single_call_waits_out_429s_without_spending_its_retries(
    scripted_api: LoopbackAPI,
) -> None:
    for _ in range(4):
        scripted_api.answer("GET", "backups/501/", status=429, headers={"Retry-After": "0.01"})
    scripted_api.answer("GET", "backups/501/", payload=BACKUP)
    async with loopback_client(scripted_api, max_retries=1) as client:
        backup = await client.backups.get(501)
        stats = client.stats
    assert backup.id == 501
    assert scripted_api.routes() == ["GET backups/501/"] * 5
    assert stats.throttled == 4
    assert stats.retries == 4


async def test_a_retry_after_past_the_calls_timeout_fails_at_once_naming_it(
    scripted_api: LoopbackAPI,
) -> None:
    scripted_api.answer("GET", "backups/501/", status=429, headers={"Retry-After": "45"})
    async with loopback_client(scripted_api, timeout=2) as client:
        with pytest.raises(RateLimitError) as caught:
            await client.backups.get(501)
    assert caught.value.retry_after == 45
    assert "45s" in str(caught.value)
    assert "2s timeout" in str(caught.value)
    assert scripted_api.routes() == ["GET backups/501/"]


async def test_a_retry_after_past_max_retry_after_fails_at_once_naming_both(
    scripted_api: LoopbackAPI,
) -> None:
    scripted_api.answer("POST", "backups/", status=429, headers={"Retry-After": "3600"})
    async with loopback_client(scripted_api) as client:
        with pytest.raises(RateLimitError) as caught:
            await client.backups.create(12345)
    assert "3600s" in str(caught.value)
    assert "max_retry_after (120s)" in str(caught.value)
    assert scripted_api.routes() == ["POST backups/"]


async def test_a_429_pauses_every_request_of_the_client_for_its_retry_after(
    scripted_api: LoopbackAPI,
) -> None:
    scripted_api.answer("GET", "backups/501/", status=429, headers={"Retry-After": "0.2"})
    scripted_api.answer("GET", "backups/501/", payload=BACKUP)
    scripted_api.answer("GET", "backups/499/", payload={**BACKUP, "id": 499})
    async with loopback_client(scripted_api) as client:
        first = asyncio.create_task(client.backups.get(501))
        await until(lambda: client.stats.throttled == 1)  # the 429 is in: the pause began
        started = time.monotonic()
        await client.backups.get(499)  # another task: held back by the same pause
        assert time.monotonic() - started >= 0.15
        await first


@pytest.mark.parametrize(
    "headers",
    [
        {"RateLimit-Limit": "10", "RateLimit-Remaining": "0", "RateLimit-Reset": "0.3"},
        {"X-RateLimit-Limit": "10", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "0.3"},
        {"RateLimit": "limit=10, remaining=0, reset=0.3"},
        {"RateLimit": '"default";r=0;t=0.3', "RateLimit-Policy": '"default";q=10;w=0.3'},
    ],
    ids=["ratelimit-triple", "x-ratelimit", "ietf-early", "ietf-structured"],
)
async def test_every_header_form_holds_back_the_next_request(
    scripted_api: LoopbackAPI, headers: dict[str, str]
) -> None:
    scripted_api.answer("GET", "backups/501/", payload=BACKUP, headers=headers)
    async with loopback_client(scripted_api) as client:
        await client.backups.get(501)
        started = time.monotonic()
        await client.backups.get(501)
        waited = time.monotonic() - started
        assert client.stats.rate_limit is not None
    # Nothing left, so the second request waited for the bucket: at 10 per 0.3 s, at
    # least one token's worth (the exact wait depends on the form's arithmetic).
    assert waited >= 0.02


async def test_a_reset_in_the_past_and_absurd_figures_do_not_stall_the_client(
    scripted_api: LoopbackAPI,
) -> None:
    scripted_api.answer(
        "GET",
        "backups/501/",
        payload=BACKUP,
        headers={
            "RateLimit-Limit": "99999999999",
            "RateLimit-Remaining": "-5",
            "RateLimit-Reset": "1000000000",  # 2001: long past
        },
    )
    async with loopback_client(scripted_api) as client:
        for _ in range(20):
            await client.backups.get(501)
    assert len(scripted_api.seen) == 20


async def test_cancelling_a_fleet_waiting_for_the_governor_frees_it_at_once() -> None:
    async with FakeBackupsAPI(rate_limit=2, burst=1, backup_seconds=0) as api:
        api.add_fleet(30)
        async with BackupsClient(api.token, base_url=api.base_url) as client:
            run = asyncio.create_task(
                client.backups.create_many(list(range(1, 31)), description="cancelled")
            )
            await until(lambda: api.stats()["requests"].get("POST backups/", 0) >= 2)
            run.cancel()
            with pytest.raises(asyncio.CancelledError):
                await run
            creates = api.stats()["requests"]["POST backups/"]
            # The client is usable at once: nobody is left queued ahead of this call.
            await client.backups.get(501)
        # No create of the cancelled fleet left after the cancel.
        assert api.stats()["requests"]["POST backups/"] == creates


async def test_stats_report_throttles_and_the_rate_in_force() -> None:
    async with FakeBackupsAPI(rate_limit=500, burst=3, backup_seconds=0) as api:
        async with BackupsClient(api.token, base_url=api.base_url) as client:
            assert client.stats.rate_limit is None  # nothing learned yet
            assert client.stats.throttled == 0
            await asyncio.gather(*(client.backups.get(501) for _ in range(10)))
            stats = client.stats
        assert stats.rate_limit is not None
        assert stats.throttled == api.stats()["throttled"]


async def test_an_explicit_rate_limit_paces_from_the_first_request(
    scripted_api: LoopbackAPI,
) -> None:
    scripted_api.answer("GET", "backups/501/", payload=BACKUP)
    async with loopback_client(scripted_api, rate_limit=20) as client:
        assert client.stats.rate_limit == 20
        started = time.monotonic()
        await asyncio.gather(*(client.backups.get(501) for _ in range(25)))
        # a burst of 20, then five more at 20 a second
        assert time.monotonic() - started >= 0.2


async def test_with_options_rate_limit_paces_only_the_copys_calls(
    scripted_api: LoopbackAPI,
) -> None:
    scripted_api.answer("GET", "backups/501/", payload=BACKUP)
    async with loopback_client(scripted_api) as client:
        slow = client.with_options(rate_limit=10)
        started = time.monotonic()
        await asyncio.gather(*(slow.backups.get(501) for _ in range(4)))
        assert time.monotonic() - started >= 0.25
        assert client.stats.rate_limit is None  # the parent stays unpaced


def test_rate_limit_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASYNCBACKUPS_RATE_LIMIT", "4.5")
    client = BackupsClient("token")
    assert client.stats.rate_limit == 4.5
    assert BackupsClient("token", rate_limit=2).stats.rate_limit == 2


@pytest.mark.parametrize("value", ["fast", "0", "-1", "inf", "nan"])
def test_a_bad_rate_limit_in_the_environment_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("ASYNCBACKUPS_RATE_LIMIT", value)
    with pytest.raises(ValueError, match="ASYNCBACKUPS_RATE_LIMIT"):
        BackupsClient("token")


@pytest.mark.parametrize(
    ("value", "error"),
    [(0, ValueError), (-3, ValueError), (float("inf"), ValueError), ("5", TypeError)],
)
def test_a_bad_rate_limit_argument_is_refused(value: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="rate_limit"):
        BackupsClient("token", rate_limit=value)  # type: ignore[arg-type]
    with pytest.raises(error, match="rate_limit"):
        BackupsClient("token").with_options(rate_limit=value)  # type: ignore[arg-type]


async def test_creates_go_first_and_polls_still_get_their_share_of_a_spent_budget() -> None:
    # The governor's clock stands still until the test moves it: on the real clock a
    # busy machine refilled the budget while the asks were still arriving, and the
    # first creates went through at once, before any poll was waiting.
    now = [0.0]
    governor = Governor(rate_limit=1000, clock=lambda: now[0])
    order: list[str] = []

    async def ask(lane: Lane, name: str) -> None:
        await governor.acquire(lane)
        order.append(name)

    # Spend the burst, so that every turn below waits for the budget.
    for _ in range(1000):
        await governor.acquire(Lane.CALL)
    asks = [asyncio.create_task(ask(Lane.CALL, "create")) for _ in range(40)]
    asks += [asyncio.create_task(ask(Lane.POLL, "poll")) for _ in range(10)]
    await asyncio.sleep(0)
    assert order == []  # every one of them waits
    now[0] += 1.0  # a second's budget: room for all of them
    await asyncio.gather(*asks)
    first_forty = order[:40]
    # Polls take about a quarter of the turns while creates wait, never none of them...
    assert 6 <= first_forty.count("poll") <= 12
    # ...and creates are never starved by them.
    assert order.count("create") == 40


async def test_a_cancelled_turn_in_the_queue_passes_to_the_next() -> None:
    now = [0.0]  # the governor's clock moves only when the test moves it
    governor = Governor(rate_limit=50, clock=lambda: now[0])
    for _ in range(50):
        await governor.acquire(Lane.CALL)
    first = asyncio.create_task(governor.acquire(Lane.CALL))
    second = asyncio.create_task(governor.acquire(Lane.CALL))
    await asyncio.sleep(0)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    now[0] += 1 / 50  # one turn's budget
    await asyncio.wait_for(second, 10.0)  # served in the cancelled turn's place
    assert governor.state.in_flight == 51


async def test_a_fleet_starts_with_two_creates_and_doubles_them_each_round_trip(
    loopback: StartLoopback,
) -> None:
    in_flight, most = 0, []

    async def create(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        nonlocal in_flight
        in_flight += 1
        most.append(in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        server_id = (await request.json())["server_id"]
        return json_response(
            {**BACKUP, "id": 1000 + server_id, "server": {"id": server_id, "name": "s"}},
            status=201,
        )

    api = await loopback(create)
    async with loopback_client(api) as client:
        result = await client.backups.create_many(list(range(1, 41)))
    assert result.ok
    # The first answers may state a limit: no burst of 40 blind creates...
    assert most[:2] == [1, 2]
    assert max(most[:6]) <= 4
    # ...but the whole concurrency soon.
    assert max(most) > 8
