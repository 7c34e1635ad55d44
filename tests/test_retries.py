"""Retries: which failures are tried again, how long the client waits, and what it logs."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from conftest import (
    BACKUP,
    BACKUP_501,
    BACKUPS_URL,
    TOKEN,
    LoopbackAPI,
    MockAPI,
    StartLoopback,
    json_response,
    loopback_client,
    sent_count,
    until,
)

from asyncbackups import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BackupsClient,
    BadRequestError,
    NotFoundError,
    RateLimitError,
    ServerError,
)

URL_501 = BACKUPS_URL + "501/"


def refused() -> aiohttp.ClientConnectorError:
    key = aiohttp.client_reqrep.ConnectionKey("admin.vps.org", 443, True, True, None, None, None)
    return aiohttp.ClientConnectorError(key, ConnectionRefusedError(111, "Connection refused"))


def backup_for(request: web.Request) -> web.Response:
    """The backup whose ID ends the request's path (``.../backups/499/``)."""
    backup_id = int(request.path.rstrip("/").rsplit("/", 1)[-1])
    return json_response({**BACKUP, "id": backup_id})


def gets(mock_api: MockAPI) -> int:
    return sent_count(mock_api, "GET", URL_501)


def logged(caplog: pytest.LogCaptureFixture, text: str) -> bool:
    return any(text in record.getMessage() for record in caplog.records)


# -- what is retried ----------------------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param({"status": 500}, id="500"),
        pytest.param(
            {"status": 502, "body": "<html>Bad Gateway</html>", "content_type": "text/html"},
            id="502",
        ),
        pytest.param({"status": 503, "payload": {"detail": "maintenance"}}, id="503"),
        pytest.param({"status": 504}, id="504"),
        pytest.param({"status": 429}, id="429"),
    ],
)
async def test_get_is_retried_after_a_transient_status_and_then_succeeds(
    scripted_api: LoopbackAPI, scripted_client: BackupsClient, failure: dict[str, Any]
) -> None:
    scripted_api.answer("GET", "backups/501/", **failure)
    scripted_api.answer("GET", "backups/501/", payload=BACKUP_501)
    assert (await scripted_client.backups.get(501)).id == 501
    assert scripted_api.routes() == ["GET backups/501/"] * 2


# aioresponses: each exact aiohttp failure, raised by the SDK's own attempt (a real
# dropped connection would first be repeated by aiohttp itself).
@pytest.mark.parametrize(
    "exception",
    [
        pytest.param(aiohttp.ServerDisconnectedError(), id="dropped"),
        pytest.param(aiohttp.ClientOSError(104, "reset"), id="reset"),
        pytest.param(refused(), id="refused"),
        pytest.param(TimeoutError(), id="timeout"),
        pytest.param(aiohttp.ClientPayloadError("cut short"), id="truncated"),
    ],
)
async def test_get_is_retried_after_a_transport_failure_and_then_succeeds(
    client: BackupsClient, mock_api: MockAPI, exception: BaseException
) -> None:
    mock_api.get(URL_501, exception=exception)
    mock_api.get(URL_501, payload=BACKUP_501)
    assert (await client.backups.get(501)).id == 501
    assert gets(mock_api) == 2


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (404, NotFoundError),
        (403, APIStatusError),
    ],
)
async def test_client_errors_are_never_retried(
    scripted_api: LoopbackAPI, scripted_client: BackupsClient, status: int, kind: type[Exception]
) -> None:
    scripted_api.answer("GET", "backups/501/", status=status, payload={"detail": "no"})
    with pytest.raises(kind):
        await scripted_client.backups.get(501)
    assert scripted_api.routes() == ["GET backups/501/"]


async def test_default_client_makes_four_attempts_in_all(scripted_api: LoopbackAPI) -> None:
    scripted_api.answer("GET", "backups/501/", status=500)
    async with BackupsClient(TOKEN, base_url=scripted_api.base_url, retry_backoff=0) as client:
        with pytest.raises(ServerError):
            await client.backups.get(501)
    assert scripted_api.routes() == ["GET backups/501/"] * 4


@pytest.mark.parametrize("failure", [{"status": 500}, {"status": 429}])
async def test_max_retries_zero_disables_retrying(
    scripted_api: LoopbackAPI, failure: dict[str, Any]
) -> None:
    scripted_api.answer("GET", "backups/501/", **failure)
    async with loopback_client(scripted_api, max_retries=0) as client:
        with pytest.raises((ServerError, RateLimitError)):
            await client.backups.get(501)
    assert scripted_api.routes() == ["GET backups/501/"]


async def test_max_retries_zero_disables_retrying_a_refused_connection(mock_api: MockAPI) -> None:
    mock_api.get(URL_501, exception=refused(), repeat=True)
    async with BackupsClient(TOKEN, max_retries=0) as client:
        with pytest.raises(APIConnectionError):
            await client.backups.get(501)
    assert gets(mock_api) == 1


