"""``client.backups``: list, iter, get, create (with reconciliation) and delete."""

from __future__ import annotations

import json
from contextlib import aclosing
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from conftest import (
    BACKUP,
    BACKUP_495,
    BACKUP_499,
    BACKUP_501,
    BACKUPS_URL,
    CREATED_502,
    SEED_LIST,
    LoopbackAPI,
    MockAPI,
    json_response,
    loopback_client,
    methods_sent,
    page,
    sent,
    sent_count,
)

from asyncbackups import (
    APIConnectionError,
    AuthenticationError,
    Backup,
    BackupsClient,
    BackupStatus,
    BackupType,
    BadRequestError,
    NotFoundError,
    ResponseValidationError,
    ServerRef,
)

URL_501 = BACKUPS_URL + "501/"
PAGE_2 = BACKUPS_URL + "?page=2&server_id=12345"
PAGE_3 = BACKUPS_URL + "?page=3&server_id=12345"
# What a create reads to find the backup an ambiguous attempt may have made.
RECONCILE_URL = BACKUPS_URL + "?backup_type=manual&server_id=12345"
# The server's clock one second after the seed's create answer was made, and much later.
DATE_JUST_AFTER_502 = "Thu, 16 Jan 2025 15:45:01 GMT"
DATE_LONG_AFTER_502 = "Thu, 16 Jan 2025 15:50:00 GMT"
CREATE_BODY = {"server_id": 12345, "description": "Pre-deployment backup"}
# The backup made by the create, as the list route shows it (without the message).
LISTED_502 = {key: value for key, value in CREATED_502.items() if key != "message"}

NOT_IDS = [True, "501", 501.0, None]
NOT_POSITIVE = [0, -1]


def ids(backups: list[Backup]) -> list[int]:
    return [backup.id for backup in backups]


def posted_bodies(mock_api: MockAPI) -> list[Any]:
    return [json.loads(call.kwargs["data"]) for call in sent(mock_api, "POST", BACKUPS_URL)]


def posted_keys(mock_api: MockAPI) -> list[str]:
    calls = sent(mock_api, "POST", BACKUPS_URL)
    return [call.kwargs["headers"]["Idempotency-Key"] for call in calls]


# -- list ---------------------------------------------------------------------------


async def test_list_gets_the_backups_route_with_both_filters(
    client: BackupsClient, mock_api: MockAPI
) -> None:
    mock_api.get(RECONCILE_URL, payload={"count": 1, "results": [BACKUP_499]})
    backups = await client.backups.list(server_id=12345, backup_type=BackupType.MANUAL)
    assert ids(backups) == [499]
    (call,) = sent(mock_api, "GET", RECONCILE_URL)
    assert dict(call.kwargs["params"]) == {"server_id": "12345", "backup_type": "manual"}
    assert call.kwargs["data"] is None


async def test_list_without_filters_sends_no_query(
    client: BackupsClient, mock_api: MockAPI
) -> None:
    mock_api.get(BACKUPS_URL, payload=SEED_LIST)
    await client.backups.list()
    assert methods_sent(mock_api) == [("GET", BACKUPS_URL)]


async def test_list_decodes_the_seed_exactly_in_the_apis_order(
    client: BackupsClient, mock_api: MockAPI
) -> None:
    mock_api.get(BACKUPS_URL + "?server_id=12345", payload=SEED_LIST)
    backups = await client.backups.list(server_id=12345)
    assert ids(backups) == [501, 499, 495]
    first = backups[0]
    assert first.server == ServerRef(id=12345, name="web-server-01")
    assert first.backup_type is BackupType.AUTOMATIC
    assert first.status is BackupStatus.COMPLETED
    assert first.size_mb == 4523
    assert first.created_at == datetime(2025, 1, 16, 3, tzinfo=UTC)
    assert first.expires_at == datetime(2025, 2, 16, 3, tzinfo=UTC)
    assert first.description == "Automatic daily backup"
    assert backups[1].expires_at is None


async def test_list_accepts_the_backup_type_as_plain_text(
    client: BackupsClient, mock_api: MockAPI
) -> None:
    mock_api.get(BACKUPS_URL + "?backup_type=automatic", payload=page([BACKUP_501, BACKUP_495]))
    assert ids(await client.backups.list(backup_type="automatic")) == [501, 495]


