"""Resumed fleet runs: adopt what an earlier run made, make what it did not, read cheaply.

Against the fake API on loopback. A server's existing backups are arranged through the
fake's ``state``; its clock is driven with ``advance()``; what went over the wire is read
from its request counters and log.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from typing import Any

import pytest
from conftest import until

from asyncbackups import BackupOutcome, BackupsClient, BackupStatus

FAST = {"poll_interval": 0.01, "max_poll_interval": 0.02}
POST = ("POST", "backups/")
RUN = "weekly 2026-W48"
# The earlier runs these tests arrange are over, with nothing in flight, and the fake
# honours Idempotency-Key: no settle (test_resume_settle.py is about the settle).
NO_SETTLE: dict[str, Any] = {"settle_timeout": 0}


def _existing(api: Any, server_id: int, description: str | None, status: str | None) -> int:
    """Store a manual backup directly; ``status=None`` runs it on the fake's clock (60 s)."""
    return int(
        api.state.add_backup(
            server_id, backup_type="manual", status=status, description=description
        ).id
    )


def _created_server_ids(api: Any, since: int = 0) -> list[int]:
    """The server of every create the fake received (from log entry ``since``), in order."""
    return [
        record.json()["server_id"]
        for record in api.request_log[since:]
        if record.method == "POST" and record.template == "backups/"
    ]


def _list_reads(api: Any) -> tuple[int, int]:
    """Manual-backup list pages read (across servers, per server), from the fake's log."""
    reads = [
        record.query
        for record in api.request_log
        if record.method == "GET"
        and record.template == "backups/"
        and record.query.get("backup_type") == "manual"
    ]
    per_server = sum("server_id" in query for query in reads)
    return len(reads) - per_server, per_server


def _made_for_run(api: Any, description: str = RUN) -> Counter[int]:
    """Manual backups with ``description`` on the fake, counted by server."""
    return Counter(
        b.server_id for b in api.backups(backup_type="manual") if b.description == description
    )


async def _collect(stream: Any, into: list[BackupOutcome]) -> None:
    async with contextlib.aclosing(stream) as outcomes:
        async for outcome in outcomes:
            into.append(outcome)


# -- each state an earlier run may have left ----------------------------------------------------


async def test_a_completed_backup_of_the_run_is_adopted_at_once_without_a_create(
    fake_api: Any, fake_client: BackupsClient
) -> None:
    fake_api.add_fleet(3)
    kept = _existing(fake_api, 1, RUN, "completed")
    landed: list[BackupOutcome] = []
    consumer = asyncio.create_task(
        _collect(
            fake_client.backups.stream_many(
                [1, 2, 3], description=RUN, resume=True, wait=True, **FAST, **NO_SETTLE
            ),
            landed,
        )
    )

    await until(lambda: len(landed) >= 1)  # before the clock moved: nothing else can end
    first = landed[0]
    assert first.server_id == 1
    assert first.adopted is True
    assert first.ok
    assert first.backup is not None
    assert first.backup.id == kept
    assert first.backup.status is BackupStatus.COMPLETED

    await until(lambda: fake_api.requests[POST] == 2)
    fake_api.advance(61)
    await consumer

    assert sorted(_created_server_ids(fake_api)) == [2, 3]  # no create for server 1
    assert {o.server_id: o.adopted for o in landed} == {1: True, 2: False, 3: False}
    assert all(o.ok for o in landed)
    assert _made_for_run(fake_api) == Counter({1: 1, 2: 1, 3: 1})


async def test_an_in_progress_backup_of_the_run_is_adopted_and_waited_for(
    fake_api: Any, fake_client: BackupsClient
) -> None:
    fake_api.add_fleet(2)
    kept = _existing(fake_api, 1, RUN, None)  # in progress for 60 s of the fake's clock
    landed: list[BackupOutcome] = []
    consumer = asyncio.create_task(
        _collect(
            fake_client.backups.stream_many([1], description=RUN, resume=True, wait=True, **FAST),
            landed,
        )
    )

    await until(lambda: fake_api.requests[("GET", "backups/")] >= 2)  # listed, then polled
    assert landed == []  # still in progress: waited for, not reported
    fake_api.advance(61)
    await consumer

    (outcome,) = landed
    assert outcome.adopted is True
    assert outcome.ok
    assert outcome.backup is not None
    assert outcome.backup.id == kept
    assert outcome.backup.status is BackupStatus.COMPLETED
    assert fake_api.requests[POST] == 0
    assert _made_for_run(fake_api) == Counter({1: 1})


