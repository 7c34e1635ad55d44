"""``client.backups``: list, iter, get, create (with reconciliation) and delete."""

from __future__ import annotations

import asyncio
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
    SHORT_TIMEOUT,
    LoopbackAPI,
    MockAPI,
    StartLoopback,
    json_response,
    loopback_client,
    page,
    sent_count,
)
from yarl import URL

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

PAGE_2 = "backups/?page=2&server_id=12345"
PAGE_3 = "backups/?page=3&server_id=12345"
# What a create reads to find the backup an ambiguous attempt may have made.
RECONCILE = "backups/?backup_type=manual&server_id=12345"
# The server's clock one second after the seed's create answer was made, and much later.
DATE_JUST_AFTER_502 = {"Date": "Thu, 16 Jan 2025 15:45:01 GMT"}
DATE_LONG_AFTER_502 = {"Date": "Thu, 16 Jan 2025 15:50:00 GMT"}
CREATE_BODY = {"server_id": 12345, "description": "Pre-deployment backup"}
# The backup made by the create, as the list route shows it (without the message).
LISTED_502 = {key: value for key, value in CREATED_502.items() if key != "message"}

NOT_IDS = [True, "501", 501.0, None]
NOT_POSITIVE = [0, -1]


def ids(backups: list[Backup]) -> list[int]:
    return [backup.id for backup in backups]


def posts(api: LoopbackAPI) -> list[Any]:
    """The create requests the server received, in order."""
    return api.received("POST", "backups/")


# -- list ---------------------------------------------------------------------------


async def test_list_gets_the_backups_route_with_both_filters(
    scripted_api: LoopbackAPI, scripted_client: BackupsClient
) -> None:
    scripted_api.answer("GET", RECONCILE, payload={"count": 1, "results": [BACKUP_499]})
    backups = await scripted_client.backups.list(server_id=12345, backup_type=BackupType.MANUAL)
    assert ids(backups) == [499]
    (request,) = scripted_api.seen
    assert request.route == "GET backups/?backup_type=manual&server_id=12345"
    assert request.body == b""


async def test_list_without_filters_sends_no_query(
    scripted_api: LoopbackAPI, scripted_client: BackupsClient
) -> None:
    scripted_api.answer("GET", "backups/", payload=SEED_LIST)
    await scripted_client.backups.list()
    assert scripted_api.paths() == ["GET /api/v1/backups/"]


async def test_list_decodes_the_seed_exactly_in_the_apis_order(
    scripted_api: LoopbackAPI, scripted_client: BackupsClient
) -> None:
    scripted_api.answer("GET", "backups/?server_id=12345", payload=SEED_LIST)
    backups = await scripted_client.backups.list(server_id=12345)
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
    scripted_api: LoopbackAPI, scripted_client: BackupsClient
) -> None:
    scripted_api.answer(
        "GET", "backups/?backup_type=automatic", payload=page([BACKUP_501, BACKUP_495])
    )
    assert ids(await scripted_client.backups.list(backup_type="automatic")) == [501, 495]
    assert scripted_api.routes() == ["GET backups/?backup_type=automatic"]


async def test_list_follows_next_links_across_three_pages(
    scripted_api: LoopbackAPI, scripted_client: BackupsClient
) -> None:
    api = scripted_api
    api.answer(
        "GET", "backups/?server_id=12345", payload=page([BACKUP_501], next_url=api.url(PAGE_2))
    )
    api.answer("GET", PAGE_2, payload=page([BACKUP_499], next_url=api.url(PAGE_3)))
    api.answer("GET", PAGE_3, payload=page([BACKUP_495]))
    backups = await scripted_client.backups.list(server_id=12345)
    assert ids(backups) == [501, 499, 495]
    assert api.routes() == [
        "GET backups/?server_id=12345",
        "GET backups/?page=2&server_id=12345",
        "GET backups/?page=3&server_id=12345",
    ]


async def test_list_follows_a_relative_next_link(
    scripted_api: LoopbackAPI, scripted_client: BackupsClient
) -> None:
    scripted_api.answer(
        "GET", "backups/", payload=page([BACKUP_501], next_url="/api/v1/backups/?page=2")
    )
    scripted_api.answer("GET", "backups/?page=2", payload=page([BACKUP_499]))
    assert ids(await scripted_client.backups.list()) == [501, 499]
    assert scripted_api.routes() == ["GET backups/", "GET backups/?page=2"]


