"""``plan_prune``, ``prune`` and ``coverage`` against the fake API, end to end.

The fake's clock is frozen at a whole second, so its ``Date`` header (the "now" these
calls measure ages by) is exact; backups are seeded with ``api.state.add_backup`` at
chosen ``created_at``s and pinned statuses. What went over the wire is read from the
fake's request log, what is left from its state.
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from asyncbackups import (
    BackupsClient,
    CoverageReport,
    PrunePlan,
    PruneResult,
    ServerError,
)
from asyncbackups.testing import Clock, FakeBackupsAPI

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # a whole second: the Date header says it exactly
DAY = timedelta(days=1)
WEEK = 7 * DAY


@pytest.fixture
async def api() -> AsyncIterator[FakeBackupsAPI]:
    """The fake, its clock frozen at NOW, without the documentation's sample data."""
    async with FakeBackupsAPI(
        sample_data=False, clock=Clock(start=NOW, frozen=True), backup_seconds=0
    ) as fake:
        yield fake


@pytest.fixture
async def client(api: FakeBackupsAPI) -> AsyncIterator[BackupsClient]:
    async with BackupsClient(
        api.token, base_url=api.base_url, retry_backoff=0, max_retry_backoff=0
    ) as backups_client:
        yield backups_client


def seed(
    api: FakeBackupsAPI,
    server_id: int,
    *,
    age: timedelta,
    status: str = "completed",
    backup_type: str = "manual",
) -> int:
    """One backup of ``server_id`` created ``age`` before NOW; its ID."""
    if not api.state.has_server(server_id):
        api.add_server(server_id)
    made = api.state.add_backup(
        server_id,
        status=status,
        backup_type=backup_type,
        created_at=NOW - age,
        description=f"seeded {age.days}d",
    )
    return made.id


def weeks_of_backups(api: FakeBackupsAPI, server_id: int, weeks: int) -> list[int]:
    """A completed manual backup a week for ``weeks`` weeks, oldest first; their IDs."""
    return [seed(api, server_id, age=DAY + week * WEEK) for week in reversed(range(weeks))]


def left(api: FakeBackupsAPI, server_id: int) -> set[int]:
    return {backup.id for backup in api.backups(server_id=server_id)}


def routes(api: FakeBackupsAPI) -> Counter[str]:
    return Counter(f"{method} {path}" for method, path in api.requests.elements())


# -- the safety rules, end to end -------------------------------------------------------------


async def test_weeks_of_backups_keep_last_leaves_exactly_the_newest_per_server(
    api: FakeBackupsAPI, client: BackupsClient
) -> None:
    kept: dict[int, set[int]] = {}
    for server_id in range(1, 21):
        ids = weeks_of_backups(api, server_id, 8)
        kept[server_id] = set(ids[-3:])

    plan = await client.backups.plan_prune(keep_last=3)

    assert len(plan.to_delete) == 20 * 5
    assert plan.per_server == dict.fromkeys(range(1, 21), 5)
    assert plan.kept_per_server == dict.fromkeys(range(1, 21), 3)
    created = [backup.created_at for backup in plan.to_delete]
    assert created == sorted(created)  # oldest first
    assert routes(api) == {"GET backups/": 2}  # 160 backups, 100 a page; nothing deleted
    assert sum(len(left(api, server_id)) for server_id in kept) == 160

    result = await client.backups.prune(plan)

    assert sorted(result.deleted) == sorted(backup.id for backup in plan.to_delete)
    assert result.deleted == [backup.id for backup in plan.to_delete]  # in the plan's order
    assert (result.already_gone, result.failed) == ([], [])
    assert result.ok
    for server_id, newest in kept.items():
        assert left(api, server_id) == newest


async def test_running_the_same_rules_again_plans_and_deletes_nothing(
    api: FakeBackupsAPI, client: BackupsClient
) -> None:
    for server_id in (1, 2):
        weeks_of_backups(api, server_id, 5)
    await client.backups.prune(await client.backups.plan_prune(keep_last=2))
    before = {server_id: left(api, server_id) for server_id in (1, 2)}
    api.journal.reset_counts()

    again = await client.backups.plan_prune(keep_last=2)
    result = await client.backups.prune(again)

    assert again.to_delete == []
    assert result == PruneResult(deleted=[], already_gone=[], failed=[])
    assert routes(api) == {"GET backups/": 1}  # the read; an empty plan sends nothing
    assert {server_id: left(api, server_id) for server_id in (1, 2)} == before


