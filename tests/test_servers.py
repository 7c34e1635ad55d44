"""``client.servers.restore``: typed answers, mapped errors, never resent once it may have run."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from conftest import (
    BASE_URL,
    LoopbackAPI,
    MockAPI,
    json_response,
    loopback_client,
    sent,
    sent_count,
)

from asyncbackups import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    BackupsClient,
    BadRequestError,
    NotFoundError,
    RestoreResult,
    ServerError,
)

RESTORE_URL = BASE_URL + "servers/12345/restore/"
ACCEPTED = {
    "status": "restoring",
    "message": "Server restore has been initiated.",
    "server_id": 12345,
    "backup_id": 501,
    "estimated_minutes": 12,
}


def restore_calls(mock_api: MockAPI) -> list[Any]:
    return sent(mock_api, "POST", RESTORE_URL)


def refused() -> aiohttp.ClientConnectorError:
    key = aiohttp.client_reqrep.ConnectionKey("admin.vps.org", 443, True, True, None, None, None)
    return aiohttp.ClientConnectorError(key, ConnectionRefusedError(111, "Connection refused"))


async def test_restore_posts_the_backup_id_to_the_servers_restore_route(
    client: BackupsClient, mock_api: MockAPI
) -> None:
    mock_api.post(RESTORE_URL, status=202, payload=ACCEPTED)
    result = await client.servers.restore(12345, 501)
    (call,) = restore_calls(mock_api)
    assert json.loads(call.kwargs["data"]) == {"backup_id": 501}
    headers = call.kwargs["headers"]
    assert headers["Content-Type"] == "application/json"
    assert headers["Idempotency-Key"]
    assert result == RestoreResult(
        raw=ACCEPTED,
        status_code=202,
        status="restoring",
        message="Server restore has been initiated.",
        server_id=12345,
        backup_id=501,
    )


async def test_restore_keeps_fields_it_does_not_know_in_raw(
    client: BackupsClient, mock_api: MockAPI
) -> None:
    mock_api.post(RESTORE_URL, status=202, payload={"job": {"id": "r-9"}})
    result = await client.servers.restore(12345, 501)
    assert result.raw == {"job": {"id": "r-9"}}
    assert result.status is None
    assert result.backup_id is None


async def test_restore_with_an_empty_answer_is_an_empty_result(
    client: BackupsClient, mock_api: MockAPI
) -> None:
    mock_api.post(RESTORE_URL, status=204)
    result = await client.servers.restore(12345, 501)
    assert result.raw == {}
    assert result.status_code == 204


async def test_restore_400_gives_field_errors_without_retrying(
    client: BackupsClient, mock_api: MockAPI
) -> None:
    errors = {"backup_id": ["Backup 502 is not completed yet."]}
    mock_api.post(RESTORE_URL, status=400, payload=errors, repeat=True)
    with pytest.raises(BadRequestError) as caught:
        await client.servers.restore(12345, 502)
    assert caught.value.field_errors == errors
    assert sent_count(mock_api) == 1


@pytest.mark.parametrize(
    ("status", "kind"), [(401, AuthenticationError), (404, NotFoundError)], ids=["401", "404"]
)
async def test_restore_401_and_404_raise_without_retrying(
    client: BackupsClient, mock_api: MockAPI, status: int, kind: type[Exception]
) -> None:
    mock_api.post(RESTORE_URL, status=status, payload={"detail": "nope"}, repeat=True)
    with pytest.raises(kind) as caught:
        await client.servers.restore(12345, 501)
    assert getattr(caught.value, "status_code", None) == status
    assert sent_count(mock_api) == 1


@pytest.mark.parametrize("status", [500, 502, 504])
async def test_restore_is_never_resent_after_a_status_that_may_mean_it_ran(
    client: BackupsClient, mock_api: MockAPI, status: int
) -> None:
    mock_api.post(RESTORE_URL, status=status, repeat=True)
    with pytest.raises(ServerError) as caught:
        await client.servers.restore(12345, 501)
    assert caught.value.status_code == status
    assert len(restore_calls(mock_api)) == 1


@pytest.mark.parametrize(
    ("exception", "kind"),
    [
        (aiohttp.ServerDisconnectedError(), APIConnectionError),
        (aiohttp.ClientPayloadError("truncated"), APIConnectionError),
        (TimeoutError(), APITimeoutError),
    ],
    ids=["dropped", "truncated", "timeout"],
)
async def test_restore_is_never_resent_after_a_failure_once_it_was_sent(
    client: BackupsClient, mock_api: MockAPI, exception: BaseException, kind: type[Exception]
) -> None:
    mock_api.post(RESTORE_URL, exception=exception, repeat=True)
    with pytest.raises(kind) as caught:
        await client.servers.restore(12345, 501)
    assert isinstance(caught.value, APIConnectionError)
    assert caught.value.request_may_have_reached_server is True
    assert len(restore_calls(mock_api)) == 1


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param({"status": 503}, id="503"),
        pytest.param({"status": 429, "headers": {"Retry-After": "0.01"}}, id="429"),
        pytest.param({"exception": refused()}, id="refused"),
        pytest.param({"exception": aiohttp.ConnectionTimeoutError()}, id="connect-timeout"),
    ],
)
async def test_restore_is_resent_with_the_same_key_when_it_certainly_did_not_run(
    client: BackupsClient, mock_api: MockAPI, failure: dict[str, Any]
) -> None:
    mock_api.post(RESTORE_URL, **failure)
    mock_api.post(RESTORE_URL, status=202, payload=ACCEPTED)
    result = await client.servers.restore(12345, 501)
    assert result.status == "restoring"
    first, second = restore_calls(mock_api)
    assert first.kwargs["headers"]["Idempotency-Key"] == second.kwargs["headers"]["Idempotency-Key"]
    assert first.kwargs["data"] == second.kwargs["data"]


async def test_restore_uses_the_callers_idempotency_key(
    client: BackupsClient, mock_api: MockAPI
) -> None:
    mock_api.post(RESTORE_URL, status=202, payload=ACCEPTED)
    await client.servers.restore(12345, 501, idempotency_key="restore-web-01-501")
    (call,) = restore_calls(mock_api)
    assert call.kwargs["headers"]["Idempotency-Key"] == "restore-web-01-501"


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        ((True, 501), TypeError),
        (("12345", 501), TypeError),
        ((12345, 501.0), TypeError),
        ((12345, None), TypeError),
        ((0, 501), ValueError),
        ((12345, -501), ValueError),
    ],
)
async def test_restore_with_bad_ids_raises_before_any_request(
    client: BackupsClient, mock_api: MockAPI, arguments: tuple[Any, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        await client.servers.restore(*arguments)
    assert sent_count(mock_api) == 0


# -- against a real server -----------------------------------------------------------


async def test_restore_that_times_out_is_sent_exactly_once(loopback: Any) -> None:
    async def stall(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        return await api.stall()

    api = await loopback(stall)
    async with loopback_client(api, timeout=0.05, max_retries=3) as client:
        with pytest.raises(APITimeoutError):
            await client.servers.restore(12345, 501)
    assert api.paths() == ["POST /api/v1/servers/12345/restore/"]


async def test_restore_whose_connection_drops_after_sending_is_sent_exactly_once(
    loopback: Any,
) -> None:
    async def drop(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        return api.drop(request)

    api = await loopback(drop)
    async with loopback_client(api, max_retries=3) as client:
        with pytest.raises(APIConnectionError) as caught:
            await client.servers.restore(12345, 501)
    assert caught.value.request_may_have_reached_server is True
    assert api.paths() == ["POST /api/v1/servers/12345/restore/"]
    assert api.seen[0].json() == {"backup_id": 501}


async def test_restore_after_a_503_is_resent_and_succeeds(loopback: Any) -> None:
    async def busy_once(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        if len(api.seen) == 1:
            return json_response({"detail": "busy"}, status=503)
        return json_response(ACCEPTED, status=202)

    api = await loopback(busy_once)
    async with loopback_client(api) as client:
        result = await client.servers.restore(12345, 501)
    assert result.status_code == 202
    assert len(api.seen) == 2
    keys = {seen.headers["Idempotency-Key"] for seen in api.seen}
    assert len(keys) == 1