async def test_list_follows_next_links_across_three_pages(
    client: BackupsClient, mock_api: MockAPI
) -> None:
    mock_api.get(BACKUPS_URL + "?server_id=12345", payload=page([BACKUP_501], next_url=PAGE_2))
    mock_api.get(PAGE_2, payload=page([BACKUP_499], next_url=PAGE_3))
    mock_api.get(PAGE_3, payload=page([BACKUP_495]))
    backups = await client.backups.list(server_id=12345)
    assert ids(backups) == [501, 499, 495]
    assert sent_count(mock_api) == 3
    assert len(sent(mock_api, "GET", PAGE_2)) == 1
    assert len(sent(mock_api, "GET", PAGE_3)) == 1


async def test_list_follows_a_relative_next_link(client: BackupsClient, mock_api: MockAPI) -> None:
    mock_api.get(BACKUPS_URL, payload=page([BACKUP_501], next_url="/api/v1/backups/?page=2"))
    mock_api.get(BACKUPS_URL + "?page=2", payload=page([BACKUP_499]))
    assert ids(await client.backups.list()) == [501, 499]


async def test_list_of_an_empty_account_is_empty(client: BackupsClient, mock_api: MockAPI) -> None:
    mock_api.get(BACKUPS_URL, payload={"count": 0, "next": None, "previous": None, "results": []})
    assert await client.backups.list() == []


async def test_iter_fetches_the_next_page_only_when_it_is_needed(
    client: BackupsClient, mock_api: MockAPI
) -> None:
    mock_api.get(BACKUPS_URL, payload=page([BACKUP_501, BACKUP_499], next_url=PAGE_2))
    mock_api.get(PAGE_2, payload=page([BACKUP_495]))
    iterator = client.backups.iter()
    async with aclosing(iterator):
        assert (await anext(iterator)).id == 501
        assert (await anext(iterator)).id == 499
        assert sent(mock_api, "GET", PAGE_2) == []
        assert (await anext(iterator)).id == 495
        assert len(sent(mock_api, "GET", PAGE_2)) == 1
        with pytest.raises(StopAsyncIteration):
            await anext(iterator)


async def test_iter_sends_nothing_until_iterated(client: BackupsClient, mock_api: MockAPI) -> None:
    iterator = client.backups.iter(server_id=12345)
    assert sent_count(mock_api) == 0
    await iterator.aclose()  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "foreign",
    [
        "https://evil.example/api/v1/backups/?page=2",
        "http://admin.vps.org/api/v1/backups/?page=2",
        "https://admin.vps.org:8443/api/v1/backups/?page=2",
    ],
    ids=["other-host", "plain-http", "other-port"],
)
async def test_next_link_to_another_origin_raises_and_sends_nothing_there(
    client: BackupsClient, mock_api: MockAPI, foreign: str
) -> None:
    mock_api.get(BACKUPS_URL, payload=page([BACKUP_501], next_url=foreign))
    mock_api.get(foreign, payload=page([BACKUP_499]), repeat=True)
    with pytest.raises(ResponseValidationError) as caught:
        await client.backups.list()
    assert caught.value.path == "$.next"
    assert sent(mock_api, "GET", foreign) == []
    assert methods_sent(mock_api) == [("GET", BACKUPS_URL)]


async def test_iter_yields_the_first_page_before_refusing_a_foreign_next_link(
    client: BackupsClient, mock_api: MockAPI
) -> None:
    foreign = "https://evil.example/api/v1/backups/?page=2"
    mock_api.get(BACKUPS_URL, payload=page([BACKUP_501], next_url=foreign))
    seen: list[int] = []

    async def consume() -> None:
        async for backup in client.backups.iter():
            seen.append(backup.id)

    with pytest.raises(ResponseValidationError):
        await consume()
    assert seen == [501]
    assert sent(mock_api, "GET", foreign) == []


async def test_next_link_pointing_at_itself_is_a_loop(
    client: BackupsClient, mock_api: MockAPI
) -> None:
    mock_api.get(BACKUPS_URL + "?server_id=12345", payload=page([BACKUP_501], next_url=PAGE_2))
    mock_api.get(PAGE_2, payload=page([BACKUP_499], next_url=PAGE_2), repeat=True)
    with pytest.raises(ResponseValidationError, match="loop") as caught:
        await client.backups.list(server_id=12345)
    assert caught.value.path == "$.next"
    assert len(sent(mock_api, "GET", PAGE_2)) == 1


async def test_next_link_back_to_the_filtered_first_page_is_a_loop(
    client: BackupsClient, mock_api: MockAPI
) -> None:
    first = BACKUPS_URL + "?server_id=12345"
    mock_api.get(first, payload=page([BACKUP_501], next_url=PAGE_2), repeat=True)
    mock_api.get(PAGE_2, payload=page([BACKUP_499], next_url=first), repeat=True)
    with pytest.raises(ResponseValidationError, match="loop"):
        await client.backups.list(server_id=12345)
    assert len(sent(mock_api, "GET", first)) == 1
    assert len(sent(mock_api, "GET", PAGE_2)) == 1