async def test_an_in_progress_backup_of_the_run_is_reported_as_is_without_wait(
    fake_api: Any, fake_client: BackupsClient
) -> None:
    fake_api.add_fleet(2)
    kept = _existing(fake_api, 2, RUN, None)

    result = await fake_client.backups.create_many(
        [1, 2], description=RUN, resume=True, **NO_SETTLE
    )

    fresh, adopted = result.outcomes
    assert (fresh.server_id, fresh.adopted) == (1, False)
    assert (adopted.server_id, adopted.adopted) == (2, True)
    assert adopted.backup is not None
    assert adopted.backup.id == kept
    assert adopted.backup.status is BackupStatus.IN_PROGRESS
    assert result.ok
    assert _created_server_ids(fake_api) == [1]


async def test_a_failed_backup_of_the_run_gets_a_fresh_backup(
    fake_api: Any, fake_client: BackupsClient
) -> None:
    fake_api.add_fleet(1)
    failed = _existing(fake_api, 1, RUN, "failed")

    result = await fake_client.backups.create_many([1], description=RUN, resume=True, **NO_SETTLE)

    (outcome,) = result.outcomes
    assert outcome.adopted is False
    assert outcome.ok
    assert outcome.backup is not None
    assert outcome.backup.id != failed
    assert outcome.backup.description == RUN
    assert _created_server_ids(fake_api) == [1]
    assert _made_for_run(fake_api) == Counter({1: 2})  # the failed one and the fresh one


async def test_a_server_without_a_backup_of_the_run_gets_a_fresh_backup(
    fake_api: Any, fake_client: BackupsClient
) -> None:
    fake_api.add_fleet(2)  # each has an automatic backup only

    result = await fake_client.backups.create_many([1, 2], description=RUN, resume=True)

    assert [o.adopted for o in result.outcomes] == [False, False]
    assert result.ok
    assert sorted(_created_server_ids(fake_api)) == [1, 2]
    assert _made_for_run(fake_api) == Counter({1: 1, 2: 1})


async def test_a_completed_backup_is_preferred_to_an_in_progress_one(
    fake_api: Any, fake_client: BackupsClient
) -> None:
    fake_api.add_fleet(1)
    done = _existing(fake_api, 1, RUN, "completed")
    _existing(fake_api, 1, RUN, None)  # a newer one, still in progress

    result = await fake_client.backups.create_many([1], description=RUN, resume=True, wait=True)

    (outcome,) = result.outcomes
    assert outcome.adopted is True
    assert outcome.backup is not None
    assert outcome.backup.id == done
    assert fake_api.requests[POST] == 0


# -- which descriptions match -----------------------------------------------------------------


@pytest.mark.parametrize("other", ["weekly 2026-W47", "Weekly 2026-W48", "weekly 2026-W48 (2)"])
async def test_a_backup_with_another_description_is_not_adopted(
    fake_api: Any, fake_client: BackupsClient, other: str
) -> None:
    fake_api.add_fleet(1)
    _existing(fake_api, 1, other, "completed")

    result = await fake_client.backups.create_many([1], description=RUN, resume=True)

    (outcome,) = result.outcomes
    assert outcome.adopted is False
    assert outcome.backup is not None
    assert outcome.backup.description == RUN
    assert _created_server_ids(fake_api) == [1]


async def test_an_automatic_backup_with_the_same_description_is_not_adopted(
    fake_api: Any, fake_client: BackupsClient
) -> None:
    fake_api.add_fleet(2)  # each with a completed automatic "Automatic daily backup"

    result = await fake_client.backups.create_many(
        [1, 2], description="Automatic daily backup", resume=True
    )

    assert [o.adopted for o in result.outcomes] == [False, False]
    assert sorted(_created_server_ids(fake_api)) == [1, 2]


@pytest.mark.parametrize(
    ("stored", "asked"),
    [(f"  {RUN}  ", RUN), (RUN, f" {RUN}\n"), (f"\t{RUN}", f"{RUN} ")],
    ids=["stored-padded", "asked-padded", "both-padded"],
)
async def test_descriptions_match_once_whitespace_is_trimmed(
    fake_api: Any, fake_client: BackupsClient, stored: str, asked: str
) -> None:
    fake_api.add_fleet(1)
    kept = _existing(fake_api, 1, stored, "completed")

    result = await fake_client.backups.create_many([1], description=asked, resume=True)

    (outcome,) = result.outcomes
    assert outcome.adopted is True
    assert outcome.backup is not None
    assert outcome.backup.id == kept
    assert fake_api.requests[POST] == 0


@pytest.mark.parametrize("description", [None, "", "   "])
async def test_resume_without_a_description_is_refused_before_any_request(
    fake_api: Any, fake_client: BackupsClient, description: str | None
) -> None:
    fake_api.add_fleet(2)

    with pytest.raises(ValueError, match="description"):
        async for _ in fake_client.backups.stream_many(
            [1, 2], description=description, resume=True
        ):
            pass
    with pytest.raises(ValueError, match="description"):
        await fake_client.backups.create_many([1, 2], description=description, resume=True)

    assert sum(fake_api.requests.values()) == 0


