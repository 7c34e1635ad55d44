"""Hostile servers against paging, the shared poller, create, delete and waits.

Every scenario runs on a real loopback server (the ``loopback`` fixture) and asserts
what went over the wire. Each server stops misbehaving on its own after a while (an
endless list ends after 60 pages, say), and every call runs under a guard, so a
missing protection makes its test fail instead of hanging the suite. The guard is far
past what any call here takes, even on a loaded machine: time is bounded from below
only, and a promise to be quick is checked by what went over the wire.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest
from aiohttp import web
from conftest import BACKUP, TOKEN, LoopbackAPI, json_response, loopback_client

from asyncbackups import (
    APIConnectionError,
    Backup,
    BackupsClient,
    BackupsError,
    BackupStatus,
    BackupType,
    NotFoundError,
    RateLimitError,
    ResponseValidationError,
    ServerError,
    ServerRef,
    WaitTimeoutError,
)

T = TypeVar("T")

FAST = {"poll_interval": 0.01, "max_poll_interval": 0.02}


# Only a hang comes near it: every call here takes milliseconds to a second or so.
HANG = 30.0


async def within(awaitable: Awaitable[T]) -> T:
    """Await, but fail the test (not hang the suite) if it is still running after
    :data:`HANG` seconds."""
    try:
        async with asyncio.timeout(HANG):
            return await awaitable
    except TimeoutError:
        pytest.fail(f"still running after {HANG}s")


def backup_json(
    backup_id: int, server_id: int, status: str = "in_progress", **extra: Any
) -> dict[str, Any]:
    """A manual backup as the API would list it."""
    return {
        **BACKUP,
        "id": backup_id,
        "server": {"id": server_id, "name": f"srv-{server_id}"},
        "backup_type": "manual",
        "status": status,
        "size_mb": None if status == "in_progress" else 100,
        "expires_at": None,
        "description": "hostile",
        **extra,
    }


def in_progress(backup_id: int, server_id: int) -> Backup:
    """A backup just created: the wait knows its server and type."""
    return Backup(
        id=backup_id,
        server=ServerRef(id=server_id, name=f"srv-{server_id}"),
        backup_type=BackupType.MANUAL,
        status=BackupStatus.IN_PROGRESS,
        size_mb=None,
        created_at=datetime(2025, 1, 16, 15, 45, tzinfo=UTC),
    )


def page_number(request: web.Request) -> int:
    return int(request.query.get("page", "1"))


def link_to_page(request: web.Request, number: int, fragment: str = "") -> str:
    """An absolute ``next`` link to page ``number`` of the same query, on the same origin."""
    url = request.url.with_query({**request.query, "page": str(number)})
    return str(url.with_fragment(fragment or None))


def is_list(request: web.Request) -> bool:
    return request.path == "/api/v1/backups/"


def closed_loopback_url() -> str:
    """A base URL on a loopback port nothing listens on (bound, read, closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/api/v1/"


# -- 1. pagination is bounded ---------------------------------------------------------


def endless_list(count: int, *, stop_after: int = 60) -> Any:
    """Pages of one backup each with ``count: count`` and a fresh ``next`` link every time.

    It gives up after ``stop_after`` pages, so an SDK without a bound ends (with the
    wrong answer) instead of hanging.
    """

    async def handler(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        number = page_number(request)
        next_link = link_to_page(request, number + 1) if number < stop_after else None
        return json_response(
            {
                "count": count,
                "next": next_link,
                "previous": None,
                "results": [backup_json(number, 1, "completed")],
            }
        )

    return handler


async def test_list_with_an_endless_next_chain_past_its_count_raises_after_a_few_pages(
    loopback: Any,
) -> None:
    api = await loopback(endless_list(3))
    async with loopback_client(api) as client:
        with pytest.raises(ResponseValidationError):
            await within(client.backups.list())
    # ceil(3 / 1) pages, plus a little slack: never the 60 the server would hand out.
    assert 3 <= len(api.seen) < 10


async def test_iter_with_an_endless_next_chain_past_its_count_raises_after_a_few_pages(
    loopback: Any,
) -> None:
    api = await loopback(endless_list(3))
    got: list[Backup] = []

    async def drain(client: BackupsClient) -> None:
        async for backup in client.backups.iter():
            got.append(backup)

    async with loopback_client(api) as client:
        with pytest.raises(ResponseValidationError):
            await within(drain(client))
    assert 3 <= len(api.seen) < 10
    assert len(got) < 10


async def test_list_whose_next_differs_from_a_read_page_only_by_fragment_is_a_loop(
    loopback: Any,
) -> None:
    # Page 2 links to itself with a new #fragment every time; the count (1,000) is no
    # help here, only seeing that it is the same page is.
    async def handler(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        number = page_number(request)
        if len(api.seen) >= 60:
            next_link = None
        elif number == 1:
            next_link = link_to_page(request, 2)
        else:
            next_link = link_to_page(request, 2, fragment=f"again-{len(api.seen)}")
        body = {"count": 1000, "next": next_link, "results": [backup_json(number, 1)]}
        return json_response(body)

    api = await loopback(handler)
    async with loopback_client(api) as client:
        with pytest.raises(ResponseValidationError):
            await within(client.backups.list())
    assert api.paths() == ["GET /api/v1/backups/", "GET /api/v1/backups/?page=2"]


async def test_list_whose_next_is_the_first_page_with_a_fragment_is_a_loop_caught_unsent(
    loopback: Any,
) -> None:
    async def handler(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        next_link = None if len(api.seen) >= 60 else api.base_url + "backups/#top"
        return json_response({"count": 1000, "next": next_link, "results": [backup_json(1, 1)]})

    api = await loopback(handler)
    async with loopback_client(api) as client:
        with pytest.raises(ResponseValidationError):
            await within(client.backups.list())
    # The link names the page already read: nothing needs sending to know it loops.
    assert api.paths() == ["GET /api/v1/backups/"]


async def test_list_of_a_bare_json_array_without_count_still_works(loopback: Any) -> None:
    async def handler(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        return json_response([backup_json(1, 1), backup_json(2, 1)])

    api = await loopback(handler)
    async with loopback_client(api) as client:
        backups = await within(client.backups.list())
    assert [b.id for b in backups] == [1, 2]
    assert len(api.seen) == 1


async def test_list_of_pages_without_a_count_field_reads_every_page(loopback: Any) -> None:
    async def handler(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        number = page_number(request)
        next_link = link_to_page(request, number + 1) if number < 3 else None
        return json_response({"next": next_link, "results": [backup_json(number, 1)]})

    api = await loopback(handler)
    async with loopback_client(api) as client:
        backups = await within(client.backups.list())
        streamed = [b.id async for b in client.backups.iter()]
    assert [b.id for b in backups] == [1, 2, 3]
    assert streamed == [1, 2, 3]
    assert len(api.seen) == 6


async def test_a_legit_five_page_list_of_count_five_reads_all_five_pages(loopback: Any) -> None:
    api = await loopback(endless_list(5, stop_after=5))
    async with loopback_client(api) as client:
        backups = await within(client.backups.list())
        streamed = [b.id async for b in client.backups.iter()]
    assert [b.id for b in backups] == [1, 2, 3, 4, 5]
    assert streamed == [1, 2, 3, 4, 5]
    assert len(api.seen) == 10


# -- 2. the poller stops when nobody waits --------------------------------------------


async def test_a_wait_that_timed_out_mid_listing_leaves_no_poller_paging_on(
    loopback: Any,
) -> None:
    # 5,000 backups one per page, fast; the waited backup (42) is on none of them.
    async def handler(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        if not is_list(request):
            return json_response(backup_json(42, 7))  # still in progress
        number = page_number(request)
        next_link = link_to_page(request, number + 1) if number < 5000 else None
        body = {
            "count": 5000,
            "next": next_link,
            "previous": None,
            "results": [backup_json(100_000 + number, 7, "completed")],
        }
        return json_response(body)

    api = await loopback(handler)
    async with loopback_client(api, timeout=1.0) as client:
        with pytest.raises(WaitTimeoutError):
            await within(
                client.backups.wait_until_completed(in_progress(42, 7), timeout=0.3, **FAST)
            )
        during = len(api.seen)
        await asyncio.sleep(0.3)
        after = len(api.seen)
    assert during >= 2  # the wait really was paging through the list
    assert after - during <= 1, f"{after - during} requests after the only wait gave up"


# -- 3. a create against a server that never answers ----------------------------------


@pytest.mark.parametrize(("max_retries", "most"), [(2, 6), (0, 2)])
async def test_create_against_a_server_that_never_answers_sends_few_requests_and_gives_up(
    loopback: Any, max_retries: int, most: int
) -> None:
    async def silent(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        return await api.stall()  # accepts, reads, never answers

    api = await loopback(silent)
    async with loopback_client(api, timeout=0.1, max_retries=max_retries) as client:
        started = time.monotonic()
        with pytest.raises(BackupsError):
            await within(client.backups.create(12345, description="never answered"))
        elapsed = time.monotonic() - started
    # At most (max_retries + 1) x (the POST + its reconcile read) requests in all.
    assert sum(1 for seen in api.seen if seen.method == "POST") >= 1
    assert len(api.seen) <= most, api.paths()
    # Each attempt was given its whole timeout.
    assert elapsed >= 0.1


# -- 4. waits honour max_retry_after --------------------------------------------------


@pytest.mark.parametrize("given", ["id", "backup"])
async def test_wait_raises_rate_limit_error_promptly_for_a_retry_after_past_max_retry_after(
    loopback: Any, given: str
) -> None:
    async def throttled(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        detail = {"detail": "Request was throttled. Expected available in 86400 seconds."}
        return json_response(detail, status=429, **{"Retry-After": "86400"})

    api = await loopback(throttled)
    target: Backup | int = 501 if given == "id" else in_progress(501, 12345)
    async with loopback_client(api, max_retry_after=1) as client:
        with pytest.raises(RateLimitError) as caught:
            await within(client.backups.wait_until_completed(target, timeout=60, **FAST))
        # The client took no pause for it: it raised at once.
        assert client.stats.rate_limit_pauses == 0
    assert caught.value.retry_after == 86400
    # A pause the client will not take is not sent into again and again.
    assert 1 <= len(api.seen) <= 2, api.paths()


# -- 5. unreachable APIs and outages --------------------------------------------------


@pytest.mark.parametrize("given", ["id", "backup"])
async def test_wait_on_an_unreachable_api_fails_fast_with_a_connection_error(given: str) -> None:
    target: Backup | int = 501 if given == "id" else in_progress(501, 12345)
    async with BackupsClient(
        TOKEN,
        base_url=closed_loopback_url(),
        timeout=0.2,
        max_retries=1,
        retry_backoff=0,
        max_retry_backoff=0,
    ) as client:
        # Not ridden out until the wait's own limit (which the guard would meet first):
        # a connection error fails it (an outage after a good read is ridden out
        # instead, as the next test shows).
        with pytest.raises(APIConnectionError):
            await within(client.backups.wait_until_completed(target, timeout=600, **FAST))
        # The first read and its one retry, then no more.
        assert client.stats.total_requests == 2


@pytest.mark.parametrize("outage", ["503", "drop"])
async def test_wait_rides_out_an_outage_after_a_good_read_and_reports_its_last_error(
    loopback: Any, caplog: pytest.LogCaptureFixture, outage: str
) -> None:
    async def handler(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        if len(api.seen) == 1:
            return json_response(backup_json(501, 12345))
        if outage == "503":
            detail = {"detail": "Service temporarily unavailable, try again later."}
            return json_response(detail, status=503)
        return api.drop(request)

    caplog.set_level(logging.INFO, logger="asyncbackups")
    api = await loopback(handler)
    # A request timeout no answer here comes near: the first, good, read must not be
    # lost to a loaded machine, or the wait would fail at once (nothing read yet).
    async with loopback_client(api, timeout=5.0, max_retries=1) as client:
        started = time.monotonic()
        with pytest.raises(WaitTimeoutError) as caught:
            await within(
                client.backups.wait_until_completed(
                    501, timeout=0.75, poll_interval=0.01, max_poll_interval=0.05
                ),
            )
        elapsed = time.monotonic() - started
    assert elapsed >= 0.75  # ridden out until the deadline, not given up on
    assert len(api.seen) > 2  # polling went on through the outage
    assert caught.value.backup is not None
    assert caught.value.backup.id == 501
    expected = ServerError if outage == "503" else APIConnectionError
    last_error = getattr(caught.value, "last_error", None)
    assert isinstance(last_error, expected), f"last_error is {last_error!r}"
    warned = [
        record
        for record in caplog.records
        if record.name.startswith("asyncbackups") and record.levelno == logging.WARNING
    ]
    assert warned, "no WARNING on the asyncbackups logger for the outage"


# -- 6. the poller isolates failures --------------------------------------------------

FLEET = 100
HOSTILE_SERVER = FLEET
HOSTILE_BACKUP = 1000 + HOSTILE_SERVER
NESTED = b"[" * 100_000 + b"]" * 100_000
OVERFLOWING_DATE = "Fri, 31 Dec 99999999999999999999 23:59:59 GMT"


def fleet_api(hostile: str) -> Any:
    """Servers 1..100 with backup 1000+N each; backup 1100 (server 100) is hostile.

    The good backups complete after two list reads. Backup 1100 never shows up in a
    list, so it is read at its detail route; the hostile answer is either that route
    (``nested``, ``retry-after``) or server 100's own list (``next``), never a page
    the other waits depend on.
    """
    reads = {"lists": 0}

    def good(backup_id: int) -> dict[str, Any]:
        status = "completed" if reads["lists"] > 2 else "in_progress"
        return backup_json(backup_id, backup_id - 1000, status)

    async def handler(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        if is_list(request):
            reads["lists"] += 1
            server = request.query.get("server_id")
            if server is None:
                ids = range(1001, 1000 + FLEET)
            elif server == str(HOSTILE_SERVER):
                ids = range(0)
                if hostile == "next":
                    body = {"count": 1, "next": "javascript:alert(1)", "results": []}
                    return json_response(body)
            else:
                ids = range(1000 + int(server), 1001 + int(server))
            results = [good(i) for i in ids]
            return json_response({"count": len(results), "next": None, "results": results})
        backup_id = int(request.path.rstrip("/").rsplit("/", 1)[1])
        if backup_id != HOSTILE_BACKUP:
            return json_response(good(backup_id))
        if hostile == "nested":
            return web.Response(body=NESTED, content_type="application/json")
        if hostile == "retry-after":
            detail = {"detail": "Request was throttled."}
            return json_response(detail, status=429, **{"Retry-After": OVERFLOWING_DATE})
        return json_response(backup_json(HOSTILE_BACKUP, HOSTILE_SERVER))

    return handler


@pytest.mark.parametrize("hostile", ["next", "nested", "retry-after"])
async def test_one_hostile_answer_fails_only_the_wait_that_read_it_the_other_99_complete(
    loopback: Any, hostile: str
) -> None:
    api = await loopback(fleet_api(hostile))
    targets = [in_progress(1000 + server, server) for server in range(1, FLEET + 1)]
    # Limits no healthy answer comes near: the 99 complete after the third list read,
    # however slowly the machine runs. The hostile wait may ride its answer out until
    # its own, shorter, limit.
    async with loopback_client(api, timeout=5.0, max_retries=1) as client:
        outcomes = await within(
            asyncio.gather(
                *(
                    client.backups.wait_until_completed(
                        target, timeout=1.5 if target.id == HOSTILE_BACKUP else 20, **FAST
                    )
                    for target in targets
                ),
                return_exceptions=True,
            ),
        )
    by_id = dict(zip((t.id for t in targets), outcomes, strict=True))
    hostile_outcome = by_id.pop(HOSTILE_BACKUP)
    assert isinstance(hostile_outcome, BackupsError), repr(hostile_outcome)
    broken = {i: o for i, o in by_id.items() if not isinstance(o, Backup)}
    assert not broken, f"{len(broken)} other waits failed, e.g. {next(iter(broken.values()))!r}"
    assert all(o.status is BackupStatus.COMPLETED for o in by_id.values())
    # The hostile answer really was read.
    if hostile == "next":
        assert any(f"server_id={HOSTILE_SERVER}" in p for p in api.paths())
    else:
        assert f"GET /api/v1/backups/{HOSTILE_BACKUP}/" in api.paths()


# -- 7. delete after aiohttp's silent resend ------------------------------------------


async def test_delete_that_deleted_then_dropped_succeeds_after_the_silent_repeats_503_and_404(
    loopback: Any,
) -> None:
    deleted: set[int] = set()

    async def handler(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        if request.method == "GET":
            return json_response(BACKUP)
        deletes = sum(1 for seen in api.seen if seen.method == "DELETE")
        if deletes == 1:
            deleted.add(7)  # the delete is done...
            return api.drop(request)  # ...and its answer lost
        if deletes == 2:  # aiohttp's silent repeat
            detail = {"detail": "Service temporarily unavailable, try again later."}
            return json_response(detail, status=503)
        assert 7 in deleted
        return json_response({"detail": "Not found."}, status=404)

    api = await loopback(handler)
    async with loopback_client(api, max_retries=2) as client:
        await client.backups.get(501)  # opens the kept-alive connection the DELETE reuses
        try:
            result = await within(client.backups.delete(7))
        except NotFoundError as error:
            result = error
    # The first try, aiohttp's silent repeat (503), and the SDK's own retry (404).
    assert api.paths() == ["GET /api/v1/backups/501/"] + ["DELETE /api/v1/backups/7/"] * 3
    assert result is None


# -- 8. a list page that vanished mid-round -------------------------------------------

WAITED = {11: 1, 22: 2}  # backup -> server


def vanishing_page_api(*, gone: set[int]) -> Any:
    """Lists read page 1 (another backup), then page 2 - which 404s the first time.

    The waited backups 11 and 22 sit on page 2; they complete once the 404 was served.
    Those in ``gone`` really were deleted: their detail route says 404 too.
    """
    state = {"vanished": False}

    def waited(backup_id: int) -> dict[str, Any]:
        status = "completed" if state["vanished"] else "in_progress"
        return backup_json(backup_id, WAITED[backup_id], status)

    async def handler(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        if is_list(request):
            if page_number(request) == 1:
                body = {
                    "count": 3,
                    "next": link_to_page(request, 2),
                    "previous": None,
                    "results": [backup_json(5, 3, "completed")],
                }
                return json_response(body)
            if not state["vanished"]:
                state["vanished"] = True
                return json_response({"detail": "Invalid page."}, status=404)
            results = [waited(i) for i in WAITED if i not in gone]
            return json_response({"count": 1 + len(results), "next": None, "results": results})
        backup_id = int(request.path.rstrip("/").rsplit("/", 1)[1])
        if backup_id in gone or backup_id not in WAITED:
            return json_response({"detail": "Not found."}, status=404)
        return json_response(waited(backup_id))

    return handler


async def test_a_list_page_that_vanished_mid_round_is_confirmed_by_detail_and_waits_complete(
    loopback: Any,
) -> None:
    api = await loopback(vanishing_page_api(gone=set()))
    async with loopback_client(api) as client:
        done = await within(
            asyncio.gather(
                *(
                    client.backups.wait_until_completed(in_progress(b, s), timeout=20, **FAST)
                    for b, s in WAITED.items()
                )
            ),
        )
    assert [b.id for b in done] == [11, 22]
    assert all(b.status is BackupStatus.COMPLETED for b in done)
    paths = api.paths()
    assert any(p.startswith("GET /api/v1/backups/?") and "page=2" in p for p in paths)
    # The waits whose round met the vanished page were confirmed by their detail route:
    # both, when both waits began before the poller's first round; on a loaded machine
    # the second may begin a round later, and read the page after it came back.
    assert {"GET /api/v1/backups/11/", "GET /api/v1/backups/22/"} & set(paths)


async def test_a_vanished_list_page_and_a_404_detail_route_mean_that_backup_is_gone(
    loopback: Any,
) -> None:
    api = await loopback(vanishing_page_api(gone={11}))
    async with loopback_client(api) as client:
        gone, done = await within(
            asyncio.gather(
                *(
                    client.backups.wait_until_completed(in_progress(b, s), timeout=20, **FAST)
                    for b, s in WAITED.items()
                ),
                return_exceptions=True,
            ),
        )
    assert isinstance(gone, NotFoundError), repr(gone)
    assert isinstance(done, Backup), repr(done)
    assert done.status is BackupStatus.COMPLETED
    # Gone by its detail route, not by the vanished page alone.
    assert "GET /api/v1/backups/11/" in api.paths()