async def test_list_of_an_empty_account_is_empty(
    scripted_api: LoopbackAPI, scripted_client: BackupsClient
) -> None:
    scripted_api.answer(
        "GET", "backups/", payload={"count": 0, "next": None, "previous": None, "results": []}
    )
    assert await scripted_client.backups.list() == []


async def test_iter_fetches_the_next_page_only_when_it_is_needed(
    scripted_api: LoopbackAPI, scripted_client: BackupsClient
) -> None:
    api = scripted_api
    api.answer(
        "GET",
        "backups/",
        payload=page([BACKUP_501, BACKUP_499], next_url=api.url("backups/?page=2")),
    )
    api.answer("GET", "backups/?page=2", payload=page([BACKUP_495]))
    iterator = scripted_client.backups.iter()
    async with aclosing(iterator):
        assert (await anext(iterator)).id == 501
        assert (await anext(iterator)).id == 499
        assert api.routes() == ["GET backups/"]
        assert (await anext(iterator)).id == 495
        assert api.routes() == ["GET backups/", "GET backups/?page=2"]
        with pytest.raises(StopAsyncIteration):
            await anext(iterator)


async def test_iter_sends_nothing_until_iterated(
    scripted_api: LoopbackAPI, scripted_client: BackupsClient
) -> None:
    iterator = scripted_client.backups.iter(server_id=12345)
    await asyncio.sleep(0)
    assert scripted_api.seen == []
    await iterator.aclose()  # type: ignore[attr-defined]


def foreign_next_link(kind: str, api: LoopbackAPI, elsewhere: LoopbackAPI) -> str:
    """A page 2 link off the API's origin; the first two lead back to this very server."""
    own = URL(api.url("backups/?page=2"))
    if kind == "other-host":
        return str(own.with_host("localhost"))
    if kind == "other-scheme":
        return str(own.with_scheme("https"))
    return elsewhere.url("backups/?page=2")


@pytest.mark.parametrize("foreign", ["other-host", "other-scheme", "other-port"])
async def test_next_link_to_another_origin_raises_and_sends_nothing_there(
    loopback: StartLoopback,
    scripted_api: LoopbackAPI,
    scripted_client: BackupsClient,
    foreign: str,
) -> None:
    elsewhere = await loopback()
    link = foreign_next_link(foreign, scripted_api, elsewhere)
    scripted_api.answer("GET", "backups/", payload=page([BACKUP_501], next_url=link))
    with pytest.raises(ResponseValidationError) as caught:
        await scripted_client.backups.list()
    assert caught.value.path == "$.next"
    assert scripted_api.routes() == ["GET backups/"]
    assert elsewhere.seen == []


async def test_iter_yields_the_first_page_before_refusing_a_foreign_next_link(
    loopback: StartLoopback, scripted_api: LoopbackAPI, scripted_client: BackupsClient
) -> None:
    elsewhere = await loopback()
    foreign = elsewhere.url("backups/?page=2")
    scripted_api.answer("GET", "backups/", payload=page([BACKUP_501], next_url=foreign))
    seen: list[int] = []

    async def consume() -> None:
        async for backup in scripted_client.backups.iter():
            seen.append(backup.id)

    with pytest.raises(ResponseValidationError):
        await consume()
    assert seen == [501]
    assert elsewhere.seen == []


async def test_next_link_pointing_at_itself_is_a_loop(
    scripted_api: LoopbackAPI, scripted_client: BackupsClient
) -> None:
    api = scripted_api
    api.answer(
        "GET", "backups/?server_id=12345", payload=page([BACKUP_501], next_url=api.url(PAGE_2))
    )
    api.answer("GET", PAGE_2, payload=page([BACKUP_499], next_url=api.url(PAGE_2)))
    with pytest.raises(ResponseValidationError, match="loop") as caught:
        await scripted_client.backups.list(server_id=12345)
    assert caught.value.path == "$.next"
    assert api.routes() == ["GET backups/?server_id=12345", "GET backups/?page=2&server_id=12345"]


async def test_next_link_back_to_the_filtered_first_page_is_a_loop(
    scripted_api: LoopbackAPI, scripted_client: BackupsClient
) -> None:
    api = scripted_api
    first = "backups/?server_id=12345"
    api.answer("GET", first, payload=page([BACKUP_501], next_url=api.url(PAGE_2)))
    api.answer("GET", PAGE_2, payload=page([BACKUP_499], next_url=api.url(first)))
    with pytest.raises(ResponseValidationError, match="loop"):
        await scripted_client.backups.list(server_id=12345)
    assert api.routes() == ["GET backups/?server_id=12345", "GET backups/?page=2&server_id=12345"]