async def test_next_link_back_to_the_unfiltered_first_page_is_a_loop_without_refetching(
    client: BackupsClient, mock_api: MockAPI
) -> None:
    page_2 = BACKUPS_URL + "?page=2"
    mock_api.get(BACKUPS_URL, payload=page([BACKUP_501], next_url=page_2), repeat=True)
    mock_api.get(page_2, payload=page([BACKUP_499], next_url=BACKUPS_URL), repeat=True)
    with pytest.raises(ResponseValidationError, match="loop"):
        await client.backups.list()
    assert len(sent(mock_api, "GET", BACKUPS_URL)) == 1
    assert len(sent(mock_api, "GET", page_2)) == 1


async def test_list_401_raises_authentication_error_without_retrying(
    client: BackupsClient, mock_api: MockAPI
) -> None:
    body = {"detail": "Authentication credentials were not provided."}
    mock_api.get(BACKUPS_URL, status=401, payload=body, repeat=True)
    with pytest.raises(AuthenticationError) as caught:
        await client.backups.list()
    assert caught.value.status_code == 401
    assert caught.value.body == body
    assert sent_count(mock_api) == 1


@pytest.mark.parametrize(
    ("filters", "error"),
    [
        ({"server_id": "12345"}, TypeError),
        ({"server_id": True}, TypeError),
        ({"server_id": 12345.0}, TypeError),
        ({"server_id": 0}, ValueError),
        ({"server_id": -3}, ValueError),
        ({"backup_type": "weekly"}, ValueError),
        ({"backup_type": "Manual"}, ValueError),
        ({"backup_type": 1}, TypeError),
    ],
)
async def test_list_and_iter_refuse_bad_filters_before_any_request(
    client: BackupsClient, mock_api: MockAPI, filters: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        await client.backups.list(**filters)
    with pytest.raises(error):
        async for _ in client.backups.iter(**filters):
            pass  # pragma: no cover - nothing may be yielded
    assert sent_count(mock_api) == 0


# -- get ----------------------------------------------------------------------------


async def test_get_reads_the_detail_route(client: BackupsClient, mock_api: MockAPI) -> None:
    mock_api.get(URL_501, payload=BACKUP_501)
    backup = await client.backups.get(501)
    assert backup.id == 501
    assert backup.server_id == 12345
    assert backup.is_final is True
    assert methods_sent(mock_api) == [("GET", URL_501)]


async def test_get_404_raises_not_found_without_retrying(
    client: BackupsClient, mock_api: MockAPI
) -> None:
    mock_api.get(URL_501, status=404, payload={"detail": "Not found."}, repeat=True)
    with pytest.raises(NotFoundError) as caught:
        await client.backups.get(501)
    assert caught.value.status_code == 404
    assert caught.value.body == {"detail": "Not found."}
    assert sent_count(mock_api) == 1


async def test_get_of_a_backup_with_an_unknown_status_keeps_it_and_is_not_final(
    client: BackupsClient, mock_api: MockAPI
) -> None:
    mock_api.get(URL_501, payload={**BACKUP, "status": "restoring"})
    backup = await client.backups.get(501)
    assert backup.status == "restoring"
    assert backup.is_final is False


async def test_get_of_a_wrongly_shaped_backup_raises_naming_the_field(
    client: BackupsClient, mock_api: MockAPI
) -> None:
    mock_api.get(URL_501, payload={**BACKUP, "created_at": None}, repeat=True)
    with pytest.raises(ResponseValidationError) as caught:
        await client.backups.get(501)
    assert caught.value.path == "$.created_at"


async def test_get_of_a_body_that_is_not_json_raises_response_validation_error(
    client: BackupsClient, mock_api: MockAPI
) -> None:
    mock_api.get(URL_501, body="<html>maintenance</html>", repeat=True)
    with pytest.raises(ResponseValidationError, match="not valid JSON"):
        await client.backups.get(501)


@pytest.mark.parametrize("backup_id", NOT_IDS)
async def test_get_with_a_non_int_id_raises_type_error_before_any_request(
    client: BackupsClient, mock_api: MockAPI, backup_id: Any
) -> None:
    with pytest.raises(TypeError, match="backup_id"):
        await client.backups.get(backup_id)
    assert sent_count(mock_api) == 0


@pytest.mark.parametrize("backup_id", NOT_POSITIVE)
async def test_get_with_a_non_positive_id_raises_value_error_before_any_request(
    client: BackupsClient, mock_api: MockAPI, backup_id: int
) -> None:
    with pytest.raises(ValueError, match="backup_id"):
        await client.backups.get(backup_id)
    assert sent_count(mock_api) == 0


# -- create -------------------------------------------------------------------------


async def test_create_posts_json_with_an_idempotency_key_and_decodes_the_answer(
    client: BackupsClient, mock_api: MockAPI
) -> None:
    mock_api.post(BACKUPS_URL, status=201, payload=CREATED_502)
    backup = await client.backups.create(12345, description="Pre-deployment backup")
    assert backup == Backup(
        id=502,
        server=ServerRef(id=12345, name="web-server-01"),
        backup_type=BackupType.MANUAL,
        status=BackupStatus.IN_PROGRESS,
        size_mb=None,
        created_at=datetime(2025, 1, 16, 15, 45, tzinfo=UTC),
        expires_at=None,
        description="Pre-deployment backup",
        message=CREATED_502["message"],
    )
    (call,) = sent(mock_api, "POST", BACKUPS_URL)
    assert json.loads(call.kwargs["data"]) == CREATE_BODY
    headers = call.kwargs["headers"]
    assert headers["Content-Type"] == "application/json"
    assert headers["Idempotency-Key"]
    assert sent_count(mock_api) == 1


async def test_create_without_description_sends_only_the_server_id(
    client: BackupsClient, mock_api: MockAPI
) -> None:
    mock_api.post(BACKUPS_URL, status=201, payload={**CREATED_502, "description": None})
    backup = await client.backups.create(12345)
    assert backup.description is None
    assert posted_bodies(mock_api) == [{"server_id": 12345}]


async def test_create_uses_the_callers_idempotency_key_verbatim(
    client: BackupsClient, mock_api: MockAPI
) -> None:
    mock_api.post(BACKUPS_URL, status=201, payload=CREATED_502)
    await client.backups.create(12345, idempotency_key="deploy-42/web-01")
    assert posted_keys(mock_api) == ["deploy-42/web-01"]


async def test_two_creates_carry_different_idempotency_keys(
    client: BackupsClient, mock_api: MockAPI
) -> None:
    mock_api.post(BACKUPS_URL, status=201, payload=CREATED_502)
    mock_api.post(BACKUPS_URL, status=201, payload={**CREATED_502, "id": 503})
    await client.backups.create(12345)
    await client.backups.create(12345)
    first, second = posted_keys(mock_api)
    assert first != second


async def test_create_400_gives_drf_field_errors_without_retrying(
    client: BackupsClient, mock_api: MockAPI
) -> None:
    errors = {"description": ["Ensure this field has no more than 255 characters."]}
    mock_api.post(BACKUPS_URL, status=400, payload=errors, repeat=True)
    with pytest.raises(BadRequestError) as caught:
        await client.backups.create(12345, description="x" * 256)
    assert caught.value.status_code == 400
    assert caught.value.field_errors == errors
    assert caught.value.body == errors
    assert sent_count(mock_api) == 1


@pytest.mark.parametrize(
    ("status", "kind"), [(401, AuthenticationError), (404, NotFoundError)], ids=["401", "404"]
)
async def test_create_401_and_404_raise_without_retrying_or_reconciling(
    client: BackupsClient, mock_api: MockAPI, status: int, kind: type[Exception]
) -> None:
    mock_api.post(BACKUPS_URL, status=status, payload={"detail": "nope"}, repeat=True)
    with pytest.raises(kind):
        await client.backups.create(99999)
    assert sent_count(mock_api) == 1


AMBIGUOUS_FAILURES = [
    pytest.param({"status": 500, "payload": {"detail": "boom"}}, id="500"),
    pytest.param({"status": 502, "body": "<html>Bad Gateway</html>"}, id="502"),
    pytest.param({"status": 504, "body": ""}, id="504"),
    pytest.param({"exception": aiohttp.ServerDisconnectedError()}, id="dropped-after-send"),
    pytest.param({"exception": TimeoutError()}, id="timeout"),
]
MAY_STILL_BE_RUNNING = [AMBIGUOUS_FAILURES[2].values[0], AMBIGUOUS_FAILURES[4].values[0]]


@pytest.mark.parametrize("failure", AMBIGUOUS_FAILURES)
async def test_create_after_an_ambiguous_attempt_adopts_the_backup_it_made_without_a_second_post(
    client: BackupsClient, mock_api: MockAPI, failure: dict[str, Any]
) -> None:
    mock_api.post(BACKUPS_URL, **failure)
    mock_api.post(BACKUPS_URL, status=201, payload={**CREATED_502, "id": 666}, repeat=True)
    mock_api.get(
        RECONCILE_URL,
        payload=page([BACKUP_499, LISTED_502]),
        headers={"Date": DATE_JUST_AFTER_502},
    )
    backup = await client.backups.create(12345, description="Pre-deployment backup")
    assert backup.id == 502
    assert backup.status is BackupStatus.IN_PROGRESS
    assert len(sent(mock_api, "POST", BACKUPS_URL)) == 1
    assert len(sent(mock_api, "GET", RECONCILE_URL)) == 1


@pytest.mark.parametrize("failure", AMBIGUOUS_FAILURES)
async def test_create_after_an_ambiguous_attempt_posts_again_with_the_same_key_when_nothing_matches(
    client: BackupsClient, mock_api: MockAPI, failure: dict[str, Any]
) -> None:
    mock_api.post(BACKUPS_URL, **failure)
    mock_api.post(BACKUPS_URL, status=201, payload=CREATED_502)
    mock_api.get(
        RECONCILE_URL,
        payload=page([BACKUP_499]),
        headers={"Date": DATE_JUST_AFTER_502},
        repeat=True,
    )
    backup = await client.backups.create(12345, description="Pre-deployment backup")
    assert backup.id == 502
    assert backup.message == CREATED_502["message"]
    first, second = posted_keys(mock_api)
    assert first == second
    assert posted_bodies(mock_api) == [CREATE_BODY, CREATE_BODY]
    # One read before the resend, also after an attempt that may still be running
    # (timeout, 504): that read first gives it time to land, which keeps a create
    # within 2 x (max_retries + 1) requests.
    assert len(sent(mock_api, "GET", RECONCILE_URL)) == 1


async def test_create_reconcile_reads_every_page_of_the_servers_manual_backups(
    client: BackupsClient, mock_api: MockAPI
) -> None:
    reconcile_page_2 = RECONCILE_URL + "&page=2"
    mock_api.post(BACKUPS_URL, status=500)
    mock_api.get(
        RECONCILE_URL,
        payload=page([BACKUP_499], next_url=reconcile_page_2),
        headers={"Date": DATE_JUST_AFTER_502},
    )
    mock_api.get(reconcile_page_2, payload=page([LISTED_502]))
    backup = await client.backups.create(12345, description="Pre-deployment backup")
    assert backup.id == 502
    assert len(sent(mock_api, "POST", BACKUPS_URL)) == 1
    assert len(sent(mock_api, "GET", reconcile_page_2)) == 1


async def test_create_does_not_adopt_a_matching_backup_made_before_the_call_began(
    client: BackupsClient, mock_api: MockAPI
) -> None:
    mock_api.post(BACKUPS_URL, status=500)
    mock_api.post(BACKUPS_URL, status=201, payload={**CREATED_502, "id": 503})
    # The server's clock says 502 was made five minutes before this call.
    mock_api.get(RECONCILE_URL, payload=page([LISTED_502]), headers={"Date": DATE_LONG_AFTER_502})
    backup = await client.backups.create(12345, description="Pre-deployment backup")
    assert backup.id == 503
    assert len(sent(mock_api, "POST", BACKUPS_URL)) == 2


async def test_create_does_not_adopt_a_recent_backup_with_another_description(
    client: BackupsClient, mock_api: MockAPI
) -> None:
    mock_api.post(BACKUPS_URL, status=502)
    mock_api.post(BACKUPS_URL, status=201, payload={**CREATED_502, "id": 503})
    other = {**LISTED_502, "description": "Someone else's backup"}
    mock_api.get(RECONCILE_URL, payload=page([other]), headers={"Date": DATE_JUST_AFTER_502})
    backup = await client.backups.create(12345, description="Pre-deployment backup")
    assert backup.id == 503
    assert len(sent(mock_api, "POST", BACKUPS_URL)) == 2


async def test_create_without_description_adopts_only_a_backup_without_one(
    client: BackupsClient, mock_api: MockAPI
) -> None:
    mock_api.post(BACKUPS_URL, status=504)
    described = {**LISTED_502, "id": 502, "description": "Pre-deployment backup"}
    plain = {**LISTED_502, "id": 503, "description": None}
    mock_api.get(
        RECONCILE_URL, payload=page([described, plain]), headers={"Date": DATE_JUST_AFTER_502}
    )
    backup = await client.backups.create(12345)
    assert backup.id == 503
    assert len(sent(mock_api, "POST", BACKUPS_URL)) == 1


async def test_create_never_adopts_the_backup_an_earlier_create_returned(
    client: BackupsClient, mock_api: MockAPI
) -> None:
    mock_api.post(BACKUPS_URL, status=201, payload=CREATED_502)
    mock_api.post(BACKUPS_URL, status=500)
    mock_api.post(BACKUPS_URL, status=201, payload={**CREATED_502, "id": 503})
    mock_api.get(RECONCILE_URL, payload=page([LISTED_502]), headers={"Date": DATE_JUST_AFTER_502})
    first = await client.backups.create(12345, description="Pre-deployment backup")
    second = await client.backups.create(12345, description="Pre-deployment backup")
    assert (first.id, second.id) == (502, 503)
    assert len(sent(mock_api, "POST", BACKUPS_URL)) == 3


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param({"status": 503, "payload": {"detail": "maintenance"}}, id="503"),
        pytest.param({"status": 429, "headers": {"Retry-After": "0"}}, id="429"),
    ],
)
async def test_create_after_a_declined_attempt_posts_again_without_reconciling(
    client: BackupsClient, mock_api: MockAPI, failure: dict[str, Any]
) -> None:
    mock_api.post(BACKUPS_URL, **failure)
    mock_api.post(BACKUPS_URL, status=201, payload=CREATED_502)
    backup = await client.backups.create(12345, description="Pre-deployment backup")
    assert backup.id == 502
    first, second = posted_keys(mock_api)
    assert first == second
    assert methods_sent(mock_api) == [("POST", BACKUPS_URL)]


