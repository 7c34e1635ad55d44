"""``client.servers.restore``: typed answers, mapped errors, never resent once it may have run."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from aiohttp import web
from conftest import (
    BASE_URL,
    LoopbackAPI,
    MockAPI,
    StartLoopback,
    json_response,
    loopback_client,
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

RESTORE = "servers/12345/restore/"
RESTORE_URL = BASE_URL + RESTORE
ACCEPTED = {
    "status": "restoring",
    "message": "Server restore has been initiated.",
    "server_id": 12345,
    "backup_id": 501,
    "estimated_minutes": 12,
}


def refused() -> aiohttp.ClientConnectorError:
    key = aiohttp.client_reqrep.ConnectionKey("admin.vps.org", 443, True, True, None, None, None)
    return aiohttp.ClientConnectorError(key, ConnectionRefusedError(111, "Connection refused"))


async def test_restore_posts_the_backup_id_to_the_servers_restore_route(
    scripted_api: LoopbackAPI, scripted_client: BackupsClient
) -> None:
    scripted_api.answer("POST", RESTORE, status=202, payload=ACCEPTED)
    result = await scripted_client.servers.restore(12345, 501)
    (request,) = scripted_api.seen
    assert request.route == "POST servers/12345/restore/"
    assert request.json() == {"backup_id": 501}
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Idempotency-Key"]
    assert result == RestoreResult(
        raw=ACCEPTED,
        status_code=202,
        status="restoring",
        message="Server restore has been initiated.",
        server_id=12345,
        backup_id=501,
    )


async def test_restore_keeps_fields_it_does_not_know_in_raw(
    scripted_api: LoopbackAPI, scripted_client: BackupsClient
) -> None:
    scripted_api.answer("POST", RESTORE, status=202, payload={"job": {"id": "r-9"}})
    result = await scripted_client.servers.restore(12345, 501)
    assert result.raw == {"job": {"id": "r-9"}}
    assert result.status is None
    assert result.backup_id is None


async def test_restore_with_an_empty_answer_is_an_empty_result(
    scripted_api: LoopbackAPI, scripted_client: BackupsClient
) -> None:
    scripted_api.answer("POST", RESTORE, status=204)
    result = await scripted_client.servers.restore(12345, 501)
    assert result.raw == {}
    assert result.status_code == 204


async def test_restore_400_gives_field_errors_without_retrying(
    scripted_api: LoopbackAPI, scripted_client: BackupsClient
) -> None:
    errors = {"backup_id": ["Backup 502 is not completed yet."]}
    scripted_api.answer("POST", RESTORE, status=400, payload=errors)
    with pytest.raises(BadRequestError) as caught:
        await scripted_client.servers.restore(12345, 502)
    assert caught.value.field_errors == errors
    assert scripted_api.routes() == ["POST servers/12345/restore/"]


@pytest.mark.parametrize(
    ("status", "kind"), [(401, AuthenticationError), (404, NotFoundError)], ids=["401", "404"]
)
async def test_restore_401_and_404_raise_without_retrying(
    scripted_api: LoopbackAPI,
    scripted_client: BackupsClient,
    status: int,
    kind: type[Exception],
) -> None:
    scripted_api.answer("POST", RESTORE, status=status, payload={"detail": "nope"})
    with pytest.raises(kind) as caught:
        await scripted_client.servers.restore(12345, 501)
    assert getattr(caught.value, "status_code", None) == status
    assert scripted_api.routes() == ["POST servers/12345/restore/"]


@pytest.mark.parametrize("status", [500, 502, 504])
async def test_restore_is_never_resent_after_a_status_that_may_mean_it_ran(
    scripted_api: LoopbackAPI, scripted_client: BackupsClient, status: int
) -> None:
    scripted_api.answer("POST", RESTORE, status=status)
    with pytest.raises(ServerError) as caught:
        await scripted_client.servers.restore(12345, 501)
    assert caught.value.status_code == status
    assert scripted_api.routes() == ["POST servers/12345/restore/"]


# aioresponses: each exact failure after sending (the loopback tests below drop and
# stall a real request).
@pytest.mark.parametrize(
    ("exception", "kind"),
    [
        (aiohttp.ServerDisconnectedError(), APIConnectionError),
        (aiohttp.ClientPayloadError("truncated"), APIConnectionError),
    ],
    ids=["dropped", "truncated"],
)
async def test_restore_is_never_resent_after_a_failure_once_it_was_sent(
    client: BackupsClient, mock_api: MockAPI, exception: BaseException, kind: type[Exception]
) -> None:
    mock_api.post(RESTORE_URL, exception=exception, repeat=True)
    with pytest.raises(kind) as caught:
        await client.servers.restore(12345, 501)
    assert isinstance(caught.value, APIConnectionError)
    assert caught.value.request_may_have_reached_server is True
    assert sent_count(mock_api, "POST", RESTORE_URL) == 1


async def test_restore_that_timed_out_after_it_was_sent_is_never_resent(
    scripted_api: LoopbackAPI,
) -> None:
    # A real stall on loopback: the request reached the server, which never answers.
    scripted_api.answer("POST", RESTORE, stall=True)
    async with loopback_client(scripted_api, timeout=0.3) as client:
        with pytest.raises(APITimeoutError) as caught:
            await client.servers.restore(12345, 501)
    assert caught.value.request_may_have_reached_server is True
    assert scripted_api.routes() == ["POST servers/12345/restore/"]


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param({"status": 503}, id="503"),
        pytest.param({"status": 429, "headers": {"Retry-After": "0.01"}}, id="429"),
    ],
)
async def test_restore_is_resent_with_the_same_key_when_it_certainly_did_not_run(
    scripted_api: LoopbackAPI, scripted_client: BackupsClient, failure: dict[str, Any]
) -> None:
    scripted_api.answer("POST", RESTORE, **failure)
    scripted_api.answer("POST", RESTORE, status=202, payload=ACCEPTED)
    result = await scripted_client.servers.restore(12345, 501)
    assert result.status == "restoring"
    first, second = scripted_api.received("POST", RESTORE)
    assert first.headers["Idempotency-Key"] == second.headers["Idempotency-Key"]
    assert first.body == second.body


# aioresponses: connections that never opened, then an answer, at one address. What the
# resend carries is shown above; only the first attempt differs here.
@pytest.mark.parametrize(
    "exception",
    [
        pytest.param(refused(), id="refused"),
        pytest.param(aiohttp.ConnectionTimeoutError(), id="connect-timeout"),
    ],
)
async def test_restore_is_resent_when_its_connection_never_opened(
    client: BackupsClient, mock_api: MockAPI, exception: BaseException
) -> None:
    mock_api.post(RESTORE_URL, exception=exception)
    mock_api.post(RESTORE_URL, status=202, payload=ACCEPTED)
    result = await client.servers.restore(12345, 501)
    assert result.status == "restoring"
    assert sent_count(mock_api, "POST", RESTORE_URL) == 2


async def test_restore_uses_the_callers_idempotency_key(
    scripted_api: LoopbackAPI, scripted_client: BackupsClient
) -> None:
    scripted_api.answer("POST", RESTORE, status=202, payload=ACCEPTED)
    await scripted_client.servers.restore(12345, 501, idempotency_key="restore-web-01-501")
    (request,) = scripted_api.seen
    assert request.headers["Idempotency-Key"] == "restore-web-01-501"


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
    scripted_api: LoopbackAPI,
    scripted_client: BackupsClient,
    arguments: tuple[Any, Any],
    error: type[Exception],
) -> None:
    with pytest.raises(error):
        await scripted_client.servers.restore(*arguments)
    assert scripted_api.seen == []


# -- against a real server -----------------------------------------------------------


async def test_restore_that_times_out_is_sent_exactly_once(loopback: StartLoopback) -> None:
    async def stall(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        return await api.stall()

    api = await loopback(stall)
    async with loopback_client(api, timeout=0.05, max_retries=3) as client:
        with pytest.raises(APITimeoutError):
            await client.servers.restore(12345, 501)
    assert api.paths() == ["POST /api/v1/servers/12345/restore/"]


async def test_restore_whose_connection_drops_after_sending_is_sent_exactly_once(
    loopback: StartLoopback,
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


async def test_restore_after_a_503_is_resent_and_succeeds(loopback: StartLoopback) -> None:
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
