"""``with_raw_response``: the HTTP answer behind each call, and request IDs on errors."""

from __future__ import annotations

import copy
import pickle
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from conftest import (
    BACKUP_495,
    BACKUP_499,
    BACKUP_501,
    CREATED_502,
    SEED_LIST,
    LoopbackAPI,
    loopback_client,
    page,
)

from asyncbackups import (
    APIStatusError,
    AuthenticationError,
    Backup,
    BackupsClient,
    BadRequestError,
    NotFoundError,
    RawResponse,
    RestoreResult,
    ServerError,
)

RESTORE_ANSWER: dict[str, Any] = {
    "status": "restoring",
    "message": "Server restore has started.",
    "server_id": 12345,
    "backup_id": 501,
}


# -- each call's raw response -------------------------------------------------------


async def test_raw_get_carries_the_answer_and_parses_to_what_get_returns(
    scripted_api: LoopbackAPI,
) -> None:
    scripted_api.answer(
        "GET",
        "backups/501/",
        payload=BACKUP_501,
        headers={"X-Request-ID": "req-501", "X-Custom": "yes"},
    )
    async with loopback_client(scripted_api) as client:
        raw = await client.backups.with_raw_response.get(501)
        plain = await client.backups.get(501)
    assert isinstance(raw, RawResponse)
    assert raw.status_code == 200
    assert raw.headers["x-request-id"] == "req-501"
    assert raw.headers["X-CUSTOM"] == "yes"
    assert raw.headers["Content-Type"].startswith("application/json")
    assert raw.request_id == "req-501"
    assert raw.retries_taken == 0
    assert isinstance(raw.elapsed, float)
    assert raw.elapsed > 0
    assert raw.url == scripted_api.url("backups/501/")
    assert raw.pages is None
    parsed = raw.parse()
    assert isinstance(parsed, Backup)
    assert parsed == plain
    assert parsed.id == 501
    assert scripted_api.routes() == ["GET backups/501/", "GET backups/501/"]


async def test_raw_get_counts_the_retry_after_a_503(scripted_api: LoopbackAPI) -> None:
    scripted_api.answer(
        "GET", "backups/501/", status=503, payload={"detail": "busy"}, headers={"X-Request-ID": "a"}
    )
    scripted_api.answer("GET", "backups/501/", payload=BACKUP_501, headers={"X-Request-ID": "b"})
    async with loopback_client(scripted_api) as client:
        raw = await client.backups.with_raw_response.get(501)
    assert raw.retries_taken == 1
    assert raw.status_code == 200
    assert raw.request_id == "b"  # the answer that counted, not the 503
    assert raw.parse().id == 501
    assert scripted_api.routes() == ["GET backups/501/", "GET backups/501/"]


async def test_raw_list_reports_pages_read_and_the_last_pages_headers(
    scripted_api: LoopbackAPI,
) -> None:
    second = scripted_api.url("backups/?page=2&server_id=12345")
    third = scripted_api.url("backups/?page=3&server_id=12345")
    scripted_api.answer(
        "GET",
        "backups/?server_id=12345",
        payload={**page([BACKUP_501], next_url=second), "count": 3},
        headers={"X-Request-ID": "page-1"},
    )
    scripted_api.answer(
        "GET",
        "backups/?page=2&server_id=12345",
        payload={**page([BACKUP_499], next_url=third), "count": 3},
        headers={"X-Request-ID": "page-2"},
    )
    scripted_api.answer(
        "GET",
        "backups/?page=3&server_id=12345",
        payload={**page([BACKUP_495]), "count": 3},
        headers={"X-Request-ID": "page-3"},
    )
    async with loopback_client(scripted_api) as client:
        raw = await client.backups.with_raw_response.list(server_id=12345)
        plain = await client.backups.list(server_id=12345)
    assert raw.pages == 3
    assert raw.request_id == "page-3"
    assert raw.headers["X-Request-ID"] == "page-3"
    assert raw.status_code == 200
    assert raw.url == third
    assert raw.retries_taken == 0
    assert raw.elapsed > 0
    assert [backup.id for backup in raw.parse()] == [501, 499, 495]
    assert raw.parse() == plain
    assert scripted_api.routes()[:3] == [
        "GET backups/?server_id=12345",
        "GET backups/?page=2&server_id=12345",
        "GET backups/?page=3&server_id=12345",
    ]