async def test_create_after_a_connection_that_never_opened_posts_again_without_reconciling(
    client: BackupsClient, mock_api: MockAPI
) -> None:
    refused = aiohttp.ClientConnectorError(
        aiohttp.client_reqrep.ConnectionKey("admin.vps.org", 443, True, True, None, None, None),
        ConnectionRefusedError(111, "Connection refused"),
    )
    mock_api.post(BACKUPS_URL, exception=refused)
    mock_api.post(BACKUPS_URL, status=201, payload=CREATED_502)
    assert (await client.backups.create(12345)).id == 502
    assert methods_sent(mock_api) == [("POST", BACKUPS_URL)]
    assert len(sent(mock_api, "POST", BACKUPS_URL)) == 2


@pytest.mark.parametrize(
    "malformed",
    [
        pytest.param({"body": "<html>Created</html>"}, id="not-json"),
        pytest.param({"payload": {**CREATED_502, "created_at": "soon"}}, id="bad-field"),
        pytest.param({"payload": ["created"]}, id="not-an-object"),
    ],
)
async def test_create_with_a_malformed_201_adopts_the_backup_from_a_reconcile(
    client: BackupsClient, mock_api: MockAPI, malformed: dict[str, Any]
) -> None:
    mock_api.post(BACKUPS_URL, status=201, **malformed)
    mock_api.post(BACKUPS_URL, status=201, payload={**CREATED_502, "id": 666}, repeat=True)
    mock_api.get(RECONCILE_URL, payload=page([LISTED_502]), headers={"Date": DATE_JUST_AFTER_502})
    backup = await client.backups.create(12345, description="Pre-deployment backup")
    assert backup.id == 502
    assert len(sent(mock_api, "POST", BACKUPS_URL)) == 1


