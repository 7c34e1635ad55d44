"""The fake's pure core, without sockets: clock, state, views, idempotency, journal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asyncbackups.testing import (
    BackupsState,
    Clock,
    Journal,
    RecordedRequest,
    RestoreRefusedError,
    UnknownBackupError,
    UnknownServerError,
)
from asyncbackups.testing._idempotency import IdempotencyKeyReusedError, IdempotencyStore
from asyncbackups.testing._state import isoformat
from asyncbackups.testing._views import ApiRequest, BackupsViews, resolve

START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> Clock:
    return Clock(start=START, frozen=True)


@pytest.fixture
def state(clock: Clock) -> BackupsState:
    return BackupsState(clock=clock, backup_seconds=10)


# -- clock ---------------------------------------------------------------------------


def test_clock_runs_from_real_time_in_utc() -> None:
    before = datetime.now(UTC)
    now = Clock().now()
    after = datetime.now(UTC)
    assert now.tzinfo is UTC
    assert before <= now <= after


def test_advance_moves_a_running_clock_forward() -> None:
    clock = Clock()
    before = clock.now()
    clock.advance(3600)
    assert (clock.now() - before).total_seconds() >= 3600


def test_frozen_clock_stands_still_but_advances(clock: Clock) -> None:
    assert clock.now() == START
    assert clock.advance(1.5) == START + timedelta(seconds=1.5)
    assert clock.now() == START + timedelta(seconds=1.5)


def test_unfrozen_clock_runs_on_from_where_it_stood(clock: Clock) -> None:
    clock.unfreeze()
    assert not clock.frozen
    assert timedelta(0) <= clock.now() - START < timedelta(seconds=1)


def test_clock_refuses_to_go_backwards_and_naive_datetimes(clock: Clock) -> None:
    with pytest.raises(ValueError, match="forward"):
        clock.advance(-1)
    with pytest.raises(ValueError, match="timezone-aware"):
        clock.move_to(datetime(2025, 1, 1))


def test_move_to_converts_other_timezones_to_utc(clock: Clock) -> None:
    clock.move_to(datetime(2025, 1, 1, 9, 0, tzinfo=timezone(timedelta(hours=2))))
    assert clock.now() == datetime(2025, 1, 1, 7, 0, tzinfo=UTC)
    assert clock.now().tzinfo is UTC


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (datetime(2025, 1, 16, 3, tzinfo=UTC), "2025-01-16T03:00:00Z"),
        (datetime(2025, 1, 16, 3, 0, 0, 120, tzinfo=UTC), "2025-01-16T03:00:00.000120Z"),
        (datetime(2025, 1, 16, 5, tzinfo=timezone(timedelta(hours=2))), "2025-01-16T03:00:00Z"),
    ],
)
def test_timestamps_render_drf_style(moment: datetime, text: str) -> None:
    assert isoformat(moment) == text


# -- state ---------------------------------------------------------------------------


def test_sample_data_is_the_documented_server_and_backups(state: BackupsState) -> None:
    assert [(s.id, s.name, s.failing) for s in state.servers()] == [(12345, "web-server-01", False)]
    assert [b.id for b in state.backups()] == [501, 499, 495]
    assert state.next_backup_id == 502


def test_without_sample_data_the_state_is_empty_and_ids_start_at_one(clock: Clock) -> None:
    state = BackupsState(clock=clock, sample_data=False)
    state.add_server(1)
    assert state.backups() == []
    assert state.create_backup(1).id == 1


def test_add_fleet_names_servers_and_gives_each_one_completed_automatic_backup(
    state: BackupsState,
) -> None:
    added = state.add_fleet(3)
    assert [(s.id, s.name) for s in added] == [
        (1, "fleet-0001"),
        (2, "fleet-0002"),
        (3, "fleet-0003"),
    ]
    backups = state.backups(backup_type="automatic")
    assert [b.id for b in backups[:3]] == [504, 503, 502]
    assert {b.status for b in backups} == {"completed"}
    (first,) = state.backups(server_id=1)
    assert first.created_at == datetime(2025, 3, 1, 3, 0, tzinfo=UTC)
    assert first.expires_at == datetime(2025, 3, 31, 3, 0, tzinfo=UTC)
    assert state.next_backup_id == 505


def test_add_fleet_that_would_clash_adds_nothing(state: BackupsState) -> None:
    state.add_server(5)
    with pytest.raises(ValueError, match="already exist"):
        state.add_fleet(10)
    assert [s.id for s in state.servers()] == [5, 12345]


@pytest.mark.parametrize("server_id", [0, -3, True, "7"])
def test_add_server_needs_a_positive_int_id(state: BackupsState, server_id: object) -> None:
    with pytest.raises(ValueError, match="positive int"):
        state.add_server(server_id)  # type: ignore[arg-type]


def test_add_server_twice_is_refused(state: BackupsState) -> None:
    with pytest.raises(ValueError, match="already exists"):
        state.add_server(12345)


def test_unknown_ids_raise_lookup_errors(state: BackupsState) -> None:
    with pytest.raises(UnknownServerError):
        state.create_backup(1)
    with pytest.raises(UnknownServerError):
        state.set_failing(1)
    with pytest.raises(UnknownBackupError):
        state.backup(1)
    with pytest.raises(UnknownBackupError):
        state.delete_backup(1)
    with pytest.raises(LookupError):
        state.server(1)


def test_backup_lifecycle_follows_the_clock(state: BackupsState, clock: Clock) -> None:
    backup = state.create_backup(12345, "nightly")
    assert (backup.status, backup.size_mb, backup.created_at) == ("in_progress", None, START)
    clock.advance(9.999)
    assert state.backup(backup.id).status == "in_progress"
    clock.advance(0.001)
    done = state.backup(backup.id)
    assert done.status == "completed"
    assert done.size_mb is not None


def test_set_failing_changes_backups_in_progress_but_not_finished_ones(
    state: BackupsState, clock: Clock
) -> None:
    finished = state.create_backup(12345)
    clock.advance(10)
    running = state.create_backup(12345)
    state.set_failing(12345)
    later = state.create_backup(12345)
    clock.advance(10)
    assert [state.backup(b.id).status for b in (finished, running, later)] == [
        "completed",
        "failed",
        "failed",
    ]
    state.set_failing(12345, False)
    recovered = state.create_backup(12345)
    clock.advance(10)
    assert state.backup(recovered.id).status == "completed"
    assert state.server(12345).failing is False


def test_add_backup_can_pin_any_status_until_released(state: BackupsState, clock: Clock) -> None:
    odd = state.add_backup(12345, status="restoring", description="odd")
    assert (odd.status, odd.size_mb) == ("restoring", None)
    clock.advance(100)
    assert state.backup(odd.id).status == "restoring"
    assert state.set_status(odd.id, None).status == "completed"
    assert state.set_status(odd.id, "failed").size_mb is None


def test_add_backup_takes_explicit_ids_times_and_sizes(state: BackupsState) -> None:
    made = state.add_backup(
        12345,
        backup_type="automatic",
        status="completed",
        created_at=datetime(2025, 2, 1, tzinfo=UTC),
        size_mb=10,
        backup_id=900,
    )
    assert (made.id, made.size_mb) == (900, 10)
    assert made.expires_at == datetime(2025, 3, 3, tzinfo=UTC)
    assert state.next_backup_id == 901
    with pytest.raises(ValueError, match="already exists"):
        state.add_backup(12345, backup_id=900)
    with pytest.raises(ValueError, match="backup_type"):
        state.add_backup(12345, backup_type="weekly")


def test_restore_checks_ownership_and_completion(state: BackupsState) -> None:
    state.add_server(7)
    with pytest.raises(RestoreRefusedError, match="does not belong"):
        state.restore(7, 501)
    running = state.create_backup(12345)
    with pytest.raises(RestoreRefusedError, match="not completed"):
        state.restore(12345, running.id)
    record = state.restore(12345, 499)
    assert (record.server_id, record.backup_id, record.requested_at) == (12345, 499, START)
    assert state.restores == [record]


def test_backup_seconds_must_not_be_negative(state: BackupsState) -> None:
    with pytest.raises(ValueError, match="backup_seconds"):
        state.backup_seconds = -1


@settings(max_examples=60, deadline=None)
@given(
    actions=st.lists(
        st.tuples(st.sampled_from(["create", "auto", "delete"]), st.integers(1, 3)),
        max_size=60,
    ),
    page_size=st.integers(1, 7),
)
def test_pages_agree_with_a_brute_force_filter(
    actions: list[tuple[str, int]], page_size: int
) -> None:
    state = BackupsState(clock=Clock(start=START, frozen=True))
    state.add_fleet(3)
    for action, server_id in actions:
        if action == "create":
            state.create_backup(server_id)
        elif action == "auto":
            state.add_backup(server_id, backup_type="automatic", status="completed")
        else:
            mine = state.backups(server_id=server_id)
            if mine:
                state.delete_backup(mine[len(mine) // 2].id)
    everything = sorted(state.backups(), key=lambda b: b.id, reverse=True)
    for wanted_server in (None, 1, 2, 3, 12345, 99):
        for backup_type in (None, "manual", "automatic"):
            expected = [
                b.id
                for b in everything
                if wanted_server in (None, b.server_id) and backup_type in (None, b.backup_type)
            ]
            assert state.count(server_id=wanted_server, backup_type=backup_type) == len(expected)
            paged: list[int] = []
            for offset in range(0, len(expected) + page_size, page_size):
                total, page = state.page(
                    server_id=wanted_server, backup_type=backup_type, offset=offset, limit=page_size
                )
                assert total == len(expected)
                paged.extend(b.id for b in page)
            assert paged == expected


def test_paging_a_small_filter_of_a_large_fleet_finds_just_its_backups() -> None:
    # How fast (the index, not a scan of every backup): benchmarks/bench_fake_state.py.
    state = BackupsState(sample_data=False)
    state.add_fleet(20_000)
    made = [state.create_backup(server_id).id for server_id in range(1, 6)]
    total, page = state.page(backup_type="manual", limit=100)
    assert (total, sorted(backup.id for backup in page)) == (5, sorted(made))


def test_a_fleet_reaching_the_sample_server_steps_around_it_and_keeps_its_size(
    state: BackupsState,
) -> None:
    added = state.add_fleet(20_000)

    fleet_ids = [server.id for server in added]
    assert len(fleet_ids) == 20_000
    assert fleet_ids == [*range(1, 12_345), *range(12_346, 20_002)]
    assert [(s.id, s.name) for s in added[-2:]] == [
        (20_000, "fleet-20000"),
        (20_001, "fleet-20001"),
    ]
    assert len(state.servers()) == 20_001
    assert state.server(12345).name == "web-server-01"
    assert [b.id for b in state.backups(server_id=12345)] == [501, 499, 495]
    fleet_backup_ids = {b.id for b in state.backups() if b.server_id != 12345}
    assert len(fleet_backup_ids) == 20_000
    assert min(fleet_backup_ids) == 502
    assert fleet_backup_ids.isdisjoint({495, 499, 501})
    assert state.create_backup(12345).id == 20_502


def test_a_fleet_starting_just_below_the_sample_server_skips_only_its_id(
    state: BackupsState,
) -> None:
    added = state.add_fleet(3, start=12_344)
    assert [server.id for server in added] == [12_344, 12_346, 12_347]


def test_without_sample_data_a_fleet_takes_server_12345_like_any_other(clock: Clock) -> None:
    state = BackupsState(clock=clock, sample_data=False)
    added = state.add_fleet(12_345)
    assert (added[-1].id, added[-1].name) == (12_345, "fleet-12345")
    assert [b.id for b in state.backups(server_id=12_345)] == [12_345]


def test_a_fleet_still_refuses_ids_taken_by_servers_a_test_added(state: BackupsState) -> None:
    state.add_server(12_346)
    with pytest.raises(ValueError, match=r"servers already exist: \[12346\]"):
        state.add_fleet(20_000)
    assert [s.id for s in state.servers()] == [12_345, 12_346]


def test_status_counts_always_name_the_three_documented_statuses(clock: Clock) -> None:
    state = BackupsState(clock=clock, sample_data=False)
    assert state.status_counts() == {"in_progress": 0, "completed": 0, "failed": 0}
    assert state.stats() == {
        "servers": 0,
        "backups": {"in_progress": 0, "completed": 0, "failed": 0},
        "restores": 0,
    }


def test_state_stats_follow_the_clock_failures_pinned_statuses_and_restores(
    state: BackupsState, clock: Clock
) -> None:
    state.add_fleet(2, failing=[2])
    state.create_backup(1)
    failing = state.create_backup(2)
    assert state.status_counts() == {"in_progress": 2, "completed": 5, "failed": 0}
    clock.advance(10)
    assert state.status_counts() == {"in_progress": 0, "completed": 6, "failed": 1}
    state.set_status(failing.id, "restoring")
    state.restore(12345, 501)
    assert state.stats() == {
        "servers": 3,
        "backups": {"in_progress": 0, "completed": 6, "failed": 0, "restoring": 1},
        "restores": 1,
    }


def brute_force_counts(state: BackupsState) -> dict[str, int]:
    counts = {"in_progress": 0, "completed": 0, "failed": 0}
    for backup in state.backups():
        counts[backup.status] = counts.get(backup.status, 0) + 1
    return counts


@settings(max_examples=150, deadline=None)
@given(
    actions=st.lists(
        st.tuples(
            st.sampled_from(
                ["create", "add", "delete", "pin", "unpin", "fail", "heal", "advance", "rewind"]
            ),
            st.integers(1, 2),
            st.sampled_from([None, "completed", "failed", "in_progress", "restoring"]),
            st.sampled_from([0, 3, 10, 15]),
        ),
        max_size=40,
    )
)
def test_status_counts_agree_with_a_brute_force_count(
    actions: list[tuple[str, int, str | None, int]],
) -> None:
    clock = Clock(start=START, frozen=True)
    state = BackupsState(clock=clock, backup_seconds=10)
    state.add_fleet(3)
    for action, server_id, status, seconds in actions:
        mine = state.backups(server_id=server_id)
        if action == "create":
            state.create_backup(server_id)
        elif action == "add":
            created_at = clock.now() - timedelta(seconds=seconds)
            state.add_backup(server_id, status=status, created_at=created_at)
        elif action == "delete" and mine:
            state.delete_backup(mine[seconds % len(mine)].id)
        elif action in ("pin", "unpin") and mine:
            state.set_status(mine[seconds % len(mine)].id, status if action == "pin" else None)
        elif action in ("fail", "heal"):
            state.set_failing(server_id, action == "fail")
        elif action == "advance":
            clock.advance(seconds)
        elif action == "rewind":
            clock.move_to(clock.now() - timedelta(seconds=seconds))
        assert state.status_counts() == brute_force_counts(state)


def test_stats_of_a_large_fleet_count_every_backup() -> None:
    state = BackupsState(clock=Clock(start=START, frozen=True), backup_seconds=10)
    state.add_fleet(20_000)
    for server_id in range(1, 20_001):
        state.create_backup(server_id)
    stats = state.stats()
    assert stats["backups"] == {"in_progress": 20_000, "completed": 20_003, "failed": 0}
    # How fast (a running tally, not a walk): benchmarks/bench_fake_state.py.


# -- views without a socket ------------------------------------------------------------


def make_views(state: BackupsState) -> BackupsViews:
    return BackupsViews(state, token="t0k3n", page_size=2)


def ask(
    views: BackupsViews, method: str, path: str, body: bytes = b"", **query: str
) -> tuple[int, bytes]:
    request = ApiRequest(
        method=method,
        url=f"http://fake{path}",
        query=query,
        body=body,
        authorization="Bearer t0k3n",
    )
    reply = views.handle(request, resolve(path))
    return reply.status, reply.body


def test_routes_resolve_to_templates() -> None:
    assert resolve("/api/v1/backups/").template == "backups/"
    assert resolve("/api/v1/backups/17/").params == {"id": "17"}
    assert resolve("/api/v1/servers/9/restore/").template == "servers/{server_id}/restore/"
    assert resolve("/api/v1/backups/x/").route is None
    assert resolve("/other/").path == "/other/"


def test_views_answer_without_any_http(state: BackupsState) -> None:
    views = make_views(state)
    status, body = ask(views, "GET", "/api/v1/backups/", page="2")
    assert status == 200
    assert body.startswith(b'{"count":3,"next":null,"previous":"http://fake/api/v1/backups/"')
    assert ask(views, "GET", "/api/v1/backups/99999999999999999999999/")[0] == 404


def test_views_refuse_a_bad_configuration(state: BackupsState) -> None:
    with pytest.raises(ValueError, match="page_size"):
        BackupsViews(state, token="t", page_size=0)
    with pytest.raises(ValueError, match="token"):
        BackupsViews(state, token="two words")


def test_views_refuse_a_page_size_below_one_set_later(state: BackupsState) -> None:
    views = BackupsViews(state, token="t", page_size=2)

    with pytest.raises(ValueError, match="page_size must be >= 1, got 0"):
        views.page_size = 0
    assert views.page_size == 2


# -- idempotency store and journal ---------------------------------------------------


def test_idempotency_store_keeps_the_first_answer_per_scope_and_key() -> None:
    store: IdempotencyStore[str] = IdempotencyStore()
    store.remember("alice", "k", b"fp", "first")
    store.remember("alice", "k", b"fp", "second")
    assert store.lookup("alice", "k", b"fp") == "first"
    assert store.lookup("bob", "k", b"fp") is None
    with pytest.raises(IdempotencyKeyReusedError):
        store.lookup("alice", "k", b"other")


def test_idempotency_store_forgets_the_oldest_keys_beyond_its_bound() -> None:
    store: IdempotencyStore[int] = IdempotencyStore(max_keys=2)
    for number in range(3):
        store.remember("s", str(number), b"", number)
    assert len(store) == 2
    assert store.lookup("s", "0", b"") is None
    assert store.lookup("s", "2", b"") == 2
    store.clear()
    assert len(store) == 0


def test_journal_counts_everything_but_keeps_only_the_latest_records() -> None:
    journal = Journal(max_records=2)
    for number in range(3):
        journal.record(RecordedRequest("GET", f"backups/{number}/", "backups/{id}/"))
    journal.record(RecordedRequest("GET", "nowhere/", None))
    assert journal.counts == {("GET", "backups/{id}/"): 3, ("GET", "nowhere/"): 1}
    assert [record.path for record in journal.records] == ["backups/2/", "nowhere/"]