async def test_automatic_and_in_progress_backups_survive_any_rules(
    api: FakeBackupsAPI, client: BackupsClient
) -> None:
    automatic = [seed(api, 1, age=n * DAY, backup_type="automatic") for n in (40, 50, 60)]
    running = seed(api, 1, age=90 * DAY, status="in_progress")
    unknown = seed(api, 1, age=80 * DAY, status="restoring")
    manual = [seed(api, 1, age=n * DAY) for n in (35, 45)]

    plan = await client.backups.plan_prune(keep_last=0, older_than=DAY, keep_none=True)
    await client.backups.prune(plan)

    assert sorted(backup.id for backup in plan.to_delete) == sorted(manual)
    assert left(api, 1) == {*automatic, running, unknown}


async def test_the_newest_completed_manual_backup_survives_older_than(
    api: FakeBackupsAPI, client: BackupsClient
) -> None:
    newest = seed(api, 1, age=40 * DAY)
    older = [seed(api, 1, age=n * DAY) for n in (50, 60)]
    seed(api, 1, age=1 * DAY, backup_type="automatic")  # expires: it is no stand-in
    failed = seed(api, 1, age=35 * DAY, status="failed")  # newer, but failed

    plan = await client.backups.plan_prune(older_than=30 * DAY)
    await client.backups.prune(plan)

    assert [backup.id for backup in plan.to_delete] == [older[1], older[0], failed]
    assert newest in left(api, 1)


async def test_keep_none_lets_the_last_completed_backup_go(
    api: FakeBackupsAPI, client: BackupsClient
) -> None:
    only = seed(api, 1, age=40 * DAY)

    assert (await client.backups.plan_prune(older_than=30 * DAY)).to_delete == []
    plan = await client.backups.plan_prune(older_than=30 * DAY, keep_none=True)
    await client.backups.prune(plan)

    assert only not in left(api, 1)


async def test_with_both_rules_a_backup_goes_only_when_both_allow(
    api: FakeBackupsAPI, client: BackupsClient
) -> None:
    ids = weeks_of_backups(api, 1, 6)  # 1, 8, 15, 22, 29 and 36 days old

    plan = await client.backups.plan_prune(keep_last=2, older_than=20 * DAY)

    # Beyond the newest two: 15, 22, 29, 36 days old; older than 20 days: 22, 29, 36.
    assert [backup.id for backup in plan.to_delete] == ids[:3]


async def test_an_age_exactly_older_than_stays_and_one_second_more_goes(
    api: FakeBackupsAPI, client: BackupsClient
) -> None:
    seed(api, 1, age=DAY)  # the newest completed: protected anyway
    exactly = seed(api, 1, age=30 * DAY)
    beyond = seed(api, 1, age=30 * DAY + timedelta(seconds=1))

    plan = await client.backups.plan_prune(older_than=30 * DAY)

    assert plan.as_of == NOW  # the API's clock, from its Date header
    assert [backup.id for backup in plan.to_delete] == [beyond]
    assert exactly in left(api, 1)


async def test_ages_follow_the_api_clock_when_it_moves(
    api: FakeBackupsAPI, client: BackupsClient
) -> None:
    ids = [seed(api, 1, age=n * DAY) for n in (1, 2, 3)]

    assert (await client.backups.plan_prune(older_than=10 * DAY)).to_delete == []
    api.advance(10 * 86_400)
    plan = await client.backups.plan_prune(older_than=10 * DAY)

    assert [backup.id for backup in plan.to_delete] == [ids[2], ids[1]]


async def test_server_ids_limit_the_plan_to_those_servers(
    api: FakeBackupsAPI, client: BackupsClient
) -> None:
    for server_id in (1, 2, 3):
        weeks_of_backups(api, server_id, 4)

    plan = await client.backups.plan_prune(keep_last=1, server_ids=[3, 1])

    assert {backup.server_id for backup in plan.to_delete} == {1, 3}
    assert list(plan.per_server) == [3, 1]
    assert plan.server_ids == (3, 1)


# -- bad input fails before any request ----------------------------------------------------------


