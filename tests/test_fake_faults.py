"""Fault injection in the fake: each kind on the wire, rule matching, counters, seeds."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import re
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from asyncbackups.testing import FakeBackupsAPI, Fault, FaultKind, FaultRule, Faults, When


@pytest.fixture
async def api() -> AsyncIterator[FakeBackupsAPI]:
    async with FakeBackupsAPI() as fake:
        yield fake


@pytest.fixture
async def http(api: FakeBackupsAPI) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(headers=api.auth_headers) as session:
        yield session


async def create(http: aiohttp.ClientSession, api: FakeBackupsAPI, **kwargs: Any) -> int:
    async with http.post(api.url("backups/"), json={"server_id": 12345}, **kwargs) as response:
        await response.read()
        return response.status


def manual_ids(api: FakeBackupsAPI) -> list[int]:
    return [backup.id for backup in api.backups(backup_type="manual")]


# -- each kind on the wire -------------------------------------------------------------


async def test_status_before_answers_with_retry_after_and_leaves_state_alone(
    api: FakeBackupsAPI, http: aiohttp.ClientSession
) -> None:
    api.faults.status_before(503, retry_after=0.05, method="POST", path="backups/", times=1)
    async with http.post(api.url("backups/"), json={"server_id": 12345}) as response:
        assert response.status == 503
        assert response.headers["Retry-After"] == "0.05"
        assert await response.json() == {
            "detail": "Service temporarily unavailable, try again later."
        }
    assert manual_ids(api) == [499]
    assert await create(http, api) == 201


async def test_status_before_429_reads_like_drf_throttling(
    api: FakeBackupsAPI, http: aiohttp.ClientSession
) -> None:
    api.faults.status_before(429, retry_after=3, times=1)
    async with http.get(api.url("backups/")) as response:
        assert response.status == 429
        assert response.headers["Retry-After"] == "3"
        assert await response.json() == {
            "detail": "Request was throttled. Expected available in 3 seconds."
        }


async def test_status_before_takes_a_custom_body_and_content_type(
    api: FakeBackupsAPI, http: aiohttp.ClientSession
) -> None:
    api.faults.status_before(502, body="<h1>bad gateway</h1>", content_type="text/html", times=1)
    async with http.get(api.url("backups/")) as response:
        assert response.status == 502
        assert response.content_type == "text/html"
        assert await response.text() == "<h1>bad gateway</h1>"
        assert "Retry-After" not in response.headers


async def test_status_before_is_answered_even_to_strangers(api: FakeBackupsAPI) -> None:
    api.faults.status_before(503, times=1)
    async with aiohttp.ClientSession() as anonymous, anonymous.get(api.url("backups/")) as response:
        assert response.status == 503


async def test_status_after_does_the_work_then_answers_500(
    api: FakeBackupsAPI, http: aiohttp.ClientSession
) -> None:
    api.faults.status_after(500, method="POST", path="backups/", times=1)
    async with http.post(api.url("backups/"), json={"server_id": 12345}) as response:
        assert response.status == 500
        assert await response.json() == {"detail": "A server error occurred."}
    assert manual_ids(api) == [502, 499]


@pytest.mark.parametrize(("status", "detail"), [(502, "Bad gateway."), (504, "Gateway timeout.")])
async def test_status_after_gateway_errors_have_drf_bodies(
    api: FakeBackupsAPI, http: aiohttp.ClientSession, status: int, detail: str
) -> None:
    api.faults.status_after(status, times=1)
    async with http.delete(api.url("backups/501/")) as response:
        assert response.status == status
        assert await response.json() == {"detail": detail}
    assert [backup.id for backup in api.backups()] == [499, 495]


async def test_drop_before_closes_the_connection_and_leaves_state_alone(
    api: FakeBackupsAPI, http: aiohttp.ClientSession
) -> None:
    api.faults.drop_before(method="POST", times=1)
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await create(http, api)
    assert manual_ids(api) == [499]
    assert api.request_log[-1].status is None
    assert api.request_log[-1].fault is FaultKind.DROP_BEFORE
    assert await create(http, api) == 201


async def test_drop_after_does_the_work_then_closes_the_connection(
    api: FakeBackupsAPI, http: aiohttp.ClientSession
) -> None:
    api.faults.drop_after(method="POST", times=1)
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await create(http, api)
    assert manual_ids(api) == [502, 499]


async def test_aiohttp_repeats_a_dropped_get_once_so_a_single_drop_is_invisible(
    api: FakeBackupsAPI, http: aiohttp.ClientSession
) -> None:
    api.faults.drop_before(method="GET", path="backups/{id}/", times=1)
    async with http.get(api.url("backups/501/")) as response:
        assert response.status == 200
    assert api.requests[("GET", "backups/{id}/")] == 2

    api.faults.drop_before(method="GET", path="backups/{id}/", times=2)
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await http.get(api.url("backups/501/"))


async def test_delay_trips_a_client_timeout_but_the_work_is_still_done(
    api: FakeBackupsAPI, http: aiohttp.ClientSession
) -> None:
    api.faults.delay(0.15, method="POST", times=1)
    with pytest.raises(asyncio.TimeoutError):
        await create(http, api, timeout=aiohttp.ClientTimeout(total=0.05))
    assert manual_ids(api) == [499]
    for _ in range(40):
        if manual_ids(api) != [499]:
            break
        await asyncio.sleep(0.01)
    assert manual_ids(api) == [502, 499]


async def test_delay_within_the_timeout_only_slows_the_answer(
    api: FakeBackupsAPI, http: aiohttp.ClientSession
) -> None:
    api.faults.delay(0.05, times=1)
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await create(http, api) == 201
    assert loop.time() - started >= 0.05


async def test_malformed_truncated_keeps_the_status_and_breaks_the_json(
    api: FakeBackupsAPI, http: aiohttp.ClientSession
) -> None:
    api.faults.malformed("truncated", method="POST", times=1)
    async with http.post(api.url("backups/"), json={"server_id": 12345}) as response:
        assert response.status == 201
        assert response.content_type == "application/json"
        text = await response.text()
    assert text.startswith('{"id":502')
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)
    assert manual_ids(api) == [502, 499]


async def test_malformed_html_sends_a_proxy_error_page_with_the_success_status(
    api: FakeBackupsAPI, http: aiohttp.ClientSession
) -> None:
    api.faults.malformed("html", method="GET", times=1)
    async with http.get(api.url("backups/")) as response:
        assert response.status == 200
        assert response.content_type == "text/html"
        assert "<html>" in await response.text()


async def test_malformed_turns_a_204_into_a_200_with_a_broken_body(
    api: FakeBackupsAPI, http: aiohttp.ClientSession
) -> None:
    api.faults.malformed(method="DELETE", times=1)
    async with http.delete(api.url("backups/501/")) as response:
        assert response.status == 200
        with pytest.raises(json.JSONDecodeError):
            json.loads(await response.read())
    assert [backup.id for backup in api.backups()] == [499, 495]


async def test_idempotent_replay_after_a_drop_after_returns_the_created_backup(
    api: FakeBackupsAPI, http: aiohttp.ClientSession
) -> None:
    api.faults.drop_after(method="POST", times=1)
    headers = {"Idempotency-Key": "retry-me"}
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await create(http, api, headers=headers)
    async with http.post(
        api.url("backups/"), json={"server_id": 12345}, headers=headers
    ) as response:
        assert response.status == 201
        assert response.headers["Idempotent-Replayed"] == "true"
        assert (await response.json())["id"] == 502
    assert manual_ids(api) == [502, 499]


# -- matching ------------------------------------------------------------------------


async def test_times_limits_a_rule_and_skip_lets_the_first_requests_pass(
    api: FakeBackupsAPI, http: aiohttp.ClientSession
) -> None:
    rule = api.faults.status_before(503, path="backups/", skip=1, times=2)
    statuses = []
    for _ in range(5):
        async with http.get(api.url("backups/")) as response:
            statuses.append(response.status)
    assert statuses == [200, 503, 503, 200, 200]
    assert (rule.matched, rule.fired, rule.exhausted) == (5, 2, True)


@pytest.mark.parametrize(
    ("path", "hits"),
    [
        ("backups/{id}/", ["backups/501/", "backups/499/"]),
        ("backups/501/", ["backups/501/"]),
        ("/api/v1/backups/501/", ["backups/501/"]),
        (re.compile(r"backups/49\d/"), ["backups/499/"]),
        ("backups/", ["backups/"]),
        (None, ["backups/", "backups/501/", "backups/499/"]),
    ],
)
async def test_rule_paths_match_exact_paths_templates_and_patterns(
    api: FakeBackupsAPI,
    http: aiohttp.ClientSession,
    path: str | re.Pattern[str] | None,
    hits: list[str],
) -> None:
    api.faults.status_before(418, path=path)
    failed = []
    for target in ["backups/", "backups/501/", "backups/499/"]:
        async with http.get(api.url(target)) as response:
            if response.status == 418:
                failed.append(target)
    assert failed == hits


async def test_rule_methods_match_case_insensitively_and_star_means_any(
    api: FakeBackupsAPI, http: aiohttp.ClientSession
) -> None:
    api.faults.status_before(503, method="post", times=1)
    async with http.get(api.url("backups/")) as response:
        assert response.status == 200
    assert await create(http, api) == 503
    api.faults.status_before(503, method="*", times=1)
    async with http.get(api.url("backups/")) as response:
        assert response.status == 503


async def test_first_rule_that_fires_wins_and_removed_rules_stop(
    api: FakeBackupsAPI, http: aiohttp.ClientSession
) -> None:
    first = api.faults.status_before(503)
    api.faults.status_before(429)
    assert await create(http, api) == 503
    api.faults.remove(first)
    assert await create(http, api) == 429
    api.faults.clear()
    assert await create(http, api) == 201
    assert api.faults.rules == ()


# -- counters ------------------------------------------------------------------------


async def test_requests_are_counted_by_method_and_template(
    api: FakeBackupsAPI, http: aiohttp.ClientSession
) -> None:
    await create(http, api)
    for backup_id in (501, 499, 12):
        async with http.get(api.url(f"backups/{backup_id}/")) as response:
            await response.read()
    async with http.post(api.url("servers/12345/restore/"), json={"backup_id": 501}) as response:
        await response.read()
    async with http.get(api.url("elsewhere/")) as response:
        await response.read()
    assert api.requests == Counter(
        {
            ("POST", "backups/"): 1,
            ("GET", "backups/{id}/"): 3,
            ("POST", "servers/{server_id}/restore/"): 1,
            ("GET", "elsewhere/"): 1,
        }
    )
    api.journal.clear()
    assert api.requests == Counter()


async def test_injected_faults_are_counted_by_kind(
    api: FakeBackupsAPI, http: aiohttp.ClientSession
) -> None:
    api.faults.status_before(503, times=1)
    api.faults.status_after(500, times=1)
    api.faults.malformed(times=1)
    for _ in range(4):
        await create(http, api)
    assert api.faults.injected == Counter(
        {FaultKind.STATUS_BEFORE: 1, FaultKind.STATUS_AFTER: 1, FaultKind.MALFORMED: 1}
    )
    assert api.faults.injected["status_after"] == 1
    api.faults.reset_counters()
    assert api.faults.injected == Counter()


async def test_the_request_log_keeps_keys_bodies_and_outcomes(
    api: FakeBackupsAPI, http: aiohttp.ClientSession
) -> None:
    api.faults.status_before(503, times=1)
    for _ in range(2):
        await create(http, api, headers={"Idempotency-Key": "abc"})
    first, second = api.request_log
    assert (first.status, first.fault, first.idempotency_key) == (503, "status_before", "abc")
    assert (second.status, second.fault, second.json()) == (201, None, {"server_id": 12345})
    assert second.template == "backups/"


# -- seeded rates --------------------------------------------------------------------


def draws(faults: Faults, count: int) -> list[str | None]:
    picked = [faults.pick("GET", "backups/", "backups/") for _ in range(count)]
    return [None if fault is None else fault.kind.value for fault in picked]


def test_a_rate_is_roughly_honoured() -> None:
    faults = Faults(seed=1)
    faults.status_before(503, rate=0.3)
    hits = sum(kind is not None for kind in draws(faults, 2000))
    assert 500 < hits < 700


def test_the_same_seed_gives_the_same_faults_and_another_seed_others() -> None:
    def sequence(seed: int) -> list[str | None]:
        faults = Faults(seed=seed)
        faults.drop_before(rate=0.2)
        faults.status_after(rate=0.2)
        return draws(faults, 300)

    assert sequence(7) == sequence(7)
    assert sequence(7) != sequence(8)


def test_adding_a_rule_does_not_disturb_the_draws_of_earlier_rules() -> None:
    alone = Faults(seed=3)
    alone.status_before(rate=0.5)
    together = Faults(seed=3)
    rule = together.status_before(rate=0.5)
    together.drop_before(rate=0.5)
    first = draws(alone, 200)
    second = draws(together, 200)
    assert [kind == "status_before" for kind in first] == [
        kind == "status_before" for kind in second
    ]
    assert rule.fired == first.count("status_before")


async def test_seeded_rates_are_deterministic_over_http() -> None:
    async def statuses(seed: int) -> list[int]:
        async with (
            FakeBackupsAPI(seed=seed) as api,
            aiohttp.ClientSession(headers=api.auth_headers) as http,
        ):
            api.faults.status_before(503, rate=0.5)
            result = []
            for _ in range(40):
                async with http.get(api.url("backups/")) as response:
                    result.append(response.status)
            return result

    first, again, other = await statuses(11), await statuses(11), await statuses(12)
    assert first == again
    assert first != other
    assert {200, 503} == set(first)


def test_chaos_draws_every_kind_in_a_mix_at_about_the_rate() -> None:
    faults = Faults()
    faults.chaos(0.25, seed=5)
    kinds = draws(faults, 4000)
    injected = [kind for kind in kinds if kind is not None]
    assert 850 < len(injected) < 1150
    assert set(injected) == {kind.value for kind in FaultKind}
    per_kind = Counter(injected)
    assert min(per_kind.values()) > 100


def test_chaos_can_be_narrowed_to_some_kinds_and_uses_short_pauses() -> None:
    faults = Faults()
    faults.chaos(1.0, kinds=["status_before", "delay"], retry_after=0.02, delay=0.01)
    picked = [faults.pick("POST", "backups/", "backups/") for _ in range(200)]
    assert {fault.kind for fault in picked if fault} == {FaultKind.STATUS_BEFORE, FaultKind.DELAY}
    assert {fault.status for fault in picked if fault and fault.status} == {429, 503}
    assert {fault.retry_after for fault in picked if fault and fault.retry_after} == {"0.02"}


def test_a_rule_with_several_faults_draws_among_them() -> None:
    faults = Faults(seed=2)
    faults.add(Fault(FaultKind.DROP_BEFORE), Fault(FaultKind.DROP_AFTER), times=50)
    assert set(draws(faults, 60)) == {"drop_before", "drop_after", None}


@pytest.mark.parametrize(
    "kwargs",
    [{"rate": 1.5}, {"rate": -0.1}, {"times": -1}, {"skip": -1}],
)
def test_rule_arguments_out_of_range_are_rejected(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        Faults().drop_before(**kwargs)


SHORTCUTS: dict[str, Callable[[Faults, When], FaultRule]] = {
    "status_before": lambda faults, when: faults.status_before(429, retry_after=1, **when),
    "status_after": lambda faults, when: faults.status_after(502, **when),
    "drop_before": lambda faults, when: faults.drop_before(**when),
    "drop_after": lambda faults, when: faults.drop_after(**when),
    "delay": lambda faults, when: faults.delay(0.5, **when),
    "malformed": lambda faults, when: faults.malformed("html", **when),
    "add": lambda faults, when: faults.add(Fault(FaultKind.DROP_BEFORE), **when),
}


@pytest.mark.parametrize("shortcut", SHORTCUTS)
def test_every_shortcut_takes_the_when_keywords(shortcut: str) -> None:
    when: When = {
        "method": "post",
        "path": "/api/v1/backups/",
        "times": 2,
        "rate": 0.5,
        "skip": 1,
    }

    rule = SHORTCUTS[shortcut](Faults(), when)

    assert (rule.method, rule.path, rule.times, rule.rate, rule.skip) == (
        "POST",
        "backups/",
        2,
        0.5,
        1,
    )


@pytest.mark.parametrize("shortcut", SHORTCUTS)
def test_every_shortcut_defaults_to_every_request_always(shortcut: str) -> None:
    rule = SHORTCUTS[shortcut](Faults(), {})

    assert (rule.method, rule.path, rule.times, rule.rate, rule.skip) == (None, None, None, None, 0)


@pytest.mark.parametrize("shortcut", SHORTCUTS)
def test_a_shortcut_refuses_an_unknown_when_keyword(shortcut: str) -> None:
    faults = Faults()

    with pytest.raises(TypeError, match="tims"):
        SHORTCUTS[shortcut](faults, {"tims": 1})  # type: ignore[typeddict-unknown-key]
    assert faults.rules == ()


def test_fault_arguments_out_of_range_are_rejected() -> None:
    faults = Faults()
    with pytest.raises(ValueError, match="status"):
        faults.status_before(99)
    with pytest.raises(ValueError, match="seconds"):
        faults.delay(-1)
    with pytest.raises(ValueError, match="style"):
        faults.malformed("xml")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="retry_after"):
        faults.status_before(429, retry_after=-1)


# -- hygiene -------------------------------------------------------------------------


async def test_chaos_over_http_logs_nothing_above_debug_and_leaks_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    outcomes: Counter[str] = Counter()
    async with (
        FakeBackupsAPI(seed=4, backup_seconds=0) as api,
        aiohttp.ClientSession(headers=api.auth_headers) as http,
    ):
        api.faults.chaos(0.6, delay=0.01, retry_after=0.01)

        async def one(index: int) -> None:
            method, url = (
                ("POST", api.url("backups/")) if index % 2 else ("GET", api.url("backups/"))
            )
            try:
                async with http.request(method, url, json={"server_id": 12345}) as response:
                    await response.read()
                    outcomes[str(response.status)] += 1
            except aiohttp.ClientError as exc:
                outcomes[type(exc).__name__] += 1

        await asyncio.gather(*(one(index) for index in range(150)))
        injected = api.faults.injected
    gc.collect()
    assert set(injected) == set(FaultKind)
    assert outcomes["ServerDisconnectedError"] > 0
    noisy = [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert noisy == []