async def test_next_link_back_to_the_unfiltered_first_page_is_a_loop_without_refetching(
    scripted_api: LoopbackAPI, scripted_client: BackupsClient
) -> None:
    api = scripted_api
    api.answer("GET", "backups/", payload=page([BACKUP_501], next_url=api.url("backups/?page=2")))
    api.answer(
        "GET", "backups/?page=2", payload=page([BACKUP_499], next_url=api.base_url + "backups/")
    )
    with pytest.raises(ResponseValidationError, match="loop"):
        await scripted_client.backups.list()
    assert api.routes() == ["GET backups/", "GET backups/?page=2"]


@pytest.mark.parametrize(
    "next_url",
    ["http://[::1", "https://admin.vps.org:99999/api/v1/backups/?page=2", "https://[zz]/"],
)
async def test_unparsable_next_link_raises_response_validation_error(
    scripted_api: LoopbackAPI, scripted_client: BackupsClient, next_url: str
) -> None:
    scripted_api.answer("GET", "backups/", payload=page([BACKUP_501], next_url=next_url))
    with pytest.raises(ResponseValidationError) as caught:
        await scripted_client.backups.list()
    assert caught.value.path == "$.next"
    assert scripted_api.routes() == ["GET backups/"]


async def test_list_401_raises_authentication_error_without_retrying(
    scripted_api: LoopbackAPI, scripted_client: BackupsClient
) -> None:
    body = {"detail": "Authentication credentials were not provided."}
    scripted_api.answer("GET", "backups/", status=401, payload=body)
    with pytest.raises(AuthenticationError) as caught:
        await scripted_client.backups.list()
    assert caught.value.status_code == 401
    assert caught.value.body == body
    assert scripted_api.routes() == ["GET backups/"]


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
    scripted_api: LoopbackAPI,
    scripted_client: BackupsClient,
    filters: dict[str, Any],
    error: type[Exception],
) -> None:
    with pytest.raises(error):
        await scripted_client.backups.list(**filters)
    with pytest.raises(error):
        async for _ in scripted_client.backups.iter(**filters):
            pass  # pragma: no cover - nothing may be yielded
    assert scripted_api.seen == []


# -- get ----------------------------------------------------------------------------


async def test_get_reads_the_detail_route(
    scripted_api: LoopbackAPI, scripted_client: BackupsClient
) -> None:
    scripted_api.answer("GET", "backups/501/", payload=BACKUP_501)
    backup = await scripted_client.backups.get(501)
    assert backup.id == 501
    assert backup.server_id == 12345
    assert backup.is_final is True
    assert scripted_api.paths() == ["GET /api/v1/backups/501/"]


async def test_get_404_raises_not_found_without_retrying(
    scripted_api: LoopbackAPI, scripted_client: BackupsClient
) -> None:
    scripted_api.answer("GET", "backups/501/", status=404, payload={"detail": "Not found."})
    with pytest.raises(NotFoundError) as caught:
        await scripted_client.backups.get(501)
    assert caught.value.status_code == 404
    assert caught.value.body == {"detail": "Not found."}
    assert len(scripted_api.seen) == 1


async def test_get_of_a_backup_with_an_unknown_status_keeps_it_and_is_not_final(
    scripted_api: LoopbackAPI, scripted_client: BackupsClient
) -> None:
    scripted_api.answer("GET", "backups/501/", payload={**BACKUP, "status": "restoring"})
    backup = await scripted_client.backups.get(501)
    assert backup.status == "restoring"
    assert backup.is_final is False


async def test_get_of_a_wrongly_shaped_backup_raises_naming_the_field(
    scripted_api: LoopbackAPI, scripted_client: BackupsClient
) -> None:
    scripted_api.answer("GET", "backups/501/", payload={**BACKUP, "created_at": None})
    with pytest.raises(ResponseValidationError) as caught:
        await scripted_client.backups.get(501)
    assert caught.value.path == "$.created_at"


async def test_get_of_a_body_that_is_not_json_raises_response_validation_error(
    scripted_api: LoopbackAPI, scripted_client: BackupsClient
) -> None:
    scripted_api.answer(
        "GET", "backups/501/", body="<html>maintenance</html>", content_type="application/json"
    )
    with pytest.raises(ResponseValidationError, match="not valid JSON"):
        await scripted_client.backups.get(501)


