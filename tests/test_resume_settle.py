"""A resumed run against creates an earlier attempt still had on the wire.

Against the fake API on loopback. An earlier attempt "dies" by being cancelled once its
creates were sent (a trace config on its client counts them leaving); the fake delays
those creates, so they land after the resumed run has started, as the creates of a
SIGKILLed process would. The settle waits are a fraction of a second, passed as
``settle_timeout`` (or as the client's ``timeout``); nothing here measures elapsed time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from conftest import until

from asyncbackups import BackupOutcome, BackupsClient
from asyncbackups._core.resume import run_idempotency_key

POST = ("POST", "backups/")
RUN = "weekly 2026-W48"
SETTLE_MESSAGE = "for an earlier attempt's requests to land"


def _existing(api: Any, server_id: int, status: str | None, **fields: Any) -> int:
    fields.setdefault("description", RUN)
    return int(api.state.add_backup(server_id, backup_type="manual", status=status, **fields).id)


def _made_for_run(api: Any) -> Counter[int]:
    return Counter(b.server_id for b in api.backups(backup_type="manual") if b.description == RUN)


def _keys_sent(api: Any, since: int = 0) -> dict[int, str | None]:
    """Each create's ``Idempotency-Key`` by server, from log entry ``since`` on."""
    return {
        record.json()["server_id"]: record.idempotency_key
        for record in api.request_log[since:]
        if record.method == "POST" and record.template == "backups/"
    }


def _list_reads(api: Any, since: int = 0) -> int:
    return sum(
        1
        for record in api.request_log[since:]
        if record.method == "GET" and record.template == "backups/"
    )


class _Settles:
    """An ``on_settle`` hook that keeps what it heard."""

    def __init__(self) -> None:
        self.heard: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.heard.append(seconds)


@contextlib.asynccontextmanager
async def _client(api: Any, **options: Any) -> AsyncIterator[BackupsClient]:
    async with BackupsClient(
        api.token, base_url=api.base_url, retry_backoff=0, max_retry_backoff=0, **options
    ) as client:
        yield client


async def _all_landed(api: Any) -> None:
    """Return once every request the fake delayed has been answered (or dropped)."""

    def landed() -> bool:
        delayed = sum(record.fault == "delay" for record in api.request_log)
        return delayed == api.faults.injected["delay"]

    await until(landed)


class _CreatesOnTheWire:
    """A trace config for a client: counts the creates sent whole and those answered."""

    def __init__(self) -> None:
        self.sent = 0
        self.answered = 0
        self.config = aiohttp.TraceConfig()
        self.config.on_request_chunk_sent.append(self._sent)
        self.config.on_request_end.append(self._answered)

    async def _sent(self, session: Any, context: Any, params: Any) -> None:
        self.sent += params.method == "POST"

    async def _answered(self, session: Any, context: Any, params: Any) -> None:
        self.answered += params.method == "POST"

    @property
    def count(self) -> int:
        return self.sent - self.answered


async def _killed_with_creates_on_the_wire(
    client: BackupsClient, wire: _CreatesOnTheWire, server_ids: list[int], *, landed: int = 0
) -> list[BackupOutcome]:
    """Run a resumable fleet, and cancel it (as a SIGKILL would stop it) once ``landed``
    outcomes came back and a create is on the wire; the outcomes it saw.

    The client may hold creates back (its rate governor starts slow): those never leave.
    """
    taken: list[BackupOutcome] = []

    async def run() -> None:
        stream = client.backups.stream_many(server_ids, description=RUN, resume=True)
        async with contextlib.aclosing(stream) as outcomes:
            async for outcome in outcomes:
                taken.append(outcome)

    task = asyncio.create_task(run())
    await until(lambda: len(taken) >= landed and wire.count >= 1)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return taken


