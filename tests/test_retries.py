"""Retries: which failures are tried again, how long the client waits, and what it logs."""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
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
    BASE_URL,
    CREATED_502,
    TOKEN,
    LoopbackAPI,
    MockAPI,
    json_response,
    loopback_client,
    page,
    sent,
)

from asyncbackups import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BackupsClient,
    BackupsError,
    BadRequestError,
    NotFoundError,
    RateLimitError,
    ResponseValidationError,
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
    return len(sent(mock_api, "GET", URL_501))


# -- what is retried ----------------------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param({"status": 500}, id="500"),
        pytest.param({"status": 502, "body": "<html>Bad Gateway</html>"}, id="502"),
        pytest.param({"status": 503, "payload": {"detail": "maintenance"}}, id="503"),
        pytest.param({"status": 504}, id="504"),
        pytest.param({"status": 429}, id="429"),
        pytest.param({"exception": aiohttp.ServerDisconnectedError()}, id="dropped"),
        pytest.param({"exception": aiohttp.ClientOSError(104, "reset")}, id="reset"),
        pytest.param({"exception": refused()}, id="refused"),
        pytest.param({"exception": TimeoutError()}, id="timeout"),
        pytest.param({"exception": aiohttp.ClientPayloadError("cut short")}, id="truncated"),
    ],
)
async def test_get_is_retried_after_a_transient_failure_and_then_succeeds(
    client: BackupsClient, mock_api: MockAPI, failure: dict[str, Any]
) -> None:
    mock_api.get(URL_501, **failure)
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
    client: BackupsClient, mock_api: MockAPI, status: int, kind: type[Exception]
) -> None:
    mock_api.get(URL_501, status=status, payload={"detail": "no"}, repeat=True)
    with pytest.raises(kind):
        await client.backups.get(501)
    assert gets(mock_api) == 1


async def test_default_client_makes_four_attempts_in_all(mock_api: MockAPI) -> None:
    mock_api.get(URL_501, status=500, repeat=True)
    async with BackupsClient(TOKEN, retry_backoff=0) as client:
        with pytest.raises(ServerError):
            await client.backups.get(501)
    assert gets(mock_api) == 4


@pytest.mark.parametrize("failure", [{"status": 500}, {"status": 429}, {"exception": refused()}])
async def test_max_retries_zero_disables_retrying(
    mock_api: MockAPI, failure: dict[str, Any]
) -> None:
    mock_api.get(URL_501, repeat=True, **failure)
    async with BackupsClient(TOKEN, max_retries=0) as client:
        with pytest.raises((ServerError, RateLimitError, APIConnectionError)):
            await client.backups.get(501)
    assert gets(mock_api) == 1


async def test_exhausted_retries_raise_the_last_error(mock_api: MockAPI) -> None:
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


async def test_exhausted_retries_on_429_raise_rate_limit_error_with_retry_after(
    mock_api: MockAPI,
) -> None:
    mock_api.get(URL_501, status=429, headers={"Retry-After": "0"}, repeat=True)
    async with BackupsClient(TOKEN, max_retries=2, retry_backoff=0) as client:
        with pytest.raises(RateLimitError) as caught:
            await client.backups.get(501)
    assert caught.value.status_code == 429
    assert caught.value.retry_after == 0.0
    assert gets(mock_api) == 3


async def test_timeouts_exhausting_retries_raise_api_timeout_error(mock_api: MockAPI) -> None:
    mock_api.get(URL_501, exception=TimeoutError(), repeat=True)
    async with BackupsClient(TOKEN, max_retries=1, retry_backoff=0) as client:
        with pytest.raises(APITimeoutError):
            await client.backups.get(501)
    assert gets(mock_api) == 2


async def test_backoff_never_exceeds_max_retry_backoff(mock_api: MockAPI) -> None:
    mock_api.get(URL_501, status=502, repeat=True)
    started = time.monotonic()
    async with BackupsClient(
        TOKEN, max_retries=3, retry_backoff=30.0, max_retry_backoff=0.02
    ) as client:
        with pytest.raises(ServerError):
            await client.backups.get(501)
    assert time.monotonic() - started < 0.5
    assert gets(mock_api) == 4


# -- Retry-After ----------------------------------------------------------------------