@pytest.mark.parametrize(
    ("rules", "error"),
    [
        ({}, ValueError),
        ({"keep_none": True}, ValueError),
        ({"keep_last": -1}, ValueError),
        ({"keep_last": "3"}, TypeError),
        ({"older_than": timedelta(0)}, ValueError),
        ({"older_than": 30}, TypeError),
        ({"keep_last": 1, "server_ids": [1, 1]}, ValueError),
        ({"keep_last": 1, "server_ids": ["1"]}, TypeError),
        ({"keep_last": 1, "server_ids": "12"}, TypeError),
    ],
)
async def test_bad_rules_fail_before_any_request(
    api: FakeBackupsAPI, client: BackupsClient, rules: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        await client.backups.plan_prune(**rules)

    assert sum(api.requests.values()) == 0


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda c: c.backups.prune("not a plan"), TypeError),
        (lambda c: c.backups.prune(None), TypeError),
        (lambda c: c.backups.coverage([1], within=0), TypeError),
        (lambda c: c.backups.coverage([1], within=-DAY), ValueError),
        (lambda c: c.backups.coverage([1, 1], within=DAY), ValueError),
        (lambda c: c.backups.coverage([0], within=DAY), ValueError),
        (lambda c: c.backups.coverage("1", within=DAY), TypeError),
    ],
)
async def test_bad_prune_and_coverage_input_fails_before_any_request(
    api: FakeBackupsAPI, client: BackupsClient, call: Any, error: type[Exception]
) -> None:
    with pytest.raises(error):
        await call(client)

    assert sum(api.requests.values()) == 0


async def test_a_hand_made_plan_that_repeats_a_backup_is_refused(
    api: FakeBackupsAPI, client: BackupsClient
) -> None:
    seed(api, 1, age=DAY)
    weeks_of_backups(api, 1, 3)
    plan = await client.backups.plan_prune(keep_last=1)
    api.journal.reset_counts()
    doubled = PrunePlan(
        to_delete=[*plan.to_delete, plan.to_delete[0]],
        per_server=plan.per_server,
        kept_per_server=plan.kept_per_server,
        keep_last=1,
        older_than=None,
        keep_none=False,
        server_ids=None,
        as_of=NOW,
    )

    with pytest.raises(ValueError, match="repeats"):
        await client.backups.prune(doubled)
    with pytest.raises(ValueError, match="at least 1"):
        await client.backups.prune(plan, concurrency=0)

    assert sum(api.requests.values()) == 0


async def test_a_closed_client_refuses_before_any_request(api: FakeBackupsAPI) -> None:
    weeks_of_backups(api, 1, 3)
    async with BackupsClient(api.token, base_url=api.base_url) as client:
        plan = await client.backups.plan_prune(keep_last=1)
    api.journal.reset_counts()

    for call in (
        client.backups.prune(plan),
        client.backups.plan_prune(keep_last=1),
        client.backups.coverage([1], within=DAY),
    ):
        with pytest.raises(RuntimeError, match="closed"):
            await call

    assert sum(api.requests.values()) == 0


# -- prune's outcomes ------------------------------------------------------------------------


async def test_a_backup_deleted_behind_the_plans_back_is_already_gone(
    api: FakeBackupsAPI, client: BackupsClient
) -> None:
    ids = weeks_of_backups(api, 1, 5)
    plan = await client.backups.plan_prune(keep_last=1)
    api.state.delete_backup(ids[1])  # someone else got there first

    result = await client.backups.prune(plan)

    assert result.already_gone == [ids[1]]
    assert result.deleted == [ids[0], ids[2], ids[3]]
    assert result.failed == []
    assert left(api, 1) == {ids[4]}


async def test_a_delete_that_keeps_failing_is_reported_and_the_rest_are_deleted(
    api: FakeBackupsAPI, client: BackupsClient
) -> None:
    ids = weeks_of_backups(api, 1, 5)
    plan = await client.backups.plan_prune(keep_last=1)
    api.faults.status_before(500, method="DELETE", path=f"backups/{ids[2]}/")

    result = await client.backups.prune(plan)

    [(failed_id, error)] = result.failed
    assert failed_id == ids[2]
    assert isinstance(error, ServerError)
    assert error.status_code == 500
    assert result.deleted == [ids[0], ids[1], ids[3]]
    assert not result.ok
    assert left(api, 1) == {ids[2], ids[4]}
    with pytest.raises(ExceptionGroup):
        result.raise_for_failures()


async def test_a_plan_from_another_client_prunes_the_same(api: FakeBackupsAPI) -> None:
    ids = weeks_of_backups(api, 1, 4)
    async with BackupsClient(api.token, base_url=api.base_url) as planner:
        plan = await planner.backups.plan_prune(keep_last=2)
    async with BackupsClient(api.token, base_url=api.base_url) as pruner:
        result = await pruner.backups.prune(plan)

    assert result.deleted == ids[:2]
    assert left(api, 1) == set(ids[2:])


