"""A call across its attempts, driven by a stub one-attempt sender: no HTTP at all.

The stub answers each attempt from a script (a Response or an exception), so the retry,
ambiguity and reconcile rules are shown as plain sequences of attempts.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from yarl import URL

from asyncbackups import (
    AmbiguousCreateError,
    APIConnectionError,
    APITimeoutError,
    Backup,
    BackupStatus,
    BackupType,
    BadRequestError,
    NotFoundError,
    ResponseValidationError,
    ServerError,
    ServerRef,
)
from asyncbackups._calls.call import Call
from asyncbackups._calls.retry_policy import Safety
from asyncbackups._core.options import ClientOptions
from asyncbackups._core.protocol import Response
from asyncbackups._core.stats import Counters
from asyncbackups._decoding.responses import (
    decode_backup_response,
    decode_delete_response,
    decode_restore_response,
)
from asyncbackups._transport.base import Request

BASE = URL("https://admin.vps.org/api/v1/")
OPTIONS = ClientOptions(base_url=BASE, timeout=0.01, retry_backoff=0, max_retry_backoff=0)
CREATED = {
    "id": 502,
    "server": {"id": 12345, "name": "web"},
    "backup_type": "manual",
    "status": "in_progress",
    "size_mb": None,
    "created_at": "2025-01-16T15:45:00Z",
    "expires_at": None,
    "description": "x",
}
Outcome = Response | BaseException


def answer(status: int, body: Any = None, **headers: str) -> Response:
    raw = b"" if body is None else json.dumps(body).encode()
    return Response(method="POST", url=str(BASE), status=status, headers=headers, body=raw)


class StubTransport:
    """Answers each attempt with the next scripted outcome and records what was sent."""

    def __init__(self, *outcomes: Outcome) -> None:
        self.outcomes = list(outcomes)
        self.sent: list[Request] = []

    @property
    def base_url(self) -> URL:
        return BASE

    def url(self, path: str) -> str:
        return str(BASE) + path

    def check_open(self) -> None:
        pass

    def scrub(self, error: BaseException) -> None:
        pass

    def redact(self, text: str) -> str:
        return text

    async def send(self, request: Request, options: ClientOptions) -> Response:
        self.sent.append(request)
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


def call(
    transport: StubTransport,
    safety: Safety,
    decode: Callable[[Response], Any],
    *,
    options: ClientOptions = OPTIONS,
    reconcile: Callable[[], Awaitable[Any]] | None = None,
    counters: Counters | None = None,
) -> Call[Any]:
    method = "DELETE" if safety is Safety.DELETE else "POST"
    request = Request(method, str(BASE) + "backups/", route=f"{method} backups/")
    return Call(
        transport,
        request,
        safety=safety,
        decode=decode,
        options=options,
        counters=counters or Counters(),
        reconcile=reconcile,
        idempotency_key="key-1",
    )


def dropped() -> APIConnectionError:
    return APIConnectionError("dropped", request_may_have_reached_server=True)


def refused() -> APIConnectionError:
    return APIConnectionError("refused", request_may_have_reached_server=False)


def timed_out() -> APITimeoutError:
    return APITimeoutError("timed out", request_may_have_reached_server=True)


def backup(backup_id: int = 502) -> Backup:
    return Backup(
        id=backup_id,
        server=ServerRef(id=12345, name="web"),
        backup_type=BackupType.MANUAL,
        status=BackupStatus.IN_PROGRESS,
        size_mb=None,
        created_at=datetime(2025, 1, 16, 15, 45, tzinfo=UTC),
    )


class Reconciler:
    """A reconcile that finds what the script says, counting its reads."""

    def __init__(self, *found: Backup | BaseException | None) -> None:
        self.found = list(found)
        self.reads = 0

    async def __call__(self) -> Backup | None:
        self.reads += 1
        outcome = self.found.pop(0) if self.found else None
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


async def test_a_first_success_is_one_attempt_and_no_retry() -> None:
    transport = StubTransport(answer(201, CREATED))
    counters = Counters()
    the_call = call(transport, Safety.CREATE, decode_backup_response, counters=counters)
    assert (await the_call.run()).id == 502
    assert len(transport.sent) == 1
    assert the_call.retries == 0
    assert counters.retries == 0


async def test_a_declined_503_is_retried_and_counted() -> None:
    transport = StubTransport(answer(503, {"detail": "busy"}), answer(201, CREATED))
    counters = Counters()
    the_call = call(transport, Safety.CREATE, decode_backup_response, counters=counters)
    assert (await the_call.run()).id == 502
    assert len(transport.sent) == 2
    assert (the_call.retries, counters.retries) == (1, 1)


async def test_a_400_is_never_retried() -> None:
    transport = StubTransport(answer(400, {"description": ["too long"]}))
    with pytest.raises(BadRequestError):
        await call(transport, Safety.CREATE, decode_backup_response).run()
    assert len(transport.sent) == 1


async def test_retries_stop_after_max_retries_and_raise_the_last_error() -> None:
    transport = StubTransport(*(answer(503) for _ in range(4)))
    with pytest.raises(ServerError):
        await call(transport, Safety.DELETE, decode_delete_response).run()
    assert len(transport.sent) == OPTIONS.max_retries + 1


async def test_a_retry_after_longer_than_the_cap_is_not_waited_out() -> None:
    transport = StubTransport(answer(503, None, **{"Retry-After": "3600"}))
    with pytest.raises(ServerError) as caught:
        await call(transport, Safety.DELETE, decode_delete_response).run()
    assert caught.value.retry_after == 3600
    assert len(transport.sent) == 1


async def test_an_ambiguous_create_reconciles_before_sending_again_and_adopts_what_it_finds() -> (
    None
):
    transport = StubTransport(dropped())
    reconcile = Reconciler(backup(777))
    result = await call(transport, Safety.CREATE, decode_backup_response, reconcile=reconcile).run()
    assert result.id == 777
    assert len(transport.sent) == 1
    assert reconcile.reads == 1


async def test_an_ambiguous_create_sends_again_only_when_the_reconcile_found_nothing() -> None:
    transport = StubTransport(answer(500), answer(201, CREATED))
    reconcile = Reconciler(None)
    result = await call(transport, Safety.CREATE, decode_backup_response, reconcile=reconcile).run()
    assert result.id == 502
    assert len(transport.sent) == 2
    assert reconcile.reads == 1


async def test_an_unsent_create_is_retried_without_a_reconcile() -> None:
    transport = StubTransport(refused(), answer(201, CREATED))
    reconcile = Reconciler()
    assert (
        await call(transport, Safety.CREATE, decode_backup_response, reconcile=reconcile).run()
    ).id == 502
    assert reconcile.reads == 0


async def test_a_create_out_of_attempts_reads_once_more_before_reporting_failure() -> None:
    options = OPTIONS.evolve(max_retries=0)
    transport = StubTransport(dropped())
    reconcile = Reconciler(backup(778))
    result = await call(
        transport, Safety.CREATE, decode_backup_response, reconcile=reconcile, options=options
    ).run()
    assert result.id == 778


@pytest.mark.parametrize("max_retries", [0, 1, 2, 3])
async def test_a_create_that_never_gets_an_answer_stays_within_twice_its_attempts(
    max_retries: int,
) -> None:
    options = OPTIONS.evolve(max_retries=max_retries)
    transport = StubTransport(*(timed_out() for _ in range(20)))
    reconcile = Reconciler(*(timed_out() for _ in range(20)))
    with pytest.raises(APITimeoutError):
        await call(
            transport, Safety.CREATE, decode_backup_response, reconcile=reconcile, options=options
        ).run()
    assert len(transport.sent) + reconcile.reads <= 2 * (max_retries + 1)


async def test_a_create_whose_reads_find_nothing_stays_within_twice_its_attempts() -> None:
    transport = StubTransport(*(timed_out() for _ in range(20)))
    reconcile = Reconciler(*(None for _ in range(20)))
    with pytest.raises(APITimeoutError):
        await call(transport, Safety.CREATE, decode_backup_response, reconcile=reconcile).run()
    assert len(transport.sent) == OPTIONS.max_retries + 1
    assert len(transport.sent) + reconcile.reads == 2 * (OPTIONS.max_retries + 1)


async def test_an_unreadable_created_answer_is_found_by_reconciling_and_never_resent() -> None:
    transport = StubTransport(Response(method="POST", url="x", status=201, headers={}, body=b"{"))
    reconcile = Reconciler(None)
    with pytest.raises(ResponseValidationError):
        await call(transport, Safety.CREATE, decode_backup_response, reconcile=reconcile).run()
    assert len(transport.sent) == 1
    assert reconcile.reads >= 1


async def test_an_ambiguous_reconcile_is_reported_and_nothing_is_sent_again() -> None:
    candidates = [backup(801), backup(802)]
    ambiguous = AmbiguousCreateError(server_id=12345, candidates=candidates, idempotency_key="k")
    transport = StubTransport(dropped())
    reconcile = Reconciler(ambiguous)
    with pytest.raises(AmbiguousCreateError):
        await call(transport, Safety.CREATE, decode_backup_response, reconcile=reconcile).run()
    assert len(transport.sent) == 1
    assert reconcile.reads == 1


async def test_a_restore_is_not_sent_again_once_it_may_have_arrived() -> None:
    transport = StubTransport(dropped(), answer(202, {}))
    with pytest.raises(APIConnectionError):
        await call(transport, Safety.RESTORE, decode_restore_response).run()
    assert len(transport.sent) == 1


async def test_a_restore_that_certainly_did_not_arrive_is_sent_again() -> None:
    transport = StubTransport(refused(), answer(202, {"status": "restoring"}))
    assert (await call(transport, Safety.RESTORE, decode_restore_response).run()).status == (
        "restoring"
    )


async def test_a_delete_whose_first_copy_was_silently_resent_takes_a_later_404_as_success() -> None:
    repeated = Response(method="DELETE", url="x", status=503, headers={}, body=b"", repeated=True)
    transport = StubTransport(repeated, answer(404, {"detail": "Not found."}))
    assert await call(transport, Safety.DELETE, decode_delete_response).run() is None


async def test_a_plain_delete_404_is_not_found() -> None:
    transport = StubTransport(answer(404, {"detail": "Not found."}))
    with pytest.raises(NotFoundError):
        await call(transport, Safety.DELETE, decode_delete_response).run()


async def test_a_create_cancelled_after_sending_warns_with_its_idempotency_key(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Hanging(StubTransport):
        async def send(self, request: Request, options: ClientOptions) -> Response:
            self.sent.append(request)
            await asyncio.Event().wait()
            raise AssertionError("never answered")

    caplog.set_level(logging.WARNING, logger="asyncbackups")
    task = asyncio.create_task(call(Hanging(), Safety.CREATE, decode_backup_response).run())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert any("key-1" in record.getMessage() for record in caplog.records)
