"""The fake Backups API over real HTTP: every route, its errors, auth, pages, time, keys."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import pytest

from asyncbackups.testing import Clock, FakeBackupsAPI

# The API documentation's example answers, verbatim.
DOCUMENTED_LIST = """
{
"count": 3,
"results": [
{
"id": 501,
"server": {
"id": 12345,
"name": "web-server-01"
},
"backup_type": "automatic",
"status": "completed",
"size_mb": 4523,
"created_at": "2025-01-16T03:00:00Z",
"expires_at": "2025-02-16T03:00:00Z",
"description": "Automatic daily backup"
},
{
"id": 499,
"server": {
"id": 12345,
"name": "web-server-01"
},
"backup_type": "manual",
"status": "completed",
"size_mb": 4456,
"created_at": "2025-01-14T10:30:00Z",
"expires_at": null,
"description": "Pre-update backup"
},
{
"id": 495,
"server": {
"id": 12345,
"name": "web-server-01"
},
"backup_type": "automatic",
"status": "completed",
"size_mb": 4389,
"created_at": "2025-01-15T03:00:00Z",
"expires_at": "2025-02-15T03:00:00Z",
"description": "Automatic daily backup"
}
]
}
"""
DOCUMENTED_CREATE = """
{
"id": 502,
"server": {
"id": 12345,
"name": "web-server-01"
},
"backup_type": "manual",
"status": "in_progress",
"size_mb": null,
"created_at": "2025-01-16T15:45:00Z",
"expires_at": null,
"description": "Pre-deployment backup",
"message": "Backup is being created. This may take several minutes depending on server size."
}
"""


@dataclass
class Answer:
    status: int
    headers: Any
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@pytest.fixture
async def api() -> AsyncIterator[FakeBackupsAPI]:
    async with FakeBackupsAPI() as fake:
        yield fake


@pytest.fixture
async def http(api: FakeBackupsAPI) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(headers=api.auth_headers) as session:
        yield session


async def call(
    http: aiohttp.ClientSession, api: FakeBackupsAPI, method: str, path: str, **kwargs: Any
) -> Answer:
    async with http.request(method, api.url(path), **kwargs) as response:
        return Answer(response.status, response.headers, await response.read())


# -- auth ----------------------------------------------------------------------------


async def test_missing_token_is_401_credentials_not_provided_with_www_authenticate(
    api: FakeBackupsAPI,
) -> None:
    async with aiohttp.ClientSession() as anonymous:
        answer = await call(anonymous, api, "GET", "backups/")
    assert answer.status == 401
    assert answer.json() == {"detail": "Authentication credentials were not provided."}
    assert answer.headers["WWW-Authenticate"] == 'Bearer realm="api"'


async def test_wrong_token_is_401_invalid_token_with_www_authenticate(
    api: FakeBackupsAPI,
) -> None:
    async with aiohttp.ClientSession(headers={"Authorization": "Bearer nope"}) as stranger:
        answer = await call(stranger, api, "GET", "backups/")
    assert answer.status == 401
    assert answer.json() == {"detail": "Invalid token."}
    assert answer.headers["WWW-Authenticate"] == 'Bearer realm="api"'


@pytest.mark.parametrize(
    ("header", "detail"),
    [
        ("Basic dXNlcjpwYXNz", "Authentication credentials were not provided."),
        ("Bearer", "Invalid token header. No credentials provided."),
        (
            "Bearer test-token extra",
            "Invalid token header. Token string should not contain spaces.",
        ),
    ],
)
async def test_malformed_authorization_headers_get_drf_details(
    api: FakeBackupsAPI, header: str, detail: str
) -> None:
    async with aiohttp.ClientSession(headers={"Authorization": header}) as session:
        answer = await call(session, api, "GET", "backups/")
    assert (answer.status, answer.json()) == (401, {"detail": detail})


async def test_bearer_keyword_is_case_insensitive(api: FakeBackupsAPI) -> None:
    async with aiohttp.ClientSession(headers={"Authorization": "bearer test-token"}) as session:
        answer = await call(session, api, "GET", "backups/")
    assert answer.status == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "backups/"),
        ("POST", "backups/"),
        ("GET", "backups/501/"),
        ("DELETE", "backups/501/"),
        ("POST", "servers/12345/restore/"),
        ("PUT", "backups/"),
    ],
)
async def test_every_route_and_method_requires_the_token(
    api: FakeBackupsAPI, method: str, path: str
) -> None:
    async with aiohttp.ClientSession() as anonymous:
        answer = await call(anonymous, api, method, path, json={"server_id": 12345})
    assert answer.status == 401
    assert api.backup(501).status == "completed"
    assert api.state.next_backup_id == 502


# -- routing -------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["nothing/", "backups", "backups/abc/", "servers/12345/"])
async def test_unknown_routes_are_404_not_found_json(
    api: FakeBackupsAPI, http: aiohttp.ClientSession, path: str
) -> None:
    answer = await call(http, api, "GET", path)
    assert answer.status == 404
    assert answer.json() == {"detail": "Not found."}
    assert answer.headers["Content-Type"] == "application/json"


async def test_paths_outside_the_api_root_are_404(
    api: FakeBackupsAPI, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"http://127.0.0.1:{api.port}/backups/") as response:
        assert response.status == 404
        assert await response.json() == {"detail": "Not found."}


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "backups/", "GET, POST, HEAD, OPTIONS"),
        ("PATCH", "backups/501/", "GET, DELETE, HEAD, OPTIONS"),
        ("POST", "backups/501/", "GET, DELETE, HEAD, OPTIONS"),
        ("GET", "servers/12345/restore/", "POST, OPTIONS"),
        ("DELETE", "backups/", "GET, POST, HEAD, OPTIONS"),
    ],
)
async def test_wrong_method_is_405_method_not_allowed_with_allow(
    api: FakeBackupsAPI, http: aiohttp.ClientSession, method: str, path: str, allow: str
) -> None:
    answer = await call(http, api, method, path)
    assert answer.status == 405
    assert answer.json() == {"detail": f'Method "{method}" not allowed.'}
    assert answer.headers["Allow"] == allow


async def test_options_describes_the_route(
    api: FakeBackupsAPI, http: aiohttp.ClientSession
) -> None:
    answer = await call(http, api, "OPTIONS", "backups/")
    assert answer.status == 200
    assert answer.json()["name"] == "Backup List"
    assert answer.headers["Allow"] == "GET, POST, HEAD, OPTIONS"


async def test_head_on_the_list_answers_like_get_without_a_body(
    api: FakeBackupsAPI, http: aiohttp.ClientSession
) -> None:
    answer = await call(http, api, "HEAD", "backups/")
    assert answer.status == 200
    assert answer.body == b""


# -- list ----------------------------------------------------------------------------


async def test_seed_list_decodes_to_exactly_the_documented_json(
    api: FakeBackupsAPI, http: aiohttp.ClientSession
) -> None:
    answer = await call(http, api, "GET", "backups/", params={"server_id": "12345"})
    assert answer.status == 200
    assert answer.headers["Content-Type"] == "application/json"
    body = answer.json()
    assert {"count": body["count"], "results": body["results"]} == json.loads(DOCUMENTED_LIST)
    assert body["next"] is None
    assert body["previous"] is None


async def test_list_without_filters_orders_by_id_descending(
    api: FakeBackupsAPI, http: aiohttp.ClientSession
) -> None:
    api.add_server(7, "db-01")
    api.state.add_backup(7, backup_type="automatic", status="completed")
    body = (await call(http, api, "GET", "backups/")).json()
    assert [backup["id"] for backup in body["results"]] == [502, 501, 499, 495]


@pytest.mark.parametrize(("backup_type", "ids"), [("manual", [499]), ("automatic", [501, 495])])
async def test_list_filters_by_backup_type(
    api: FakeBackupsAPI, http: aiohttp.ClientSession, backup_type: str, ids: list[int]
) -> None:
    answer = await call(http, api, "GET", "backups/", params={"backup_type": backup_type})
    body = answer.json()
    assert [backup["id"] for backup in body["results"]] == ids
    assert body["count"] == len(ids)


async def test_list_filters_by_server_and_type_together(
    api: FakeBackupsAPI, http: aiohttp.ClientSession
) -> None:
    api.add_fleet(3)
    params = {"server_id": "2", "backup_type": "automatic"}
    body = (await call(http, api, "GET", "backups/", params=params)).json()
    assert [(b["server"]["name"], b["backup_type"]) for b in body["results"]] == [
        ("fleet-0002", "automatic")
    ]
    params = {"server_id": "2", "backup_type": "manual"}
    assert (await call(http, api, "GET", "backups/", params=params)).json()["count"] == 0


async def test_list_for_an_unknown_server_is_empty_not_an_error(
    api: FakeBackupsAPI, http: aiohttp.ClientSession
) -> None:
    answer = await call(http, api, "GET", "backups/", params={"server_id": "999"})
    assert answer.status == 200
    assert answer.json() == {"count": 0, "next": None, "previous": None, "results": []}


@pytest.mark.parametrize("value", ["abc", "1.5", "12345x", "true"])
async def test_list_with_bad_server_id_is_400_enter_a_whole_number(
    api: FakeBackupsAPI, http: aiohttp.ClientSession, value: str
) -> None:
    answer = await call(http, api, "GET", "backups/", params={"server_id": value})
    assert answer.status == 400
    assert answer.json() == {"server_id": ["Enter a whole number."]}


async def test_list_with_bad_backup_type_is_400_select_a_valid_choice(
    api: FakeBackupsAPI, http: aiohttp.ClientSession
) -> None:
    answer = await call(http, api, "GET", "backups/", params={"backup_type": "weekly"})
    assert answer.status == 400
    assert answer.json() == {
        "backup_type": ["Select a valid choice. weekly is not one of the available choices."]
    }


async def test_list_with_both_filters_bad_reports_both_fields(
    api: FakeBackupsAPI, http: aiohttp.ClientSession
) -> None:
    params = {"server_id": "x", "backup_type": "Manual"}
    answer = await call(http, api, "GET", "backups/", params=params)
    assert answer.status == 400
    assert set(answer.json()) == {"server_id", "backup_type"}


async def test_pages_follow_absolute_next_links_to_the_end() -> None:
    async with (
        FakeBackupsAPI(fleet=250, page_size=100) as api,
        aiohttp.ClientSession(headers=api.auth_headers) as http,
    ):
        url: str | None = api.url("backups/?backup_type=automatic")
        pages = []
        while url is not None:
            assert url.startswith(api.base_url)
            async with http.get(url) as response:
                assert response.status == 200
                pages.append(await response.json())
            url = pages[-1]["next"]
    assert [len(page["results"]) for page in pages] == [100, 100, 52]
    assert {page["count"] for page in pages} == {252}
    ids = [backup["id"] for page in pages for backup in page["results"]]
    assert ids == sorted(ids, reverse=True)
    assert len(set(ids)) == 252
    assert pages[0]["next"] == api.url("backups/?backup_type=automatic&page=2")
    assert pages[0]["previous"] is None
    # DRF drops the page parameter on the way back to the first page.
    assert pages[1]["previous"] == api.url("backups/?backup_type=automatic")
    assert pages[2]["previous"] == api.url("backups/?backup_type=automatic&page=2")
    assert pages[2]["next"] is None


@pytest.mark.parametrize("page", ["0", "-1", "3", "abc", "1.0"])
async def test_page_out_of_range_or_not_a_number_is_404_invalid_page(
    api: FakeBackupsAPI, http: aiohttp.ClientSession, page: str
) -> None:
    api.page_size = 2
    answer = await call(http, api, "GET", "backups/", params={"page": page})
    assert answer.status == 404
    assert answer.json() == {"detail": "Invalid page."}


async def test_page_last_is_the_last_page(api: FakeBackupsAPI, http: aiohttp.ClientSession) -> None:
    api.page_size = 2
    body = (await call(http, api, "GET", "backups/", params={"page": "last"})).json()
    assert [backup["id"] for backup in body["results"]] == [495]
    assert body["next"] is None


async def test_first_page_of_an_empty_list_is_valid() -> None:
    async with (
        FakeBackupsAPI(sample_data=False) as api,
        aiohttp.ClientSession(headers=api.auth_headers) as http,
    ):
        answer = await call(http, api, "GET", "backups/", params={"page": "1"})
    assert answer.status == 200
    assert answer.json()["count"] == 0


async def test_filter_errors_win_over_page_errors(
    api: FakeBackupsAPI, http: aiohttp.ClientSession
) -> None:
    params = {"server_id": "x", "page": "99"}
    assert (await call(http, api, "GET", "backups/", params=params)).status == 400


# -- create --------------------------------------------------------------------------


async def test_create_matches_the_documented_example_on_a_frozen_clock() -> None:
    clock = Clock(start=datetime(2025, 1, 16, 15, 45, tzinfo=UTC), frozen=True)
    async with (
        FakeBackupsAPI(clock=clock) as api,
        aiohttp.ClientSession(headers=api.auth_headers) as http,
    ):
        payload = {"server_id": 12345, "description": "Pre-deployment backup"}
        answer = await call(http, api, "POST", "backups/", json=payload)
    assert answer.status == 201
    assert answer.json() == json.loads(DOCUMENTED_CREATE)


async def test_create_starts_an_in_progress_manual_backup_and_stores_it(
    api: FakeBackupsAPI, http: aiohttp.ClientSession
) -> None:
    answer = await call(http, api, "POST", "backups/", json={"server_id": 12345})
    body = answer.json()
    assert answer.status == 201
    assert body["status"] == "in_progress"
    assert body["backup_type"] == "manual"
    assert body["size_mb"] is None
    assert body["expires_at"] is None
    assert body["description"] == ""  # a string, as the API's documentation shows
    assert body["message"].startswith("Backup is being created.")
    assert body["created_at"].endswith("Z")
    assert api.backup(502).status == "in_progress"
    assert [backup.id for backup in api.backups(server_id=12345)] == [502, 501, 499, 495]


async def test_created_ids_count_up_from_502(
    api: FakeBackupsAPI, http: aiohttp.ClientSession
) -> None:
    ids = [
        (await call(http, api, "POST", "backups/", json={"server_id": 12345})).json()["id"]
        for _ in range(3)
    ]
    assert ids == [502, 503, 504]


async def test_create_with_a_body_that_is_not_json_is_400_parse_error(
    api: FakeBackupsAPI, http: aiohttp.ClientSession
) -> None:
    answer = await call(
        http,
        api,
        "POST",
        "backups/",
        data=b"{server_id: 1",
        headers={"Content-Type": "application/json"},
    )
    assert answer.status == 400
    assert answer.json()["detail"].startswith("JSON parse error - ")
    assert api.state.next_backup_id == 502


async def test_create_with_a_json_array_is_400_non_field_errors(
    api: FakeBackupsAPI, http: aiohttp.ClientSession
) -> None:
    answer = await call(http, api, "POST", "backups/", json=[12345])
    assert answer.status == 400
    assert answer.json() == {
        "non_field_errors": ["Invalid data. Expected a dictionary, but got list."]
    }


@pytest.mark.parametrize("payload", [{}, {"description": "x"}, None])
async def test_create_without_server_id_is_400_this_field_is_required(
    api: FakeBackupsAPI, http: aiohttp.ClientSession, payload: dict[str, Any] | None
) -> None:
    kwargs: dict[str, Any] = {} if payload is None else {"json": payload}
    answer = await call(http, api, "POST", "backups/", **kwargs)
    assert answer.status == 400
    assert answer.json() == {"server_id": ["This field is required."]}


@pytest.mark.parametrize("server_id", [True, "12345", 12345.0, [12345], {"id": 1}])
async def test_create_with_a_server_id_that_is_not_an_int_is_400(
    api: FakeBackupsAPI, http: aiohttp.ClientSession, server_id: object
) -> None:
    answer = await call(http, api, "POST", "backups/", json={"server_id": server_id})
    assert answer.status == 400
    assert answer.json() == {"server_id": ["A valid integer is required."]}


async def test_create_with_a_null_server_id_is_400_may_not_be_null(
    api: FakeBackupsAPI, http: aiohttp.ClientSession
) -> None:
    answer = await call(http, api, "POST", "backups/", json={"server_id": None})
    assert answer.json() == {"server_id": ["This field may not be null."]}


async def test_create_accepts_255_characters_of_description_and_refuses_256(
    api: FakeBackupsAPI, http: aiohttp.ClientSession
) -> None:
    ok = await call(
        http, api, "POST", "backups/", json={"server_id": 12345, "description": "d" * 255}
    )
    assert ok.status == 201
    too_long = {"server_id": 12345, "description": "d" * 256}
    answer = await call(http, api, "POST", "backups/", json=too_long)
    assert answer.status == 400
    assert answer.json() == {"description": ["Ensure this field has no more than 255 characters."]}


async def test_create_reports_every_field_error_at_once(
    api: FakeBackupsAPI, http: aiohttp.ClientSession
) -> None:
    payload = {"server_id": "x", "description": ["not", "text"]}
    answer = await call(http, api, "POST", "backups/", json=payload)
    assert answer.json() == {
        "server_id": ["A valid integer is required."],
        "description": ["Not a valid string."],
    }


async def test_create_for_an_unknown_server_is_404_not_found(
    api: FakeBackupsAPI, http: aiohttp.ClientSession
) -> None:
    answer = await call(http, api, "POST", "backups/", json={"server_id": 424242})
    assert answer.status == 404
    assert answer.json() == {"detail": "Not found."}
    assert api.state.next_backup_id == 502


async def test_create_keeps_unicode_descriptions_readable(
    api: FakeBackupsAPI, http: aiohttp.ClientSession
) -> None:
    payload = {"server_id": 12345, "description": "बॅकअप"}
    answer = await call(http, api, "POST", "backups/", json=payload)
    assert "बॅकअप".encode() in answer.body


# -- get and delete --------------------------------------------------------------------


async def test_get_backup_returns_the_backup(
    api: FakeBackupsAPI, http: aiohttp.ClientSession
) -> None:
    answer = await call(http, api, "GET", "backups/499/")
    assert answer.status == 200
    assert answer.json() == json.loads(DOCUMENTED_LIST)["results"][1]


async def test_get_unknown_backup_is_404_not_found(
    api: FakeBackupsAPI, http: aiohttp.ClientSession
) -> None:
    answer = await call(http, api, "GET", "backups/777/")
    assert (answer.status, answer.json()) == (404, {"detail": "Not found."})


async def test_delete_is_204_with_an_empty_body_then_404(
    api: FakeBackupsAPI, http: aiohttp.ClientSession
) -> None:
    answer = await call(http, api, "DELETE", "backups/501/")
    assert answer.status == 204
    assert answer.body == b""
    assert "Content-Type" not in answer.headers
    assert [backup.id for backup in api.backups()] == [499, 495]
    again = await call(http, api, "DELETE", "backups/501/")
    assert (again.status, again.json()) == (404, {"detail": "Not found."})
    assert (await call(http, api, "GET", "backups/501/")).status == 404


async def test_delete_also_removes_a_backup_in_progress(
    api: FakeBackupsAPI, http: aiohttp.ClientSession
) -> None:
    await call(http, api, "POST", "backups/", json={"server_id": 12345})
    assert (await call(http, api, "DELETE", "backups/502/")).status == 204
    body = (await call(http, api, "GET", "backups/", params={"backup_type": "manual"})).json()
    assert [backup["id"] for backup in body["results"]] == [499]


# -- restore -------------------------------------------------------------------------


async def test_restore_is_202_restoring_and_recorded(
    api: FakeBackupsAPI, http: aiohttp.ClientSession
) -> None:
    answer = await call(http, api, "POST", "servers/12345/restore/", json={"backup_id": 501})
    assert answer.status == 202
    assert answer.json() == {
        "server_id": 12345,
        "backup_id": 501,
        "status": "restoring",
        "message": "Server restore has been started.",
    }
    assert [(r.server_id, r.backup_id) for r in api.restores] == [(12345, 501)]


async def test_restore_of_an_unknown_server_is_404(
    api: FakeBackupsAPI, http: aiohttp.ClientSession
) -> None:
    answer = await call(http, api, "POST", "servers/999/restore/", json={"backup_id": 501})
    assert (answer.status, answer.json()) == (404, {"detail": "Not found."})
    assert api.restores == []


async def test_restore_from_an_unknown_backup_is_404(
    api: FakeBackupsAPI, http: aiohttp.ClientSession
) -> None:
    answer = await call(http, api, "POST", "servers/12345/restore/", json={"backup_id": 9})
    assert (answer.status, answer.json()) == (404, {"detail": "Not found."})


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({}, "This field is required."),
        ({"backup_id": "501"}, "A valid integer is required."),
        ({"backup_id": True}, "A valid integer is required."),
    ],
)
async def test_restore_without_an_integer_backup_id_is_400(
    api: FakeBackupsAPI, http: aiohttp.ClientSession, payload: dict[str, Any], message: str
) -> None:
    answer = await call(http, api, "POST", "servers/12345/restore/", json=payload)
    assert (answer.status, answer.json()) == (400, {"backup_id": [message]})


async def test_restore_from_a_backup_in_progress_is_400(
    api: FakeBackupsAPI, http: aiohttp.ClientSession
) -> None:
    await call(http, api, "POST", "backups/", json={"server_id": 12345})
    answer = await call(http, api, "POST", "servers/12345/restore/", json={"backup_id": 502})
    assert answer.status == 400
    assert answer.json() == {"backup_id": ["Backup 502 is not completed (status: in_progress)."]}
    assert api.restores == []


async def test_restore_from_another_servers_backup_is_400(
    api: FakeBackupsAPI, http: aiohttp.ClientSession
) -> None:
    api.add_server(7)
    answer = await call(http, api, "POST", "servers/7/restore/", json={"backup_id": 501})
    assert answer.status == 400
    assert answer.json() == {"backup_id": ["Backup 501 does not belong to server 7."]}


async def test_restore_with_a_broken_body_is_400_parse_error(
    api: FakeBackupsAPI, http: aiohttp.ClientSession
) -> None:
    answer = await call(http, api, "POST", "servers/12345/restore/", data=b"backup_id=501")
    assert answer.status == 400
    assert answer.json()["detail"].startswith("JSON parse error")


# -- time ----------------------------------------------------------------------------


async def test_backup_completes_once_the_clock_passes_backup_seconds(
    api: FakeBackupsAPI, http: aiohttp.ClientSession
) -> None:
    await call(http, api, "POST", "backups/", json={"server_id": 12345})
    api.advance(4.9)
    assert (await call(http, api, "GET", "backups/502/")).json()["status"] == "in_progress"
    api.advance(0.2)
    backup = (await call(http, api, "GET", "backups/502/")).json()
    assert backup["status"] == "completed"
    assert isinstance(backup["size_mb"], int)
    assert backup["size_mb"] > 0
    assert backup["expires_at"] is None


async def test_backup_of_a_failing_server_ends_failed_without_a_size() -> None:
    async with (
        FakeBackupsAPI(backup_seconds=1, fleet=3, failing_servers=[2]) as api,
        aiohttp.ClientSession(headers=api.auth_headers) as http,
    ):
        first = (await call(http, api, "POST", "backups/", json={"server_id": 2})).json()
        other = (await call(http, api, "POST", "backups/", json={"server_id": 3})).json()
        api.advance(1)
        failed = (await call(http, api, "GET", f"backups/{first['id']}/")).json()
        completed = (await call(http, api, "GET", f"backups/{other['id']}/")).json()
    assert (failed["status"], failed["size_mb"]) == ("failed", None)
    assert completed["status"] == "completed"


async def test_sizes_are_deterministic_across_fakes() -> None:
    sizes = []
    for _ in range(2):
        async with FakeBackupsAPI(backup_seconds=0) as api:
            api.state.create_backup(12345)
            sizes.append(api.backup(502).size_mb)
    assert sizes[0] == sizes[1]
    assert sizes[0] is not None


async def test_date_header_follows_the_driven_clock(
    api: FakeBackupsAPI, http: aiohttp.ClientSession
) -> None:
    api.clock.freeze(datetime(2030, 5, 1, 12, 0, tzinfo=UTC))
    api.advance(3600)
    answer = await call(http, api, "GET", "backups/")
    assert parsedate_to_datetime(answer.headers["Date"]) == datetime(2030, 5, 1, 13, tzinfo=UTC)
    missing = await call(http, api, "GET", "nowhere/")
    assert missing.headers["Date"] == answer.headers["Date"]


async def test_fleet_backups_are_completed_automatic_and_expire_after_30_days() -> None:
    async with (
        FakeBackupsAPI(fleet=2) as api,
        aiohttp.ClientSession(headers=api.auth_headers) as http,
    ):
        body = (await call(http, api, "GET", "backups/", params={"server_id": "1"})).json()
    (backup,) = body["results"]
    assert backup["server"] == {"id": 1, "name": "fleet-0001"}
    assert (backup["backup_type"], backup["status"]) == ("automatic", "completed")
    created = datetime.fromisoformat(backup["created_at"].replace("Z", "+00:00"))
    expires = datetime.fromisoformat(backup["expires_at"].replace("Z", "+00:00"))
    assert (expires - created).days == 30


# -- idempotency -----------------------------------------------------------------------


async def test_same_idempotency_key_replays_the_first_answer_without_creating(
    api: FakeBackupsAPI, http: aiohttp.ClientSession
) -> None:
    headers = {"Idempotency-Key": "k-1"}
    payload = {"server_id": 12345, "description": "once"}
    first = await call(http, api, "POST", "backups/", json=payload, headers=headers)
    api.advance(60)
    again = await call(http, api, "POST", "backups/", json=payload, headers=headers)
    assert (first.status, again.status) == (201, 201)
    assert again.body == first.body  # still "in_progress": the first answer, not a new read
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert [backup.id for backup in api.backups(backup_type="manual")] == [502, 499]
    assert [record.replayed for record in api.request_log] == [False, True]


async def test_idempotency_key_with_different_json_spacing_still_replays(
    api: FakeBackupsAPI, http: aiohttp.ClientSession
) -> None:
    headers = {"Idempotency-Key": "k-2", "Content-Type": "application/json"}
    await call(http, api, "POST", "backups/", data=b'{"server_id":12345}', headers=headers)
    again = await call(
        http, api, "POST", "backups/", data=b'{ "server_id": 12345 }', headers=headers
    )
    assert again.headers["Idempotent-Replayed"] == "true"


async def test_idempotency_key_reused_for_another_request_is_422(
    api: FakeBackupsAPI, http: aiohttp.ClientSession
) -> None:
    headers = {"Idempotency-Key": "k-3"}
    await call(http, api, "POST", "backups/", json={"server_id": 12345}, headers=headers)
    other = await call(
        http,
        api,
        "POST",
        "backups/",
        json={"server_id": 12345, "description": "x"},
        headers=headers,
    )
    assert other.status == 422
    assert "k-3" in other.json()["detail"]
    assert api.state.next_backup_id == 503


async def test_unsuccessful_answers_are_not_remembered_under_a_key(
    api: FakeBackupsAPI, http: aiohttp.ClientSession
) -> None:
    headers = {"Idempotency-Key": "k-4"}
    payload = {"server_id": 7}
    assert (await call(http, api, "POST", "backups/", json=payload, headers=headers)).status == 404
    api.add_server(7)
    answer = await call(http, api, "POST", "backups/", json=payload, headers=headers)
    assert answer.status == 201
    assert "Idempotent-Replayed" not in answer.headers


async def test_idempotency_keys_are_ignored_when_switched_off() -> None:
    async with (
        FakeBackupsAPI(honor_idempotency_keys=False) as api,
        aiohttp.ClientSession(headers=api.auth_headers) as http,
    ):
        headers = {"Idempotency-Key": "same"}
        for _ in range(2):
            answer = await call(
                http, api, "POST", "backups/", json={"server_id": 12345}, headers=headers
            )
            assert "Idempotent-Replayed" not in answer.headers
        assert [backup.id for backup in api.backups(backup_type="manual")] == [503, 502, 499]


async def test_restore_replays_under_its_idempotency_key(
    api: FakeBackupsAPI, http: aiohttp.ClientSession
) -> None:
    headers = {"Idempotency-Key": "r-1"}
    for _ in range(2):
        answer = await call(
            http, api, "POST", "servers/12345/restore/", json={"backup_id": 501}, headers=headers
        )
        assert answer.status == 202
    assert len(api.restores) == 1


async def test_idempotency_keys_do_not_apply_to_reads_and_deletes(
    api: FakeBackupsAPI, http: aiohttp.ClientSession
) -> None:
    headers = {"Idempotency-Key": "d-1"}
    assert (await call(http, api, "DELETE", "backups/501/", headers=headers)).status == 204
    assert (await call(http, api, "DELETE", "backups/501/", headers=headers)).status == 404