def _creates_by_server(api: Any, since: int = 0) -> dict[int, list[Any]]:
    """Every create the fake carried out (or replayed) from log entry ``since``, by server."""
    creates: dict[int, list[Any]] = {}
    for record in api.request_log[since:]:
        if record.method == "POST" and record.template == "backups/":
            creates.setdefault(record.json()["server_id"], []).append(record)
    return creates


# -- the run's keys ----------------------------------------------------------------------


async def test_each_create_of_a_resumed_run_carries_the_runs_key_for_its_server(
    fake_api: Any, fake_client: BackupsClient
) -> None:
    fake_api.add_fleet(3)

    result = await fake_client.backups.create_many([1, 2, 3], description=RUN, resume=True)

    assert result.ok
    assert _keys_sent(fake_api) == {s: run_idempotency_key(RUN, s, 0) for s in (1, 2, 3)}


async def test_a_server_whose_backups_of_the_run_failed_gets_the_next_generations_key(
    fake_api: Any, fake_client: BackupsClient
) -> None:
    fake_api.add_fleet(2)
    _existing(fake_api, 1, "failed")
    _existing(fake_api, 2, "failed")
    _existing(fake_api, 2, "failed")

    result = await fake_client.backups.create_many(
        [1, 2], description=RUN, resume=True, settle_timeout=0
    )

    assert result.ok
    assert [o.adopted for o in result.outcomes] == [False, False]
    assert _keys_sent(fake_api) == {
        1: run_idempotency_key(RUN, 1, 1),
        2: run_idempotency_key(RUN, 2, 2),
    }


async def test_plain_creates_and_runs_without_resume_keep_a_fresh_key_per_call(
    fake_api: Any, fake_client: BackupsClient
) -> None:
    fake_api.add_fleet(2)

    await fake_client.backups.create(1, description=RUN)
    await fake_client.backups.create(1, description=RUN)
    await fake_client.backups.create_many([2], description=RUN)
    await fake_client.backups.create(2, description=RUN, idempotency_key="mine-1")

    keys = [r.idempotency_key for r in fake_api.request_log if r.method == "POST"]
    assert len(set(keys)) == 4
    assert keys[-1] == "mine-1"  # an explicit key still wins
    for key in keys[:3]:
        assert key is not None
        assert uuid.UUID(key).version == 4


@pytest.mark.parametrize("honour_keys", [True, False], ids=["keys-honoured", "keys-ignored"])
async def test_a_run_key_reused_by_a_create_in_doubt_still_makes_one_backup(
    fake_api: Any, fake_client: BackupsClient, honour_keys: bool
) -> None:
    fake_api.honor_idempotency_keys = honour_keys
    fake_api.add_fleet(6)
    # Three creates are carried out, but their answers are lost: each is reconciled.
    fake_api.faults.drop_after(method="POST", times=3)

    result = await fake_client.backups.create_many(range(1, 7), description=RUN, resume=True)

    assert result.ok
    assert fake_api.faults.injected["drop_after"] == 3
    assert _made_for_run(fake_api) == Counter(dict.fromkeys(range(1, 7), 1))
    assert _keys_sent(fake_api) == {s: run_idempotency_key(RUN, s, 0) for s in range(1, 7)}


# -- killed with creates on the wire, then resumed ----------------------------------------