async def test_exhausted_retries_raise_the_last_error(mock_api: MockAPI) -> None:
    # aioresponses: a dropped connection between two statuses, without aiohttp's repeat.
    mock_api.get(URL_501, status=500)
    mock_api.get(URL_501, exception=aiohttp.ServerDisconnectedError())
    mock_api.get(URL_501, status=503, payload={"detail": "still down"})
    async with BackupsClient(TOKEN, max_retries=2, retry_backoff=0) as client:
        with pytest.raises(ServerError) as caught:
            await client.backups.get(501)
    assert caught.value.status_code == 503
    assert caught.value.body == {"detail": "still down"}
    assert gets(mock_api) == 3


async def test_exhausted_retries_on_connection_errors_raise_the_sdks_error_not_aiohttps(
    mock_api: MockAPI,
) -> None:
    mock_api.get(URL_501, exception=aiohttp.ServerDisconnectedError(), repeat=True)
    async with BackupsClient(TOKEN, max_retries=1, retry_backoff=0) as client:
        with pytest.raises(APIConnectionError) as caught:
            await client.backups.get(501)
    assert not isinstance(caught.value, aiohttp.ClientError)
    assert caught.value.__cause__ is None
    assert gets(mock_api) == 2


async def test_429s_outlasting_the_calls_timeout_raise_rate_limit_error_with_retry_after(
    scripted_api: LoopbackAPI,
) -> None:
    scripted_api.answer("GET", "backups/501/", status=429, headers={"Retry-After": "0.05"})
    async with loopback_client(scripted_api, max_retries=1, timeout=0.4) as client:
        with pytest.raises(RateLimitError) as caught:
            await client.backups.get(501)
    assert caught.value.status_code == 429
    assert caught.value.retry_after == 0.05
    assert "0.4s timeout" in str(caught.value)
    # 429s spend no retry: the call went on past max_retries + 1 attempts.
    assert len(scripted_api.routes()) > 2


async def test_timeouts_exhausting_retries_raise_api_timeout_error(mock_api: MockAPI) -> None:
    mock_api.get(URL_501, exception=TimeoutError(), repeat=True)
    async with BackupsClient(TOKEN, max_retries=1, retry_backoff=0) as client:
        with pytest.raises(APITimeoutError):
            await client.backups.get(501)
    assert gets(mock_api) == 2


async def test_backoff_never_exceeds_max_retry_backoff(
    scripted_api: LoopbackAPI, caplog: pytest.LogCaptureFixture
) -> None:
    scripted_api.answer("GET", "backups/501/", status=502)
    caplog.set_level(logging.INFO, logger="asyncbackups")
    async with BackupsClient(
        TOKEN,
        base_url=scripted_api.base_url,
        max_retries=3,
        retry_backoff=30.0,
        max_retry_backoff=0.02,
    ) as client:
        with pytest.raises(ServerError):
            await client.backups.get(501)
    # Each pause before a retry, as logged: at most 0.02 s, where 30 s doubling would be.
    logged = (re.search(r"retrying in ([\d.]+)s", r.getMessage()) for r in caplog.records)
    pauses = [float(found[1]) for found in logged if found is not None]
    assert len(pauses) == 3
    assert all(0 <= pause <= 0.02 for pause in pauses)
    assert scripted_api.routes() == ["GET backups/501/"] * 4


# -- Retry-After ----------------------------------------------------------------------


async def test_retry_after_in_seconds_is_waited_before_the_retry(
    loopback: StartLoopback,
) -> None:
    async def busy_once(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        if len(api.seen) == 1:
            return json_response({"detail": "busy"}, status=503, **{"Retry-After": "0.15"})
        return backup_for(request)

    api = await loopback(busy_once)
    async with loopback_client(api) as client:
        assert (await client.backups.get(501)).id == 501
    first, second = api.seen
    assert second.arrived - first.arrived >= 0.15


async def test_retry_after_as_a_past_http_date_retries_at_once(scripted_api: LoopbackAPI) -> None:
    scripted_api.answer(
        "GET", "backups/501/", status=429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}
    )
    scripted_api.answer("GET", "backups/501/", payload=BACKUP_501)
    # A call waits out a 429 only within its timeout: the retry that succeeds shows the
    # date was read as "now", not as a pause.
    async with loopback_client(scripted_api, timeout=1.0) as client:
        assert (await client.backups.get(501)).id == 501
    assert scripted_api.routes() == ["GET backups/501/"] * 2


async def test_retry_after_as_a_distant_http_date_is_not_waited_out(
    scripted_api: LoopbackAPI,
) -> None:
    in_an_hour = format_datetime(datetime.now(UTC) + timedelta(hours=1), usegmt=True)
    scripted_api.answer("GET", "backups/501/", status=429, headers={"Retry-After": in_an_hour})
    async with loopback_client(scripted_api, max_retry_after=60) as client:
        with pytest.raises(RateLimitError) as caught:
            await client.backups.get(501)
    assert caught.value.retry_after == pytest.approx(3600, abs=5)
    assert scripted_api.routes() == ["GET backups/501/"]


