"""The retention and coverage rules as plain functions: no I/O, "now" passed in.

Every safety rule of a prune is tested on its own here (the same rules against the fake
API are in ``test_hygiene.py``): only manual backups, never one in progress (nor of a
status the SDK does not know), never a server's newest completed one unless
``keep_none``, and with both rules a backup goes only when both let it.
"""

from __future__ import annotations

import copy
import pickle
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from asyncbackups import (
    Backup,
    BackupStatus,
    BackupType,
    CoverageReport,
    NotFoundError,
    PrunePlan,
    PruneResult,
    ServerError,
    ServerRef,
)
from asyncbackups._core.retention import (
    CoverageTally,
    check_prune_rules,
    check_server_ids,
    coverage_report,
    plan_prune,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
COMPLETED, FAILED, IN_PROGRESS = "completed", "failed", "in_progress"
MANUAL, AUTOMATIC = "manual", "automatic"


def backup(
    backup_id: int,
    *,
    server: int = 1,
    age: timedelta = DAY,
    status: str = COMPLETED,
    kind: str = MANUAL,
    size_mb: int | None = 100,
) -> Backup:
    """A backup created ``age`` before NOW."""
    return Backup(
        id=backup_id,
        server=ServerRef(server, f"server-{server}"),
        backup_type=BackupType(kind),
        status=BackupStatus(status),
        size_mb=size_mb if status == COMPLETED else None,
        created_at=NOW - age,
    )


def ids(plan: PrunePlan) -> list[int]:
    return [b.id for b in plan.to_delete]


def weekly(server: int, count: int, *, first_id: int) -> list[Backup]:
    """``count`` completed manual backups a week apart, the newest a day old."""
    return [
        backup(first_id + week, server=server, age=DAY + week * 7 * DAY) for week in range(count)
    ]


# -- keep_last -------------------------------------------------------------------------------


def test_keep_last_keeps_the_newest_n_completed_and_plans_the_rest_oldest_first() -> None:
    plan = plan_prune(weekly(1, 6, first_id=10), keep_last=2, as_of=NOW)

    assert ids(plan) == [15, 14, 13, 12]  # 10 and 11 are the newest two
    assert plan.per_server == {1: 4}
    assert plan.kept_per_server == {1: 2}


def test_keep_last_counts_each_server_apart() -> None:
    backups = weekly(1, 3, first_id=10) + weekly(2, 5, first_id=20)

    plan = plan_prune(backups, keep_last=3, as_of=NOW)

    assert ids(plan) == [24, 23]
    assert plan.per_server == {1: 0, 2: 2}
    assert plan.kept_per_server == {1: 3, 2: 3}


def test_keep_last_larger_than_the_backups_plans_nothing() -> None:
    assert plan_prune(weekly(1, 3, first_id=10), keep_last=10, as_of=NOW).to_delete == []


def test_keep_last_orders_by_created_at_not_by_id() -> None:
    # IDs are no clock: a restored or imported backup may carry a low ID and be newest.
    backups = [backup(90, age=10 * DAY), backup(5, age=1 * DAY), backup(50, age=5 * DAY)]

    assert ids(plan_prune(backups, keep_last=1, as_of=NOW)) == [90, 50]


def test_keep_last_breaks_ties_of_created_at_by_id() -> None:
    backups = [backup(7, age=DAY), backup(8, age=DAY), backup(9, age=DAY)]

    assert ids(plan_prune(backups, keep_last=1, as_of=NOW)) == [7, 8]


def test_failed_backups_do_not_count_towards_keep_last_and_are_planned() -> None:
    backups = [
        backup(1, age=1 * DAY, status=FAILED),
        backup(2, age=2 * DAY, status=FAILED),
        backup(3, age=3 * DAY),
        backup(4, age=4 * DAY),
        backup(5, age=5 * DAY),
    ]

    plan = plan_prune(backups, keep_last=2, as_of=NOW)

    # The two completed ones after the failures stay: a failure cannot push them out.
    assert ids(plan) == [5, 2, 1]


def test_keep_last_zero_still_keeps_the_newest_completed() -> None:
    plan = plan_prune(weekly(1, 4, first_id=10), keep_last=0, as_of=NOW)

    assert ids(plan) == [13, 12, 11]


# -- older_than ------------------------------------------------------------------------------


def test_older_than_plans_only_backups_older_than_the_span() -> None:
    backups = [backup(1, age=10 * DAY), backup(2, age=40 * DAY), backup(3, age=31 * DAY)]

    assert ids(plan_prune(backups, older_than=30 * DAY, as_of=NOW)) == [2, 3]


def test_a_backup_exactly_older_than_old_stays_and_a_microsecond_more_goes() -> None:
    backups = [
        backup(1, age=DAY),
        backup(2, age=30 * DAY),
        backup(3, age=30 * DAY + timedelta(microseconds=1)),
    ]

    assert ids(plan_prune(backups, older_than=30 * DAY, as_of=NOW)) == [3]


def test_older_than_is_measured_from_as_of_in_any_timezone() -> None:
    backups = [backup(1, age=DAY), backup(2, age=3 * DAY)]
    tokyo = NOW.astimezone(timezone(timedelta(hours=9)))

    assert ids(plan_prune(backups, older_than=2 * DAY, as_of=tokyo)) == [2]


def test_older_than_reaching_before_year_one_plans_nothing() -> None:
    backups = [backup(1, age=DAY), backup(2, age=900 * DAY)]

    assert plan_prune(backups, older_than=timedelta.max, as_of=NOW).to_delete == []


def test_a_backup_stamped_after_now_is_not_old() -> None:
    backups = [backup(1, age=-DAY), backup(2, age=60 * DAY), backup(3, age=50 * DAY)]

    assert ids(plan_prune(backups, older_than=30 * DAY, as_of=NOW)) == [2, 3]


# -- both rules --------------------------------------------------------------------------------


def test_with_both_rules_a_backup_goes_only_when_both_let_it() -> None:
    backups = [
        backup(1, age=1 * DAY),  # kept by keep_last, and young
        backup(2, age=40 * DAY),  # kept by keep_last, though old
        backup(3, age=45 * DAY),  # beyond keep_last, and old: goes
        backup(4, age=50 * DAY),  # beyond keep_last, and old: goes
    ]
    young_beyond = [backup(5, age=2 * DAY), backup(6, age=3 * DAY)]

    plan = plan_prune(backups + young_beyond, keep_last=2, older_than=30 * DAY, as_of=NOW)

    # 5 and 6 are beyond the newest two (1 and 5) but young: they stay.
    assert sorted(ids(plan)) == [2, 3, 4]


def test_with_both_rules_young_backups_beyond_keep_last_stay() -> None:
    backups = weekly(1, 4, first_id=10)  # ages 1, 8, 15, 22 days

    assert plan_prune(backups, keep_last=1, older_than=30 * DAY, as_of=NOW).to_delete == []


# -- what is never planned --------------------------------------------------------------------


@pytest.mark.parametrize(
    "rules",
    [{"keep_last": 0, "keep_none": True}, {"older_than": DAY, "keep_none": True}],
    ids=["keep_last_0", "older_than"],
)
def test_automatic_backups_are_never_planned(rules: dict[str, Any]) -> None:
    backups = [backup(i, age=i * 10 * DAY, kind=AUTOMATIC) for i in range(1, 5)]
    backups.append(backup(9, age=90 * DAY, kind=AUTOMATIC, status=FAILED))

    assert plan_prune(backups, as_of=NOW, **rules).to_delete == []


@pytest.mark.parametrize(
    "rules",
    [{"keep_last": 0, "keep_none": True}, {"older_than": DAY, "keep_none": True}],
    ids=["keep_last_0", "older_than"],
)
def test_backups_in_progress_are_never_planned(rules: dict[str, Any]) -> None:
    backups = [backup(1, age=90 * DAY, status=IN_PROGRESS), backup(2, age=80 * DAY)]

    plan = plan_prune(backups, as_of=NOW, **rules)

    assert ids(plan) == [2]
    assert plan.kept_per_server == {1: 1}


def test_a_status_the_sdk_does_not_know_is_never_planned() -> None:
    restoring = backup(1, age=90 * DAY, status="restoring")

    plan = plan_prune([restoring], keep_last=0, keep_none=True, as_of=NOW)

    assert plan.to_delete == []


def test_the_newest_completed_backup_stays_whatever_the_rules() -> None:
    backups = [backup(1, age=40 * DAY), backup(2, age=50 * DAY), backup(3, age=60 * DAY)]

    assert ids(plan_prune(backups, older_than=30 * DAY, as_of=NOW)) == [3, 2]
    assert ids(plan_prune(backups, keep_last=0, as_of=NOW)) == [3, 2]


def test_the_newest_completed_is_protected_even_behind_newer_failed_and_running_ones() -> None:
    backups = [
        backup(1, age=40 * DAY, status=IN_PROGRESS),
        backup(2, age=41 * DAY, status=FAILED),
        backup(3, age=42 * DAY),  # the newest completed
        backup(4, age=43 * DAY),
    ]

    assert ids(plan_prune(backups, older_than=30 * DAY, as_of=NOW)) == [4, 2]


def test_the_protected_newest_is_the_newest_manual_one_not_an_automatic() -> None:
    # Automatic backups expire: a fresh automatic one cannot stand in for the manual.
    backups = [
        backup(1, age=DAY, kind=AUTOMATIC),
        backup(2, age=40 * DAY),
        backup(3, age=50 * DAY),
    ]

    assert ids(plan_prune(backups, older_than=30 * DAY, as_of=NOW)) == [3]


def test_keep_none_lets_the_newest_completed_go_too() -> None:
    backups = [backup(1, age=40 * DAY), backup(2, age=50 * DAY)]

    plan = plan_prune(backups, older_than=30 * DAY, keep_none=True, as_of=NOW)

    assert ids(plan) == [2, 1]
    assert plan.keep_none is True


def test_keep_none_with_keep_last_zero_plans_every_final_manual_backup() -> None:
    backups = [backup(1), backup(2, status=FAILED), backup(3, status=IN_PROGRESS)]

    assert sorted(ids(plan_prune(backups, keep_last=0, keep_none=True, as_of=NOW))) == [1, 2]


def test_a_server_with_only_failed_backups_loses_them_all() -> None:
    backups = [backup(1, status=FAILED), backup(2, age=2 * DAY, status=FAILED)]

    assert ids(plan_prune(backups, keep_last=3, as_of=NOW)) == [2, 1]


# -- what is read ----------------------------------------------------------------------------


def test_server_ids_limit_the_plan_and_order_its_counts() -> None:
    backups = weekly(1, 3, first_id=10) + weekly(2, 3, first_id=20) + weekly(3, 3, first_id=30)

    plan = plan_prune(backups, keep_last=1, as_of=NOW, server_ids=[3, 1, 7])

    assert ids(plan) == [12, 32, 11, 31]  # oldest first across servers, ties by ID
    assert list(plan.per_server) == [3, 1, 7]
    assert plan.per_server == {3: 2, 1: 2, 7: 0}
    assert plan.kept_per_server == {3: 1, 1: 1, 7: 0}
    assert plan.server_ids == (3, 1, 7)


def test_a_backup_seen_twice_is_planned_once() -> None:
    backups = weekly(1, 3, first_id=10)

    plan = plan_prune(backups + backups, keep_last=1, as_of=NOW)

    assert ids(plan) == [12, 11]
    assert plan.kept_per_server == {1: 1}


def test_the_plan_carries_its_rules_and_size() -> None:
    plan = plan_prune(weekly(1, 3, first_id=10), keep_last=1, older_than=DAY, as_of=NOW)

    assert (plan.keep_last, plan.older_than, plan.keep_none, plan.as_of) == (1, DAY, False, NOW)
    assert plan.size_mb == 200
    assert plan.server_ids is None


def test_a_plan_a_result_and_a_report_pickle_and_deep_copy() -> None:
    plan = plan_prune(weekly(1, 3, first_id=10), keep_last=1, as_of=NOW)
    error = ServerError("boom", status_code=500, body={"detail": "boom"})
    result = PruneResult(deleted=[1], already_gone=[2], failed=[(3, error)])
    report = coverage_report(weekly(1, 1, first_id=10), [1, 2], within=7 * DAY, as_of=NOW)

    for value in (plan, report):
        assert pickle.loads(pickle.dumps(value)) == value
        assert copy.deepcopy(value) == value
    for copied in (pickle.loads(pickle.dumps(result)), copy.deepcopy(result)):
        assert (copied.deleted, copied.already_gone) == ([1], [2])
        [(backup_id, copied_error)] = copied.failed
        assert backup_id == 3
        assert isinstance(copied_error, ServerError)
        assert copied_error.status_code == 500


# -- bad rules ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rules", "error", "words"),
    [
        ({}, ValueError, "keep_last, older_than or both"),
        ({"keep_none": True}, ValueError, "keep_last, older_than or both"),
        ({"keep_last": -1}, ValueError, "0 or more"),
        ({"keep_last": True}, TypeError, "keep_last must be an int"),
        ({"keep_last": 2.0}, TypeError, "keep_last must be an int"),
        ({"keep_last": "3"}, TypeError, "keep_last must be an int"),
        ({"older_than": timedelta(0)}, ValueError, "more than zero"),
        ({"older_than": -DAY}, ValueError, "more than zero"),
        ({"older_than": 30}, TypeError, "timedelta"),
        ({"older_than": "30d"}, TypeError, "timedelta"),
        ({"keep_last": 1, "keep_none": 1}, TypeError, "keep_none must be a bool"),
    ],
)
def test_bad_rules_are_refused(rules: dict[str, Any], error: type[Exception], words: str) -> None:
    with pytest.raises(error, match=words):
        check_prune_rules(
            rules.get("keep_last"), rules.get("older_than"), rules.get("keep_none", False)
        )
    with pytest.raises(error, match=words):
        plan_prune([], as_of=NOW, **rules)


