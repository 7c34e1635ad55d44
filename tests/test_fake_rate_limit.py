"""The fake as a rate-limited provider: its token bucket, 429s, RateLimit-* headers, stats.

The bucket is checked on plain numbers; the fake over real loopback HTTP with plain
aiohttp, on a frozen clock moved with ``advance``, asserting what went over the wire.
"""

from __future__ import annotations

import asyncio
import calendar
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from multidict import CIMultiDictProxy

from asyncbackups.testing import Clock, FakeBackupsAPI, build_parser, fake_from_arguments
from asyncbackups.testing._rate_limit import Take, TokenBucket

START = datetime(2025, 1, 16, 12, 0, 0, tzinfo=UTC)
START_UNIX = calendar.timegm(START.utctimetuple())
RATE_LIMIT_HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")


# -- the bucket, on plain numbers ------------------------------------------------------


def test_bucket_serves_its_burst_at_once_then_refuses() -> None:
    bucket = TokenBucket(2, burst=3)

    takes = [bucket.take(0.0) for _ in range(4)]

    assert [take.allowed for take in takes] == [True, True, True, False]
    assert [take.remaining for take in takes] == [2, 1, 0, 0]


@pytest.mark.parametrize(("rate", "burst"), [(20.0, 20.0), (2.5, 2.5), (0.5, 1.0), (1.0, 1.0)])
def test_bucket_default_burst_is_one_seconds_worth_and_at_least_one(
    rate: float, burst: float
) -> None:
    assert TokenBucket(rate).burst == burst


def test_bucket_reports_remaining_retry_after_and_full_after_exactly() -> None:
    bucket = TokenBucket(2, burst=4)

    assert bucket.take(0.0) == Take(allowed=True, remaining=3, retry_after=0.0, full_after=0.5)
    for _ in range(3):
        bucket.take(0.0)
    assert bucket.take(0.0) == Take(allowed=False, remaining=0, retry_after=0.5, full_after=2.0)
    # A quarter of a second later: half a token there, half a token to go.
    assert bucket.take(0.25) == Take(allowed=False, remaining=0, retry_after=0.25, full_after=1.75)


def test_bucket_refills_at_its_rate_and_never_beyond_its_burst() -> None:
    bucket = TokenBucket(4, burst=2)
    bucket.take(0.0)
    bucket.take(0.0)

    assert not bucket.take(0.2).allowed  # 0.8 of a token
    assert bucket.take(0.25).allowed  # 1.0: taken
    assert bucket.take(1000.0).remaining == 1  # full (2) long ago, one taken now


def test_bucket_counts_whole_tokens_exactly_despite_float_refill() -> None:
    # 20 a second for 0.05 s is one token, though 0.05 * 20 is not exactly 1 in floats.
    bucket = TokenBucket(20, burst=1)
    now = 0.0
    for _ in range(1000):
        assert bucket.take(now).allowed
        assert not bucket.take(now).allowed
        now += 0.05


def test_bucket_refills_nothing_for_a_clock_moved_back() -> None:
    bucket = TokenBucket(1, burst=1)
    bucket.take(100.0)

    assert not bucket.take(50.0).allowed
    assert not bucket.take(50.5).allowed  # refilling resumed from 50.0: half a token
    assert bucket.take(51.0).allowed


def test_bucket_limit_is_the_burst_rounded_down() -> None:
    assert TokenBucket(1, burst=2.5).limit == 2
    assert TokenBucket(30).limit == 30


