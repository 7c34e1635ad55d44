"""The poller's plan, function by function, with plain numbers: no loop, no clock, no I/O."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from asyncbackups._waiting import planner
from asyncbackups._waiting.planner import Plan

# -- a wait's interval ----------------------------------------------------------------------


def test_the_interval_grows_by_half_a_poll_from_poll_interval_to_its_cap() -> None:
    pauses = [planner.interval(polls, poll_interval=2, max_poll_interval=10) for polls in range(6)]
    assert pauses == [2, 3, 4.5, 6.75, 10, 10]


def test_jitter_never_takes_the_interval_below_poll_interval_or_above_its_cap() -> None:
    assert planner.interval(0, poll_interval=2, max_poll_interval=10, jitter=0.85) == 2
    assert planner.interval(9, poll_interval=2, max_poll_interval=10, jitter=1.15) == 10
    assert planner.interval(1, poll_interval=2, max_poll_interval=10, jitter=1.1) == pytest.approx(
        3.3
    )


def test_jitter_stays_within_fifteen_percent_either_way() -> None:
    factors = [planner.jitter() for _ in range(1000)]
    assert all(0.85 <= factor <= 1.15 for factor in factors)
    # Spread over the range, not one constant factor.
    assert min(factors) < 0.9
    assert max(factors) > 1.1


def test_a_round_serves_a_wait_once_half_its_interval_has_passed() -> None:
    assert planner.next_poll(100, 4) == Plan(due=104, earliest=102)
    assert planner.next_poll(100, 0) == Plan(due=100, earliest=100)


def test_a_retry_after_is_a_floor_no_round_undercuts() -> None:
    assert planner.next_poll(100, 4, at_least=10) == Plan(due=110, earliest=110)
    assert planner.next_poll(100, 4, at_least=1) == Plan(due=104, earliest=104)


# -- a fleet's watches ----------------------------------------------------------------------


def _first_due(
    *,
    poll_interval: float = 2.0,
    took: float | None = None,
    probing: bool = True,
    watches: int = 10,
) -> float:
    return planner.first_watch_due(
        100.0,
        poll_interval=poll_interval,
        max_poll_interval=30.0,
        took=took,
        probing=probing,
        watches=watches,
    )


def test_the_first_watch_is_the_probe_polled_closely() -> None:
    assert _first_due(probing=False) == 100.5
    assert _first_due(probing=False, poll_interval=0.1) == 100.1


def test_a_small_fleets_watches_poll_as_waits_do_until_something_is_learned() -> None:
    assert _first_due(watches=planner.LARGE_FLEET - 1) == 102


def test_a_large_fleets_watches_wait_blind_for_the_probe() -> None:
    assert _first_due(watches=planner.LARGE_FLEET) == 100 + 4 * 30
    assert planner.blind_due(100, max_poll_interval=30) == 220


def test_once_learned_a_watch_is_first_polled_when_backups_end() -> None:
    assert _first_due(took=60.0) == 160
    assert _first_due(took=60.0, probing=False, watches=10_000) == 160


def test_the_probe_is_polled_every_tenth_of_its_age_between_half_a_second_and_its_cap() -> None:
    assert planner.probe_due(100, started=100, max_poll_interval=30) == 100.5
    assert planner.probe_due(200, started=100, max_poll_interval=30) == 210
    assert planner.probe_due(1000, started=0, max_poll_interval=30) == 1030


def test_a_watch_past_its_expected_end_is_polled_again_soon() -> None:
    assert planner.overdue_due(100, took=60, max_poll_interval=30) == 106
    assert planner.overdue_due(100, took=1, max_poll_interval=30) == 100.25
    assert planner.overdue_due(100, took=3600, max_poll_interval=30) == 130


def test_a_backup_seen_ending_between_two_polls_took_halfway() -> None:
    assert planner.learned_duration(60) == 60
    assert planner.learned_duration(60, last_seen_running=54) == 57
    assert planner.learned_duration(60, last_seen_running=0) == 30
    assert planner.learned_duration(60, last_seen_running=70) == 60


# -- rounds of watches ------------------------------------------------------------------------


def test_rounds_spread_the_poll_budget_until_the_last_watch_is_due() -> None:
    # 100,000 watches over 1,000 pages: a 2.5% budget pays for 2 rounds before 3600.
    gap = planner.round_gap(
        0, watches=100_000, pages_across=1000, latest_due=3600, max_poll_interval=9999, took=None
    )
    assert gap == 1800


def test_rounds_are_never_further_apart_than_the_watches_interval_or_a_quarter_backup() -> None:
    common = {"watches": 100_000, "pages_across": 1000, "latest_due": 3600}
    assert planner.round_gap(0, **common, max_poll_interval=30, took=None) == 30
    assert planner.round_gap(0, **common, max_poll_interval=9999, took=60) == 15


def test_before_any_read_across_the_pages_are_estimated_from_the_watches() -> None:
    # 10,000 watches make 100 pages: 10,000 x 2.5% / 100 = 2 rounds.
    gap = planner.round_gap(
        0, watches=10_000, pages_across=0, latest_due=100, max_poll_interval=9999, took=None
    )
    assert gap == 50


def test_a_due_time_already_past_gives_no_gap() -> None:
    gap = planner.round_gap(
        100, watches=10, pages_across=1, latest_due=50, max_poll_interval=30, took=None
    )
    assert gap == 0


# -- reading across or server by server --------------------------------------------------------


def test_reading_across_costs_what_it_did_last_time_else_a_page_per_hundred() -> None:
    assert planner.across_cost(None, wanted=1) == 1
    assert planner.across_cost(None, wanted=250) == 3
    assert planner.across_cost(7, wanted=250) == 7


def test_one_server_is_always_read_on_its_own() -> None:
    assert not planner.reads_across([5, 5, 5], across_cost=1, server_pages={})


def test_many_servers_are_read_across_when_that_takes_fewer_pages() -> None:
    assert planner.reads_across([1, 2], across_cost=1, server_pages={})
    assert not planner.reads_across([1, 2], across_cost=2, server_pages={})
    assert not planner.reads_across([1, 2, 1, 2], across_cost=3, server_pages={})
    # A server whose list took several pages counts that many.
    assert planner.reads_across([1, 2], across_cost=3, server_pages={1: 5})


def test_counting_servers_stops_once_reading_across_is_cheaper() -> None:
    seen: list[int] = []

    def servers() -> Iterator[int]:
        for server in range(1, 1_000_001):
            seen.append(server)
            yield server

    assert planner.reads_across(servers(), across_cost=3, server_pages={})
    assert len(seen) == 4