async def test_retry_after_above_the_limit_raises_at_once_and_does_not_pause_the_client(
    scripted_api: LoopbackAPI,
) -> None:
    scripted_api.answer("GET", "backups/501/", status=429, headers={"Retry-After": "30"})
    scripted_api.answer("GET", "backups/501/", payload=BACKUP_501)
    async with loopback_client(scripted_api, max_retry_after=5) as client:
        with pytest.raises(RateLimitError) as caught:
            await client.backups.get(501)
        assert caught.value.retry_after == 30.0
        assert (await client.backups.get(501)).id == 501
        assert client.stats.rate_limit_pauses == 0
    assert scripted_api.routes() == ["GET backups/501/"] * 2


async def test_503_with_a_retry_after_above_the_limit_raises_at_once(
    scripted_api: LoopbackAPI,
) -> None:
    scripted_api.answer("GET", "backups/501/", status=503, headers={"Retry-After": "600"})
    async with loopback_client(scripted_api, max_retry_after=5) as client:
        with pytest.raises(ServerError) as caught:
            await client.backups.get(501)
    assert caught.value.retry_after == 600.0
    assert scripted_api.routes() == ["GET backups/501/"]


async def test_429_pauses_other_concurrent_requests_of_the_same_client(
    loopback: StartLoopback, caplog: pytest.LogCaptureFixture
) -> None:
    limited_at: list[float] = []

    async def limit_501_once(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        if request.path.endswith("/501/") and not limited_at:
            limited_at.append(time.monotonic())
            return json_response({"detail": "slow down"}, status=429, **{"Retry-After": "0.2"})
        return backup_for(request)

    caplog.set_level(logging.INFO, logger="asyncbackups")
    api = await loopback(limit_501_once)
    async with loopback_client(api) as client:
        first = asyncio.create_task(client.backups.get(501))
        await until(lambda: logged(caplog, "rate limited"))  # the client has paused
        other = await client.backups.get(499)
        assert (await first).id == 501
    assert other.id == 499
    (other_seen,) = [seen for seen in api.seen if seen.path_qs.endswith("/499/")]
    assert other_seen.arrived >= limited_at[0] + 0.2
    retried = [seen for seen in api.seen if seen.path_qs.endswith("/501/")][1]
    assert retried.arrived >= limited_at[0] + 0.2


async def test_429_pauses_requests_waiting_behind_the_concurrency_cap(
    loopback: StartLoopback,
) -> None:
    limited_at: list[float] = []

    async def limit_first(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        if not limited_at:
            limited_at.append(time.monotonic())
            return json_response({"detail": "slow down"}, status=429, **{"Retry-After": "0.2"})
        return backup_for(request)

    api = await loopback(limit_first)
    # One slot: the second call waits behind the first, which the 429 then pauses.
    async with loopback_client(api, max_concurrency=1) as client:
        backups = await asyncio.gather(client.backups.get(501), client.backups.get(499))
    assert sorted(backup.id for backup in backups) == [499, 501]
    assert len(api.seen) == 3
    for later in api.seen[1:]:
        assert later.arrived >= limited_at[0] + 0.2, api.paths()


# -- logging ------------------------------------------------------------------------


async def test_retries_are_logged_at_info_on_the_asyncbackups_logger(
    client: BackupsClient, mock_api: MockAPI, caplog: pytest.LogCaptureFixture
) -> None:
    # aioresponses: the dropped connection reaches the SDK, not aiohttp's own repeat.
    mock_api.get(URL_501, status=502)
    mock_api.get(URL_501, exception=aiohttp.ServerDisconnectedError())
    mock_api.get(URL_501, payload=BACKUP_501)
    with caplog.at_level(logging.INFO, logger="asyncbackups"):
        await client.backups.get(501)
    retries = [
        record
        for record in caplog.records
        if record.name == "asyncbackups" and "retrying" in record.getMessage()
    ]
    assert len(retries) == 2
    assert all(record.levelno == logging.INFO for record in retries)
    assert "/api/v1/backups/501/" in retries[0].getMessage()
    assert "502" in retries[0].getMessage()
    assert gets(mock_api) == 3


async def test_a_call_that_succeeds_at_once_logs_nothing_at_info(
    scripted_api: LoopbackAPI, scripted_client: BackupsClient, caplog: pytest.LogCaptureFixture
) -> None:
    scripted_api.answer("GET", "backups/501/", payload=BACKUP_501)
    with caplog.at_level(logging.INFO, logger="asyncbackups"):
        await scripted_client.backups.get(501)
    assert [r for r in caplog.records if r.levelno >= logging.INFO] == []


async def test_the_client_wide_pause_is_logged(
    scripted_api: LoopbackAPI, caplog: pytest.LogCaptureFixture
) -> None:
    scripted_api.answer("GET", "backups/501/", status=429, headers={"Retry-After": "0.01"})
    scripted_api.answer("GET", "backups/501/", payload=BACKUP_501)
    with caplog.at_level(logging.INFO, logger="asyncbackups"):
        async with loopback_client(scripted_api) as client:
            await client.backups.get(501)
    assert logged(caplog, "rate limited")