async def test_a_rerun_on_an_api_honouring_keys_makes_one_backup_per_server_and_never_waits(
    fake_api: Any, caplog: pytest.LogCaptureFixture
) -> None:
    fake_api.add_fleet(10)
    server_ids = list(range(1, 11))
    slow = fake_api.faults.delay(0.3, method="POST")  # the first attempt's creates only
    settles = _Settles()
    wire = _CreatesOnTheWire()

    async with _client(fake_api, trace_configs=[wire.config]) as first:
        killed = await _killed_with_creates_on_the_wire(first, wire, server_ids)
    fake_api.faults.remove(slow)  # creates already on the wire keep their delay
    assert killed == []  # nothing had landed
    mark = len(fake_api.request_log)
    async with _client(fake_api) as again:
        result = await again.backups.create_many(
            server_ids, description=RUN, resume=True, settle_timeout=0, on_settle=settles
        )
    await _all_landed(fake_api)

    assert result.ok
    assert settles.heard == []
    assert SETTLE_MESSAGE not in caplog.text
    assert _made_for_run(fake_api) == Counter(dict.fromkeys(server_ids, 1))
    # A server whose create was on the wire got a second one from the rerun, with the
    # same key: whichever came second was answered as a replay.
    twice = {s: posts for s, posts in _creates_by_server(fake_api).items() if len(posts) == 2}
    assert twice  # the late creates landed after the rerun had read the list
    for server_id, posts in twice.items():
        assert [p.idempotency_key for p in posts] == [run_idempotency_key(RUN, server_id)] * 2
        assert sorted(p.replayed for p in posts) == [False, True]
    assert all(len(posts) <= 2 for posts in _creates_by_server(fake_api).values())
    assert {r.fault for r in fake_api.request_log[mark:] if r.method == "POST"} == {
        "delay",
        None,
    }


@pytest.mark.parametrize("same_client", [True, False], ids=["same-client", "new-client"])
async def test_a_rerun_on_an_api_ignoring_keys_settles_then_makes_one_backup_per_server(
    fake_api: Any, caplog: pytest.LogCaptureFixture, same_client: bool
) -> None:
    caplog.set_level(logging.WARNING, logger="asyncbackups")
    fake_api.honor_idempotency_keys = False
    fake_api.add_fleet(20)
    server_ids = list(range(1, 21))
    # On its own client, the rerun knows of the first attempt only from what the API
    # holds: five of the first attempt's creates are answered at once. On the same client,
    # none has landed: the rerun knows from the client that creates may be on the wire.
    slow = fake_api.faults.delay(0.3, method="POST", skip=0 if same_client else 5)
    settles = _Settles()
    wire = _CreatesOnTheWire()

    async with _client(fake_api, trace_configs=[wire.config]) as first:
        killed = await _killed_with_creates_on_the_wire(
            first, wire, server_ids, landed=0 if same_client else 5
        )
        fake_api.faults.remove(slow)  # creates already on the wire keep their delay
        assert len(killed) == (0 if same_client else 5)
        mark = len(fake_api.request_log)
        async with contextlib.AsyncExitStack() as stack:
            client = first if same_client else await stack.enter_async_context(_client(fake_api))
            result = await client.backups.create_many(
                server_ids, description=RUN, resume=True, settle_timeout=0.6, on_settle=settles
            )
    await _all_landed(fake_api)

    assert result.ok
    assert settles.heard == [0.6]
    assert f"waiting 0.6 s {SETTLE_MESSAGE}" in caplog.text
    assert _made_for_run(fake_api) == Counter(dict.fromkeys(server_ids, 1))
    assert all(len(posts) == 1 for posts in _creates_by_server(fake_api).values())
    # Some of the first attempt's creates landed after the rerun first read the list:
    # without the settle, those servers would have been backed up twice.
    log = fake_api.request_log[mark:]
    first_read = next(i for i, r in enumerate(log) if r.method == "GET")
    late = {r.json()["server_id"] for r in log[first_read:] if r.method == "POST" and r.fault}
    assert late
    adopted = {o.server_id for o in result.outcomes if o.adopted}
    assert late | {o.server_id for o in killed} <= adopted


# -- when a resumed run waits, and when not ------------------------------------------------


async def test_a_first_run_with_resume_reads_once_and_never_waits(
    fake_api: Any, fake_client: BackupsClient, caplog: pytest.LogCaptureFixture
) -> None:
    fake_api.add_fleet(3)
    _existing(fake_api, 1, "completed", description="weekly 2026-W47")  # last week's run
    settles = _Settles()

    result = await fake_client.backups.create_many(
        [1, 2, 3], description=RUN, resume=True, settle_timeout=60, on_settle=settles
    )

    assert result.ok
    assert settles.heard == []
    assert SETTLE_MESSAGE not in caplog.text
    assert _list_reads(fake_api) == 1


