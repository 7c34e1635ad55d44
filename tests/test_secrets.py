"""The token stays secret: out of repr, logs and errors, and sent to no other origin."""

from __future__ import annotations

import logging
import traceback

import pytest
from aiohttp import web
from conftest import (
    BACKUP,
    BACKUP_501,
    CREATED_502,
    TOKEN,
    LoopbackAPI,
    StartLoopback,
    json_response,
    loopback_client,
    page,
)

from asyncbackups import (
    APIStatusError,
    AuthenticationError,
    BackupsClient,
    BackupsError,
    ResponseValidationError,
)


def backup_for(request: web.Request) -> web.Response:
    backup_id = int(request.path.rstrip("/").rsplit("/", 1)[-1])
    return json_response({**BACKUP, "id": backup_id})


def exception_text(error: BaseException) -> str:
    return "".join([str(error), repr(error), *traceback.format_exception(error)])


async def nothing(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
    return json_response({"detail": "this origin must never be asked"})


# -- repr, logs and exceptions -------------------------------------------------------


def test_token_is_not_in_the_clients_repr_or_str() -> None:
    client = BackupsClient(TOKEN)
    assert TOKEN not in repr(client)
    assert TOKEN not in str(client)


@pytest.mark.parametrize("token", ["bad token", " ", "tab\tin-token"])
def test_refusing_a_malformed_token_does_not_echo_it(token: str) -> None:
    with pytest.raises(ValueError, match="token") as caught:
        BackupsClient(token)
    assert token.strip() == "" or token not in exception_text(caught.value)


async def test_token_appears_in_no_log_record_or_exception_across_retries_and_errors(
    loopback: StartLoopback, caplog: pytest.LogCaptureFixture
) -> None:
    async def troubled(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        count = sum(1 for seen in api.seen if seen.path_qs == request.path_qs)
        path = request.path
        if path.endswith("/backups/501/"):  # flaky, then fine
            if count == 1:
                return json_response({"detail": "boom"}, status=500)
            if count == 2:
                return api.drop(request)
            return backup_for(request)
        if path.endswith("/backups/401/"):
            return json_response({"detail": "Invalid token."}, status=401)
        if path.endswith("/backups/400/"):
            return json_response({"detail": "Malformed request."}, status=400)
        if path.endswith("/backups/429/"):
            return json_response({}, status=429, **{"Retry-After": "0.01"})
        if path.endswith("/backups/404/"):
            return web.Response(status=404, text="<html>Not Found</html>")
        if path.endswith("/backups/555/"):
            return json_response({**BACKUP, "created_at": None})
        if path.endswith("/backups/777/"):
            return await api.stall()
        if request.method == "POST" and path.endswith("/backups/"):
            return json_response({"detail": "boom"}, status=502)
        if request.method == "GET" and path.endswith("/backups/"):
            return json_response(page([{**CREATED_502, "description": None}]))
        return json_response({"detail": "Not found."}, status=404)

    api = await loopback(troubled)
    caplog.set_level(logging.DEBUG)
    errors: list[BaseException] = []
    async with loopback_client(api, timeout=0.05, max_retries=2) as client:
        await client.backups.get(501)
        for backup_id in (401, 400, 429, 404, 555, 777):
            try:
                await client.backups.get(backup_id)
            except BackupsError as error:
                errors.append(error)
        try:  # 502 each time, and the reconcile finds nothing recent enough to adopt
            await client.backups.create(12345)
        except BackupsError as error:
            errors.append(error)
    try:
        await client.backups.get(501)
    except RuntimeError as error:
        errors.append(error)

    assert len(errors) == 8
    assert any("retrying" in record.getMessage() for record in caplog.records)
    assert any(record.levelno == logging.DEBUG for record in caplog.records)
    for record in caplog.records:
        assert TOKEN not in record.getMessage()
        assert TOKEN not in repr(record.args)
    for error in errors:
        assert TOKEN not in exception_text(error)


async def test_token_echoed_by_the_api_in_an_error_body_is_not_in_the_exception_text(
    scripted_api: LoopbackAPI, scripted_client: BackupsClient
) -> None:
    scripted_api.answer(
        "GET", "backups/501/", status=401, payload={"detail": f"Invalid token '{TOKEN}'."}
    )
    with pytest.raises(AuthenticationError) as caught:
        await scripted_client.backups.get(501)
    assert TOKEN not in exception_text(caught.value)


async def test_token_echoed_by_the_api_in_a_retried_error_is_not_logged(
    scripted_api: LoopbackAPI, scripted_client: BackupsClient, caplog: pytest.LogCaptureFixture
) -> None:
    scripted_api.answer(
        "GET", "backups/501/", status=500, payload={"detail": f"Bad header: Bearer {TOKEN}"}
    )
    scripted_api.answer("GET", "backups/501/", payload=BACKUP_501)
    with caplog.at_level(logging.DEBUG):
        await scripted_client.backups.get(501)
    assert len(scripted_api.seen) == 2
    assert all(TOKEN not in record.getMessage() for record in caplog.records)


# -- other origins ------------------------------------------------------------------


async def test_get_redirect_to_another_origin_is_not_followed(loopback: StartLoopback) -> None:
    elsewhere = await loopback(nothing)

    async def redirect(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        raise web.HTTPFound(elsewhere.origin + "api/v1/backups/501/")

    api = await loopback(redirect)
    async with loopback_client(api) as client:
        with pytest.raises(APIStatusError) as caught:
            await client.backups.get(501)
    assert caught.value.status_code == 302
    assert elsewhere.seen == []
    assert len(api.seen) == 1


async def test_get_redirect_within_the_apis_origin_is_followed_with_the_token(
    loopback: StartLoopback,
) -> None:
    async def moved(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        if request.path.startswith("/api/v1/"):
            raise web.HTTPMovedPermanently(request.path.replace("/api/v1/", "/api/v2/"))
        return backup_for(request)

    api = await loopback(moved)
    async with loopback_client(api) as client:
        assert (await client.backups.get(501)).id == 501
    assert api.paths() == ["GET /api/v1/backups/501/", "GET /api/v2/backups/501/"]
    assert api.seen[1].headers["Authorization"] == f"Bearer {TOKEN}"


@pytest.mark.parametrize("redirect", [web.HTTPTemporaryRedirect, web.HTTPPermanentRedirect])
async def test_create_does_not_follow_a_redirect(
    loopback: StartLoopback, redirect: type[web.HTTPException]
) -> None:
    async def moved(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        if request.path.startswith("/api/v1/"):
            raise redirect(request.path.replace("/api/v1/", "/api/v2/"))  # type: ignore[call-arg]
        return json_response(CREATED_502, status=201)

    api = await loopback(moved)
    async with loopback_client(api) as client:
        with pytest.raises(APIStatusError) as caught:
            await client.backups.create(12345)
    assert caught.value.status_code == redirect.status_code
    assert api.paths() == ["POST /api/v1/backups/"]


async def test_delete_and_restore_do_not_follow_redirects(loopback: StartLoopback) -> None:
    async def moved(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        if request.path.startswith("/api/v1/"):
            raise web.HTTPTemporaryRedirect(request.path.replace("/api/v1/", "/api/v2/"))
        return web.Response(status=204)

    api = await loopback(moved)
    async with loopback_client(api) as client:
        with pytest.raises(APIStatusError):
            await client.backups.delete(501)
        with pytest.raises(APIStatusError):
            await client.servers.restore(12345, 501)
    assert api.paths() == ["DELETE /api/v1/backups/501/", "POST /api/v1/servers/12345/restore/"]


async def test_next_link_to_another_origin_sends_nothing_there(loopback: StartLoopback) -> None:
    elsewhere = await loopback(nothing)

    async def first_page(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        return json_response(
            page([BACKUP_501], next_url=elsewhere.origin + "api/v1/backups/?page=2")
        )

    api = await loopback(first_page)
    async with loopback_client(api) as client:
        with pytest.raises(ResponseValidationError) as caught:
            await client.backups.list()
    assert caught.value.path == "$.next"
    assert elsewhere.seen == []
    assert TOKEN not in exception_text(caught.value)


async def test_get_redirect_without_a_location_is_an_api_status_error(
    loopback: StartLoopback,
) -> None:
    async def bare(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        return web.Response(status=302)

    api = await loopback(bare)
    async with loopback_client(api) as client:
        with pytest.raises(APIStatusError) as caught:
            await client.backups.get(501)
    assert caught.value.status_code == 302
    assert len(api.seen) == 1


async def test_endless_redirects_within_the_origin_end_in_an_api_status_error(
    loopback: StartLoopback,
) -> None:
    async def around(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        raise web.HTTPFound(f"/api/v1/backups/501/?hop={len(api.seen)}")

    api = await loopback(around)
    async with loopback_client(api) as client:
        with pytest.raises(APIStatusError) as caught:
            await client.backups.get(501)
    assert caught.value.status_code == 302
    assert 2 <= len(api.seen) <= 10


@pytest.mark.parametrize("location", ["http://[::1", "https://admin.vps.org:99999/x"])
async def test_redirect_to_an_unparsable_location_raises_the_sdks_error(
    scripted_api: LoopbackAPI, scripted_client: BackupsClient, location: str
) -> None:
    scripted_api.answer("GET", "backups/501/", status=302, headers={"Location": location})
    with pytest.raises(BackupsError):
        await scripted_client.backups.get(501)
    assert scripted_api.routes() == ["GET backups/501/"]
