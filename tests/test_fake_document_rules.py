"""Where the fake follows docs/openapi.yaml rather than a lenient DRF service.

Schemathesis holds the fake to the API document (tests/test_openapi_conformance.py);
these pin each place where that made the fake stricter than Django REST Framework
would be, or where DRF's own behaviour is kept and documented, so a change to either
shows here by name.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from asyncbackups.testing import FakeBackupsAPI


async def _get(api: FakeBackupsAPI, path: str, **params: str) -> tuple[int, Any, str]:
    async with (
        aiohttp.ClientSession(headers=api.auth_headers) as http,
        http.get(api.base_url.rstrip("/") + "/" + path, params=params) as answer,
    ):
        return answer.status, await answer.json(content_type=None), answer.content_type


async def _post(api: FakeBackupsAPI, path: str, body: object) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession(headers=api.auth_headers) as http,
        http.post(api.url(path), json=body) as answer,
    ):
        return answer.status, await answer.json()


@pytest.mark.parametrize("value", ["", " ", " 12345 ", "12345.0", "1e3"])
async def test_a_server_id_filter_that_is_not_plain_digits_is_refused(value: str) -> None:
    async with FakeBackupsAPI() as api:
        status, body, _ = await _get(api, "backups/", server_id=value)
        assert (status, body) == (400, {"server_id": ["Enter a whole number."]})
        assert api.requests[("GET", "backups/")] == 1


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (str(2**63), f"Ensure this value is less than or equal to {2**63 - 1}."),
        (str(-(2**63) - 1), f"Ensure this value is greater than or equal to {-(2**63)}."),
    ],
)
async def test_a_server_id_filter_outside_64_bits_is_refused(value: str, message: str) -> None:
    async with FakeBackupsAPI() as api:
        status, body, _ = await _get(api, "backups/", server_id=value)
    assert (status, body) == (400, {"server_id": [message]})


async def test_the_widest_64_bit_server_ids_are_taken() -> None:
    async with FakeBackupsAPI() as api:
        for value in (str(2**63 - 1), str(-(2**63)), "+12345"):
            status, body, _ = await _get(api, "backups/", server_id=value)
            assert status == 200, (value, body)


async def test_a_blank_backup_type_filter_is_refused() -> None:
    async with FakeBackupsAPI() as api:
        status, body, _ = await _get(api, "backups/", backup_type="")
    assert status == 400
    assert body == {"backup_type": ["Select a valid choice.  is not one of the available choices."]}


async def test_a_blank_page_is_the_first_as_in_drf() -> None:
    async with FakeBackupsAPI(page_size=2) as api:
        status, body, _ = await _get(api, "backups/", page="")
    assert status == 200
    assert [backup["id"] for backup in body["results"]] == [501, 499]


@pytest.mark.parametrize(
    ("description", "message"),
    [
        (None, "This field may not be null."),
        (12, "Not a valid string."),
        (True, "Not a valid string."),
    ],
)
async def test_a_description_that_is_not_text_is_refused_and_nothing_is_made(
    description: object, message: str
) -> None:
    async with FakeBackupsAPI() as api:
        status, body = await _post(
            api, "backups/", {"server_id": 12345, "description": description}
        )
        assert (status, body) == (400, {"description": [message]})
        assert [backup.id for backup in api.backups(server_id=12345)] == [501, 499, 495]


async def test_a_path_with_a_newline_gets_the_apis_json_404() -> None:
    async with FakeBackupsAPI() as api:
        status, body, content_type = await _get(api, "backups/%0A/")
    assert (status, body, content_type) == (404, {"detail": "Not found."}, "application/json")
