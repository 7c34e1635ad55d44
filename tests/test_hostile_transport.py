"""A hostile server on loopback, attack by attack, and the promise the SDK keeps against each.

A. Bounded memory: no body beyond ``max_response_bytes`` is read, however it is framed
   (declared, chunked without end, or a small gzip/deflate body that inflates).
B. Small exception text: a huge error body makes a short message; ``.body`` keeps it all.
C. Nothing raw escapes: deep JSON, absurd ``Retry-After`` and ``Date`` headers, poisoned
   ``next`` links and redirects end as the SDK's own errors, with nothing sent elsewhere.
D. The token never appears: not in errors, their chains and frames, nor in the logs,
   however the server echoes it back (escaped, encoded, cut short).
E. Cancellation is always ``CancelledError`` and never leaks a concurrency slot.
F. A create cancelled after it was sent warns with its idempotency key.

Every server here is a real aiohttp.web server on 127.0.0.1; what went over the wire is
read from ``api.seen``.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import random
import re
import secrets
import socket
import traceback
import tracemalloc
import zlib
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from aiohttp import web
from conftest import (
    BACKUP,
    CREATED_502,
    TOKEN,
    Handler,
    LoopbackAPI,
    json_response,
    page,
)

from asyncbackups import (
    APIConnectionError,
    APIStatusError,
    Backup,
    BackupsClient,
    BackupsError,
    BadRequestError,
    RateLimitError,
    ResponseValidationError,
    RestoreResult,
    ServerError,
)

Start = Callable[[Handler], Awaitable[LoopbackAPI]]
Call = Callable[[BackupsClient], Awaitable[Any]]

KiB = 1 << 10
MiB = 1 << 20
CAP = 1 * MiB  # the max_response_bytes most tests set
SHORT = 1_100  # the longest str() an error may have, whatever the body
JSON_HEADERS = {"Content-Type": "application/json"}
SPACES = b" " * (64 * KiB)
# What an "endless" body sends before it stalls: far past any cap, yet bounded, so that
# a client without a cap fails its test instead of exhausting the machine.
ENDLESS = 64 * MiB

CALLS: dict[str, Call] = {
    "get": lambda client: client.backups.get(501),
    "list": lambda client: client.backups.list(server_id=12345),
    "create": lambda client: client.backups.create(12345),
    "delete": lambda client: client.backups.delete(501),
    "restore": lambda client: client.servers.restore(12345, 501),
}


# -- helpers ---------------------------------------------------------------------------


def hostile_client(base_url: str, token: str = TOKEN, **options: Any) -> BackupsClient:
    """A client that retries without sleeping.

    Its timeout is far past what any answer here takes, even inflating a 64 MiB gzip
    bomb on a loaded machine: what ends a hostile answer is the protection under test
    (the cap, a parser's refusal), never the clock. Tests of time-outs set their own.
    """
    options.setdefault("retry_backoff", 0)
    options.setdefault("max_retry_backoff", 0)
    options.setdefault("timeout", 30.0)
    return BackupsClient(token, base_url=base_url, **options)


async def outcome(awaitable: Awaitable[Any]) -> Any:
    """What a call came to: its result, or the exception it raised."""
    try:
        return await awaitable
    except Exception as error:
        return error


def describe(value: Any) -> str:
    if isinstance(value, BaseException):
        return f"{type(value).__name__}: {str(value)[:300]}"
    return f"result {type(value).__name__}"


async def hold_until_peer_leaves(request: web.Request, limit: float = 3.0) -> None:
    """Keep the answer open (never finishing it) until the client hangs up."""
    for _ in range(int(limit / 0.01)):
        transport = request.transport
        if transport is None or transport.is_closing():
            return
        await asyncio.sleep(0.01)


def padded(payload: Any, size: int) -> bytes:
    """``payload`` as JSON followed by spaces up to ``size`` bytes: still valid JSON."""
    raw = json.dumps(payload).encode()
    assert size >= len(raw)
    return raw + b" " * (size - len(raw))


@functools.cache
def compressed(content: bytes, inflated_size: int, encoding: str) -> bytes:
    """``content`` padded with spaces to ``inflated_size`` bytes, gzip- or zlib-deflated.

    Built by streaming compression: a few tens of kilobytes that inflate to megabytes.
    """
    packer = zlib.compressobj(9, zlib.DEFLATED, 31 if encoding == "gzip" else 15)
    parts = [packer.compress(content)]
    left = inflated_size - len(content)
    spaces = b" " * MiB
    while left > 0:
        piece = spaces[: min(len(spaces), left)]
        parts.append(packer.compress(piece))
        left -= len(piece)
    parts.append(packer.flush())
    return b"".join(parts)


async def send_body(
    request: web.Request,
    content: bytes,
    size: int | None,
    *,
    mode: str,
    status: int = 200,
) -> web.StreamResponse:
    """Answer ``content`` padded with spaces to ``size`` bytes, framed as ``mode`` says.

    ``length``: a plain Content-Length body. ``chunked``: chunked transfer encoding; with
    ``size`` None it never ends (it sends ENDLESS bytes, then stalls). ``gzip`` and
    ``deflate``: compressed, with that Content-Encoding; ``size`` is the inflated size.
    """
    if mode == "length":
        assert size is not None
        body = content + b" " * (size - len(content))
        return web.Response(status=status, body=body, headers=JSON_HEADERS)
    if mode in ("gzip", "deflate"):
        assert size is not None
        headers = {**JSON_HEADERS, "Content-Encoding": mode}
        return web.Response(status=status, body=compressed(content, size, mode), headers=headers)
    assert mode == "chunked"
    response = web.StreamResponse(status=status, headers=JSON_HEADERS)
    response.enable_chunked_encoding()
    await response.prepare(request)
    try:
        await response.write(content)
        left = (ENDLESS if size is None else size) - len(content)
        while left > 0:
            piece = SPACES[: min(len(SPACES), left)]
            await response.write(piece)
            left -= len(piece)
        if size is not None:
            await response.write_eof()
            return response
    except ConnectionError:  # the client hung up: what it should do
        return response
    await hold_until_peer_leaves(request)
    return response


async def declares_10_gib(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
    """Declare a 10 GiB body, send ten bytes of it, and never the rest."""
    response = web.StreamResponse(headers=JSON_HEADERS)
    response.content_length = 10 * 1024**3
    await response.prepare(request)
    await response.write(b'{"id": 501')
    await hold_until_peer_leaves(request)
    return response


def settled_as(task: asyncio.Future[Any]) -> str:
    """How a finished task ended, as ``describe`` puts it."""
    if not task.done():
        return "still running"
    if task.cancelled():
        return "CancelledError"
    if task.exception() is not None:
        return describe(task.exception())
    return describe(task.result())


def closed_port() -> int:
    """A loopback port nobody listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def requests_to(api: LoopbackAPI, method: str) -> int:
    return sum(1 for seen in api.seen if seen.method == method)


# == A. bounded memory =================================================================


@pytest.mark.parametrize("mode", ["length", "chunked", "gzip", "deflate"])
async def test_the_oversized_bodies_really_go_over_the_wire_as_framed(
    loopback: Start, mode: str
) -> None:
    """The attack is real: a plain aiohttp client sees the framing and the size claimed."""
    content = json.dumps(BACKUP).encode()
    size = 2 * MiB

    async def oversized(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        return await send_body(request, content, size, mode=mode)

    api = await loopback(oversized)
    async with aiohttp.ClientSession() as session:
        url = api.base_url + "backups/501/"
        async with session.get(url, auto_decompress=False) as raw:
            wire = await raw.read()
            headers = raw.headers
        async with session.get(url) as inflated:
            body = await inflated.read()

    assert len(body) == size
    assert json.loads(body) == BACKUP
    if mode == "length":
        assert headers["Content-Length"] == str(size)
    elif mode == "chunked":
        assert headers["Transfer-Encoding"] == "chunked"
        assert "Content-Length" not in headers
    else:
        assert headers["Content-Encoding"] == mode
        assert len(wire) < size // 100  # a few kilobytes that inflate to megabytes


async def test_the_endless_and_the_10_gib_bodies_really_never_end(loopback: Start) -> None:
    """The attack is real: one body streams on past any cap, the other declares 10 GiB."""

    async def handler(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        if request.path.endswith("/501/"):
            return await send_body(request, b'{"id": 501, "description": "', None, mode="chunked")
        return await declares_10_gib(request, api)

    api = await loopback(handler)
    async with aiohttp.ClientSession() as session:
        async with session.get(api.base_url + "backups/501/") as endless:
            read = 0
            while read < 4 * CAP:
                read += len(await endless.content.read(64 * KiB))
            assert not endless.content.at_eof()
            assert endless.headers["Transfer-Encoding"] == "chunked"
        async with session.get(api.base_url + "backups/502/") as huge:
            assert huge.headers["Content-Length"] == str(10 * 1024**3)
            assert await huge.content.read(10) == b'{"id": 501'


@pytest.mark.parametrize("mode", ["length", "chunked", "gzip", "deflate"])
@pytest.mark.parametrize("op", ["get", "list"])
async def test_body_beyond_max_response_bytes_raises_response_validation_error(
    loopback: Start, op: str, mode: str
) -> None:
    # Valid JSON padded with spaces: without a cap the call would succeed.
    content = json.dumps(BACKUP if op == "get" else page([BACKUP])).encode()
    size = 16 * MiB if mode in ("gzip", "deflate") else 2 * MiB  # inflated size

    async def oversized(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        return await send_body(request, content, size, mode=mode)

    api = await loopback(oversized)
    async with hostile_client(api.base_url, max_response_bytes=CAP, max_retries=0) as client:
        result = await outcome(CALLS[op](client))

    assert isinstance(result, ResponseValidationError), describe(result)
    assert "max_response_bytes" in str(result)
    assert len(str(result)) < SHORT


@pytest.mark.parametrize("mode", ["length", "chunked", "gzip", "deflate"])
@pytest.mark.parametrize("op", ["get", "list"])
async def test_a_small_answer_in_any_framing_is_read_whole(
    loopback: Start, op: str, mode: str
) -> None:
    # A small chunked or compressed answer arrives whole before it is read: taken at
    # once, the way a plain one of declared length is.
    content = json.dumps(BACKUP if op == "get" else page([BACKUP])).encode()

    async def small(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        return await send_body(request, content, 4 * KiB, mode=mode)

    api = await loopback(small)
    async with hostile_client(api.base_url, max_response_bytes=4 * KiB, max_retries=0) as client:
        result = await CALLS[op](client)

    backups = result if op == "list" else [result]
    assert [backup.id for backup in backups] == [501]


@pytest.mark.parametrize("mode", ["chunked", "gzip", "deflate"])
async def test_an_answer_here_whole_at_once_yet_past_the_cap_inflated_is_refused(
    loopback: Start, mode: str
) -> None:
    content = json.dumps(BACKUP).encode()

    async def small_but_past(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        return await send_body(request, content, 4 * KiB + 1, mode=mode)

    api = await loopback(small_but_past)
    async with hostile_client(api.base_url, max_response_bytes=4 * KiB, max_retries=0) as client:
        result = await outcome(client.backups.get(501))

    assert isinstance(result, ResponseValidationError), describe(result)
    assert "max_response_bytes" in str(result)


async def test_endless_chunked_body_fails_at_the_cap_in_bounded_memory(
    loopback: Start,
) -> None:
    async def endless(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        return await send_body(request, b'{"id": 501, "description": "', None, mode="chunked")

    api = await loopback(endless)
    # A timeout far past what reading the cap takes: the cap, not the clock, ends it.
    async with hostile_client(
        api.base_url, max_response_bytes=CAP, max_retries=0, timeout=60
    ) as client:
        tracemalloc.start()
        try:
            result = await outcome(client.backups.get(501))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()

    assert peak < 16 * MiB, f"peak {peak / MiB:.1f} MiB of Python allocations"
    assert isinstance(result, ResponseValidationError), describe(result)
    assert "max_response_bytes" in str(result)


async def test_content_length_beyond_the_cap_fails_before_the_body_arrives(
    loopback: Start,
) -> None:
    api = await loopback(declares_10_gib)
    # The server sends ten bytes and then holds on: only the declared length, read with
    # the headers, can end the call before this timeout.
    async with hostile_client(
        api.base_url, max_response_bytes=CAP, max_retries=0, timeout=60
    ) as client:
        result = await outcome(client.backups.get(501))

    assert isinstance(result, ResponseValidationError), describe(result)
    assert "declares 10737418240 bytes" in str(result)
    assert "max_response_bytes" in str(result)
    assert len(api.seen) == 1


@pytest.mark.parametrize("mode", ["length", "chunked", "gzip"])
@pytest.mark.parametrize("status", [400, 500])
async def test_error_status_with_body_beyond_the_cap_raises_response_validation_error(
    loopback: Start, status: int, mode: str
) -> None:
    content = b'{"detail": "' + b"x" * 100 + b'"}'
    size = None if mode == "chunked" else (16 if mode == "gzip" else 2) * MiB

    async def huge_error(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        return await send_body(request, content, size, mode=mode, status=status)

    api = await loopback(huge_error)
    async with hostile_client(api.base_url, max_response_bytes=CAP, max_retries=0) as client:
        result = await outcome(client.backups.get(501))

    assert isinstance(result, ResponseValidationError), describe(result)
    assert "max_response_bytes" in str(result)


@pytest.mark.parametrize("mode", ["length", "chunked", "gzip", "deflate"])
@pytest.mark.parametrize("over", [0, 1], ids=["at_the_cap_is_read", "one_byte_over_is_refused"])
async def test_body_exactly_at_max_response_bytes_succeeds_and_one_byte_more_does_not(
    loopback: Start, mode: str, over: int
) -> None:
    size = 64 * KiB  # the (inflated) body size
    body = padded(BACKUP, size)

    async def answer(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        return await send_body(request, body, size, mode=mode)

    api = await loopback(answer)
    async with hostile_client(
        api.base_url, max_response_bytes=size - over, max_retries=0
    ) as client:
        result = await outcome(client.backups.get(501))

    if over:
        assert isinstance(result, ResponseValidationError), describe(result)
        assert "max_response_bytes" in str(result)
    else:
        assert isinstance(result, Backup), describe(result)
        assert result.id == 501


@pytest.mark.parametrize("value", [0, -1, True, False])
def test_max_response_bytes_that_is_not_a_positive_int_is_refused_at_construction(
    value: Any,
) -> None:
    BackupsClient(TOKEN, max_response_bytes=1)  # the option exists and takes a small cap
    with pytest.raises((ValueError, TypeError)) as caught:
        BackupsClient(TOKEN, max_response_bytes=value)
    assert "max_response_bytes" in str(caught.value)
    assert "unexpected keyword" not in str(caught.value)


async def test_default_cap_stops_an_endless_chunked_body_at_32_mib(loopback: Start) -> None:
    async def endless(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        return await send_body(request, b'{"id": 501, "description": "', None, mode="chunked")

    api = await loopback(endless)
    async with hostile_client(api.base_url, max_retries=0) as client:
        result = await outcome(client.backups.get(501))

    assert isinstance(result, ResponseValidationError), describe(result)
    assert "max_response_bytes" in str(result)


async def test_default_cap_refuses_a_gzip_bomb_inflating_to_64_mib(loopback: Start) -> None:
    content = json.dumps(BACKUP).encode()

    async def bomb(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        return await send_body(request, content, 64 * MiB, mode="gzip")

    api = await loopback(bomb)
    async with hostile_client(api.base_url, max_retries=0) as client:
        result = await outcome(client.backups.get(501))

    assert isinstance(result, ResponseValidationError), describe(result)
    assert "max_response_bytes" in str(result)


# == B. small exception text ===========================================================


async def test_400_with_a_5_mb_detail_has_a_short_message_and_keeps_the_whole_body(
    loopback: Start,
) -> None:
    detail = "Ensure this field is valid. " + "x" * 5_000_000

    async def verbose(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        return json_response({"detail": detail}, status=400)

    api = await loopback(verbose)
    async with hostile_client(api.base_url) as client:
        result = await outcome(client.backups.create(12345))

    assert isinstance(result, BadRequestError), describe(result)
    assert len(str(result)) < SHORT
    assert result.body["detail"] == detail
    assert requests_to(api, "POST") == 1


async def test_400_with_50000_field_errors_has_a_short_message_and_keeps_the_whole_body(
    loopback: Start,
) -> None:
    errors = {f"field_{i}": ["This field is required."] for i in range(50_000)}

    async def verbose(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        return json_response(errors, status=400)

    api = await loopback(verbose)
    async with hostile_client(api.base_url) as client:
        result = await outcome(client.backups.create(12345))

    assert isinstance(result, BadRequestError), describe(result)
    assert len(str(result)) < SHORT
    assert result.body == errors
    assert result.field_errors["field_0"] == ["This field is required."]


async def test_500_with_a_5_mb_html_body_gives_a_server_error_with_a_short_message(
    loopback: Start,
) -> None:
    html = "<html><body><h1>Server Error</h1>" + "<p>stack frame</p>" * 300_000 + "</body>"

    async def crashing(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        return web.Response(status=500, text=html, content_type="text/html")

    api = await loopback(crashing)
    async with hostile_client(api.base_url, max_retries=2) as client:
        result = await outcome(client.backups.get(501))

    assert isinstance(result, ServerError), describe(result)
    assert len(api.seen) == 3  # retried, then reported
    assert len(str(result)) < SHORT


# == C. nothing raw escapes ============================================================

DEPTH = 100_000
DEEP = {
    "array": b"[" * DEPTH + b"]" * DEPTH,
    "object": b'{"a":' * DEPTH + b"1" + b"}" * DEPTH,
}


@pytest.mark.parametrize("shape", sorted(DEEP))
@pytest.mark.parametrize("status", [200, 400, 500])
@pytest.mark.parametrize("op", sorted(CALLS))
async def test_json_nested_100000_deep_gives_a_backups_error(
    loopback: Start, op: str, status: int, shape: str
) -> None:
    async def deep(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        return web.Response(status=status, body=DEEP[shape], headers=JSON_HEADERS)

    api = await loopback(deep)
    async with hostile_client(api.base_url, max_retries=1) as client:
        result = await outcome(CALLS[op](client))

    if op == "delete" and status == 200:
        # A delete's success body is not read; ignoring it is fine, crashing is not.
        assert result is None or isinstance(result, BackupsError), describe(result)
    elif status == 200:
        assert isinstance(result, ResponseValidationError), describe(result)
    else:
        assert isinstance(result, BackupsError), describe(result)
    if isinstance(result, BaseException):  # and it can be shown
        assert "".join([str(result), repr(result), *traceback.format_exception(result)])


# The 10,000-digit value is longer than the 8,190 bytes aiohttp accepts for one header:
# the answer cannot even be read, so any BackupsError (APIConnectionError) is honest.
RETRY_AFTERS = {
    "year_99999": "Fri, 31 Dec 99999 23:59:59 GMT",
    "year_9999": "Fri, 31 Dec 9999 23:59:59 GMT",
    "1e400": "1e400",
    "inf": "inf",
    "8000_digits": "9" * 8_000,
    "10000_digits": "9" * 10_000,
    "-5": "-5",
    "nan": "nan",
}
SUCCESS: dict[str, type] = {"get": Backup, "create": Backup, "restore": RestoreResult}


@pytest.mark.parametrize("value", list(RETRY_AFTERS.values()), ids=list(RETRY_AFTERS))
@pytest.mark.parametrize("status", [429, 503])
@pytest.mark.parametrize("op", sorted(SUCCESS))
async def test_absurd_retry_after_retries_or_raises_the_status_error_never_a_raw_one(
    loopback: Start, op: str, status: int, value: str
) -> None:
    async def throttled_once(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        if len(api.seen) == 1:
            return json_response({"detail": "slow down"}, status=status, **{"Retry-After": value})
        if request.method == "GET" and request.path.endswith("/backups/"):
            return json_response(page([]))  # a create's reconcile finds nothing
        if request.path.endswith("/restore/"):
            return json_response({"status": "restoring", "message": "ok"}, status=202)
        if request.method == "POST":
            return json_response(CREATED_502, status=201)
        return json_response(BACKUP)

    api = await loopback(throttled_once)
    async with hostile_client(api.base_url, max_retries=2, max_retry_after=1.0) as client:
        result = await outcome(CALLS[op](client))
        # No absurd value was taken for a pause (one past max_retry_after fails at once,
        # garbage means no hint); a wait on one would hang the test instead.
        assert client.stats.rate_limit_pauses == 0

    allowed: tuple[type, ...] = (SUCCESS[op], RateLimitError if status == 429 else ServerError)
    if len(value) > 8_190:
        allowed += (APIConnectionError,)
    assert isinstance(result, allowed), describe(result)


DATES = {
    "year_99999": "Fri, 31 Dec 99999 23:59:59 GMT",
    "year_of_5000_digits": "Fri, 31 Dec " + "9" * 5_000 + " 23:59:59 GMT",
    "year_0001": "Mon, 01 Jan 0001 00:00:00 GMT",
    "year_10000_in_utc": "Fri, 31 Dec 9999 23:59:59 -2359",  # 10000-01-01 in UTC
}


async def test_the_absurd_headers_really_arrive_unchanged(loopback: Start) -> None:
    """The attack is real: a plain aiohttp client reads each value as sent, except the
    10,000-digit one, which is longer than aiohttp reads a header at all."""
    values = {
        **{f"R{k}": v for k, v in RETRY_AFTERS.items()},
        **{f"D{k}": v for k, v in DATES.items()},
    }

    async def headers(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        name = request.query["name"]
        header = "Retry-After" if name.startswith("R") else "Date"
        return json_response({}, status=429, **{header: values[name]})

    api = await loopback(headers)
    async with aiohttp.ClientSession() as session:
        for name, value in values.items():
            url = api.base_url + "backups/501/"
            if len(value) > 8_190:
                with pytest.raises(aiohttp.ClientResponseError, match="8190 bytes"):
                    await session.get(url, params={"name": name})
                continue
            async with session.get(url, params={"name": name}) as answer:
                header = "Retry-After" if name.startswith("R") else "Date"
                assert answer.headers.getall(header) == [value], name


@pytest.mark.parametrize("date", list(DATES.values()), ids=list(DATES))
async def test_overflowing_date_header_on_a_reconcile_list_is_harmless(
    loopback: Start, date: str
) -> None:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    made = {**CREATED_502, "description": None, "created_at": now}

    async def made_it_but_said_502(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        if request.method == "POST":
            if requests_to(api, "POST") == 1:
                return json_response({"detail": "Bad gateway."}, status=502)
            return json_response({**made, "id": 503}, status=201)
        return json_response(page([made]), Date=date)

    api = await loopback(made_it_but_said_502)
    async with hostile_client(api.base_url, max_retries=2) as client:
        result = await outcome(client.backups.create(12345))

    assert isinstance(result, Backup), describe(result)
    assert result.id == 502  # the backup the first attempt made, adopted
    assert requests_to(api, "POST") == 1


def hostile_links(api: LoopbackAPI) -> dict[str, str]:
    own = api.base_url  # http://127.0.0.1:PORT/api/v1/
    return {
        "userinfo_on_own_origin": own.replace("http://", "http://user:pass@") + "backups/?page=2",
        "file": "file:///etc/passwd",
        "javascript": "javascript:alert(1)",
        "data": "data:,x",
        "scheme_relative": "//evil.example/x",
        "malformed_ipv6": "http://[::1",
        "100_kb": own + "backups/?page=2&pad=" + "x" * 100_000,
    }


LINK_IDS = [
    "userinfo_on_own_origin",
    "file",
    "javascript",
    "data",
    "scheme_relative",
    "malformed_ipv6",
    "100_kb",
]


async def read_every_page(client: BackupsClient, how: str) -> Any:
    if how == "list":
        return await client.backups.list()
    return [backup async for backup in client.backups.iter()]


@pytest.mark.parametrize("how", ["list", "iter"])
@pytest.mark.parametrize("link", LINK_IDS)
async def test_hostile_next_link_raises_response_validation_error_and_is_not_followed(
    loopback: Start, link: str, how: str
) -> None:
    async def poisoned(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        if len(api.seen) == 1:
            return json_response(page([BACKUP], next_url=hostile_links(api)[link]))
        return json_response(page([]))

    api = await loopback(poisoned)
    async with hostile_client(api.base_url) as client:
        result = await outcome(read_every_page(client, how))

    assert isinstance(result, ResponseValidationError), describe(result)
    assert api.paths() == ["GET /api/v1/backups/"]


@pytest.mark.parametrize("op", ["get", "list"])
@pytest.mark.parametrize("link", LINK_IDS)
async def test_302_to_a_hostile_location_is_reported_not_followed(
    loopback: Start, link: str, op: str
) -> None:
    async def redirecting(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        if len(api.seen) == 1:
            location = hostile_links(api)[link].replace("backups/?page=2", "backups/501/")
            return web.Response(status=302, headers={"Location": location})
        return json_response(BACKUP if op == "get" else page([BACKUP]))

    api = await loopback(redirecting)
    async with hostile_client(api.base_url, max_retries=0) as client:
        result = await outcome(CALLS[op](client))

    assert len(api.seen) == 1
    if link == "100_kb" and isinstance(result, APIConnectionError):
        # aiohttp reads no header line over 8,190 bytes: this answer cannot even be
        # read, so it is reported as the unusable answer it is. Still nothing followed.
        return
    assert isinstance(result, APIStatusError), describe(result)
    assert result.status_code == 302


# == D. the token never appears ========================================================


def fresh_token() -> str:
    """Distinctive, and with a '/' so that JSON may escape it as '\\/'."""
    return f"tok-{secrets.token_hex(10)}/{secrets.token_hex(10)}"


def secret_forms(token: str) -> list[str]:
    """Every form of the token that must not show: whole, its first 20 characters,
    percent-encoded, and \\u-escaped (all compared lowercase)."""
    prefix = token[:20]
    return [
        token.lower(),
        prefix.lower(),
        quote(token, safe="").lower(),
        "".join(f"\\u{ord(char):04x}" for char in prefix),
    ]


def texts_in(value: Any, depth: int = 0) -> Iterator[str]:
    """The text of a value: strings inside containers (keys too), repr() of the rest."""
    if depth > 6:
        return
    if isinstance(value, str):
        yield value
    elif isinstance(value, bytes | bytearray):
        yield bytes(value).decode("latin-1")
    elif isinstance(value, dict):
        for key, item in list(value.items()):
            yield from texts_in(key, depth + 1)
            yield from texts_in(item, depth + 1)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in list(value):
            yield from texts_in(item, depth + 1)
    else:
        try:
            yield repr(value)
        except Exception as error:  # a repr that fails hides nothing
            yield f"<repr failed: {type(error).__name__}>"


def exception_chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending += [current.__cause__, current.__context__]


def frame_texts(error: BaseException) -> Iterator[tuple[str, str]]:
    """(where, text) for every local of every frame the error and its chain passed."""
    for current in exception_chain(error):
        tb = current.__traceback__
        while tb is not None:
            code = tb.tb_frame.f_code
            for name, value in tb.tb_frame.f_locals.items():
                for text in texts_in(value):
                    yield f"frame {code.co_qualname} local {name!r}", text
            tb = tb.tb_next


def token_sightings(
    token: str, error: BaseException, records: list[logging.LogRecord]
) -> list[str]:
    """Where any form of the token shows, as short descriptions (never the whole text)."""
    places: list[tuple[str, str]] = [
        ("str(exc)", str(error)),
        ("repr(exc)", repr(error)),
        ("traceback.format_exception", "".join(traceback.format_exception(error))),
    ]
    places += [("exc.args", text) for text in texts_in(error.args)]
    places += [("vars(exc)", text) for text in texts_in(vars(error))]  # body, field_errors...
    for record in records:
        if record.name != "asyncbackups" and not record.name.startswith("asyncbackups."):
            continue
        places.append((f"log {record.levelname} message", record.getMessage()))
        places += [(f"log {record.levelname} args", text) for text in texts_in(record.args)]
        if record.exc_info and record.exc_info[1] is not None:
            formatted = "".join(traceback.format_exception(record.exc_info[1]))
            places.append((f"log {record.levelname} exc_info", formatted))
    found = []
    for where, text in places:
        lowered = text.lower()
        for form in secret_forms(token):
            at = lowered.find(form)
            if at >= 0:
                found.append(f"{where}: ...{text[max(0, at - 40) : at + 60]!r}...")
                break
    return found


def _json(payload: Any) -> bytes:
    return json.dumps(payload).encode()


def _unicode_escaped(text: str) -> str:
    return "".join(f"\\u{ord(char):04x}" for char in text)


# Each: (status, content type, the body built from the token the request carried).
ECHOES: dict[str, tuple[int, str, Callable[[str], bytes]]] = {
    "detail_with_slash_escapes": (
        401,
        "application/json",
        lambda t: _json({"detail": f"Invalid token {t}."}).replace(b"/", b"\\/"),
    ),
    "detail_with_unicode_escapes": (
        401,
        "application/json",
        lambda t: b'{"detail": "Invalid token ' + _unicode_escaped(t).encode() + b'."}',
    ),
    "field_errors": (
        400,
        "application/json",
        lambda t: _json({"description": [f"{t} is not a description"], t: ["unknown"]}),
    ),
    "field_errors_with_slash_escapes": (
        400,
        "application/json",
        lambda t: _json({"description": [f"{t} is not a description"], t: ["unknown"]}).replace(
            b"/", b"\\/"
        ),
    ),
    "percent_encoded_detail": (
        400,
        "application/json",
        lambda t: _json({"detail": f"See https://auth.example/check?token={quote(t, safe='')}"}),
    ),
    "first_20_characters": (
        401,
        "application/json",
        lambda t: _json({"detail": f"Token {t[:20]} was revoked."}),
    ),
    "text_plain_200": (200, "text/plain", lambda t: f"Welcome back {t}, all is well".encode()),
    "html_500": (
        500,
        "text/html",
        lambda t: (
            f"<html><h1>Server Error</h1><pre>Authorization: Bearer {t}</pre></html>".encode()
        ),
    ),
}


def echo_handler(style: str) -> Handler:
    status, content_type, build = ECHOES[style]

    async def echo(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        return web.Response(
            status=status, body=build(token), headers={"Content-Type": content_type}
        )

    return echo


def disguised(style: str, token: str) -> str:
    """How the token looks on the wire in each echo style."""
    if style == "detail_with_unicode_escapes":
        return _unicode_escaped(token)
    if style == "percent_encoded_detail":
        return quote(token, safe="")
    if style == "first_20_characters":
        return token[:20]
    if "slash_escapes" in style:
        return token.replace("/", "\\/")
    return token


async def test_the_echo_server_really_puts_the_token_on_the_wire(loopback: Start) -> None:
    """The attack is real: each style sends the token, in its disguise, to a plain client."""
    token = fresh_token()
    for style, (status, content_type, _) in ECHOES.items():
        api = await loopback(echo_handler(style))
        async with aiohttp.ClientSession() as session:
            headers = {"Authorization": f"Bearer {token}"}
            async with session.get(api.base_url + "backups/501/", headers=headers) as answer:
                body = (await answer.read()).decode()
        assert answer.status == status, style
        assert disguised(style, token) in body, style
        if disguised(style, token) != token:
            assert token not in body, style
        if content_type == "application/json":
            json.loads(body)  # well-formed: the SDK decodes it


@pytest.mark.parametrize("op", ["get", "create"])
@pytest.mark.parametrize("style", list(ECHOES))
async def test_token_echoed_by_the_server_never_shows_in_errors_or_logs(
    loopback: Start, caplog: pytest.LogCaptureFixture, style: str, op: str
) -> None:
    caplog.set_level(logging.DEBUG, logger="asyncbackups")
    token = fresh_token()
    api = await loopback(echo_handler(style))
    async with hostile_client(api.base_url, token, max_retries=1) as client:
        result = await outcome(CALLS[op](client))

    assert isinstance(result, BackupsError), describe(result)
    assert api.seen[0].headers["Authorization"] == f"Bearer {token}"
    sightings = token_sightings(token, result, caplog.records)
    assert not sightings, "\n".join(sightings)
    assert "***" in str(result)  # redacted, visibly


FAILURES = ["dropped", "refused", "timeout", "500"]


@pytest.mark.parametrize("session_kind", ["own", "borrowed"])
@pytest.mark.parametrize("op", ["get", "create"])
@pytest.mark.parametrize("failure", FAILURES)
async def test_raised_error_carries_no_aiohttp_context_and_no_token_in_its_frames(
    loopback: Start,
    caplog: pytest.LogCaptureFixture,
    failure: str,
    op: str,
    session_kind: str,
) -> None:
    caplog.set_level(logging.DEBUG, logger="asyncbackups")
    token = fresh_token()

    async def failing(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        if failure == "dropped":
            return api.drop(request)
        if failure == "timeout":
            return await api.stall()
        return await echo_handler("html_500")(request, api)

    api = await loopback(failing)
    base_url = api.base_url
    if failure == "refused":
        base_url = f"http://127.0.0.1:{closed_port()}/api/v1/"
    options: dict[str, Any] = {"max_retries": 1}
    if failure == "timeout":
        options = {"max_retries": 0, "timeout": 0.1}
    async with aiohttp.ClientSession() as borrowed:
        if session_kind == "borrowed":
            options["session"] = borrowed
        async with hostile_client(base_url, token, **options) as client:
            result = await outcome(CALLS[op](client))

    assert isinstance(result, BackupsError), describe(result)
    for error in exception_chain(result):
        assert isinstance(error, BackupsError), f"{type(error)} in the chain of {describe(result)}"
    current: BaseException | None = result
    while current is not None:
        assert current.__context__ is None, f"__context__ {type(current.__context__)}"
        assert current.__cause__ is None or isinstance(current.__cause__, BackupsError)
        current = current.__cause__
    leaks = [
        f"{where}: ...{text[:80]!r}"
        for where, text in frame_texts(result)
        if any(form in text.lower() for form in secret_forms(token))
    ]
    assert not leaks, "\n".join(leaks)
    sightings = token_sightings(token, result, caplog.records)
    assert not sightings, "\n".join(sightings)


# == E. cancellation is always CancelledError ==========================================


async def test_300_gets_under_an_expiring_timeout_end_only_in_cancelled_error_or_a_backup(
    loopback: Start,
) -> None:
    pace = random.Random(300)

    async def slow(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        await asyncio.sleep(pace.uniform(0.05, 0.2))
        return json_response(BACKUP)

    api = await loopback(slow)
    async with hostile_client(api.base_url, max_concurrency=2) as client:
        tasks = [asyncio.ensure_future(client.backups.get(501)) for _ in range(300)]
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.1):
                await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.wait(tasks)

        ends = [settled_as(task) for task in tasks]
        wrong = [end for end in ends if end not in ("CancelledError", "result Backup")]
        assert not wrong, f"{len(wrong)} tasks ended otherwise, first: " + "; ".join(wrong[:3])
        assert sum(task.cancelled() for task in tasks) > 250
        # The client still works afterwards.
        assert (await client.backups.get(501)).id == 501


async def test_1000_operations_and_500_random_cancels_end_cleanly_and_leak_no_slot(
    loopback: Start,
) -> None:
    concurrency = 8
    server_pace = random.Random(1)
    barrier = {"on": False, "arrived": 0}
    everyone_here = asyncio.Event()

    async def api_handler(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        if barrier["on"]:
            barrier["arrived"] += 1
            if barrier["arrived"] >= concurrency:
                everyone_here.set()
            try:
                await asyncio.wait_for(everyone_here.wait(), 10.0)
            except TimeoutError:
                return json_response({"detail": "not all slots came"}, status=409)
            return json_response(BACKUP)
        await asyncio.sleep(server_pace.uniform(0, 0.01))
        if request.method == "POST":
            return json_response(CREATED_502, status=201)
        if request.method == "DELETE":
            return web.Response(status=204)
        if request.path.endswith("/backups/"):
            return json_response(page([BACKUP]))
        return json_response(BACKUP)

    expected: dict[str, type] = {
        "get": Backup,
        "list": list,
        "create": Backup,
        "delete": type(None),
    }
    chaos = random.Random(2024)
    api = await loopback(api_handler)
    loop = asyncio.get_running_loop()
    async with hostile_client(api.base_url, max_concurrency=concurrency) as client:
        ops = [chaos.choice(sorted(expected)) for _ in range(1000)]
        tasks = [asyncio.ensure_future(CALLS[op](client)) for op in ops]

        def cancel_burst(indices: list[int] | None) -> None:
            if indices is None:  # the ten oldest calls still running
                indices = [i for i, task in enumerate(tasks) if not task.done()][:10]
            for index in indices:
                tasks[index].cancel()

        # 500 cancels in 50 bursts of ten at random moments, each burst in the order the
        # tasks began (as a TaskGroup or gather tearing down does): half hit ten random
        # tasks, half the ten oldest unfinished ones (a deadline on the longest waiting),
        # so a call in flight is cancelled in the same instant as calls queued for its slot.
        victims = chaos.sample(range(len(tasks)), 250)
        cancels = [
            loop.call_later(
                chaos.uniform(0, 0.3),
                cancel_burst,
                sorted(victims[at : at + 10]) if at < len(victims) else None,
            )
            for at in range(0, 500, 10)
        ]
        async with asyncio.timeout(4.0):
            results = await asyncio.gather(*tasks, return_exceptions=True)
        for handle in cancels:
            handle.cancel()

        wrong = [
            f"{op}: {describe(result)}"
            for op, result in zip(ops, results, strict=True)
            if not isinstance(result, asyncio.CancelledError | BackupsError | expected[op])
        ]
        assert not wrong, f"{len(wrong)} tasks ended otherwise, first: " + "; ".join(wrong[:3])
        assert sum(isinstance(r, asyncio.CancelledError) for r in results) > 100
        assert sum(not isinstance(r, BaseException) for r in results) > 100

        # Still works, and every slot came back: max_concurrency requests reach the
        # server at the same time.
        assert (await client.backups.get(501)).id == 501
        barrier["on"] = True
        async with asyncio.timeout(3.0):
            together = await asyncio.gather(
                *(outcome(client.backups.get(501)) for _ in range(concurrency))
            )
        assert [describe(r) for r in together] == ["result Backup"] * concurrency
        assert barrier["arrived"] == concurrency


# == F. a create cancelled in flight says so ===========================================


async def test_create_cancelled_after_it_was_sent_warns_with_its_idempotency_key(
    loopback: Start, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="asyncbackups")

    async def stalling(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        return await api.stall()

    api = await loopback(stalling)
    async with hostile_client(api.base_url) as client:
        task = asyncio.create_task(client.backups.create(12345, idempotency_key="cancel-me-123"))
        await asyncio.wait_for(api.arrived.wait(), 10.0)  # the request is on the server
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    assert api.seen[0].headers["Idempotency-Key"] == "cancel-me-123"
    warnings = [
        record.getMessage()
        for record in caplog.records
        if record.name == "asyncbackups" and record.levelno == logging.WARNING
    ]
    assert any(
        "cancel-me-123" in message
        and "backup" in message.lower()
        and re.search(r"\bmay\b", message)
        for message in warnings
    ), f"WARNING records of 'asyncbackups': {warnings}"