async def test_create_exhausting_retries_on_dropped_connections_raises_connection_error(
    mock_api: MockAPI,
) -> None:
    mock_api.post(BACKUPS_URL, exception=aiohttp.ServerDisconnectedError(), repeat=True)
    mock_api.get(RECONCILE_URL, payload=page([]), repeat=True)
    async with BackupsClient("tok", max_retries=2, retry_backoff=0) as client:
        with pytest.raises(APIConnectionError) as caught:
            await client.backups.create(12345)
    assert not isinstance(caught.value, aiohttp.ClientError)
    assert len(sent(mock_api, "POST", BACKUPS_URL)) == 3
    # Before each resend, and once more after the last attempt before giving up.
    assert len(sent(mock_api, "GET", RECONCILE_URL)) == 3


async def test_create_whose_last_attempt_may_have_acted_adopts_what_it_made(
    mock_api: MockAPI,
) -> None:
    mock_api.post(BACKUPS_URL, exception=aiohttp.ServerDisconnectedError(), repeat=True)
    mock_api.get(RECONCILE_URL, payload=page([]), repeat=2)
    made_now = {**CREATED_502, "created_at": datetime.now(UTC).isoformat()}
    mock_api.get(RECONCILE_URL, payload=page([made_now]))
    async with BackupsClient("tok", max_retries=2, retry_backoff=0) as client:
        backup = await client.backups.create(12345, description=CREATED_502["description"])

    assert backup.id == 502
    assert len(sent(mock_api, "POST", BACKUPS_URL)) == 3


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        ((True,), TypeError),
        (("12345",), TypeError),
        ((12345.0,), TypeError),
        ((0,), ValueError),
        ((-12345,), ValueError),
    ],
)
async def test_create_with_a_bad_server_id_raises_before_any_request(
    client: BackupsClient, mock_api: MockAPI, arguments: tuple[Any], error: type[Exception]
) -> None:
    with pytest.raises(error, match="server_id"):
        await client.backups.create(*arguments)
    assert sent_count(mock_api) == 0


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"description": 5}, TypeError),
        ({"idempotency_key": ""}, ValueError),
        ({"idempotency_key": "ключ"}, ValueError),
        ({"idempotency_key": 5}, TypeError),
    ],
)
async def test_create_with_bad_options_raises_before_any_request(
    client: BackupsClient, mock_api: MockAPI, options: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        await client.backups.create(12345, **options)
    assert sent_count(mock_api) == 0


# -- delete -------------------------------------------------------------------------


async def test_delete_sends_delete_to_the_detail_route(
    client: BackupsClient, mock_api: MockAPI
) -> None:
    mock_api.delete(URL_501, status=204)
    assert await client.backups.delete(501) is None
    (call,) = sent(mock_api, "DELETE", URL_501)
    assert call.kwargs["data"] is None
    assert methods_sent(mock_api) == [("DELETE", URL_501)]


async def test_delete_404_raises_not_found_without_retrying(
    client: BackupsClient, mock_api: MockAPI
) -> None:
    mock_api.delete(URL_501, status=404, payload={"detail": "Not found."}, repeat=True)
    with pytest.raises(NotFoundError) as caught:
        await client.backups.delete(501)
    assert caught.value.status_code == 404
    assert caught.value.body == {"detail": "Not found."}
    assert sent_count(mock_api) == 1


async def test_delete_401_raises_without_retrying(client: BackupsClient, mock_api: MockAPI) -> None:
    mock_api.delete(URL_501, status=401, payload={"detail": "Invalid token."}, repeat=True)
    with pytest.raises(AuthenticationError):
        await client.backups.delete(501)
    assert sent_count(mock_api) == 1


@pytest.mark.parametrize("failure", AMBIGUOUS_FAILURES)
async def test_delete_404_on_a_retry_after_an_ambiguous_attempt_is_success(
    client: BackupsClient, mock_api: MockAPI, failure: dict[str, Any]
) -> None:
    mock_api.delete(URL_501, **failure)
    mock_api.delete(URL_501, status=404, payload={"detail": "Not found."})
    assert await client.backups.delete(501) is None
    assert len(sent(mock_api, "DELETE", URL_501)) == 2


async def test_delete_404_after_a_declined_503_is_still_not_found(
    client: BackupsClient, mock_api: MockAPI
) -> None:
    mock_api.delete(URL_501, status=503)
    mock_api.delete(URL_501, status=404, payload={"detail": "Not found."})
    with pytest.raises(NotFoundError):
        await client.backups.delete(501)
    assert len(sent(mock_api, "DELETE", URL_501)) == 2


async def test_delete_retries_a_500_and_succeeds(client: BackupsClient, mock_api: MockAPI) -> None:
    mock_api.delete(URL_501, status=500)
    mock_api.delete(URL_501, status=204)
    assert await client.backups.delete(501) is None
    assert len(sent(mock_api, "DELETE", URL_501)) == 2


@pytest.mark.parametrize("backup_id", NOT_IDS)
async def test_delete_with_a_non_int_id_raises_type_error_before_any_request(
    client: BackupsClient, mock_api: MockAPI, backup_id: Any
) -> None:
    with pytest.raises(TypeError, match="backup_id"):
        await client.backups.delete(backup_id)
    assert sent_count(mock_api) == 0


@pytest.mark.parametrize("backup_id", NOT_POSITIVE)
async def test_delete_with_a_non_positive_id_raises_value_error_before_any_request(
    client: BackupsClient, mock_api: MockAPI, backup_id: int
) -> None:
    with pytest.raises(ValueError, match="backup_id"):
        await client.backups.delete(backup_id)
    assert sent_count(mock_api) == 0


# -- against a real server: what a mock cannot show ---------------------------------


def is_create(request: web.Request) -> bool:
    return request.method == "POST" and request.path == "/api/v1/backups/"


async def test_delete_whose_connection_drops_then_404s_on_aiohttps_silent_repeat_has_succeeded(
    loopback: Any,
) -> None:
    async def drop_then_gone(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        if len(api.seen) == 1:
            return api.drop(request)  # the first try may have deleted it
        return json_response({"detail": "Not found."}, status=404)

    api = await loopback(drop_then_gone)
    # No retries of its own: the second DELETE can only be aiohttp's silent repeat.
    async with loopback_client(api, max_retries=0) as client:
        assert await client.backups.delete(501) is None
    assert api.paths() == ["DELETE /api/v1/backups/501/"] * 2


async def test_delete_404_without_any_drop_is_not_found(loopback: Any) -> None:
    async def gone(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        return json_response({"detail": "Not found."}, status=404)

    api = await loopback(gone)
    async with loopback_client(api) as client:
        with pytest.raises(NotFoundError):
            await client.backups.delete(501)
    assert len(api.seen) == 1


def reconciling_api(
    *, server_date: str | None, listed: list[dict[str, Any]], first_post: str
) -> Any:
    """A server whose first create is lost ("stall" or "drop") yet made ``listed``."""

    async def handler(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        if is_create(request):
            if sum(1 for seen in api.seen if seen.method == "POST") == 1:
                return await api.stall() if first_post == "stall" else api.drop(request)
            return json_response({**CREATED_502, "id": 777}, status=201)
        headers = {"Date": server_date} if server_date else {}
        return json_response(page(listed), **headers)

    return handler


@pytest.mark.parametrize("first_post", ["stall", "drop"])
async def test_create_adopts_by_the_servers_clock_even_when_it_differs_from_ours(
    loopback: Any, first_post: str
) -> None:
    # The server's clock is in January 2025, far from this machine's: the backup it
    # made one second ago by its own clock is the one the lost attempt created.
    handler = reconciling_api(
        server_date=DATE_JUST_AFTER_502, listed=[BACKUP_499, LISTED_502], first_post=first_post
    )
    api = await loopback(handler)
    async with loopback_client(api, timeout=0.1) as client:
        backup = await client.backups.create(12345, description="Pre-deployment backup")
    assert backup.id == 502
    assert api.paths() == [
        "POST /api/v1/backups/",
        "GET /api/v1/backups/?server_id=12345&backup_type=manual",
    ]


async def test_create_does_not_adopt_what_the_servers_clock_says_is_older_than_the_call(
    loopback: Any,
) -> None:
    handler = reconciling_api(
        server_date=DATE_LONG_AFTER_502, listed=[LISTED_502], first_post="stall"
    )
    api = await loopback(handler)
    async with loopback_client(api, timeout=0.1) as client:
        backup = await client.backups.create(12345, description="Pre-deployment backup")
    assert backup.id == 777
    posts = [seen for seen in api.seen if seen.method == "POST"]
    assert len(posts) == 2
    assert posts[0].headers["Idempotency-Key"] == posts[1].headers["Idempotency-Key"]
    assert posts[0].body == posts[1].body


async def test_create_adopts_a_backup_made_just_now_by_the_servers_real_clock(
    loopback: Any,
) -> None:
    # aiohttp stamps its own Date: the server and this machine agree on the time.
    made_now = {**LISTED_502, "created_at": datetime.now(UTC).isoformat()}
    handler = reconciling_api(server_date=None, listed=[made_now], first_post="drop")
    api = await loopback(handler)
    async with loopback_client(api) as client:
        backup = await client.backups.create(12345, description="Pre-deployment backup")
    assert backup.id == 502
    assert sum(1 for seen in api.seen if seen.method == "POST") == 1


async def test_create_with_a_malformed_201_never_posts_again_even_if_the_reconcile_finds_nothing(
    client: BackupsClient, mock_api: MockAPI
) -> None:
    # The 201 says the backup exists: sending the create again could only duplicate it.
    mock_api.post(BACKUPS_URL, status=201, body="<html>Created</html>")
    mock_api.post(BACKUPS_URL, status=201, payload={**CREATED_502, "id": 666}, repeat=True)
    mock_api.get(
        RECONCILE_URL, payload=page([]), headers={"Date": DATE_JUST_AFTER_502}, repeat=True
    )
    with pytest.raises(ResponseValidationError):
        await client.backups.create(12345, description="Pre-deployment backup")
    assert len(sent(mock_api, "POST", BACKUPS_URL)) == 1