@pytest.mark.parametrize(
    ("server_ids", "error"),
    [
        ("123", TypeError),
        (b"1", TypeError),
        (5, TypeError),
        ([1, "2"], TypeError),
        ([1, True], TypeError),
        ([0], ValueError),
        ([-3], ValueError),
        ([4, 5, 4], ValueError),
    ],
)
def test_bad_server_ids_are_refused(server_ids: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        check_server_ids(server_ids)


def test_server_ids_may_be_any_iterable() -> None:
    assert check_server_ids(iter([3, 1])) == (3, 1)
    assert check_server_ids(range(1, 4)) == (1, 2, 3)


@pytest.mark.parametrize(
    "as_of", [datetime(2026, 3, 1, 12, 0), "2026-03-01"], ids=["naive", "text"]
)
def test_now_must_be_an_aware_datetime(as_of: Any) -> None:
    with pytest.raises((TypeError, ValueError)):
        plan_prune([], keep_last=1, as_of=as_of)
    with pytest.raises((TypeError, ValueError)):
        CoverageTally([1]).report(within=DAY, as_of=as_of)


# -- coverage ----------------------------------------------------------------------------------


def report_of(backups: list[Backup], server_ids: list[int] | None, within: timedelta) -> Any:
    return coverage_report(backups, server_ids, within=within, as_of=NOW)


def test_coverage_maps_each_covered_server_to_its_newest_completed_backup() -> None:
    backups = [backup(1, age=3 * DAY), backup(2, age=1 * DAY), backup(3, age=2 * DAY)]

    report = report_of(backups, [1], 7 * DAY)

    assert report.covered == {1: backups[1]}
    assert report.missing == []
    assert report.ok


def test_coverage_lists_missing_servers_in_input_order() -> None:
    backups = [backup(1, server=2, age=DAY)]

    report = report_of(backups, [9, 2, 4, 7], 7 * DAY)

    assert report.missing == [9, 4, 7]
    assert list(report.covered) == [2]
    assert not report.ok


def test_a_backup_exactly_at_the_window_edge_covers_and_one_just_older_does_not() -> None:
    edge = backup(1, server=1, age=7 * DAY)
    older = backup(2, server=2, age=7 * DAY + timedelta(microseconds=1))
    inside = backup(3, server=3, age=7 * DAY - timedelta(microseconds=1))

    report = report_of([edge, older, inside], [1, 2, 3], 7 * DAY)

    assert list(report.covered) == [1, 3]
    assert report.missing == [2]


def test_failed_and_in_progress_backups_do_not_cover() -> None:
    backups = [
        backup(1, server=1, status=FAILED),
        backup(2, server=2, status=IN_PROGRESS),
        backup(3, server=3, status="restoring"),
        backup(4, server=1, age=30 * DAY),  # completed, but outside the window
    ]

    assert report_of(backups, [1, 2, 3], 7 * DAY).missing == [1, 2, 3]


@pytest.mark.parametrize("kind", [MANUAL, AUTOMATIC])
def test_either_type_covers(kind: str) -> None:
    report = report_of([backup(1, kind=kind)], [1], 7 * DAY)

    assert list(report.covered) == [1]


def test_a_backup_stamped_after_now_covers() -> None:
    assert report_of([backup(1, age=-DAY)], [1], DAY).missing == []


def test_a_window_reaching_before_year_one_covers_any_completed_backup() -> None:
    report = report_of([backup(1, age=3000 * DAY)], [1, 2], timedelta.max)

    assert list(report.covered) == [1]
    assert report.missing == [2]


def test_coverage_of_every_server_seen_is_by_id_and_counts_servers_with_no_good_backup() -> None:
    backups = [
        backup(1, server=5, age=DAY),
        backup(2, server=3, status=FAILED),
        backup(3, server=4, age=90 * DAY, kind=AUTOMATIC),
    ]

    report = report_of(backups, None, 7 * DAY)

    assert list(report.covered) == [5]
    assert report.missing == [3, 4]


def test_coverage_takes_pages_in_any_order() -> None:
    tally = CoverageTally([1])
    tally.add([backup(1, age=10 * DAY)])
    tally.add([backup(2, age=DAY)])
    tally.add([backup(3, age=5 * DAY)])

    report = tally.report(within=7 * DAY, as_of=NOW)

    assert report.covered[1].id == 2
    assert isinstance(report, CoverageReport)
    assert (report.within, report.as_of) == (7 * DAY, NOW)


@pytest.mark.parametrize(
    ("within", "error"),
    [(timedelta(0), ValueError), (-DAY, ValueError), (7, TypeError), ("7d", TypeError)],
)
def test_a_bad_window_is_refused(within: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        report_of([], [1], within)


def test_raise_for_failures_groups_every_failed_delete_with_its_backup() -> None:
    first, second = ServerError("boom", status_code=500), NotFoundError("x", status_code=404)
    result = PruneResult(deleted=[1], already_gone=[], failed=[(7, first), (8, second)])

    with pytest.raises(ExceptionGroup) as raised:
        result.raise_for_failures()

    assert raised.value.exceptions == (first, second)
    assert "backup 7" in first.__notes__
    assert "2 of 3 deletes failed" in str(raised.value)
    assert not result.ok
    PruneResult(deleted=[1], already_gone=[2], failed=[]).raise_for_failures()