async def test_a_run_with_nothing_left_to_create_never_waits(
    fake_api: Any, fake_client: BackupsClient
) -> None:
    fake_api.add_fleet(2)
    _existing(fake_api, 1, "completed")
    _existing(fake_api, 2, None)
    settles = _Settles()

    result = await fake_client.backups.create_many(
        [1, 2], description=RUN, resume=True, settle_timeout=60, on_settle=settles
    )

    assert [o.adopted for o in result.outcomes] == [True, True]
    assert settles.heard == []


async def test_another_shards_backups_of_the_run_do_not_make_a_first_attempt_wait(
    fake_api: Any, fake_client: BackupsClient
) -> None:
    fake_api.add_fleet(4)
    _existing(fake_api, 1, "completed")  # made by the shard of servers 1 and 2
    settles = _Settles()

    result = await fake_client.backups.create_many(
        [3, 4], description=RUN, resume=True, settle_timeout=60, on_settle=settles
    )

    assert result.ok
    assert settles.heard == []


async def test_the_settle_defaults_to_the_clients_per_request_timeout(fake_api: Any) -> None:
    fake_api.add_fleet(2)
    kept = _existing(fake_api, 1, "completed")
    settles = _Settles()

    async with _client(fake_api, timeout=0.2) as client:
        result = await client.backups.create_many(
            [1, 2], description=RUN, resume=True, on_settle=settles
        )

    assert settles.heard == [0.2]
    assert [(o.adopted, o.backup and o.backup.id == kept) for o in result.outcomes] == [
        (True, True),
        (False, False),
    ]
    assert _list_reads(fake_api) == 2  # read, settle, read again
    assert fake_api.requests[POST] == 1


async def test_a_caller_that_knows_of_an_earlier_attempt_makes_the_run_wait(
    fake_api: Any, fake_client: BackupsClient
) -> None:
    fake_api.add_fleet(2)
    settles = _Settles()

    async def heard(seconds: float) -> None:  # async hooks are awaited
        settles(seconds)

    result = await fake_client.backups.create_many(
        [1, 2],
        description=RUN,
        resume=True,
        earlier_attempt=True,
        settle_timeout=0.01,
        on_settle=heard,
    )

    assert result.ok
    assert settles.heard == [0.01]
    assert _list_reads(fake_api) == 2


async def test_settle_timeout_zero_skips_the_wait(
    fake_api: Any, fake_client: BackupsClient
) -> None:
    fake_api.add_fleet(2)
    _existing(fake_api, 1, "completed")
    settles = _Settles()

    await fake_client.backups.create_many(
        [1, 2],
        description=RUN,
        resume=True,
        earlier_attempt=True,
        settle_timeout=0,
        on_settle=settles,
    )

    assert settles.heard == []
    assert _list_reads(fake_api) == 1