async def test_retry_after_in_seconds_is_waited_before_the_retry(loopback: Any) -> None:
    async def busy_once(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        if len(api.seen) == 1:
            return json_response({"detail": "busy"}, status=503, **{"Retry-After": "0.15"})
        return backup_for(request)

    api = await loopback(busy_once)
    async with loopback_client(api) as client:
        assert (await client.backups.get(501)).id == 501
    first, second = api.seen
    assert second.arrived - first.arrived >= 0.15


async def test_retry_after_as_a_past_http_date_retries_at_once(mock_api: MockAPI) -> None:
    mock_api.get(URL_501, status=429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    mock_api.get(URL_501, payload=BACKUP_501)
    started = time.monotonic()
    async with BackupsClient(TOKEN, retry_backoff=0) as client:
        assert (await client.backups.get(501)).id == 501
    assert time.monotonic() - started < 0.5


async def test_retry_after_as_a_distant_http_date_is_not_waited_out(mock_api: MockAPI) -> None:
    in_an_hour = format_datetime(datetime.now(UTC) + timedelta(hours=1), usegmt=True)
    mock_api.get(URL_501, status=429, headers={"Retry-After": in_an_hour}, repeat=True)
    async with BackupsClient(TOKEN, max_retry_after=60) as client:
        with pytest.raises(RateLimitError) as caught:
            await client.backups.get(501)
    assert caught.value.retry_after == pytest.approx(3600, abs=5)
    assert gets(mock_api) == 1


async def test_retry_after_above_the_limit_raises_at_once_and_does_not_pause_the_client(
    mock_api: MockAPI,
) -> None:
    mock_api.get(URL_501, status=429, headers={"Retry-After": "30"})
    mock_api.get(URL_501, payload=BACKUP_501)
    started = time.monotonic()
    async with BackupsClient(TOKEN, max_retry_after=5, retry_backoff=0) as client:
        with pytest.raises(RateLimitError) as caught:
            await client.backups.get(501)
        assert caught.value.retry_after == 30.0
        assert (await client.backups.get(501)).id == 501
    assert time.monotonic() - started < 0.5
    assert gets(mock_api) == 2


async def test_503_with_a_retry_after_above_the_limit_raises_at_once(mock_api: MockAPI) -> None:
    mock_api.get(URL_501, status=503, headers={"Retry-After": "600"}, repeat=True)
    async with BackupsClient(TOKEN, max_retry_after=5) as client:
        with pytest.raises(ServerError) as caught:
            await client.backups.get(501)
    assert caught.value.retry_after == 600.0
    assert gets(mock_api) == 1


async def test_429_pauses_other_concurrent_requests_of_the_same_client(loopback: Any) -> None:
    limited_at: list[float] = []
    limited = asyncio.Event()

    async def limit_501_once(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        if request.path.endswith("/501/") and not limited_at:
            limited_at.append(time.monotonic())
            limited.set()
            return json_response({"detail": "slow down"}, status=429, **{"Retry-After": "0.2"})
        return backup_for(request)

    api = await loopback(limit_501_once)
    async with loopback_client(api) as client:
        first = asyncio.create_task(client.backups.get(501))
        await limited.wait()
        await asyncio.sleep(0.03)  # the 429 has reached the client by now
        other = await client.backups.get(499)
        assert (await first).id == 501
    assert other.id == 499
    (other_seen,) = [seen for seen in api.seen if seen.path_qs.endswith("/499/")]
    assert other_seen.arrived >= limited_at[0] + 0.2
    retried = [seen for seen in api.seen if seen.path_qs.endswith("/501/")][1]
    assert retried.arrived >= limited_at[0] + 0.2


# -- logging ------------------------------------------------------------------------


async def test_retries_are_logged_at_info_on_the_asyncbackups_logger(
    client: BackupsClient, mock_api: MockAPI, caplog: pytest.LogCaptureFixture
) -> None:
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


async def test_a_call_that_succeeds_at_once_logs_nothing_at_info(
    client: BackupsClient, mock_api: MockAPI, caplog: pytest.LogCaptureFixture
) -> None:
    mock_api.get(URL_501, payload=BACKUP_501)
    with caplog.at_level(logging.INFO, logger="asyncbackups"):
        await client.backups.get(501)
    assert [r for r in caplog.records if r.levelno >= logging.INFO] == []


async def test_the_client_wide_pause_is_logged(
    mock_api: MockAPI, caplog: pytest.LogCaptureFixture
) -> None:
    mock_api.get(URL_501, status=429, headers={"Retry-After": "0.01"})
    mock_api.get(URL_501, payload=BACKUP_501)
    with caplog.at_level(logging.INFO, logger="asyncbackups"):
        async with BackupsClient(TOKEN, base_url=BASE_URL, retry_backoff=0) as client:
            await client.backups.get(501)
    assert any("rate limited" in record.getMessage() for record in caplog.records)


def exception_text(error: BaseException) -> str:
    return "".join([str(error), repr(error), *traceback.format_exception(error)])


async def test_429_pauses_requests_waiting_behind_the_concurrency_cap(loopback: Any) -> None:
    limited_at: list[float] = []

    async def limit_first(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        if not limited_at:
            limited_at.append(time.monotonic())
            await asyncio.sleep(0.02)  # the other request is queued behind the cap by now
            return json_response({"detail": "slow down"}, status=429, **{"Retry-After": "0.2"})
        return backup_for(request)

    api = await loopback(limit_first)
    async with loopback_client(api, max_concurrency=1) as client:
        backups = await asyncio.gather(client.backups.get(501), client.backups.get(499))
    assert sorted(backup.id for backup in backups) == [499, 501]
    assert len(api.seen) == 3
    for later in api.seen[1:]:
        assert later.arrived >= limited_at[0] + 0.2, api.paths()


# --- for tests/test_secrets.py ---
async def test_token_echoed_by_the_api_in_an_error_body_is_not_in_the_exception_text(
    client: BackupsClient, mock_api: MockAPI
) -> None:
    mock_api.get(BACKUPS_URL + "501/", status=401, payload={"detail": f"Invalid token '{TOKEN}'."})
    with pytest.raises(AuthenticationError) as caught:
        await client.backups.get(501)
    assert TOKEN not in exception_text(caught.value)


async def test_token_echoed_by_the_api_in_a_retried_error_is_not_logged(
    client: BackupsClient, mock_api: MockAPI, caplog: pytest.LogCaptureFixture
) -> None:
    mock_api.get(
        BACKUPS_URL + "501/", status=500, payload={"detail": f"Bad header: Bearer {TOKEN}"}
    )
    mock_api.get(BACKUPS_URL + "501/", payload=BACKUP_501)
    with caplog.at_level(logging.DEBUG):
        await client.backups.get(501)
    assert all(TOKEN not in record.getMessage() for record in caplog.records)


# --- for tests/test_backups.py (loopback) ---
async def test_concurrent_ambiguous_creates_adopt_different_backups_when_the_list_spans_pages(
    loopback: Any,
) -> None:
    # The server made both creates' backups but answered 500 to each; the list of its
    # manual backups has a second page, which both reconciles read before either adopts.
    now = datetime.now(UTC).isoformat()
    made = [
        {**CREATED_502, "id": 601, "description": "nightly", "created_at": now},
        {**CREATED_502, "id": 602, "description": "nightly", "created_at": now},
    ]
    both_read_first_page = asyncio.Event()
    first_pages = 0

    async def handler(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        nonlocal first_pages
        if request.method == "POST":
            return json_response({"detail": "boom"}, status=500)
        if "page" not in request.query:
            first_pages += 1
            if first_pages == 2:
                both_read_first_page.set()
            next_url = str(request.url.update_query(page=2))
            return json_response(page(made, next_url=next_url))
        await asyncio.wait_for(both_read_first_page.wait(), 2)
        return json_response(page([]))

    api = await loopback(handler)
    async with loopback_client(api) as client:
        first, second = await asyncio.gather(
            client.backups.create(12345, description="nightly"),
            client.backups.create(12345, description="nightly"),
        )
    assert {first.id, second.id} == {601, 602}
    assert sum(1 for seen in api.seen if seen.method == "POST") == 2


# --- for tests/test_backups.py / test_secrets.py (mock_api) ---
@pytest.mark.parametrize(
    "next_url",
    ["http://[::1", "https://admin.vps.org:99999/api/v1/backups/?page=2", "https://[zz]/"],
)
async def test_unparsable_next_link_raises_response_validation_error(
    client: BackupsClient, mock_api: MockAPI, next_url: str
) -> None:
    mock_api.get(BACKUPS_URL, payload=page([BACKUP_501], next_url=next_url))
    with pytest.raises(ResponseValidationError) as caught:
        await client.backups.list()
    assert caught.value.path == "$.next"


@pytest.mark.parametrize("location", ["http://[::1", "https://admin.vps.org:99999/x"])
async def test_redirect_to_an_unparsable_location_raises_the_sdks_error(
    client: BackupsClient, mock_api: MockAPI, location: str
) -> None:
    mock_api.get(BACKUPS_URL + "501/", status=302, headers={"Location": location}, repeat=True)
    with pytest.raises(BackupsError):
        await client.backups.get(501)
