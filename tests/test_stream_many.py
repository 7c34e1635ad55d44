"""stream_many: lazy input, completion order, one outcome each, clean stops, two phases.

Everything runs against the fake API on loopback; its clock is driven with
``advance()``, and what went over the wire is read from its request counters and log.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from typing import Any

import pytest
from conftest import until

from asyncbackups import (
    BackupFailedError,
    BackupOutcome,
    BackupsClient,
    BackupStatus,
    WaitTimeoutError,
)

FAST = {"poll_interval": 0.01, "max_poll_interval": 0.02}
POST = ("POST", "backups/")


def _creates(api: Any) -> int:
    return int(api.requests[POST])


def _total_requests(api: Any) -> int:
    return sum(api.requests.values())


def _created_server_ids(api: Any) -> list[int]:
    """The server of every create the fake answered (or dropped), in arrival order."""
    return [
        record.json()["server_id"]
        for record in api.request_log
        if record.method == "POST" and record.template == "backups/"
    ]


def _sdk_tasks() -> list[asyncio.Task[Any]]:
    """Tasks still running SDK code (the fake server's own tasks excluded)."""

    def runs_sdk_code(task: asyncio.Task[Any]) -> bool:
        code = getattr(task.get_coro(), "cr_code", None)
        filename = code.co_filename if code is not None else ""
        return "asyncbackups" in filename and "testing" not in filename

    current = asyncio.current_task()
    return [task for task in asyncio.all_tasks() if task is not current and runs_sdk_code(task)]


def _new_tasks(baseline: set[asyncio.Task[Any]]) -> list[asyncio.Task[Any]]:
    """Tasks started since ``baseline`` that are not the fake server's connection handlers."""

    def serves_a_connection(task: asyncio.Task[Any]) -> bool:
        code = getattr(task.get_coro(), "cr_code", None)
        filename = code.co_filename if code is not None else ""
        return "aiohttp" in filename and "web_protocol" in filename

    current = asyncio.current_task()
    return [
        task
        for task in asyncio.all_tasks()
        if task not in baseline and task is not current and not serves_a_connection(task)
    ]


async def _settled(api: Any) -> int:
    """The fake's request total once nothing more arrives for a few polls of the loop."""
    total = -1
    while total != _total_requests(api):
        total = _total_requests(api)
        await asyncio.sleep(0.05)
    return total


async def _rounds(client: BackupsClient, count: int) -> None:
    """Return once the client's poller has run ``count`` more rounds."""
    wanted = client.stats.poll_rounds + count
    await until(lambda: client.stats.poll_rounds >= wanted)


async def _collect(stream: AsyncGenerator[BackupOutcome, None], into: list[BackupOutcome]) -> None:
    """Consume ``stream`` to its end (closing it however that ends), appending to ``into``."""
    async with contextlib.aclosing(stream) as outcomes:
        async for outcome in outcomes:
            into.append(outcome)


class RecordingIds:
    """Server IDs from 1 to ``count``, handed out one at a time; ``taken`` counts them."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.taken = 0

    def __iter__(self) -> Iterator[int]:
        for server_id in range(1, self.count + 1):
            self.taken += 1
            yield server_id


# -- lazy input -------------------------------------------------------------------------


async def test_a_long_generator_is_read_only_as_far_as_the_work_in_flight(
    fake_api: Any, fake_client: BackupsClient
) -> None:
    fake_api.add_fleet(50)
    ids = RecordingIds(100_000)

    stream = fake_client.backups.stream_many(ids, concurrency=2)
    async with contextlib.aclosing(stream) as outcomes:
        first = await anext(outcomes)
        taken_at_first = ids.taken

    assert first.ok
    assert 1 <= taken_at_first <= 8  # two creates in flight, a little read-ahead at most
    await _settled(fake_api)
    assert ids.taken == taken_at_first  # closing stopped the reading too
    assert _creates(fake_api) <= taken_at_first


async def test_an_async_generator_of_ids_is_backed_up_whole(
    fake_api: Any, fake_client: BackupsClient
) -> None:
    fake_api.add_fleet(30)
    read: list[int] = []

    async def server_ids() -> AsyncIterator[int]:
        for server_id in range(1, 31):
            await asyncio.sleep(0)
            read.append(server_id)
            yield server_id

    outcomes = [o async for o in fake_client.backups.stream_many(server_ids(), concurrency=4)]

    assert read == list(range(1, 31))
    assert sorted(o.server_id for o in outcomes) == list(range(1, 31))
    assert all(o.ok and o.backup is not None for o in outcomes)
    assert sorted(_created_server_ids(fake_api)) == list(range(1, 31))
    assert fake_api.requests == Counter({POST: 30})


async def test_every_server_gets_exactly_one_outcome_unknown_ones_included(
    fake_api: Any, fake_client: BackupsClient
) -> None:
    fake_api.add_fleet(40)
    ids = [*range(1, 41), 90_001, 90_002]

    outcomes = [
        o async for o in fake_client.backups.stream_many(ids, description="weekly", concurrency=5)
    ]

    assert Counter(o.server_id for o in outcomes) == Counter(ids)
    assert {o.server_id for o in outcomes if not o.ok} == {90_001, 90_002}
    made = fake_api.backups(backup_type="manual")
    assert sorted(b.server_id for b in made if b.description == "weekly") == list(range(1, 41))
    assert {o.backup.id for o in outcomes if o.backup is not None} == {
        b.id for b in made if b.description == "weekly"
    }
    assert _creates(fake_api) == 42  # one create per server, no retries of a 404


# -- completion order -------------------------------------------------------------------


async def test_outcomes_come_in_completion_order_not_input_order(
    fake_api: Any, fake_client: BackupsClient
) -> None:
    fake_api.add_fleet(6)
    created: list[int] = []
    landed: list[BackupOutcome] = []
    stream = fake_client.backups.stream_many(
        range(1, 7), wait=True, on_created=lambda o: created.append(o.server_id), **FAST
    )
    consumer = asyncio.create_task(_collect(stream, landed))

    await until(lambda: len(created) == 6)
    # The last three servers' backups finish first; the others still run.
    for server_id in (4, 5, 6):
        (made,) = fake_api.backups(server_id=server_id, backup_type="manual")
        fake_api.state.set_status(made.id, "completed")
    await until(lambda: len(landed) == 3)
    await _rounds(fake_client, 3)  # the others must not land yet
    early = list(landed)
    fake_api.advance(61)
    await consumer

    assert sorted(o.server_id for o in early) == [4, 5, 6]
    assert sorted(o.server_id for o in landed[3:]) == [1, 2, 3]
    assert all(o.ok and o.backup is not None for o in landed)
    assert all(o.backup.status is BackupStatus.COMPLETED for o in landed if o.backup)


async def test_a_create_answered_late_is_yielded_last(
    fake_api: Any, fake_client: BackupsClient
) -> None:
    fake_api.add_fleet(5)
    # The second create to arrive: the first goes alone, to learn any rate limit.
    fake_api.faults.delay(0.3, method="POST", times=1, skip=1)

    outcomes = [o async for o in fake_client.backups.stream_many([1, 2, 3, 4, 5])]

    (delayed,) = [r for r in fake_api.request_log if r.fault == "delay"]
    assert outcomes[-1].server_id == delayed.json()["server_id"]
    assert sorted(o.server_id for o in outcomes) == [1, 2, 3, 4, 5]
    assert _creates(fake_api) == 5


# -- stopping -----------------------------------------------------------------------------


async def test_breaking_out_after_some_outcomes_stops_all_work(
    fake_api: Any, fake_client: BackupsClient
) -> None:
    fake_api.add_fleet(100)
    baseline = set(asyncio.all_tasks())
    ids = RecordingIds(100)
    taken: list[BackupOutcome] = []

    stream = fake_client.backups.stream_many(ids, concurrency=4)
    async with contextlib.aclosing(stream) as outcomes:
        async for outcome in outcomes:
            taken.append(outcome)
            if len(taken) == 5:
                break
    launched = ids.taken
    at_break = _creates(fake_api)
    total = await _settled(fake_api)

    assert len(taken) == 5
    assert all(o.ok for o in taken)
    assert _total_requests(fake_api) == total == _creates(fake_api)
    assert _creates(fake_api) <= launched <= 30  # what was taken, queued and in flight
    assert at_break <= _creates(fake_api) <= at_break + 4  # at most those already sent
    assert ids.taken == launched  # the input is not read further either
    await until(lambda: not _sdk_tasks())
    assert _new_tasks(baseline) == []


async def test_breaking_out_while_backups_are_waited_for_stops_the_polling(
    fake_api: Any, fake_client: BackupsClient
) -> None:
    fake_api.add_fleet(100)
    baseline = set(asyncio.all_tasks())
    created: list[int] = []

    def on_created(outcome: BackupOutcome) -> None:
        created.append(outcome.server_id)
        if len(created) == 10:
            fake_api.advance(61)  # the first ten finish; later ones stay in progress

    taken: list[BackupOutcome] = []
    stream = fake_client.backups.stream_many(
        range(1, 101), concurrency=4, wait=True, on_created=on_created, **FAST
    )
    async with contextlib.aclosing(stream) as outcomes:
        async for outcome in outcomes:
            taken.append(outcome)
            if len(taken) == 3:
                break
    total = await _settled(fake_api)
    # No SDK task is left, the poller included: nothing can send another request.
    await until(lambda: not _sdk_tasks())

    assert len(taken) == 3
    assert all(o.ok and o.backup is not None for o in taken)
    assert all(o.backup.status is BackupStatus.COMPLETED for o in taken if o.backup)
    assert _total_requests(fake_api) == total
    assert _new_tasks(baseline) == []


async def test_cancelling_the_consuming_task_stops_all_work(
    fake_api: Any, fake_client: BackupsClient
) -> None:
    fake_api.add_fleet(1000)
    baseline = set(asyncio.all_tasks())
    ids = RecordingIds(1000)
    heard: list[BackupOutcome] = []

    async def consume() -> None:
        async for outcome in fake_client.backups.stream_many(ids, concurrency=4, wait=True, **FAST):
            heard.append(outcome)

    consumer = asyncio.create_task(consume())
    await until(lambda: _creates(fake_api) >= 12)
    fake_api.advance(61)
    await until(lambda: len(heard) >= 3)
    consumer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await consumer

    total = await _settled(fake_api)
    await until(lambda: not _sdk_tasks())  # the poller too: nothing more can be sent

    assert _total_requests(fake_api) == total
    assert _creates(fake_api) <= ids.taken < 1000
    assert _new_tasks(baseline) == []
    # The client is still usable afterwards.
    assert (await fake_client.backups.get(501)).id == 501


# -- bad input mid-stream -----------------------------------------------------------------


@pytest.mark.parametrize("bad", ["4", 4.0, True, None])
async def test_a_bad_id_mid_stream_raises_type_error_and_nothing_after_it_is_sent(
    fake_api: Any, fake_client: BackupsClient, bad: object
) -> None:
    fake_api.add_fleet(10)

    with pytest.raises(TypeError):
        async for _ in fake_client.backups.stream_many(
            [1, 2, 3, bad, 5, 6],  # type: ignore[list-item]
            concurrency=1,
        ):
            pass

    await _settled(fake_api)
    assert set(_created_server_ids(fake_api)) <= {1, 2, 3}
    assert 5 not in _created_server_ids(fake_api)


@pytest.mark.parametrize("bad", [0, -3])
async def test_a_non_positive_id_mid_stream_raises_value_error_once_reached(
    fake_api: Any, fake_client: BackupsClient, bad: int
) -> None:
    fake_api.add_fleet(5)

    with pytest.raises(ValueError, match="positive"):
        async for _ in fake_client.backups.stream_many([1, 2, bad, 4], concurrency=1):
            pass

    await _settled(fake_api)
    assert set(_created_server_ids(fake_api)) <= {1, 2}


async def test_a_repeated_id_raises_value_error_once_reached_and_is_not_sent_twice(
    fake_api: Any, fake_client: BackupsClient
) -> None:
    fake_api.add_fleet(5)

    with pytest.raises(ValueError, match="repeats"):
        async for _ in fake_client.backups.stream_many([1, 2, 3, 2, 4], concurrency=1):
            pass

    await _settled(fake_api)
    sent = _created_server_ids(fake_api)
    assert Counter(sent)[2] == 1
    assert set(sent) <= {1, 2, 3}


@pytest.mark.parametrize(
    ("bad", "error"),
    [("x", TypeError), (0, ValueError), (2, ValueError)],
    ids=["not-an-int", "not-positive", "repeated"],
)
async def test_every_server_before_a_bad_id_gets_its_outcome_before_the_error(
    fake_api: Any, fake_client: BackupsClient, bad: object, error: type[Exception]
) -> None:
    fake_api.add_fleet(5)
    ids: list[Any] = [1, 2, 3, bad, 4]
    yielded: list[BackupOutcome] = []

    stream = fake_client.backups.stream_many(ids, concurrency=1)
    with pytest.raises(error):
        await _collect(stream, yielded)

    await _settled(fake_api)
    assert sorted(o.server_id for o in yielded) == [1, 2, 3]
    assert sorted(_created_server_ids(fake_api)) == [1, 2, 3]


async def test_a_bad_id_never_leaves_a_backup_that_was_made_unreported(
    fake_api: Any, fake_client: BackupsClient
) -> None:
    fake_api.add_fleet(5)
    fake_api.faults.delay(0.2, method="POST")  # the fake answers the creates slowly

    async def server_ids() -> AsyncIterator[object]:
        yield 1
        yield 2
        await until(lambda: fake_api.faults.injected["delay"] == 2)  # both creates arrived
        yield "x"

    yielded: list[BackupOutcome] = []
    stream = fake_client.backups.stream_many(server_ids(), concurrency=4)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await _collect(stream, yielded)

    await until(lambda: _creates(fake_api) == 2)  # the fake answers them, to nobody
    made = sorted(b.server_id for b in fake_api.backups(backup_type="manual") if b.server_id <= 5)
    assert made == [1, 2]  # both creates were carried out by the API
    assert sorted(o.server_id for o in yielded) == made  # so the caller must hear of both


# -- waiting --------------------------------------------------------------------------------


async def test_with_wait_a_failing_server_gets_backup_failed_and_the_others_complete(
    fake_api: Any, fake_client: BackupsClient
) -> None:
    fake_api.add_fleet(5)
    fake_api.set_failing(3)
    advancing = asyncio.create_task(_advance_once_created(fake_api, 5))

    landed = {
        o.server_id: o
        async for o in fake_client.backups.stream_many(range(1, 6), wait=True, **FAST)
    }
    await advancing

    assert sorted(landed) == [1, 2, 3, 4, 5]
    failed = landed.pop(3)
    assert isinstance(failed.error, BackupFailedError)
    assert failed.backup is not None
    assert failed.backup.status is BackupStatus.FAILED
    assert failed.error.backup == failed.backup
    assert not failed.ok
    assert all(o.ok and o.error is None for o in landed.values())
    assert all(o.backup.status is BackupStatus.COMPLETED for o in landed.values() if o.backup)
    assert _creates(fake_api) == 5  # a failed backup is reported, never retried


async def test_wait_timeout_gives_wait_timeout_error_with_the_last_backup_seen(
    fake_api: Any, fake_client: BackupsClient
) -> None:
    fake_api.add_fleet(3)

    outcomes = [
        o
        async for o in fake_client.backups.stream_many(
            [1, 2, 3], wait=True, wait_timeout=0.15, **FAST
        )
    ]  # the fake's clock never moves: the backups never finish

    assert sorted(o.server_id for o in outcomes) == [1, 2, 3]
    for outcome in outcomes:
        assert isinstance(outcome.error, WaitTimeoutError)
        assert not outcome.ok
        (made,) = fake_api.backups(server_id=outcome.server_id, backup_type="manual")
        assert outcome.backup is not None
        assert outcome.backup.id == made.id
        assert outcome.backup.status is BackupStatus.IN_PROGRESS
        assert outcome.error.backup == outcome.backup
    assert _creates(fake_api) == 3
    assert fake_api.requests[("GET", "backups/")] >= 1  # it did poll before giving up


async def test_on_created_hears_every_server_before_any_backup_finishes(
    fake_api: Any, fake_client: BackupsClient
) -> None:
    fake_api.add_fleet(12)
    created: list[BackupOutcome] = []
    finished: list[BackupOutcome] = []
    stream = fake_client.backups.stream_many(
        range(1, 13), wait=True, concurrency=3, on_created=created.append, **FAST
    )

    async def consume() -> None:
        async with contextlib.aclosing(stream) as outcomes:
            async for outcome in outcomes:
                finished.append(outcome)

    consumer = asyncio.create_task(consume())
    await until(lambda: len(created) == 12)
    await _rounds(fake_client, 3)  # nothing finishes while the fake's clock stands

    assert finished == []
    assert sorted(o.server_id for o in created) == list(range(1, 13))
    assert all(o.backup is not None for o in created)
    assert all(o.backup.status is BackupStatus.IN_PROGRESS for o in created if o.backup)
    assert all(o.error is None and not o.adopted for o in created)

    fake_api.advance(61)
    await consumer

    assert sorted(o.server_id for o in finished) == list(range(1, 13))
    assert all(o.ok for o in finished)
    first_heard = {o.server_id: o.backup.id for o in created if o.backup}
    assert {o.server_id: o.backup.id for o in finished if o.backup} == first_heard


async def test_an_async_on_created_is_awaited_and_what_it_raises_stops_the_run(
    fake_api: Any, fake_client: BackupsClient
) -> None:
    fake_api.add_fleet(60)

    async def on_created(outcome: BackupOutcome) -> None:
        await asyncio.sleep(0)
        if outcome.server_id == 3:
            raise RuntimeError("notifier down")

    with pytest.raises(RuntimeError, match="notifier down"):
        async for _ in fake_client.backups.stream_many(
            range(1, 61), concurrency=2, on_created=on_created
        ):
            pass

    await _settled(fake_api)
    assert _creates(fake_api) < 60


# -- create_many is a layer over it ------------------------------------------------------------


async def test_create_many_keeps_input_order_when_completion_order_differs(
    fake_api: Any, fake_client: BackupsClient
) -> None:
    fake_api.add_fleet(5)
    fake_api.faults.delay(0.3, method="POST", times=1, skip=1)  # not the first, sent alone
    landed: list[int] = []

    result = await fake_client.backups.create_many(
        [5, 3, 1, 4, 2], on_progress=lambda o: landed.append(o.server_id)
    )

    (delayed,) = [r for r in fake_api.request_log if r.fault == "delay"]
    assert landed[-1] == delayed.json()["server_id"]  # it landed last...
    assert [o.server_id for o in result.outcomes] == [5, 3, 1, 4, 2]  # ...but keeps its place
    assert result.ok


async def test_create_many_sends_the_same_requests_as_stream_many(
    fake_api: Any, fake_client: BackupsClient
) -> None:
    fake_api.add_fleet(40)
    advancing = asyncio.create_task(_advance_once_created(fake_api, 20))
    streamed = [
        o
        async for o in fake_client.backups.stream_many(
            range(1, 21), wait=True, concurrency=5, **FAST
        )
    ]
    await advancing
    by_stream = fake_api.reset_stats()["requests"]

    advancing = asyncio.create_task(_advance_once_created(fake_api, 20))
    result = await fake_client.backups.create_many(range(21, 41), wait=True, concurrency=5, **FAST)
    await advancing
    by_create_many = fake_api.stats()["requests"]

    assert len(streamed) == 20
    assert all(o.ok for o in streamed)
    assert result.ok
    assert [o.server_id for o in result.outcomes] == list(range(21, 41))
    assert by_stream["POST backups/"] == by_create_many["POST backups/"] == 20
    assert set(by_stream) == set(by_create_many) == {"POST backups/", "GET backups/"}
    # The same polling too, give or take a round.
    assert abs(by_stream["GET backups/"] - by_create_many["GET backups/"]) <= 3


async def _advance_once_created(api: Any, count: int) -> None:
    await until(lambda: _creates(api) >= count)
    api.advance(61)


# -- request economy ------------------------------------------------------------------------


async def test_waiting_on_a_200_server_fleet_costs_few_requests_per_server(
    fake_api: Any, fake_client: BackupsClient
) -> None:
    fake_api.add_fleet(200)

    async def finish_after_some_rounds() -> None:
        await until(lambda: _creates(fake_api) == 200)
        await _rounds(fake_client, 4)  # polled while every backup is in progress
        fake_api.advance(61)

    advancing = asyncio.create_task(finish_after_some_rounds())
    landed = [
        o
        async for o in fake_client.backups.stream_many(
            range(1, 201), wait=True, poll_interval=0.01, max_poll_interval=0.05
        )
    ]
    await advancing

    assert sorted(o.server_id for o in landed) == list(range(1, 201))
    assert all(o.ok for o in landed)
    requests = fake_api.requests
    assert requests[POST] == 200
    # Rounds read across servers, and a round with only a few waits due reads those
    # few on their own. How often that happens depends on when each wait began, which
    # a loaded machine spreads out: 200 creates and about 17 list pages (1.09 requests
    # a server) on a quiet machine; 70 detail reads and 11 pages (1.41) once under two
    # CPU burners. Polling each server every round would cost 5 or more a server here.
    assert _total_requests(fake_api) <= 1.5 * 200, requests