async def test_what_on_settle_raises_stops_the_run_before_any_create(
    fake_api: Any, fake_client: BackupsClient
) -> None:
    fake_api.add_fleet(2)
    _existing(fake_api, 1, "completed")

    def refuse(seconds: float) -> None:
        raise RuntimeError(f"not waiting {seconds} s")

    with pytest.raises(RuntimeError, match=r"not waiting 0\.01 s"):
        await fake_client.backups.create_many(
            [1, 2], description=RUN, resume=True, settle_timeout=0.01, on_settle=refuse
        )
    assert fake_api.requests[POST] == 0


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"since": "2026-11-23"}, TypeError),
        ({"since": datetime(2026, 11, 23)}, ValueError),  # naive, on purpose
        ({"settle_timeout": -1}, ValueError),
        ({"settle_timeout": "30"}, TypeError),
        ({"earlier_attempt": 1}, TypeError),
        ({"on_settle": "print"}, TypeError),
    ],
)
async def test_bad_resume_options_are_refused_before_any_request(
    fake_api: Any, fake_client: BackupsClient, options: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        fake_client.backups.stream_many([1], description=RUN, resume=True, **options)
    with pytest.raises(error):
        await fake_client.backups.create_many([1], description=RUN, resume=True, **options)
    assert sum(fake_api.requests.values()) == 0


# -- what the resume read costs --------------------------------------------------------------


def _older_manual_backups(api: Any, count: int, *, days_ago: float = 1, step: int = 1) -> None:
    """``count`` completed manual backups of another run, made ``days_ago`` days before
    this one, each ``step`` seconds after the one stored before it."""
    then = datetime.now(UTC) - timedelta(days=days_ago)
    servers = [server.id for server in api.servers()]
    for index in range(count):
        api.state.add_backup(
            servers[index % len(servers)],
            backup_type="manual",
            status="completed",
            description="an older run",
            created_at=then + timedelta(seconds=index * step),
        )


async def test_a_resumed_300_server_shard_among_10000_older_backups_reads_few_pages(
    fake_api: Any, fake_client: BackupsClient
) -> None:
    fake_api.page_size = 100
    fake_api.add_fleet(300)
    _older_manual_backups(fake_api, 10_000)
    since = datetime.now(UTC)  # the run's start, as a Dask driver records it
    server_ids = list(range(1, 301))
    first = await fake_client.backups.create_many(server_ids[:150], description=RUN)
    assert first.ok
    assert len(fake_api.backups(backup_type="manual")) > 10_100  # 102 pages read whole
    mark = len(fake_api.request_log)

    result = await fake_client.backups.create_many(
        server_ids, description=RUN, resume=True, since=since, settle_timeout=0.01
    )

    assert result.ok
    assert [o.adopted for o in result.outcomes] == [True] * 150 + [False] * 150
    assert _made_for_run(fake_api) == Counter(dict.fromkeys(server_ids, 1))
    pages = _list_reads(fake_api, mark)
    # Two reads (before and after the settle), each of the run's two pages and one more.
    assert pages <= 20
    assert pages == 6


async def test_a_list_not_newest_first_is_read_whole_and_nothing_of_the_run_is_missed(
    fake_api: Any, fake_client: BackupsClient
) -> None:
    fake_api.page_size = 10
    fake_api.add_fleet(10)  # more servers than pages: read across, not per server
    since = datetime.now(UTC)
    kept = _existing(fake_api, 1, "completed")  # the lowest id: listed last of all
    # Older backups, imported newest first: listed by ID, they come oldest first.
    _older_manual_backups(fake_api, 50, days_ago=3, step=-1)

    result = await fake_client.backups.create_many(
        range(1, 11), description=RUN, resume=True, since=since, settle_timeout=0
    )

    first = result.outcomes[0]
    assert first.adopted
    assert first.backup is not None
    assert first.backup.id == kept
    assert _list_reads(fake_api) == 6  # every page: 51 manual backups and the sample's


async def test_a_backup_of_the_run_stamped_by_a_clock_behind_since_is_still_found(
    fake_api: Any, fake_client: BackupsClient
) -> None:
    fake_api.page_size = 10
    fake_api.add_fleet(2)
    _older_manual_backups(fake_api, 50, days_ago=3)
    since = datetime.now(UTC)
    # The API's clock is five minutes behind the driver's that recorded ``since``.
    kept = _existing(fake_api, 1, "completed", created_at=since - timedelta(minutes=5))

    result = await fake_client.backups.create_many(
        [1, 2], description=RUN, resume=True, since=since, settle_timeout=0
    )

    assert result.outcomes[0].adopted
    assert result.outcomes[0].backup is not None
    assert result.outcomes[0].backup.id == kept
    assert _list_reads(fake_api) == 2  # the page holding it, then one wholly older