@pytest.mark.parametrize("backup_id", NOT_IDS)
async def test_get_with_a_non_int_id_raises_type_error_before_any_request(
    scripted_api: LoopbackAPI, scripted_client: BackupsClient, backup_id: Any
) -> None:
    with pytest.raises(TypeError, match="backup_id"):
        await scripted_client.backups.get(backup_id)
    assert scripted_api.seen == []


@pytest.mark.parametrize("backup_id", NOT_POSITIVE)
async def test_get_with_a_non_positive_id_raises_value_error_before_any_request(
    scripted_api: LoopbackAPI, scripted_client: BackupsClient, backup_id: int
) -> None:
    with pytest.raises(ValueError, match="backup_id"):
        await scripted_client.backups.get(backup_id)
    assert scripted_api.seen == []


# -- create -------------------------------------------------------------------------


async def test_create_posts_json_with_an_idempotency_key_and_decodes_the_answer(
    scripted_api: LoopbackAPI, scripted_client: BackupsClient
) -> None:
    scripted_api.answer("POST", "backups/", status=201, payload=CREATED_502)
    backup = await scripted_client.backups.create(12345, description="Pre-deployment backup")
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
    (request,) = scripted_api.seen
    assert request.route == "POST backups/"
    assert request.json() == CREATE_BODY
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Idempotency-Key"]


async def test_create_without_description_sends_only_the_server_id(
    scripted_api: LoopbackAPI, scripted_client: BackupsClient
) -> None:
    scripted_api.answer(
        "POST", "backups/", status=201, payload={**CREATED_502, "description": None}
    )
    backup = await scripted_client.backups.create(12345)
    assert backup.description is None
    assert [request.json() for request in posts(scripted_api)] == [{"server_id": 12345}]


async def test_create_uses_the_callers_idempotency_key_verbatim(
    scripted_api: LoopbackAPI, scripted_client: BackupsClient
) -> None:
    scripted_api.answer("POST", "backups/", status=201, payload=CREATED_502)
    await scripted_client.backups.create(12345, idempotency_key="deploy-42/web-01")
    assert [request.headers["Idempotency-Key"] for request in posts(scripted_api)] == [
        "deploy-42/web-01"
    ]


async def test_two_creates_carry_different_idempotency_keys(
    scripted_api: LoopbackAPI, scripted_client: BackupsClient
) -> None:
    scripted_api.answer("POST", "backups/", status=201, payload=CREATED_502)
    scripted_api.answer("POST", "backups/", status=201, payload={**CREATED_502, "id": 503})
    await scripted_client.backups.create(12345)
    await scripted_client.backups.create(12345)
    first, second = (request.headers["Idempotency-Key"] for request in posts(scripted_api))
    assert first != second


async def test_create_400_gives_drf_field_errors_without_retrying(
    scripted_api: LoopbackAPI, scripted_client: BackupsClient
) -> None:
    errors = {"description": ["Ensure this field has no more than 255 characters."]}
    scripted_api.answer("POST", "backups/", status=400, payload=errors)
    with pytest.raises(BadRequestError) as caught:
        await scripted_client.backups.create(12345, description="x" * 256)
    assert caught.value.status_code == 400
    assert caught.value.field_errors == errors
    assert caught.value.body == errors
    assert scripted_api.routes() == ["POST backups/"]


@pytest.mark.parametrize(
    ("status", "kind"), [(401, AuthenticationError), (404, NotFoundError)], ids=["401", "404"]
)
async def test_create_401_and_404_raise_without_retrying_or_reconciling(
    scripted_api: LoopbackAPI,
    scripted_client: BackupsClient,
    status: int,
    kind: type[Exception],
) -> None:
    scripted_api.answer("POST", "backups/", status=status, payload={"detail": "nope"})
    with pytest.raises(kind):
        await scripted_client.backups.create(99999)
    assert scripted_api.routes() == ["POST backups/"]


# Each may have made the backup: the answer was lost (504 and a timeout: the request
# may even still be running on the server).
AMBIGUOUS_FAILURES = [
    pytest.param({"status": 500, "payload": {"detail": "boom"}}, id="500"),
    pytest.param(
        {"status": 502, "body": "<html>Bad Gateway</html>", "content_type": "text/html"}, id="502"
    ),
    pytest.param({"status": 504}, id="504"),
    pytest.param({"drop": True}, id="dropped-after-send"),
    pytest.param({"stall": True}, id="timeout"),
]