async def test_raw_list_counts_retries_across_its_pages(scripted_api: LoopbackAPI) -> None:
    second = scripted_api.url("backups/?page=2")
    scripted_api.answer(
        "GET", "backups/", payload={**page([BACKUP_501], next_url=second), "count": 2}
    )
    scripted_api.answer("GET", "backups/?page=2", status=502, payload={"detail": "gateway"})
    scripted_api.answer("GET", "backups/?page=2", payload={**page([BACKUP_499]), "count": 2})
    async with loopback_client(scripted_api) as client:
        raw = await client.backups.with_raw_response.list()
    assert raw.pages == 2
    assert raw.retries_taken == 1
    assert raw.request_id is None
    assert [backup.id for backup in raw.parse()] == [501, 499]


async def test_raw_create_carries_the_201_and_parses_to_the_new_backup(
    scripted_api: LoopbackAPI,
) -> None:
    scripted_api.answer(
        "POST", "backups/", status=201, payload=CREATED_502, headers={"X-Request-ID": "create-1"}
    )
    async with loopback_client(scripted_api) as client:
        raw = await client.backups.with_raw_response.create(12345, description="x")
    assert raw.status_code == 201
    assert raw.request_id == "create-1"
    assert raw.retries_taken == 0
    assert raw.url == scripted_api.url("backups/")
    backup = raw.parse()
    assert isinstance(backup, Backup)
    assert backup.id == 502
    assert backup.message == CREATED_502["message"]
    (sent,) = scripted_api.seen
    assert sent.json() == {"server_id": 12345, "description": "x"}
    assert sent.headers["Idempotency-Key"]


async def test_raw_delete_carries_the_204_and_parses_to_none(scripted_api: LoopbackAPI) -> None:
    scripted_api.answer("DELETE", "backups/501/", status=204, headers={"Request-Id": "del-9"})
    async with loopback_client(scripted_api) as client:
        raw = await client.backups.with_raw_response.delete(501)
    assert raw.status_code == 204
    assert raw.request_id == "del-9"
    assert raw.parse() is None
    assert raw.url == scripted_api.url("backups/501/")
    assert scripted_api.routes() == ["DELETE backups/501/"]


async def test_raw_restore_parses_to_what_restore_returns(scripted_api: LoopbackAPI) -> None:
    scripted_api.answer(
        "POST",
        "servers/12345/restore/",
        status=202,
        payload=RESTORE_ANSWER,
        headers={"X-Request-ID": "restore-7"},
    )
    async with loopback_client(scripted_api) as client:
        raw = await client.servers.with_raw_response.restore(12345, 501)
        plain = await client.servers.restore(12345, 501)
    assert raw.status_code == 202
    assert raw.request_id == "restore-7"
    assert raw.url == scripted_api.url("servers/12345/restore/")
    result = raw.parse()
    assert isinstance(result, RestoreResult)
    assert result == plain
    assert result.raw == RESTORE_ANSWER
    assert [sent.json() for sent in scripted_api.seen] == [{"backup_id": 501}] * 2


async def test_raw_calls_through_a_copy_made_by_with_options(scripted_api: LoopbackAPI) -> None:
    scripted_api.answer("GET", "backups/501/", payload=BACKUP_501, headers={"X-Request-ID": "c"})
    async with loopback_client(scripted_api) as client:
        raw = await client.with_options(headers={"X-Tenant": "a"}).backups.with_raw_response.get(
            501
        )
    assert raw.request_id == "c"
    assert scripted_api.seen[0].headers["X-Tenant"] == "a"


# -- request IDs ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"X-Request-ID": "abc-123"}, "abc-123"),
        ({"x-request-id": "abc-123"}, "abc-123"),
        ({"X-Request-Id": "abc-123"}, "abc-123"),
        ({"Request-Id": "abc-123"}, "abc-123"),
        ({"X-Request-ID": "first", "Request-Id": "second"}, "first"),
        ({}, None),
        ({"X-Correlation-ID": "abc-123"}, None),
    ],
)
async def test_request_id_is_read_from_the_answers_headers(
    scripted_api: LoopbackAPI, headers: dict[str, str], expected: str | None
) -> None:
    scripted_api.answer("GET", "backups/501/", payload=BACKUP_501, headers=headers)
    async with loopback_client(scripted_api) as client:
        raw = await client.backups.with_raw_response.get(501)
    assert raw.request_id == expected