async def test_a_prune_cancelled_half_way_is_finished_by_planning_again(
    api: FakeBackupsAPI, client: BackupsClient
) -> None:
    ids = {server_id: weeks_of_backups(api, server_id, 4) for server_id in (1, 2)}
    plan = await client.backups.plan_prune(keep_last=1)
    assert len(plan.to_delete) == 6
    # The fourth delete hangs on the server: the "crash" comes while it is in flight.
    api.faults.delay(60, method="DELETE", skip=3, times=1)

    task = asyncio.create_task(client.backups.prune(plan, concurrency=1))
    for _ in range(4000):
        if sum(r.method == "DELETE" for r in api.request_log) == 3:
            break
        await asyncio.sleep(0.005)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    first_three = {backup.id for backup in plan.to_delete[:3]}
    remaining = {backup.id for backup in plan.to_delete[3:]}
    assert not first_three & (left(api, 1) | left(api, 2))
    assert remaining <= left(api, 1) | left(api, 2)

    again = await client.backups.plan_prune(keep_last=1)
    assert {backup.id for backup in again.to_delete} == remaining
    result = await client.backups.prune(again)

    assert result.failed == []
    assert set(result.deleted) | set(result.already_gone) == remaining
    for server_id in (1, 2):
        assert left(api, server_id) == {ids[server_id][-1]}


async def test_prune_waits_out_a_rate_limit_and_fails_nothing() -> None:
    async with FakeBackupsAPI(sample_data=False, rate_limit=300, burst=5) as api:
        expected = {}
        for server_id in range(1, 16):
            ids = [
                api.state.add_backup(
                    server_id if api.state.has_server(server_id) else api.add_server(server_id).id,
                    status="completed",
                    created_at=NOW - n * DAY,
                ).id
                for n in (4, 3, 2, 1)
            ]
            expected[server_id] = {ids[-1]}
        async with BackupsClient(api.token, base_url=api.base_url, max_retries=0) as client:
            plan = await client.backups.plan_prune(keep_last=1)
            result = await client.backups.prune(plan)

        assert result.failed == []
        assert len(result.deleted) == 45
        for server_id, kept in expected.items():
            assert left(api, server_id) == kept


async def test_prune_deletes_wait_out_429s_without_spending_retries(
    api: FakeBackupsAPI,
) -> None:
    ids = weeks_of_backups(api, 1, 3)
    # With no retries at all, a plain delete would fail on its first 429.
    async with BackupsClient(api.token, base_url=api.base_url, max_retries=0) as client:
        plan = await client.backups.plan_prune(keep_last=1)
        api.faults.status_before(429, retry_after=0.02, times=1, method="DELETE")
        result = await client.backups.prune(plan)
        throttled = client.stats.throttled

    assert result.failed == []
    assert result.deleted == ids[:2]
    assert throttled == 1
    assert left(api, 1) == {ids[2]}


# -- reading cost ------------------------------------------------------------------------------


async def test_plan_and_coverage_of_ten_thousand_servers_cost_list_pages() -> None:
    async with FakeBackupsAPI(
        clock=Clock(start=NOW, frozen=True), page_size=500, backup_seconds=0
    ) as api:
        api.add_fleet(10_000)  # one completed automatic backup each, from this morning
        for server_id in range(1, 10_001, 7):
            for age in (10, 20, 30):
                api.state.add_backup(server_id, status="completed", created_at=NOW - age * DAY)
        servers = [server.id for server in api.servers() if server.id != 12345][:10_000]
        async with BackupsClient(api.token, base_url=api.base_url) as client:
            api.journal.reset_counts()
            report = await client.backups.coverage(servers, within=WEEK)
            coverage_requests = sum(api.requests.values())
            api.journal.reset_counts()
            plan = await client.backups.plan_prune(keep_last=1, server_ids=servers)
            plan_requests = sum(api.requests.values())

        all_pages = math.ceil(api.state.count() / 500)
        manual_pages = math.ceil(api.state.count(backup_type="manual") / 500)
        assert coverage_requests <= all_pages + 1
        assert plan_requests <= manual_pages + 1
        assert report.missing == []
        assert len(report.covered) == 10_000
        assert len(plan.to_delete) == 2 * len(range(1, 10_001, 7))