@pytest.mark.parametrize("failure", AMBIGUOUS_FAILURES)
async def test_create_after_an_ambiguous_attempt_adopts_the_backup_it_made_without_a_second_post(
    scripted_api: LoopbackAPI, failure: dict[str, Any]
) -> None:
    scripted_api.answer("POST", "backups/", **failure)
    scripted_api.answer("POST", "backups/", status=201, payload={**CREATED_502, "id": 666})
    scripted_api.answer(
        "GET", RECONCILE, payload=page([BACKUP_499, LISTED_502]), headers=DATE_JUST_AFTER_502
    )
    async with loopback_client(scripted_api, timeout=SHORT_TIMEOUT) as client:
        backup = await client.backups.create(12345, description="Pre-deployment backup")
    assert backup.id == 502
    assert backup.status is BackupStatus.IN_PROGRESS
    assert scripted_api.routes() == ["POST backups/", f"GET {RECONCILE}"]


@pytest.mark.parametrize("failure", AMBIGUOUS_FAILURES)
async def test_create_after_an_ambiguous_attempt_posts_again_with_the_same_key_when_nothing_matches(
    scripted_api: LoopbackAPI, failure: dict[str, Any]
) -> None:
    scripted_api.answer("POST", "backups/", **failure)
    scripted_api.answer("POST", "backups/", status=201, payload=CREATED_502)
    scripted_api.answer("GET", RECONCILE, payload=page([BACKUP_499]), headers=DATE_JUST_AFTER_502)
    async with loopback_client(scripted_api, timeout=SHORT_TIMEOUT) as client:
        backup = await client.backups.create(12345, description="Pre-deployment backup")
    assert backup.id == 502
    assert backup.message == CREATED_502["message"]
    first, second = posts(scripted_api)
    assert first.headers["Idempotency-Key"] == second.headers["Idempotency-Key"]
    assert [first.json(), second.json()] == [CREATE_BODY, CREATE_BODY]
    # One read before the resend, also after an attempt that may still be running
    # (timeout, 504): that read first gives it time to land, which keeps a create
    # within 2 x (max_retries + 1) requests.
    assert scripted_api.routes() == ["POST backups/", f"GET {RECONCILE}", "POST backups/"]


async def test_create_reconcile_reads_every_page_of_the_servers_manual_backups(
    scripted_api: LoopbackAPI, scripted_client: BackupsClient
) -> None:
    api = scripted_api
    reconcile_page_2 = RECONCILE + "&page=2"
    api.answer("POST", "backups/", status=500)
    api.answer(
        "GET",
        RECONCILE,
        payload=page([BACKUP_499], next_url=api.url(reconcile_page_2)),
        headers=DATE_JUST_AFTER_502,
    )
    api.answer("GET", reconcile_page_2, payload=page([LISTED_502]))
    backup = await scripted_client.backups.create(12345, description="Pre-deployment backup")
    assert backup.id == 502
    assert api.routes() == [
        "POST backups/",
        "GET backups/?backup_type=manual&server_id=12345",
        "GET backups/?backup_type=manual&page=2&server_id=12345",
    ]


async def test_create_does_not_adopt_a_matching_backup_made_before_the_call_began(
    scripted_api: LoopbackAPI, scripted_client: BackupsClient
) -> None:
    scripted_api.answer("POST", "backups/", status=500)
    scripted_api.answer("POST", "backups/", status=201, payload={**CREATED_502, "id": 503})
    # The server's clock says 502 was made five minutes before this call.
    scripted_api.answer("GET", RECONCILE, payload=page([LISTED_502]), headers=DATE_LONG_AFTER_502)
    backup = await scripted_client.backups.create(12345, description="Pre-deployment backup")
    assert backup.id == 503
    assert len(posts(scripted_api)) == 2


async def test_create_does_not_adopt_a_recent_backup_with_another_description(
    scripted_api: LoopbackAPI, scripted_client: BackupsClient
) -> None:
    scripted_api.answer("POST", "backups/", status=502)
    scripted_api.answer("POST", "backups/", status=201, payload={**CREATED_502, "id": 503})
    other = {**LISTED_502, "description": "Someone else's backup"}
    scripted_api.answer("GET", RECONCILE, payload=page([other]), headers=DATE_JUST_AFTER_502)
    backup = await scripted_client.backups.create(12345, description="Pre-deployment backup")
    assert backup.id == 503
    assert len(posts(scripted_api)) == 2


