"""``BackupsClient(on_retry=...)``: a caller hears each retry before it is made.

The loopback API scripts the failures; what the callback heard is compared with what
reached the server.
"""

from __future__ import annotations

import pickle

import pytest
from conftest import BACKUP_501, SHORT_TIMEOUT, TOKEN, LoopbackAPI, loopback_client

from asyncbackups import (
    APITimeoutError,
    BackupsClient,
    NotFoundError,
    RetryEvent,
    ServerError,
)


async def test_on_retry_hears_each_retry_with_its_attempt_and_error(
    scripted_api: LoopbackAPI,
) -> None:
    scripted_api.answer("GET", "backups/501/", status=503, payload={"detail": "busy"})
    scripted_api.answer("GET", "backups/501/", status=502, payload={"detail": "gateway"})
    scripted_api.answer("GET", "backups/501/", payload=BACKUP_501)
    heard: list[RetryEvent] = []

    async with loopback_client(scripted_api, on_retry=heard.append) as client:
        backup = await client.backups.get(501)

    assert backup.id == 501
    assert len(scripted_api.seen) == 3
    assert [(event.attempt, event.max_attempts) for event in heard] == [(2, 4), (3, 4)]
    assert [event.error.status_code for event in heard] == [503, 502]  # type: ignore[attr-defined]
    assert all(isinstance(event.error, ServerError) for event in heard)
    assert {event.method for event in heard} == {"GET"}
    assert {event.url for event in heard} == {scripted_api.url("backups/501/")}
    assert heard[0].elapsed <= heard[1].elapsed
    assert all(event.delay == 0 for event in heard)  # the client retries without sleeping


async def test_an_async_on_retry_is_awaited_before_the_retry_is_sent(
    scripted_api: LoopbackAPI,
) -> None:
    scripted_api.answer("GET", "backups/501/", status=503, payload={"detail": "busy"})
    scripted_api.answer("GET", "backups/501/", payload=BACKUP_501)
    sent_before: list[int] = []

    async def hear(event: RetryEvent) -> None:
        sent_before.append(len(scripted_api.seen))

    async with loopback_client(scripted_api, on_retry=hear) as client:
        await client.backups.get(501)

    assert sent_before == [1]  # heard after the first attempt, before the second
    assert len(scripted_api.seen) == 2


async def test_a_timed_out_attempt_is_heard_as_an_api_timeout_error(
    scripted_api: LoopbackAPI,
) -> None:
    scripted_api.answer("GET", "backups/501/", stall=True)
    heard: list[RetryEvent] = []

    async with loopback_client(
        scripted_api, timeout=SHORT_TIMEOUT, max_retries=1, on_retry=heard.append
    ) as client:
        with pytest.raises(APITimeoutError):
            await client.backups.get(501)

    [event] = heard
    assert (event.attempt, event.max_attempts) == (2, 2)
    assert isinstance(event.error, APITimeoutError)
    assert event.elapsed >= SHORT_TIMEOUT * 0.9
    assert len(scripted_api.seen) == 2


async def test_no_retry_no_event(scripted_api: LoopbackAPI) -> None:
    scripted_api.answer("GET", "backups/501/", status=404, payload={"detail": "Not found."})
    heard: list[RetryEvent] = []

    async with loopback_client(scripted_api, on_retry=heard.append) as client:
        with pytest.raises(NotFoundError):
            await client.backups.get(501)

    assert heard == []


async def test_a_429_waited_out_is_no_retry_event(scripted_api: LoopbackAPI) -> None:
    scripted_api.answer(
        "GET", "backups/501/", status=429, payload={"detail": "slow"}, headers={"Retry-After": "0"}
    )
    scripted_api.answer("GET", "backups/501/", payload=BACKUP_501)
    heard: list[RetryEvent] = []

    async with loopback_client(scripted_api, on_retry=heard.append) as client:
        await client.backups.get(501)

    assert len(scripted_api.seen) == 2
    assert heard == []


async def test_with_options_replaces_or_removes_on_retry(scripted_api: LoopbackAPI) -> None:
    scripted_api.answer("GET", "backups/501/", status=503, payload={"detail": "busy"})
    scripted_api.answer("GET", "backups/501/", payload=BACKUP_501)
    scripted_api.answer("GET", "backups/501/", status=503, payload={"detail": "busy"})
    scripted_api.answer("GET", "backups/501/", payload=BACKUP_501)
    first: list[RetryEvent] = []
    second: list[RetryEvent] = []

    async with loopback_client(scripted_api, on_retry=first.append) as client:
        await client.with_options(on_retry=second.append).backups.get(501)
        await client.with_options(on_retry=None).backups.get(501)

    assert (len(first), len(second)) == (0, 1)
    assert len(scripted_api.seen) == 4


async def test_what_on_retry_raises_ends_the_call(scripted_api: LoopbackAPI) -> None:
    scripted_api.answer("GET", "backups/501/", status=503, payload={"detail": "busy"})

    def refuse(event: RetryEvent) -> None:
        raise KeyboardInterrupt  # as a caller's stop would

    async with loopback_client(scripted_api, on_retry=refuse) as client:
        with pytest.raises(KeyboardInterrupt):
            await client.backups.get(501)

    assert len(scripted_api.seen) == 1  # nothing sent after it


@pytest.mark.parametrize("bad", ["print", 3])
def test_an_on_retry_that_is_not_callable_is_a_type_error(bad: object) -> None:
    with pytest.raises(TypeError, match="on_retry must be a callable"):
        BackupsClient(TOKEN, base_url="http://127.0.0.1:9/api/v1/", on_retry=bad)  # type: ignore[arg-type]


async def test_a_retry_event_pickles_with_its_error(scripted_api: LoopbackAPI) -> None:
    scripted_api.answer("GET", "backups/501/", status=503, payload={"detail": "busy"})
    scripted_api.answer("GET", "backups/501/", payload=BACKUP_501)
    heard: list[RetryEvent] = []
    async with loopback_client(scripted_api, on_retry=heard.append) as client:
        await client.backups.get(501)

    [event] = heard
    copy = pickle.loads(pickle.dumps(event))

    assert (copy.attempt, copy.max_attempts, copy.url) == (2, 4, event.url)
    assert isinstance(copy.error, ServerError)
    assert copy.error.status_code == 503