@pytest.mark.parametrize(
    ("rate", "burst", "message"),
    [
        (0, None, "rate_limit must be a positive number"),
        (-1, None, "rate_limit must be a positive number"),
        (float("nan"), None, "rate_limit must be a positive number"),
        (float("inf"), None, "rate_limit must be a positive number"),
        (5, 0.5, "burst must be at least 1"),
        (5, float("inf"), "burst must be at least 1"),
    ],
)
def test_bucket_refuses_a_rate_that_is_not_positive_or_a_burst_below_one(
    rate: float, burst: float | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        TokenBucket(rate, burst)


def test_bucket_shared_by_threads_grants_exactly_its_burst() -> None:
    bucket = TokenBucket(1, burst=100)
    granted: list[bool] = []
    lock = threading.Lock()
    go = threading.Barrier(8)

    def hammer() -> None:
        go.wait()
        results = [bucket.take(0.0).allowed for _ in range(50)]
        with lock:
            granted.extend(results)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert granted.count(True) == 100
    assert len(granted) == 400


# -- the fake over HTTP ----------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> int:
        return int(self.headers[name])


def frozen_fake(**options: Any) -> FakeBackupsAPI:
    return FakeBackupsAPI(clock=Clock(start=START, frozen=True), backup_seconds=60, **options)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def call(
    http: aiohttp.ClientSession,
    api: FakeBackupsAPI,
    method: str,
    path: str,
    *,
    token: str | None = None,
    anonymous: bool = False,
    **kwargs: Any,
) -> Answer:
    """One request to the fake's API, with its token (or ``token``, or none if anonymous)."""
    headers = {} if anonymous else {"Authorization": f"Bearer {token or api.token}"}
    async with http.request(method, api.url(path), headers=headers, **kwargs) as response:
        return Answer(response.status, response.headers, await response.read())


async def test_burst_is_served_then_429_with_retry_after_and_a_drf_body(
    http: aiohttp.ClientSession,
) -> None:
    async with frozen_fake(rate_limit=2, burst=3) as api:
        answers = [await call(http, api, "GET", "backups/") for _ in range(4)]

    assert [answer.status for answer in answers] == [200, 200, 200, 429]
    throttled = answers[-1]
    assert throttled.header("Retry-After") >= 1
    assert throttled.headers["Retry-After"] == "1"  # half a second, rounded up
    assert throttled.headers["Content-Type"] == "application/json"
    assert throttled.json() == {"detail": "Request was throttled. Expected available in 1 second."}
    assert all("Retry-After" not in answer.headers for answer in answers[:3])


async def test_every_api_answer_carries_ratelimit_headers_with_exact_values(
    http: aiohttp.ClientSession,
) -> None:
    async with frozen_fake(rate_limit=1, burst=5) as api:
        answers = [
            await call(http, api, "GET", "backups/"),
            await call(http, api, "POST", "backups/", json={"server_id": 12345}),
            await call(http, api, "GET", "backups/999/"),
            await call(http, api, "GET", "backups/", token="wrong"),
            await call(http, api, "DELETE", "backups/495/"),
            await call(http, api, "GET", "backups/"),
        ]

    assert [answer.status for answer in answers] == [200, 201, 404, 401, 204, 429]
    assert [answer.header("RateLimit-Limit") for answer in answers] == [5] * 6
    assert [answer.header("RateLimit-Remaining") for answer in answers] == [4, 3, 2, 1, 0, 0]
    # Full again one second per token taken: a UNIX time, ahead of the fake's clock.
    resets = [answer.header("RateLimit-Reset") - START_UNIX for answer in answers]
    assert resets == [1, 2, 3, 4, 5, 5]
    assert answers[-1].headers["Retry-After"] == "1"


async def test_reset_is_a_unix_time_rounded_up_and_retry_after_whole_seconds_up(
    http: aiohttp.ClientSession,
) -> None:
    async with frozen_fake(rate_limit=0.4, burst=1) as api:
        served = await call(http, api, "GET", "backups/")
        refused = await call(http, api, "GET", "backups/")
        api.advance(1)  # 0.4 of a token now: 1.5 s to go
        later = await call(http, api, "GET", "backups/")

    assert served.header("RateLimit-Reset") == START_UNIX + 3  # 2.5 s, rounded up
    assert refused.headers["Retry-After"] == "3"  # 2.5 s, rounded up
    assert refused.json()["detail"] == "Request was throttled. Expected available in 3 seconds."
    assert later.status == 429
    assert later.headers["Retry-After"] == "2"  # 1.5 s, rounded up
    assert later.header("RateLimit-Reset") == START_UNIX + 3  # still 1 + 1.5 s, rounded up


async def test_advancing_the_clock_refills_the_bucket_without_sleeping(
    http: aiohttp.ClientSession,
) -> None:
    async with frozen_fake(rate_limit=2, burst=4) as api:
        for _ in range(4):
            await call(http, api, "GET", "backups/")
        assert (await call(http, api, "GET", "backups/")).status == 429

        api.advance(0.5)  # one token
        refilled = await call(http, api, "GET", "backups/")
        again = await call(http, api, "GET", "backups/")
        api.advance(3600)  # full, and no fuller
        full = await call(http, api, "GET", "backups/")

    assert (refilled.status, refilled.header("RateLimit-Remaining")) == (200, 0)
    assert again.status == 429
    assert (full.status, full.header("RateLimit-Remaining")) == (200, 3)


def test_a_fake_on_a_running_clock_refills_in_real_time() -> None:
    def status() -> int:
        request = urllib.request.Request(api.url("backups/"), headers=api.auth_headers)
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            return error.code

    with FakeBackupsAPI(rate_limit=10, burst=1) as api:
        assert status() == 200
        time.sleep(0.15)  # 1.5 tokens' worth at 10 a second; the bucket holds one
        assert status() == 200


async def test_without_rate_limit_headers_a_429_is_bare_and_no_answer_has_them(
    http: aiohttp.ClientSession,
) -> None:
    async with frozen_fake(rate_limit=1, burst=2, rate_limit_headers=False) as api:
        answers = [
            await call(http, api, "GET", "backups/"),
            await call(http, api, "GET", "backups/999/"),
            await call(http, api, "GET", "backups/"),
        ]

    assert [answer.status for answer in answers] == [200, 404, 429]
    for answer in answers:
        assert not [name for name in answer.headers if name.lower().startswith("ratelimit")]
    assert answers[-1].headers["Retry-After"] == "1"


async def test_without_a_rate_limit_nothing_is_throttled_and_no_header_is_sent(
    http: aiohttp.ClientSession,
) -> None:
    async with frozen_fake() as api:
        answers = [await call(http, api, "GET", "backups/") for _ in range(50)]
        stats = api.stats()

    assert {answer.status for answer in answers} == {200}
    for name in (*RATE_LIMIT_HEADERS, "Retry-After"):
        assert all(name not in answer.headers for answer in answers)
    assert (stats["throttled"], stats["rate_limit"]) == (0, None)


async def test_a_throttled_post_creates_nothing(http: aiohttp.ClientSession) -> None:
    async with frozen_fake(rate_limit=1, burst=1) as api:
        created = await call(http, api, "POST", "backups/", json={"server_id": 12345})
        throttled = await call(http, api, "POST", "backups/", json={"server_id": 12345})
        backups = [backup.id for backup in api.backups(server_id=12345)]
        log = api.request_log

    assert (created.status, throttled.status) == (201, 429)
    assert backups == [502, 501, 499, 495]
    assert [(record.status, record.throttled) for record in log] == [(201, False), (429, True)]


async def test_one_bucket_is_shared_by_every_client_and_connection() -> None:
    async with (
        frozen_fake(rate_limit=1, burst=2) as api,
        aiohttp.ClientSession() as first,
        aiohttp.ClientSession() as second,
    ):
        answers = [
            await call(first, api, "GET", "backups/"),
            await call(second, api, "GET", "backups/"),
            await call(first, api, "GET", "backups/"),
            await call(second, api, "GET", "backups/", anonymous=True),
        ]

    assert [answer.status for answer in answers] == [200, 200, 429, 429]


async def test_unauthenticated_requests_spend_a_token_too(
    http: aiohttp.ClientSession,
) -> None:
    async with frozen_fake(rate_limit=1, burst=2) as api:
        stranger = await call(http, api, "GET", "backups/", anonymous=True)
        owner = await call(http, api, "GET", "backups/")
        late = await call(http, api, "GET", "backups/")

    assert (stranger.status, stranger.header("RateLimit-Remaining")) == (401, 1)
    assert (owner.status, owner.header("RateLimit-Remaining")) == (200, 0)
    assert late.status == 429


async def test_concurrent_requests_get_exactly_the_burst_through(
    http: aiohttp.ClientSession,
) -> None:
    async with frozen_fake(rate_limit=1, burst=5) as api:
        answers = await asyncio.gather(*(call(http, api, "GET", "backups/") for _ in range(20)))
        throttled = api.stats()["throttled"]

    statuses = [answer.status for answer in answers]
    assert (statuses.count(200), statuses.count(429)) == (5, 15)
    remaining = sorted(answer.header("RateLimit-Remaining") for answer in answers)
    assert remaining == [0] * 16 + [1, 2, 3, 4]
    assert throttled == 15


async def test_stats_count_the_rate_limits_429s_not_the_injected_ones(
    http: aiohttp.ClientSession,
) -> None:
    async with frozen_fake(rate_limit=1, burst=2) as api:
        api.faults.status_before(429, retry_after=1, times=1)
        injected = await call(http, api, "GET", "backups/")
        await call(http, api, "GET", "backups/")
        for _ in range(3):
            await call(http, api, "GET", "backups/")
        stats = api.stats()
        async with http.get(api.stats_url) as response:
            over_http = await response.json()
        before = api.reset_stats()
        after = api.stats()

    assert (injected.status, injected.header("RateLimit-Remaining")) == (429, 1)
    assert stats["throttled"] == 3
    assert stats["faults"] == {"status_before": 1}
    assert stats["requests"] == {"GET backups/": 5}  # throttled requests are requests too
    assert stats["rate_limit"] == {"rate": 1.0, "burst": 2.0}
    assert over_http == stats
    assert before["throttled"] == 3
    assert (after["throttled"], after["requests"], after["rate_limit"]) == (
        0,
        {},
        {"rate": 1.0, "burst": 2.0},
    )


async def test_the_control_routes_are_never_throttled_and_spend_no_token(
    http: aiohttp.ClientSession,
) -> None:
    async with frozen_fake(rate_limit=1, burst=1) as api:
        controls = []
        for _ in range(5):
            async with http.get(api.stats_url) as response:
                controls.append((response.status, response.headers))
        async with http.post(api.stats_url.replace("stats", "reset-stats")) as response:
            controls.append((response.status, response.headers))
        served = await call(http, api, "GET", "backups/")
        async with http.get(api.stats_url) as response:
            controls.append((response.status, response.headers))

    assert served.status == 200
    assert [status for status, _ in controls] == [200] * 7
    for _, headers in controls:
        assert not [name for name in headers if name.lower().startswith("ratelimit")]


async def test_a_throttled_request_meets_no_fault_and_leaves_it_for_later(
    http: aiohttp.ClientSession,
) -> None:
    async with frozen_fake(rate_limit=1, burst=1) as api:
        await call(http, api, "GET", "backups/")
        api.faults.status_before(503, retry_after=7, times=1)
        throttled = await call(http, api, "GET", "backups/")
        api.advance(1)
        faulted = await call(http, api, "GET", "backups/")
        injected = api.faults.injected

    assert (throttled.status, throttled.headers["Retry-After"]) == (429, "1")
    assert (faulted.status, faulted.headers["Retry-After"]) == (503, "7")
    assert faulted.header("RateLimit-Remaining") == 0  # the faulted request spent its token
    assert injected == {"status_before": 1}


async def test_the_rate_limit_is_set_changed_and_lifted_while_running(
    http: aiohttp.ClientSession,
) -> None:
    async with frozen_fake() as api:
        assert (api.rate_limit, api.burst, api.rate_limit_headers) == (None, None, True)
        assert (await call(http, api, "GET", "backups/")).status == 200

        api.set_rate_limit(0.5, burst=2)
        assert (api.rate_limit, api.burst) == (0.5, 2.0)
        throttled = [(await call(http, api, "GET", "backups/")).status for _ in range(3)]

        api.rate_limit = 3  # a new, full bucket of the default burst: 3
        refilled = await call(http, api, "GET", "backups/")
        api.rate_limit_headers = False
        bare = await call(http, api, "GET", "backups/")

        api.rate_limit = None
        lifted = [await call(http, api, "GET", "backups/") for _ in range(10)]
        stats = api.stats()

    assert throttled == [200, 200, 429]
    assert (refilled.status, refilled.header("RateLimit-Limit")) == (200, 3)
    assert bare.status == 200
    assert "RateLimit-Remaining" not in bare.headers
    assert {answer.status for answer in lifted} == {200}
    assert (stats["throttled"], stats["rate_limit"]) == (1, None)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"rate_limit": 0}, "rate_limit must be a positive number"),
        ({"rate_limit": -2}, "rate_limit must be a positive number"),
        ({"rate_limit": 5, "burst": 0}, "burst must be at least 1"),
        ({"burst": 5}, "burst needs a rate_limit"),
    ],
)
def test_the_fake_refuses_a_bad_rate_limit_at_construction_and_later(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        FakeBackupsAPI(**options)
    api = FakeBackupsAPI()
    with pytest.raises(ValueError, match=message):
        api.set_rate_limit(options.get("rate_limit"), options.get("burst"))
    assert api.rate_limit is None


# -- the command line ------------------------------------------------------------------


def test_command_line_rate_limit_options_reach_the_fake() -> None:
    args = build_parser().parse_args(
        ["--rate-limit", "2.5", "--burst", "10", "--no-rate-limit-headers"]
    )

    api = fake_from_arguments(args)

    assert (args.rate_limit, args.burst, args.no_rate_limit_headers) == (2.5, 10.0, True)
    assert (api.rate_limit, api.burst, api.rate_limit_headers) == (2.5, 10.0, False)


def test_command_line_defaults_to_no_rate_limit_and_headers_on() -> None:
    args = build_parser().parse_args([])
    api = fake_from_arguments(args)

    assert (args.rate_limit, args.burst, args.no_rate_limit_headers) == (None, None, False)
    assert (api.rate_limit, api.burst, api.rate_limit_headers) == (None, None, True)
    assert fake_from_arguments(build_parser().parse_args(["--rate-limit", "0.5"])).burst == 1.0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--rate-limit", "0"], "expected a positive number of requests per second, got '0'"),
        (["--rate-limit", "-3"], "expected a positive number of requests per second"),
        (["--rate-limit", "nan"], "expected a positive number of requests per second"),
        (["--rate-limit", "inf"], "expected a positive number of requests per second"),
        (["--rate-limit", "fast"], "expected requests per second, got 'fast'"),
        (["--rate-limit", "5", "--burst", "0.5"], "expected a burst of at least 1 request"),
        (["--rate-limit", "5", "--burst", "nan"], "expected a burst of at least 1 request"),
        (["--rate-limit", "5", "--burst", "lots"], "expected a number of requests, got 'lots'"),
    ],
)
def test_command_line_refuses_a_bad_rate_limit_or_burst(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser(prog="fake").parse_args(argv)

    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert message in error
    assert ("--burst" if "--burst" in argv else "--rate-limit") in error


def test_command_line_refuses_a_burst_without_a_rate_limit() -> None:
    with pytest.raises(ValueError, match="--burst needs --rate-limit"):
        fake_from_arguments(build_parser().parse_args(["--burst", "5"]))


def test_command_line_help_describes_the_rate_limit_options() -> None:
    text = build_parser(prog="fake").format_help()

    for option in ("--rate-limit R", "--burst B", "--no-rate-limit-headers"):
        assert option in text
    assert "429" in text
    assert "RateLimit-*" in text


def test_asyncbackups_serve_passes_the_rate_limit_options_on() -> None:
    from asyncbackups._cli.commands.serve import serve_namespace

    argv = ["--rate-limit", "4", "--burst", "8", "--no-rate-limit-headers"]

    served = vars(serve_namespace(argv))

    assert served == vars(build_parser().parse_args(argv))
    options = (served["rate_limit"], served["burst"], served["no_rate_limit_headers"])
    assert options == (4.0, 8.0, True)
    assert vars(serve_namespace([]))["rate_limit"] is None


# -- the pytest fixture ----------------------------------------------------------------


@pytest.fixture
def frozen_fixture_fake(fake_backups_api: FakeBackupsAPI) -> FakeBackupsAPI:
    # The fixture's fake runs on real time: freeze it so no token trickles in mid-test.
    fake_backups_api.clock.freeze()
    return fake_backups_api


@pytest.mark.fake_backups_api(rate_limit=5, burst=5)
def test_the_fixture_marker_configures_the_rate_limit(
    frozen_fixture_fake: FakeBackupsAPI,
) -> None:
    api = frozen_fixture_fake

    def answer() -> tuple[int, str | None, str | None]:
        request = urllib.request.Request(api.url("backups/"), headers=api.auth_headers)
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, response.headers["RateLimit-Remaining"], None
        except urllib.error.HTTPError as error:
            with error:
                return (
                    error.code,
                    error.headers["RateLimit-Remaining"],
                    error.headers["Retry-After"],
                )

    answers = [answer() for _ in range(6)]

    assert (api.rate_limit, api.burst) == (5.0, 5.0)
    assert answers == [
        (200, "4", None),
        (200, "3", None),
        (200, "2", None),
        (200, "1", None),
        (200, "0", None),
        (429, "0", "1"),
    ]
    assert api.stats()["throttled"] == 1