async def test_create_without_description_adopts_only_a_backup_without_one(
    scripted_api: LoopbackAPI,
) -> None:
    scripted_api.answer("POST", "backups/", status=504)
    described = {**LISTED_502, "id": 502, "description": "Pre-deployment backup"}
    plain = {**LISTED_502, "id": 503, "description": None}
    scripted_api.answer(
        "GET", RECONCILE, payload=page([described, plain]), headers=DATE_JUST_AFTER_502
    )
    # A 504 may still be running: the create waits one timeout before it reads.
    async with loopback_client(scripted_api, timeout=SHORT_TIMEOUT) as client:
        backup = await client.backups.create(12345)
    assert backup.id == 503
    assert len(posts(scripted_api)) == 1


async def test_create_never_adopts_the_backup_an_earlier_create_returned(
    scripted_api: LoopbackAPI, scripted_client: BackupsClient
) -> None:
    scripted_api.answer("POST", "backups/", status=201, payload=CREATED_502)
    scripted_api.answer("POST", "backups/", status=500)
    scripted_api.answer("POST", "backups/", status=201, payload={**CREATED_502, "id": 503})
    scripted_api.answer("GET", RECONCILE, payload=page([LISTED_502]), headers=DATE_JUST_AFTER_502)
    first = await scripted_client.backups.create(12345, description="Pre-deployment backup")
    second = await scripted_client.backups.create(12345, description="Pre-deployment backup")
    assert (first.id, second.id) == (502, 503)
    assert len(posts(scripted_api)) == 3


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param({"status": 503, "payload": {"detail": "maintenance"}}, id="503"),
        pytest.param({"status": 429, "headers": {"Retry-After": "0"}}, id="429"),
    ],
)
async def test_create_after_a_declined_attempt_posts_again_without_reconciling(
    scripted_api: LoopbackAPI, scripted_client: BackupsClient, failure: dict[str, Any]
) -> None:
    scripted_api.answer("POST", "backups/", **failure)
    scripted_api.answer("POST", "backups/", status=201, payload=CREATED_502)
    backup = await scripted_client.backups.create(12345, description="Pre-deployment backup")
    assert backup.id == 502
    first, second = posts(scripted_api)
    assert first.headers["Idempotency-Key"] == second.headers["Idempotency-Key"]
    assert scripted_api.routes() == ["POST backups/", "POST backups/"]


async def test_create_after_a_connection_that_never_opened_posts_again_without_reconciling(
    client: BackupsClient, mock_api: MockAPI
) -> None:
    # aioresponses: a refused connection, then an answer, at one and the same address.
    refused = aiohttp.ClientConnectorError(
        aiohttp.client_reqrep.ConnectionKey("admin.vps.org", 443, True, True, None, None, None),
        ConnectionRefusedError(111, "Connection refused"),
    )
    mock_api.post(BACKUPS_URL, exception=refused)
    mock_api.post(BACKUPS_URL, status=201, payload=CREATED_502)
    assert (await client.backups.create(12345)).id == 502
    assert sent_count(mock_api, "POST", BACKUPS_URL) == 2
    assert sent_count(mock_api) == 2


@pytest.mark.parametrize(
    "malformed",
    [
        pytest.param({"body": "<html>Created</html>", "content_type": "text/html"}, id="not-json"),
        pytest.param({"payload": {**CREATED_502, "created_at": "soon"}}, id="bad-field"),
        pytest.param({"payload": ["created"]}, id="not-an-object"),
    ],
)
async def test_create_with_a_malformed_201_adopts_the_backup_from_a_reconcile(
    scripted_api: LoopbackAPI, scripted_client: BackupsClient, malformed: dict[str, Any]
) -> None:
    scripted_api.answer("POST", "backups/", status=201, **malformed)
    scripted_api.answer("POST", "backups/", status=201, payload={**CREATED_502, "id": 666})
    scripted_api.answer("GET", RECONCILE, payload=page([LISTED_502]), headers=DATE_JUST_AFTER_502)
    backup = await scripted_client.backups.create(12345, description="Pre-deployment backup")
    assert backup.id == 502
    assert scripted_api.routes() == ["POST backups/", f"GET {RECONCILE}"]


