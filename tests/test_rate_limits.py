"""The rate governor's decisions as pure functions of time: headers in, delays out."""

from __future__ import annotations

import itertools
import math

import pytest

from asyncbackups._core.rate_limits import (
    BETA,
    MIN_RATE,
    RateLimitInfo,
    RateState,
    parse_rate_limit,
)

NOW = 1_800_000_000.0  # a UNIX time, for headers that state their reset as one


# -- what the headers say ---------------------------------------------------------------


def test_hetzner_triple_with_a_unix_reset_becomes_a_delay() -> None:
    info = parse_rate_limit(
        {"RateLimit-Limit": "3600", "RateLimit-Remaining": "3500", "RateLimit-Reset": "1800000100"},
        NOW,
    )
    assert info == RateLimitInfo(limit=3600, remaining=3500, reset=100.0)


def test_ietf_draft_triple_with_a_delay_in_seconds() -> None:
    info = parse_rate_limit(
        {"RateLimit-Limit": "100", "RateLimit-Remaining": "40", "RateLimit-Reset": "30"}, NOW
    )
    assert info == RateLimitInfo(limit=100, remaining=40, reset=30.0)


def test_x_ratelimit_headers_are_read_too() -> None:
    info = parse_rate_limit(
        {"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "4999", "X-RateLimit-Reset": "60"},
        NOW,
    )
    assert info == RateLimitInfo(limit=5000, remaining=4999, reset=60.0)


def test_early_ietf_combined_header() -> None:
    info = parse_rate_limit({"RateLimit": "limit=10, remaining=3, reset=4"}, NOW)
    assert info == RateLimitInfo(limit=10, remaining=3, reset=4.0)


def test_later_ietf_structured_header_and_policy() -> None:
    info = parse_rate_limit(
        {"RateLimit": '"default";r=50;t=30', "RateLimit-Policy": '"default";q=100;w=60'}, NOW
    )
    assert info == RateLimitInfo(limit=100, remaining=50, reset=30.0, quota_rate=100 / 60)


def test_policy_in_the_limit_header_keeps_its_leading_number() -> None:
    info = parse_rate_limit({"RateLimit-Limit": "100, 100;w=60", "RateLimit-Remaining": "7"}, NOW)
    assert info is not None
    assert (info.limit, info.remaining) == (100, 7)


def test_a_reset_in_the_past_means_full_now() -> None:
    info = parse_rate_limit(
        {"RateLimit-Limit": "10", "RateLimit-Remaining": "10", "RateLimit-Reset": "1700000000"},
        NOW,
    )
    assert info is not None
    assert info.reset == 0.0


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Content-Type": "application/json"},
        {"RateLimit-Limit": "lots", "RateLimit-Remaining": "-3"},
        {"RateLimit-Limit": "0"},
        {"RateLimit-Limit": "1e400"},
        {"RateLimit": "x" * 5000},
    ],
)
def test_headers_that_say_nothing_usable_give_none(headers: dict[str, str]) -> None:
    assert parse_rate_limit(headers, NOW) is None


def test_absurd_figures_are_dropped_not_trusted() -> None:
    info = parse_rate_limit(
        {
            "RateLimit-Limit": "99999999999",
            "RateLimit-Remaining": "99999999999",
            "RateLimit-Reset": "3",
        },
        NOW,
    )
    assert info is None or (info.limit is None and info.remaining is None)
    far = parse_rate_limit({"RateLimit-Limit": "10", "RateLimit-Reset": "9999999999999"}, NOW)
    assert far is not None
    assert far.reset is None  # centuries away: not a reset anyone waits for


# -- the budget -------------------------------------------------------------------------


def test_no_limit_known_means_no_pacing() -> None:
    state = RateState()
    for _ in range(1000):
        assert state.delay(0.0) == 0.0
        state.grant(0.0)
    state.observe(0.01, throttled=False, info=None, retry_after=None)
    assert state.delay(0.01) == 0.0
    assert state.rate(0.01) is None


def test_an_explicit_rate_paces_from_the_start() -> None:
    state = RateState(rate_limit=4.0)
    granted = []
    now = 0.0
    while len(granted) < 12:
        delay = state.delay(now)
        if delay == 0.0:
            state.grant(now)
            granted.append(now)
        else:
            now += delay
    # a burst of one second's worth, then one every quarter second
    assert granted[:4] == [0.0] * 4
    gaps = [b - a for a, b in itertools.pairwise(granted[4:])]
    assert all(gap == pytest.approx(0.25) for gap in gaps)


def test_stated_remaining_caps_what_may_leave() -> None:
    state = RateState()
    state.grant(0.0)
    info = RateLimitInfo(limit=5, remaining=2, reset=0.6)  # 3 used, full in 0.6 s: 5/s
    state.observe(0.0, throttled=False, info=info, retry_after=None)
    assert state.rate(0.0) == pytest.approx(5.0)
    state.grant(0.0)
    state.grant(0.0)
    assert state.delay(0.0) == pytest.approx(0.2)


def test_the_highest_recent_estimate_wins_over_rounded_resets() -> None:
    state = RateState()
    state.grant(0.0)
    # A server that rounds its reset up to whole seconds understates the rate.
    state.observe(0.0, throttled=False, info=RateLimitInfo(20, 19, 1.0), retry_after=None)
    assert state.rate(0.0) == pytest.approx(1.0)
    state.grant(0.0)
    state.observe(0.0, throttled=False, info=RateLimitInfo(20, 0, 1.0), retry_after=None)
    assert state.rate(0.0) == pytest.approx(20.0)


