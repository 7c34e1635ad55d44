"""A backup made without a description: ``""`` as documented, ``null`` on request.

The API's documentation shows every description as a string, and a Django REST
Framework service with a blank-allowed ``CharField`` answers ``""`` for a backup made
without one; others answer ``null``. The fake answers ``""`` by default and ``null``
with ``null_descriptions=True`` (``--null-descriptions`` on the command line). The SDK
reads both, and treats both as "no description" where it matters: a create in doubt
is still found and adopted, never made twice.
"""

from __future__ import annotations

import aiohttp
import pytest

from asyncbackups import BackupsClient
from asyncbackups.testing import FakeBackupsAPI
from asyncbackups.testing._arguments import build_parser
from asyncbackups.testing._serve import fake_from_arguments

ANSWERED = {False: "", True: None}  # null_descriptions -> what the wire carries


@pytest.mark.parametrize("null_descriptions", [False, True])
async def test_every_route_answers_the_same_blank_description(null_descriptions: bool) -> None:
    async with (
        FakeBackupsAPI(null_descriptions=null_descriptions) as api,
        BackupsClient(api.token, base_url=api.base_url) as client,
    ):
        created = await client.backups.create(12345)
        fetched = await client.backups.get(created.id)
        listed = await client.backups.list(server_id=12345)
    expected = ANSWERED[null_descriptions]
    assert created.description == expected
    assert fetched.description == expected
    assert [b.description for b in listed if b.id == created.id] == [expected]
    # A description given is kept as given, in either mode.
    assert [b.description for b in listed if b.id == 501] == ["Automatic daily backup"]


@pytest.mark.parametrize("null_descriptions", [False, True])
async def test_the_wire_carries_an_empty_string_or_null(null_descriptions: bool) -> None:
    async with (
        FakeBackupsAPI(null_descriptions=null_descriptions) as api,
        aiohttp.ClientSession(headers=api.auth_headers) as http,
    ):
        async with http.post(api.url("backups/"), json={"server_id": 12345}) as answer:
            created = await answer.json()
        async with http.get(api.url(f"backups/{created['id']}/")) as answer:
            fetched = await answer.json()
    assert "description" in created
    assert "description" in fetched
    assert created["description"] == fetched["description"] == ANSWERED[null_descriptions]


async def test_the_mode_can_be_changed_while_serving() -> None:
    async with (
        FakeBackupsAPI() as api,
        BackupsClient(api.token, base_url=api.base_url) as client,
    ):
        backup = await client.backups.create(12345)
        assert (await client.backups.get(backup.id)).description == ""
        api.null_descriptions = True
        assert (await client.backups.get(backup.id)).description is None
    assert api.backup(backup.id).description is None  # the state keeps "none given"


@pytest.mark.parametrize("null_descriptions", [False, True])
async def test_a_create_in_doubt_without_a_description_is_adopted_not_made_twice(
    null_descriptions: bool,
) -> None:
    async with FakeBackupsAPI(
        null_descriptions=null_descriptions, honor_idempotency_keys=False
    ) as api:
        api.faults.drop_after(method="POST", times=1)
        async with BackupsClient(api.token, base_url=api.base_url, retry_backoff=0) as client:
            backup = await client.backups.create(12345)
        made = [b.id for b in api.backups(server_id=12345, backup_type="manual")]
    assert made == [backup.id, 499]  # 499 is the sample's manual backup
    assert api.requests[("POST", "backups/")] == 1
    assert backup.description == ANSWERED[null_descriptions]


def test_the_command_line_flag_turns_null_descriptions_on() -> None:
    assert fake_from_arguments(build_parser().parse_args([])).null_descriptions is False
    parsed = build_parser().parse_args(["--null-descriptions"])
    assert fake_from_arguments(parsed).null_descriptions is True