async def test_create_with_a_malformed_201_never_posts_again_even_if_the_reconcile_finds_nothing(
    scripted_api: LoopbackAPI, scripted_client: BackupsClient
) -> None:
    # The 201 says the backup exists: sending the create again could only duplicate it.
    scripted_api.answer(
        "POST", "backups/", status=201, body="<html>Created</html>", content_type="text/html"
    )
    scripted_api.answer("POST", "backups/", status=201, payload={**CREATED_502, "id": 666})
    scripted_api.answer("GET", RECONCILE, payload=page([]), headers=DATE_JUST_AFTER_502)
    with pytest.raises(ResponseValidationError):
        await scripted_client.backups.create(12345, description="Pre-deployment backup")
    assert len(posts(scripted_api)) == 1


async def test_create_exhausting_retries_on_dropped_connections_raises_connection_error(
    scripted_api: LoopbackAPI,
) -> None:
    scripted_api.answer("POST", "backups/", drop=True)
    scripted_api.answer("GET", RECONCILE, payload=page([]))
    async with loopback_client(scripted_api, max_retries=2) as client:
        with pytest.raises(APIConnectionError) as caught:
            await client.backups.create(12345)
    assert not isinstance(caught.value, aiohttp.ClientError)
    # A read before each resend, and once more after the last attempt before giving up.
    assert scripted_api.routes() == ["POST backups/", f"GET {RECONCILE}"] * 3


async def test_create_whose_last_attempt_may_have_acted_adopts_what_it_made(
    scripted_api: LoopbackAPI,
) -> None:
    scripted_api.answer("POST", "backups/", drop=True)
    scripted_api.answer("GET", RECONCILE, payload=page([]))
    scripted_api.answer("GET", RECONCILE, payload=page([]))
    made_now = {**CREATED_502, "created_at": datetime.now(UTC).isoformat()}
    scripted_api.answer("GET", RECONCILE, payload=page([made_now]))
    async with loopback_client(scripted_api, max_retries=2) as client:
        backup = await client.backups.create(12345, description=CREATED_502["description"])

    assert backup.id == 502
    assert len(posts(scripted_api)) == 3


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
    scripted_api: LoopbackAPI,
    scripted_client: BackupsClient,
    arguments: tuple[Any],
    error: type[Exception],
) -> None:
    with pytest.raises(error, match="server_id"):
        await scripted_client.backups.create(*arguments)
    assert scripted_api.seen == []


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
    scripted_api: LoopbackAPI,
    scripted_client: BackupsClient,
    options: dict[str, Any],
    error: type[Exception],
) -> None:
    with pytest.raises(error):
        await scripted_client.backups.create(12345, **options)
    assert scripted_api.seen == []


# -- delete -------------------------------------------------------------------------


async def test_delete_sends_delete_to_the_detail_route(
    scripted_api: LoopbackAPI, scripted_client: BackupsClient
) -> None:
    scripted_api.answer("DELETE", "backups/501/", status=204)
    assert await scripted_client.backups.delete(501) is None
    (request,) = scripted_api.seen
    assert request.route == "DELETE backups/501/"
    assert request.body == b""


async def test_delete_404_raises_not_found_without_retrying(
    scripted_api: LoopbackAPI, scripted_client: BackupsClient
) -> None:
    scripted_api.answer("DELETE", "backups/501/", status=404, payload={"detail": "Not found."})
    with pytest.raises(NotFoundError) as caught:
        await scripted_client.backups.delete(501)
    assert caught.value.status_code == 404
    assert caught.value.body == {"detail": "Not found."}
    assert len(scripted_api.seen) == 1


async def test_delete_401_raises_without_retrying(
    scripted_api: LoopbackAPI, scripted_client: BackupsClient
) -> None:
    scripted_api.answer("DELETE", "backups/501/", status=401, payload={"detail": "Invalid token."})
    with pytest.raises(AuthenticationError):
        await scripted_client.backups.delete(501)
    assert len(scripted_api.seen) == 1


@pytest.mark.parametrize("failure", AMBIGUOUS_FAILURES)
async def test_delete_404_on_a_retry_after_an_ambiguous_attempt_is_success(
    scripted_api: LoopbackAPI, failure: dict[str, Any]
) -> None:
    # After a dropped connection the second DELETE is aiohttp's own silent repeat.
    scripted_api.answer("DELETE", "backups/501/", **failure)
    scripted_api.answer("DELETE", "backups/501/", status=404, payload={"detail": "Not found."})
    async with loopback_client(scripted_api, timeout=SHORT_TIMEOUT) as client:
        assert await client.backups.delete(501) is None
    assert scripted_api.routes() == ["DELETE backups/501/"] * 2