def _exchange(
    state: RateState, now: float, *, throttled: bool = False, retry_after: float | None = None
) -> None:
    """A request sent and answered at ``now``."""
    state.grant(now)
    state.observe(now, throttled=throttled, info=None, retry_after=retry_after)


def _end_slow_start(state: RateState) -> None:
    """Answers long past, so that the last 50 outcomes start untroubled."""
    for _ in range(50):
        _exchange(state, -100.0)


def test_a_throttle_pauses_everyone_for_retry_after_and_cuts_the_rate() -> None:
    state = RateState()
    _end_slow_start(state)
    for step in range(10):
        _exchange(state, 0.1 + step / 10)
    for _ in range(3):
        _exchange(state, 1.0, throttled=True, retry_after=2.0)
    assert state.throttles == 3
    assert state.delay(1.0) == pytest.approx(2.0)
    rate = state.rate(1.0)
    assert rate is not None
    # cut once (when 3 of the last 50 answers were throttled), from the 10 answers a
    # second that got through: a first cut goes by the bucket's measure
    assert rate == pytest.approx(10 * BETA)


def test_a_stray_throttle_among_many_answers_pauses_but_does_not_cut() -> None:
    state = RateState()
    _end_slow_start(state)
    for step in range(40):
        _exchange(state, step / 40)
    _exchange(state, 1.0, throttled=True, retry_after=0.5)
    assert state.rate(1.0) is None  # still unpaced: one 429 in 41 is no limit
    assert state.delay(1.0) == pytest.approx(0.5)


def test_a_client_sending_a_request_at_a_time_is_paused_but_never_cut() -> None:
    state = RateState()
    for step in range(5):
        _exchange(state, step * 10.0, throttled=True, retry_after=0.01)
    assert state.rate(50.0) is None


def test_the_cut_rate_grows_back_to_the_old_peak_and_beyond() -> None:
    state = RateState()
    _end_slow_start(state)
    for step in range(20):
        _exchange(state, step / 20)
    for _ in range(3):
        _exchange(state, 1.0, throttled=True)
    cut = state.rate(1.0)
    assert cut is not None
    # requests keep leaving at the old pace, so growth is not capped by idleness
    for step in range(200):
        _exchange(state, 1.0 + step / 20)
    later = state.rate(11.0)
    assert later is not None
    assert later > cut


def test_many_throttles_of_one_burst_cut_once() -> None:
    state = RateState()
    _end_slow_start(state)
    for step in range(10):
        _exchange(state, 0.1 + step / 10)
    for _ in range(30):
        _exchange(state, 1.0, throttled=True)
    assert state.rate(1.0) == pytest.approx(10 * BETA)  # what got through, cut once


def test_rate_never_falls_below_the_floor() -> None:
    state = RateState()
    for step in range(100):
        now = float(step * 100)
        for _ in range(3):
            _exchange(state, now)
        _exchange(state, now, throttled=True)
        _exchange(state, now, throttled=True)
    rate = state.rate(10_000.0)
    assert rate is not None
    assert rate >= MIN_RATE


def test_a_lying_remaining_is_distrusted_after_a_throttle() -> None:
    state = RateState()
    state.grant(0.0)
    liar = RateLimitInfo(limit=1000, remaining=1000, reset=1.0)
    state.observe(0.0, throttled=False, info=liar, retry_after=None)
    state.grant(0.0)
    state.observe(0.01, throttled=True, info=liar, retry_after=None)
    assert not state.remaining_trusted
    # The claimed 1000 left no longer opens the gates.
    state.observe(0.02, throttled=False, info=liar, retry_after=None)
    assert state.tokens <= state.capacity
    assert state.delay(0.02) > 0.0


def test_a_cancelled_grant_gives_its_token_back() -> None:
    state = RateState(rate_limit=1.0)
    state.grant(0.0)
    assert state.delay(0.0) > 0.0
    state.give_back()
    assert state.delay(0.0) == 0.0
    assert state.in_flight == 0


def test_remaining_zero_with_a_reset_holds_back_until_then() -> None:
    state = RateState()
    state.grant(0.0)
    empty = RateLimitInfo(limit=None, remaining=0, reset=3.0)
    state.observe(0.0, throttled=False, info=empty, retry_after=None)
    assert state.delay(0.0) == pytest.approx(3.0)
    assert not math.isinf(state.delay(0.0))


def test_later_cuts_go_by_what_was_sent_so_a_client_sharing_a_limit_is_not_starved() -> None:
    state = RateState()
    _end_slow_start(state)
    for step in range(10):
        _exchange(state, 0.1 + step / 10)
    for _ in range(3):
        _exchange(state, 1.0, throttled=True)
    first = state.rate(1.0)
    assert first is not None
    # Another client takes most of the bucket: of what this one sends at its rate, most
    # comes back throttled. Each cut is 30% of the rate it was sending at, not of the
    # trickle that got through, so it keeps a fair part of the limit and converges.
    now, cuts = 1.0, []
    for step in range(21):
        now = 1.0 + step / first
        before = state.rate(now)
        _exchange(state, now, throttled=step % 3 != 0)
        after = state.rate(now)
        if before is not None and after is not None and after < before * 0.95:
            cuts.append(after / before)
    assert cuts
    assert all(ratio >= BETA * 0.99 for ratio in cuts)