async def test_a_few_servers_in_a_large_account_are_read_one_list_each(
    api: FakeBackupsAPI, client: BackupsClient
) -> None:
    api.page_size = 10
    for server_id in range(1, 41):
        weeks_of_backups(api, server_id, 3)  # 120 manual backups: 12 pages across

    plan = await client.backups.plan_prune(keep_last=1, server_ids=[7, 9])

    assert sorted(plan.per_server.items()) == [(7, 2), (9, 2)]
    reads = [r.query for r in api.request_log if r.method == "GET"]
    # The first page across tells the count; two lists of their own are cheaper than 11.
    assert len(reads) == 3
    assert sorted(query.get("server_id", "") for query in reads) == ["", "7", "9"]
    assert all(query["backup_type"] == "manual" for query in reads)


async def test_coverage_stops_reading_once_the_list_is_past_the_window(
    api: FakeBackupsAPI, client: BackupsClient
) -> None:
    api.page_size = 10
    for server_id in (1, 2, 3):
        api.add_server(server_id)
    for n in range(200):  # old backups first: the lowest IDs, listed last (newest first)
        api.state.add_backup(1 + n % 3, status="completed", created_at=NOW - (260 - n) * DAY)
    for server_id in (1, 2):
        api.state.add_backup(server_id, status="completed", created_at=NOW - DAY)

    report = await client.backups.coverage([1, 2, 3], within=WEEK)

    assert list(report.covered) == [1, 2]
    assert report.missing == [3]
    assert sum(api.requests.values()) <= 2  # of 21 pages: the second is wholly too old


async def test_coverage_of_every_server_reads_the_whole_list_once(
    api: FakeBackupsAPI, client: BackupsClient
) -> None:
    api.page_size = 3
    seed(api, 1, age=DAY)
    seed(api, 2, age=30 * DAY)
    seed(api, 3, age=DAY, status="failed")
    seed(api, 4, age=DAY, backup_type="automatic")

    report = await client.backups.coverage(None, within=WEEK)

    assert list(report.covered) == [1, 4]
    assert report.missing == [2, 3]
    assert sum(api.requests.values()) == 2  # 4 backups, 3 a page


async def test_coverage_of_no_servers_sends_nothing(
    api: FakeBackupsAPI, client: BackupsClient
) -> None:
    report = await client.backups.coverage([], within=WEEK)

    assert (report.covered, report.missing) == ({}, [])
    assert sum(api.requests.values()) == 0


# -- coverage's window -------------------------------------------------------------------------


async def test_coverage_window_edges(api: FakeBackupsAPI, client: BackupsClient) -> None:
    at_edge = seed(api, 1, age=WEEK)
    seed(api, 2, age=WEEK + timedelta(seconds=1))  # just outside
    just_inside = seed(api, 3, age=WEEK - timedelta(seconds=1))

    report = await client.backups.coverage([1, 2, 3], within=WEEK)

    assert isinstance(report, CoverageReport)
    assert report.as_of == NOW
    assert {server: backup.id for server, backup in report.covered.items()} == {
        1: at_edge,
        3: just_inside,
    }
    assert report.missing == [2]


async def test_failed_and_in_progress_backups_do_not_cover_and_either_type_does(
    api: FakeBackupsAPI, client: BackupsClient
) -> None:
    seed(api, 1, age=DAY, status="failed")
    seed(api, 2, age=DAY, status="in_progress")
    automatic = seed(api, 3, age=DAY, backup_type="automatic")
    manual = seed(api, 4, age=DAY)
    seed(api, 4, age=2 * DAY, backup_type="automatic")

    report = await client.backups.coverage([1, 2, 3, 4, 5], within=WEEK)

    assert {server: backup.id for server, backup in report.covered.items()} == {
        3: automatic,
        4: manual,
    }
    assert report.missing == [1, 2, 5]


async def test_coverage_before_and_after_fresh_backups_of_part_of_the_fleet(
    api: FakeBackupsAPI, client: BackupsClient
) -> None:
    for server_id in range(1, 7):
        seed(api, server_id, age=30 * DAY)

    before = await client.backups.coverage(range(1, 7), within=WEEK)
    result = await client.backups.create_many([2, 4, 6], description="fresh")
    after = await client.backups.coverage(range(1, 7), within=WEEK)

    assert before.missing == [1, 2, 3, 4, 5, 6]
    assert result.ok
    assert after.missing == [1, 3, 5]
    assert list(after.covered) == [2, 4, 6]