async def test_delete_404_after_a_declined_503_is_still_not_found(
    scripted_api: LoopbackAPI, scripted_client: BackupsClient
) -> None:
    scripted_api.answer("DELETE", "backups/501/", status=503)
    scripted_api.answer("DELETE", "backups/501/", status=404, payload={"detail": "Not found."})
    with pytest.raises(NotFoundError):
        await scripted_client.backups.delete(501)
    assert scripted_api.routes() == ["DELETE backups/501/"] * 2


async def test_delete_retries_a_500_and_succeeds(
    scripted_api: LoopbackAPI, scripted_client: BackupsClient
) -> None:
    scripted_api.answer("DELETE", "backups/501/", status=500)
    scripted_api.answer("DELETE", "backups/501/", status=204)
    assert await scripted_client.backups.delete(501) is None
    assert scripted_api.routes() == ["DELETE backups/501/"] * 2


@pytest.mark.parametrize("backup_id", NOT_IDS)
async def test_delete_with_a_non_int_id_raises_type_error_before_any_request(
    scripted_api: LoopbackAPI, scripted_client: BackupsClient, backup_id: Any
) -> None:
    with pytest.raises(TypeError, match="backup_id"):
        await scripted_client.backups.delete(backup_id)
    assert scripted_api.seen == []


@pytest.mark.parametrize("backup_id", NOT_POSITIVE)
async def test_delete_with_a_non_positive_id_raises_value_error_before_any_request(
    scripted_api: LoopbackAPI, scripted_client: BackupsClient, backup_id: int
) -> None:
    with pytest.raises(ValueError, match="backup_id"):
        await scripted_client.backups.delete(backup_id)
    assert scripted_api.seen == []


# -- against a real server: what a script of answers cannot show ---------------------


def is_create(request: web.Request) -> bool:
    return request.method == "POST" and request.path == "/api/v1/backups/"


async def test_delete_whose_connection_drops_then_404s_on_aiohttps_silent_repeat_has_succeeded(
    loopback: StartLoopback,
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


async def test_delete_404_without_any_drop_is_not_found(loopback: StartLoopback) -> None:
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
    loopback: StartLoopback, first_post: str
) -> None:
    # The server's clock is in January 2025, far from this machine's: the backup it
    # made one second ago by its own clock is the one the lost attempt created.
    handler = reconciling_api(
        server_date=DATE_JUST_AFTER_502["Date"],
        listed=[BACKUP_499, LISTED_502],
        first_post=first_post,
    )
    api = await loopback(handler)
    async with loopback_client(api, timeout=SHORT_TIMEOUT) as client:
        backup = await client.backups.create(12345, description="Pre-deployment backup")
    assert backup.id == 502
    assert api.routes() == ["POST backups/", f"GET {RECONCILE}"]


async def test_create_does_not_adopt_what_the_servers_clock_says_is_older_than_the_call(
    loopback: StartLoopback,
) -> None:
    handler = reconciling_api(
        server_date=DATE_LONG_AFTER_502["Date"], listed=[LISTED_502], first_post="stall"
    )
    api = await loopback(handler)
    async with loopback_client(api, timeout=SHORT_TIMEOUT) as client:
        backup = await client.backups.create(12345, description="Pre-deployment backup")
    assert backup.id == 777
    first, second = posts(api)
    assert first.headers["Idempotency-Key"] == second.headers["Idempotency-Key"]
    assert first.body == second.body


async def test_create_adopts_a_backup_made_just_now_by_the_servers_real_clock(
    loopback: StartLoopback,
) -> None:
    # aiohttp stamps its own Date: the server and this machine agree on the time.
    made_now = {**LISTED_502, "created_at": datetime.now(UTC).isoformat()}
    handler = reconciling_api(server_date=None, listed=[made_now], first_post="drop")
    api = await loopback(handler)
    async with loopback_client(api) as client:
        backup = await client.backups.create(12345, description="Pre-deployment backup")
    assert backup.id == 502
    assert len(posts(api)) == 1


async def test_concurrent_ambiguous_creates_adopt_different_backups_when_the_list_spans_pages(
    loopback: StartLoopback,
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
        await asyncio.wait_for(both_read_first_page.wait(), 5)
        return json_response(page([]))

    api = await loopback(handler)
    async with loopback_client(api) as client:
        first, second = await asyncio.gather(
            client.backups.create(12345, description="nightly"),
            client.backups.create(12345, description="nightly"),
        )
    assert {first.id, second.id} == {601, 602}
    assert len(posts(api)) == 2