# -- killed halfway, then resumed -------------------------------------------------------------


@pytest.mark.parametrize("honor_keys", [True, False], ids=["keys-honored", "keys-ignored"])
async def test_a_run_killed_halfway_then_resumed_leaves_exactly_one_backup_per_server(
    fake_api: Any, fake_client: BackupsClient, honor_keys: bool
) -> None:
    fake_api.honor_idempotency_keys = honor_keys
    fake_api.add_fleet(100)
    # Three creates land on the API but their answers are lost on the way back.
    fake_api.faults.drop_after(method="POST", times=3)

    taken: list[BackupOutcome] = []
    stream = fake_client.backups.stream_many(range(1, 101), description=RUN, concurrency=8)
    async with contextlib.aclosing(stream) as outcomes:
        async for outcome in outcomes:
            taken.append(outcome)
            if len(taken) == 40:
                break  # the process dies here
    await _quiet(fake_api)

    assert fake_api.faults.injected["drop_after"] == 3
    assert all(o.ok for o in taken)
    left = {
        b.server_id: b.id for b in fake_api.backups(backup_type="manual") if b.description == RUN
    }
    assert {o.server_id for o in taken} <= set(left)  # and some more, whose answers were lost
    assert len(left) < 100
    assert _made_for_run(fake_api) == Counter(dict.fromkeys(left, 1))  # no duplicate so far
    fake_api.reset_stats()
    mark = len(fake_api.request_log)

    # Everything the first run sent has landed (_quiet): a short settle is as good as any.
    result = await fake_client.backups.create_many(
        range(1, 101), description=RUN, resume=True, concurrency=8, settle_timeout=0.01
    )

    assert result.ok
    assert [o.server_id for o in result.outcomes] == list(range(1, 101))
    assert _made_for_run(fake_api) == Counter(dict.fromkeys(range(1, 101), 1))
    adopted = {o.server_id: o.backup.id for o in result.outcomes if o.adopted and o.backup}
    assert adopted == left  # everything the first run made, and only that, was adopted
    assert sorted(_created_server_ids(fake_api, mark)) == sorted(set(range(1, 101)) - set(left))
    assert fake_api.requests[POST] == 100 - len(left)


async def _quiet(api: Any) -> None:
    """Return once the fake has had no new request for a few polls of the loop."""
    total = -1
    while total != sum(api.requests.values()):
        total = sum(api.requests.values())
        await asyncio.sleep(0.05)


# -- what resuming costs in requests ---------------------------------------------------------


async def test_resuming_a_large_fleet_pages_the_manual_list_across_servers(
    fake_api: Any, fake_client: BackupsClient
) -> None:
    fake_api.page_size = 50
    fake_api.add_fleet(100)
    for server_id in range(1, 101):
        _existing(fake_api, server_id, "an older run", "completed")
    for server_id in range(1, 31):
        _existing(fake_api, server_id, RUN, "completed")
    manual = len(fake_api.backups(backup_type="manual"))  # 131, the sample's 499 included
    pages = -(-manual // 50)

    result = await fake_client.backups.create_many(
        range(1, 101), description=RUN, resume=True, **NO_SETTLE
    )

    assert result.ok
    assert [o.adopted for o in result.outcomes] == [True] * 30 + [False] * 70
    across, per_server = _list_reads(fake_api)
    assert per_server == 0  # never one read per server
    assert 1 <= across <= pages
    assert fake_api.requests == Counter({POST: 70, ("GET", "backups/"): across})


async def test_resuming_two_servers_among_many_backups_reads_per_server(
    fake_api: Any, fake_client: BackupsClient
) -> None:
    fake_api.page_size = 10
    fake_api.add_fleet(52)
    kept = _existing(fake_api, 1, RUN, "completed")  # the oldest: on the last page across
    for server_id in range(3, 53):
        for _ in range(10):
            _existing(fake_api, server_id, RUN, "completed")
    assert len(fake_api.backups(backup_type="manual")) == 502  # 51 pages across

    result = await fake_client.backups.create_many(
        [1, 2], description=RUN, resume=True, **NO_SETTLE
    )

    first, second = result.outcomes
    assert (first.adopted, first.backup is not None and first.backup.id == kept) == (True, True)
    assert second.adopted is False
    assert _created_server_ids(fake_api) == [2]
    across, per_server = _list_reads(fake_api)
    assert per_server == 2  # one read each for servers 1 and 2...
    assert across <= 1  # ...not 51 pages across (at most one page to learn the count)