async def test_raw_response_pickles_and_deep_copies(scripted_api: LoopbackAPI) -> None:
    scripted_api.answer("GET", "backups/", payload=SEED_LIST, headers={"X-Request-ID": "p-1"})
    async with loopback_client(scripted_api) as client:
        raw = await client.backups.with_raw_response.list()
    for copied in (pickle.loads(pickle.dumps(raw)), copy.deepcopy(raw)):
        assert copied == raw
        assert copied.request_id == "p-1"
        assert copied.headers["x-request-id"] == "p-1"
        assert copied.pages == 1
        assert copied.parse() == raw.parse()


# -- errors carry the answer's headers and request ID -------------------------------


async def _get_9(client: BackupsClient) -> object:
    return await client.backups.get(9)


async def _create(client: BackupsClient) -> object:
    return await client.backups.create(12345, description="x")


@pytest.mark.parametrize(
    ("route", "call", "status", "payload", "error"),
    [
        ("GET backups/9/", _get_9, 404, {"detail": "Not found."}, NotFoundError),
        (
            "POST backups/",
            _create,
            400,
            {"description": ["Ensure this field has no more than 255 characters."]},
            BadRequestError,
        ),
        ("GET backups/9/", _get_9, 500, {"detail": "boom"}, ServerError),
        ("GET backups/9/", _get_9, 401, {"detail": "Invalid token."}, AuthenticationError),
    ],
)
async def test_an_error_ends_with_the_request_id_when_the_answer_had_one(
    scripted_api: LoopbackAPI,
    route: str,
    call: Callable[[BackupsClient], Awaitable[object]],
    status: int,
    payload: dict[str, Any],
    error: type[APIStatusError],
) -> None:
    method, path = route.split()
    scripted_api.answer(
        method, path, status=status, payload=payload, headers={"X-Request-ID": "abc-123"}
    )
    async with loopback_client(scripted_api, max_retries=0) as client:
        with pytest.raises(error) as caught:
            await call(client)
    exc = caught.value
    assert exc.status_code == status
    assert exc.request_id == "abc-123"
    assert exc.headers["x-request-id"] == "abc-123"
    assert str(exc).endswith("(request id: abc-123)")
    assert scripted_api.routes() == [route]


async def test_not_found_from_get_carries_the_request_id(scripted_api: LoopbackAPI) -> None:
    scripted_api.answer(
        "GET",
        "backups/9/",
        status=404,
        payload={"detail": "Not found."},
        headers={"X-Request-ID": "abc-123"},
    )
    async with loopback_client(scripted_api) as client:
        with pytest.raises(NotFoundError) as caught:
            await client.backups.with_raw_response.get(9)
    assert caught.value.request_id == "abc-123"
    assert str(caught.value).endswith("(request id: abc-123)")


async def test_an_error_without_a_request_id_says_none(scripted_api: LoopbackAPI) -> None:
    scripted_api.answer(
        "GET", "backups/9/", status=404, payload={"detail": "Not found."}, headers={"X-Other": "1"}
    )
    async with loopback_client(scripted_api) as client:
        with pytest.raises(NotFoundError) as caught:
            await client.backups.get(9)
    exc = caught.value
    assert exc.request_id is None
    assert exc.headers["X-Other"] == "1"
    assert "request id" not in str(exc)


async def test_an_errors_request_id_survives_pickling(scripted_api: LoopbackAPI) -> None:
    scripted_api.answer(
        "GET",
        "backups/9/",
        status=404,
        payload={"detail": "Not found."},
        headers={"X-Request-ID": "abc-123"},
    )
    async with loopback_client(scripted_api) as client:
        with pytest.raises(NotFoundError) as caught:
            await client.backups.get(9)
    for copied in (pickle.loads(pickle.dumps(caught.value)), copy.deepcopy(caught.value)):
        assert isinstance(copied, NotFoundError)
        assert copied.request_id == "abc-123"
        assert copied.headers["X-Request-ID"] == "abc-123"
        assert str(copied) == str(caught.value)
