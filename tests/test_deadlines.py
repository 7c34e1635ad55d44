"""The per-attempt time limit (``asyncio.timeout`` around each attempt) against the world.

The client's ``timeout`` bounds each attempt as a whole: a server that never answers,
or that sends headers and then trickles its body a byte at a time on a kept-alive
connection, is given up on at the timeout (never before) with ``APITimeoutError``. The
limit is enforced by cancelling the attempt's task, so these tests also hold the
promises around cancellation: the limit takes its own cancellation back, a cancellation
from anyone else (the caller, their own ``asyncio.timeout``, a TaskGroup tearing down)
is never swallowed nor turned into a time-out. And a limit holds nothing once its
attempt ended, however many distinct timeouts a program uses.

Time is real here, so the tests bound it from below only: a loaded machine may run any
timer late, never early. Every server is a real aiohttp.web server on 127.0.0.1; what
went over the wire is read from ``api.seen`` and ``client.stats``. Nothing private is
patched.
"""

from __future__ import annotations

import asyncio
import gc
import json
import socket
import time
import tracemalloc
from contextlib import suppress
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from conftest import (
    BACKUP,
    BACKUP_499,
    CREATED_502,
    Handler,
    LoopbackAPI,
    StartLoopback,
    json_response,
    loopback_client,
    page,
    until,
)

from asyncbackups import APIConnectionError, APITimeoutError, Backup, BackupsClient

MiB = 1 << 20
JSON_HEADERS = {"Content-Type": "application/json"}
GET_ONE = "GET backups/{id}/"  # how client.stats names client.backups.get
RECONCILE = "GET backups/?backup_type=manual&server_id=12345"
# The server's clock one second after CREATED_502 was made (as in tests/test_backups.py).
DATE_JUST_AFTER_502 = "Thu, 16 Jan 2025 15:45:01 GMT"
# aiohttp's share of a limit for opening a connection (asyncbackups._transport.http).
CONNECT_SHARE = 0.95

# Each test takes well under a second; without working limits most would hang, and
# should fail fast rather than after the suite's 120 s.
pytestmark = pytest.mark.timeout(30)


# -- servers ---------------------------------------------------------------------------


async def stalling(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
    """Accept the request and answer only when the test ends."""
    return await api.stall()


class Trickler:
    """A server that sends headers at once, then one byte of body every ``pace`` seconds,
    and never the end (until the client hangs up, or ``limit`` seconds pass).

    ``framing`` is ``"length"`` (a 10 MiB Content-Length, within the default cap, so the
    client reads it whole) or ``"chunked"`` (no length: the client reads it piece by
    piece). ``bytes_sent`` counts what each request really got.
    """

    def __init__(self, framing: str, *, pace: float = 0.02, limit: float = 5.0) -> None:
        assert framing in ("length", "chunked")
        self.framing = framing
        self.pace = pace
        self.limit = limit
        self.bytes_sent: list[int] = []

    async def __call__(self, request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        response = web.StreamResponse(headers=JSON_HEADERS)
        if self.framing == "length":
            response.content_length = 10 * MiB
        else:
            response.enable_chunked_encoding()
        await response.prepare(request)
        index = len(self.bytes_sent)
        self.bytes_sent.append(0)
        loop = asyncio.get_running_loop()
        give_up_at = loop.time() + self.limit
        try:
            while loop.time() < give_up_at:
                transport = request.transport
                if transport is None or transport.is_closing():
                    break  # the client hung up: what it should do
                await response.write(b" ")  # JSON whitespace, one byte at a time
                self.bytes_sent[index] += 1
                await asyncio.sleep(self.pace)
        except ConnectionError:
            pass
        return response


def slow_server(kind: str) -> Handler:
    """``stalled``: never a status line. Otherwise a ``Trickler`` of that framing."""
    return stalling if kind == "stalled" else Trickler(kind)


SLOW_SERVERS = ["stalled", "length", "chunked"]


# -- helpers ---------------------------------------------------------------------------


def now() -> float:
    return asyncio.get_running_loop().time()


def current() -> asyncio.Task[Any]:
    task = asyncio.current_task()
    assert task is not None
    return task


def ended_as(task: asyncio.Task[Any]) -> str:
    """How a finished task ended: ``cancelled``, an exception's type name, or ``result``."""
    assert task.done()
    if task.cancelled():
        return "cancelled"
    error = task.exception()
    return "result" if error is None else type(error).__name__


def unaccepting_listener() -> tuple[socket.socket, list[socket.socket]]:
    """A loopback port whose accept queue is full: a new connection hangs in its handshake.

    Nothing is ever accepted; the queue (backlog 0) is filled by a few half-open
    connections, so the kernel drops the next client's SYN and its connect never ends.
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    fillers = []
    for _ in range(3):
        filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        filler.setblocking(False)
        with suppress(BlockingIOError):
            filler.connect(listener.getsockname())
        fillers.append(filler)
    return listener, fillers


# == 1-3. the limit is for the whole attempt, never early, a little late ===============


async def test_a_server_that_never_answers_times_out_after_the_timeout_never_before(
    loopback: StartLoopback,
) -> None:
    api = await loopback(stalling)
    async with loopback_client(api, timeout=0.2, max_retries=0) as client:
        started = now()
        with pytest.raises(APITimeoutError) as caught:
            await client.backups.get(501)
        elapsed = now() - started

    assert elapsed >= 0.2, f"gave up early, after {elapsed:.3f}s"
    assert caught.value.request_may_have_reached_server is True
    assert "timed out" in str(caught.value)
    assert api.routes() == ["GET backups/501/"]
    assert client.stats.requests == {GET_ONE: 1}


@pytest.mark.parametrize("framing", ["length", "chunked"])
async def test_a_body_trickled_a_byte_every_20_ms_still_times_out_at_the_total_timeout(
    loopback: StartLoopback, framing: str
) -> None:
    trickle = Trickler(framing)
    api = await loopback(trickle)
    async with loopback_client(api, timeout=0.2, max_retries=0) as client:
        started = now()
        with pytest.raises(APITimeoutError) as caught:
            await client.backups.get(501)
        elapsed = now() - started

    assert elapsed >= 0.2, f"gave up early, after {elapsed:.3f}s"
    assert caught.value.request_may_have_reached_server is True
    # The headers had come and the body was flowing: each read was quick, and yet the
    # attempt as a whole ended at its limit.
    assert len(trickle.bytes_sent) == 1
    assert trickle.bytes_sent[0] >= 3, trickle.bytes_sent
    # The server saw the client hang up: it stopped trickling long before its own limit.
    await until(lambda: api.in_flight == 0, timeout=10.0)


@pytest.mark.parametrize("server", SLOW_SERVERS)
async def test_a_slow_get_with_two_retries_sends_three_requests_each_with_its_own_limit(
    loopback: StartLoopback, server: str
) -> None:
    timeout = 0.1
    api = await loopback(slow_server(server))
    async with loopback_client(api, timeout=timeout, max_retries=2) as client:
        started = now()
        with pytest.raises(APITimeoutError) as caught:
            await client.backups.get(501)
        elapsed = now() - started

    assert caught.value.request_may_have_reached_server is True
    assert api.routes() == ["GET backups/501/"] * 3
    assert client.stats.requests == {GET_ONE: 3}
    assert client.stats.retries == 2
    # Three full limits, one after the other: none shortened by the one before.
    assert elapsed >= 3 * timeout, f"took {elapsed:.3f}s"


async def test_an_answer_that_comes_before_the_limit_is_returned_not_cut_off(
    loopback: StartLoopback,
) -> None:
    async def slowish(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        await asyncio.sleep(0.1)
        return json_response(BACKUP)

    api = await loopback(slowish)
    async with loopback_client(api, timeout=0.4, max_retries=0) as client:
        backup = await client.backups.get(501)
    assert backup.id == BACKUP["id"]
    assert api.routes() == ["GET backups/501/"]


async def test_mixed_timeouts_on_one_client_each_fire_at_their_own_time(
    loopback: StartLoopback,
) -> None:
    api = await loopback(stalling)

    async def timed(client: BackupsClient) -> tuple[str, float]:
        started = now()
        try:
            await client.backups.get(501)
        except APITimeoutError:
            return "APITimeoutError", now() - started
        return "result", now() - started

    async with loopback_client(api, timeout=5.0, max_retries=0, max_concurrency=20) as client:
        short, long = client.with_options(timeout=0.1), client.with_options(timeout=0.3)
        outcomes = await asyncio.gather(
            *(timed(short) for _ in range(10)), *(timed(long) for _ in range(10))
        )

    assert {end for end, _ in outcomes} == {"APITimeoutError"}
    shorts = [elapsed for _, elapsed in outcomes[:10]]
    longs = [elapsed for _, elapsed in outcomes[10:]]
    # Neither cut short by the other's limit, nor by the client's own 5 s.
    assert all(elapsed >= 0.1 for elapsed in shorts), shorts
    assert all(elapsed >= 0.3 for elapsed in longs), longs
    # None sent twice. (Not all need have arrived: on a loaded machine a short limit
    # may end an attempt before its request was even written.)
    assert len(api.seen) <= 20


@pytest.mark.parametrize("session_kind", ["own", "borrowed"])
async def test_a_connect_that_cannot_complete_times_out_as_certainly_unsent(
    session_kind: str,
) -> None:
    listener, fillers = unaccepting_listener()
    host, port = listener.getsockname()
    # A borrowed session with a long limit of its own: the client's still applies.
    borrowed = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60, connect=60))
    options: dict[str, Any] = {"session": borrowed} if session_kind == "borrowed" else {}
    # Our own session knows whether a connection was opened. A borrowed one relies on
    # aiohttp's connect limit firing first, 5% of the timeout before the attempt's:
    # long enough here (50 ms) to outlast what a loaded machine holds a process back.
    timeout = 0.2 if session_kind == "own" else 1.0
    try:
        async with BackupsClient(
            "test-token",
            base_url=f"http://{host}:{port}/api/v1/",
            timeout=timeout,
            max_retries=0,
            **options,
        ) as client:
            started = now()
            with pytest.raises(APITimeoutError) as caught:
                await client.backups.get(501)
            elapsed = now() - started
    finally:
        await borrowed.close()
        for sock in (*fillers, listener):
            sock.close()

    # Opening a connection may take 95% of the timeout (aiohttp's own limit), no less.
    assert elapsed >= timeout * CONNECT_SHARE, f"gave up after {elapsed:.3f}s"
    # The request never left, so a create may be resent without reconciling.
    assert caught.value.request_may_have_reached_server is False


def block_the_event_loop(seconds: float) -> None:
    """What a blocking call in a user's coroutine does: nothing else runs meanwhile."""
    time.sleep(seconds)


async def test_a_connect_timeout_under_a_loop_stalled_past_both_limits_stays_certainly_unsent() -> (
    None
):
    """Held up past aiohttp's connect limit and the attempt's at once, both fire on the
    same pass and the attempt's is seen: our own session's connector still knows no
    connection was opened. (A borrowed session's cannot tell; there, this time-out is
    reported as possibly sent, the safe side.)"""
    listener, fillers = unaccepting_listener()
    host, port = listener.getsockname()
    try:
        async with BackupsClient(
            "test-token", base_url=f"http://{host}:{port}/api/v1/", timeout=0.2, max_retries=0
        ) as client:
            call = asyncio.create_task(client.backups.get(501))
            await asyncio.sleep(0.02)  # the connect is under way, its limits running
            # Past both aiohttp's connect limit (0.19 s) and the attempt's (0.2 s).
            block_the_event_loop(0.3)
            with pytest.raises(APITimeoutError) as caught:
                await call
    finally:
        for sock in (*fillers, listener):
            sock.close()

    assert "timed out" in str(caught.value)
    assert current().cancelling() == 0
    # The connection was never opened: the request certainly never left.
    assert caught.value.request_may_have_reached_server is False


# == 4-7. cancellation: the limit's is taken back, anybody else's goes through =========


async def test_after_a_caught_timeout_the_task_is_not_left_cancelling_and_runs_on_normally(
    loopback: StartLoopback,
) -> None:
    api = await loopback(slow_server("chunked"))
    task = current()
    async with loopback_client(api, timeout=0.1, max_retries=0) as client:
        for _ in range(2):  # twice: nothing accumulates on the task
            with pytest.raises(APITimeoutError):
                await client.backups.get(501)
            assert task.cancelling() == 0

        # The same task goes on as if nothing happened.
        await asyncio.sleep(0)
        await asyncio.sleep(0.01)
        async with asyncio.timeout(10.0) as scope:
            await asyncio.sleep(0.01)
        assert not scope.expired()
        # An asyncio.timeout of its own still works: it expires, and takes back its own.
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.01):
                await asyncio.sleep(1)
        assert task.cancelling() == 0
        # Nor does a limit fire into the task's later work.
        await asyncio.sleep(0.15)
    assert task.cancelling() == 0
    assert len(api.seen) == 2


async def test_finished_attempts_limits_never_fire_into_the_callers_later_work(
    loopback: StartLoopback,
) -> None:
    async def quick(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        return json_response(BACKUP)

    api = await loopback(quick)

    async def get_then_linger(client: BackupsClient) -> str:
        backup = await client.backups.get(501)
        # Past the limit the attempt had: it must not cancel this task.
        await asyncio.sleep(0.3)
        assert current().cancelling() == 0
        return f"backup {backup.id}"

    async with loopback_client(api, timeout=0.25, max_concurrency=50) as client:
        tasks = [asyncio.create_task(get_then_linger(client)) for _ in range(50)]
        await asyncio.wait(tasks)

    assert [ended_as(task) for task in tasks] == ["result"] * 50
    assert {task.result() for task in tasks} == {"backup 501"}


@pytest.mark.parametrize("server", SLOW_SERVERS)
async def test_an_outside_cancel_of_a_slow_call_is_cancelled_error_never_a_timeout(
    loopback: StartLoopback, server: str
) -> None:
    api = await loopback(slow_server(server))
    async with loopback_client(api, timeout=0.2, max_retries=2) as client:
        task = asyncio.create_task(client.backups.get(501))
        await asyncio.wait_for(api.arrived.wait(), 10.0)  # the request is on the server
        await asyncio.sleep(0.05)  # well into the attempt, before its limit
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert task.cancelled()
        # Past the limit the cancelled attempt had: nothing fires into this task.
        await asyncio.sleep(0.25)
    assert current().cancelling() == 0
    assert api.routes() == ["GET backups/501/"]  # a cancelled call is not retried


async def test_the_callers_shorter_asyncio_timeout_raises_its_own_timeout_error(
    loopback: StartLoopback,
) -> None:
    api = await loopback(stalling)
    async with loopback_client(api, timeout=5.0, max_retries=0) as client:
        started = now()
        with pytest.raises(TimeoutError) as caught:
            async with asyncio.timeout(0.1) as scope:
                await client.backups.get(501)
        elapsed = now() - started
        assert scope.expired()

    assert type(caught.value) is TimeoutError  # asyncio.timeout's, not the client's
    assert not isinstance(caught.value, APIConnectionError)
    assert elapsed >= 0.1
    assert current().cancelling() == 0
    assert len(api.seen) == 1


async def test_the_clients_shorter_timeout_raises_api_timeout_error_inside_a_longer_asyncio_timeout(
    loopback: StartLoopback,
) -> None:
    api = await loopback(stalling)
    async with loopback_client(api, timeout=0.1, max_retries=0) as client:
        started = now()
        with pytest.raises(APITimeoutError) as caught:
            async with asyncio.timeout(10.0) as scope:
                await client.backups.get(501)
        elapsed = now() - started
        assert not scope.expired()  # the caller's block did not fire

    assert caught.value.request_may_have_reached_server is True
    assert elapsed >= 0.1
    assert current().cancelling() == 0


async def test_asyncio_timeouts_expiring_together_with_the_clients_end_in_one_timeout_or_other(
    loopback: StartLoopback,
) -> None:
    """Caller's limits spread across the instant the client's fire: whichever wins,
    the call ends in TimeoutError or APITimeoutError, never a bare CancelledError, and
    the task is left with no cancellation pending."""
    api = await loopback(stalling)
    timeout = 0.1

    async def under_own_timeout(client: BackupsClient, own: float) -> str:
        try:
            async with asyncio.timeout(own):
                await client.backups.get(501)
        except (TimeoutError, APITimeoutError) as error:
            outcome = type(error).__name__
        assert current().cancelling() == 0
        await asyncio.sleep(0)  # and the task runs on
        return outcome

    async with loopback_client(api, timeout=timeout, max_retries=0, max_concurrency=60) as client:
        # From 5 ms before the client's limit to 10 ms after, in quarter milliseconds.
        owns = [timeout - 0.005 + step * 0.00025 for step in range(60)]
        tasks = [asyncio.create_task(under_own_timeout(client, own)) for own in owns]
        await asyncio.wait(tasks)

    ends = [ended_as(task) for task in tasks]
    assert ends == ["result"] * len(tasks), ends
    outcomes = [task.result() for task in tasks]
    assert set(outcomes) <= {"TimeoutError", "APITimeoutError"}, outcomes
    assert "TimeoutError" in outcomes  # the earliest own limits came first


async def test_outside_cancels_landing_as_limits_fire_are_never_lost(
    loopback: StartLoopback,
) -> None:
    """50 calls time out together; half are cancelled from outside in the very instants
    their limits fire and around. A cancel asked of a call still running always ends it
    cancelled; no call ends with a result, and no call nobody cancelled ends cancelled."""
    api = await loopback(stalling)
    loop = asyncio.get_running_loop()
    timeout = 0.1
    cancelled_live: list[int] = []

    async with loopback_client(api, timeout=timeout, max_retries=0, max_concurrency=50) as client:
        for _ in range(3):
            tasks = [asyncio.create_task(client.backups.get(501)) for _ in range(50)]
            victims = list(range(0, 50, 2))
            cancelled_live.clear()

            def cancel(index: int, tasks: list[asyncio.Task[Backup]] = tasks) -> None:
                task = tasks[index]
                if not task.done():
                    cancelled_live.append(index)
                    task.cancel()

            # From 2 ms before the limits fire to 10 ms after, in half milliseconds.
            fire = loop.time() + timeout
            handles = [
                loop.call_at(fire - 0.002 + n * 0.0005, cancel, index)
                for n, index in enumerate(victims)
            ]
            await asyncio.wait(tasks)
            for handle in handles:
                handle.cancel()

            ends = [ended_as(task) for task in tasks]
            assert "result" not in ends
            lost = [i for i in cancelled_live if not tasks[i].cancelled()]
            assert not lost, f"cancels lost: {[ends[i] for i in lost]}"
            others = [ends[i] for i in range(50) if i not in cancelled_live]
            assert set(others) == {"APITimeoutError"}, others
            assert cancelled_live, "no cancel landed while the calls ran"
    assert current().cancelling() == 0


async def test_a_call_made_while_its_task_is_being_cancelled_times_out_and_keeps_that_cancel(
    loopback: StartLoopback,
) -> None:
    """Cleanup code (an ``except CancelledError`` block) calling the API: its limit
    still reports APITimeoutError, and the task's own pending cancellation survives."""
    api = await loopback(stalling)
    seen_in_cleanup: list[str] = []

    async with loopback_client(api, timeout=0.1, max_retries=0) as client:

        async def worker() -> None:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                assert current().cancelling() == 1
                try:
                    await client.backups.get(501)
                except APITimeoutError:
                    seen_in_cleanup.append("APITimeoutError")
                seen_in_cleanup.append(f"cancelling {current().cancelling()}")
                raise

        task = asyncio.create_task(worker())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 10.0)
        assert task.cancelled()

    assert seen_in_cleanup == ["APITimeoutError", "cancelling 1"]
    assert api.routes() == ["GET backups/501/"]


async def test_a_taskgroup_tearing_down_cancels_slower_calls_and_reports_only_the_timeout(
    loopback: StartLoopback,
) -> None:
    api = await loopback(stalling)
    slower: list[asyncio.Task[Backup]] = []

    async def in_a_group(client: BackupsClient) -> None:
        async with asyncio.TaskGroup() as group:
            slower.extend(group.create_task(client.backups.get(501)) for _ in range(5))
            group.create_task(client.with_options(timeout=0.1).backups.get(501))

    async with loopback_client(api, timeout=0.3, max_retries=0, max_concurrency=10) as client:
        started = now()
        with pytest.raises(ExceptionGroup) as caught:
            await in_a_group(client)
        elapsed = now() - started

    # The group cancelled the slower calls when the hasty one timed out: they end
    # cancelled, not with time-outs of their own, and the group reports the one failure.
    # (Python 3.11's TaskGroup itself leaves its task's cancelling() at 1 here.)
    assert [type(error) for error in caught.value.exceptions] == [APITimeoutError]
    assert [ended_as(task) for task in slower] == ["cancelled"] * 5
    assert elapsed >= 0.1, f"took {elapsed:.3f}s"
    assert len(api.seen) == 6


# == 8. many limits at once, and the memory they hold ==================================


async def test_200_gets_timing_out_together_all_time_out_and_the_client_works_after(
    loopback: StartLoopback,
) -> None:
    async def stalled_or_quick(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        if request.path.endswith("/499/"):
            return json_response(BACKUP_499)
        return await api.stall()

    api = await loopback(stalled_or_quick)
    async with loopback_client(api, timeout=0.2, max_retries=0, max_concurrency=200) as client:
        started = now()
        outcomes = await asyncio.gather(
            *(client.backups.get(501) for _ in range(200)), return_exceptions=True
        )
        elapsed = now() - started

        assert {type(outcome).__name__ for outcome in outcomes} == {"APITimeoutError"}
        assert elapsed >= 0.2, f"took {elapsed:.3f}s"
        assert client.stats.requests == {GET_ONE: 200}
        assert current().cancelling() == 0
        # The client works afterwards (given time enough on a loaded machine).
        backup = await client.with_options(timeout=5.0).backups.get(499)
        assert backup.id == 499
        assert backup.description == BACKUP_499["description"]


# 10,000 requests, half of them traced: seconds on a loaded machine, not a fraction.
@pytest.mark.timeout(300)
async def test_5000_calls_each_with_its_own_timeout_hold_no_memory_once_they_end() -> None:
    """A program that computes its timeouts (``with_options(timeout=t)`` with a new
    ``t`` each call) must not grow with the number of distinct values: nothing is kept
    per timeout once its call ended. Measured with tracemalloc around 5,000 calls, after
    enough warm-up calls to fill every bounded record the client keeps (the rate
    governor remembers the last 4,096 sends and answers) and the caches of aiohttp and
    yarl; the server keeps no record of what it answered (the ``loopback`` fixture's
    would be measured)."""
    body = json.dumps(BACKUP).encode()

    async def quick(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/api/v1/backups/{id}/", quick)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()

    async def calls(client: BackupsClient, first: int, count: int) -> None:
        for n in range(first, first + count):
            # Long enough never to fire: the test is about memory, not time.
            backup = await client.with_options(timeout=60.0 + n / 1_000).backups.get(501)
            assert backup.id == 501

    try:
        base_url = str(server.make_url("/api/v1/"))
        async with BackupsClient("test-token", base_url=base_url, max_retries=0) as client:
            await calls(client, 0, 4_500)
            gc.collect()
            tracemalloc.start()
            try:
                before = tracemalloc.get_traced_memory()[0]
                await calls(client, 10_000, 5_000)
                gc.collect()
                grown = tracemalloc.get_traced_memory()[0] - before
            finally:
                tracemalloc.stop()
            assert client.stats.requests == {GET_ONE: 9_500}
    finally:
        await server.close()

    # The old per-client cache of timeouts and the shared deadline timers held +5 MB.
    assert grown < 300_000, f"{grown:,} bytes still held after 5,000 distinct timeouts"


# == 9-10. the connections, and a borrowed session ====================================


@pytest.mark.parametrize("server", SLOW_SERVERS)
async def test_a_timed_out_attempts_connection_is_dropped_and_the_next_call_reads_correctly(
    loopback: StartLoopback, server: str
) -> None:
    slow = slow_server(server)
    peers: list[tuple[str, object]] = []

    async def handler(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        assert request.transport is not None
        peers.append((request.path, request.transport.get_extra_info("peername")))
        if request.path.endswith("/501/"):
            return await slow(request, api)
        return json_response(BACKUP_499)

    api = await loopback(handler)
    # One connection in the pool: a timed-out attempt that kept it would hang the next.
    async with loopback_client(api, timeout=0.2, max_retries=0, max_concurrency=1) as client:
        # The same pool, with time enough for a healthy answer on a loaded machine.
        healthy = client.with_options(timeout=5.0)
        first = await healthy.backups.get(499)
        for _ in range(2):
            with pytest.raises(APITimeoutError):
                await client.backups.get(501)
            after = await asyncio.wait_for(healthy.backups.get(499), 10.0)
            assert after == first
            assert after.id == 499
            assert after.description == BACKUP_499["description"]
            assert after.size_mb == BACKUP_499["size_mb"]

    assert api.routes() == ["GET backups/499/", *["GET backups/501/", "GET backups/499/"] * 2]
    # After each time-out, the next request came on a new connection.
    for timed_out, following in ((1, 2), (3, 4)):
        assert peers[timed_out][1] != peers[following][1], peers


@pytest.mark.parametrize("server", SLOW_SERVERS)
async def test_a_borrowed_session_with_a_60s_total_timeout_is_still_bounded_by_the_clients(
    loopback: StartLoopback, server: str
) -> None:
    api = await loopback(slow_server(server))
    borrowed = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
    try:
        async with loopback_client(api, session=borrowed, timeout=0.2, max_retries=0) as client:
            started = now()
            with pytest.raises(APITimeoutError) as caught:
                await client.backups.get(501)
            elapsed = now() - started
        assert not borrowed.closed  # the client leaves a borrowed session open
    finally:
        await borrowed.close()

    assert elapsed >= 0.2, f"took {elapsed:.3f}s"
    assert caught.value.request_may_have_reached_server is True
    assert api.routes() == ["GET backups/501/"]


# == 11. a create that times out reconciles before it resends ==========================


async def test_a_create_whose_post_never_answers_reads_the_list_then_resends_the_same_request(
    loopback: StartLoopback,
) -> None:
    async def handler(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        if request.method == "POST":
            if sum(seen.method == "POST" for seen in api.seen) == 1:
                return await api.stall()  # the first create is never answered
            return json_response(CREATED_502, status=201)
        # The list shows no backup made by the lost attempt.
        return json_response(page([BACKUP_499]), Date=DATE_JUST_AFTER_502)

    api = await loopback(handler)
    async with loopback_client(api, timeout=0.15, max_retries=1) as client:
        backup = await client.backups.create(12345, description="Pre-deployment backup")

    assert backup.id == 502
    assert api.routes() == ["POST backups/", RECONCILE, "POST backups/"]
    first, second = api.received("POST", "backups/")
    assert first.headers["Idempotency-Key"] == second.headers["Idempotency-Key"]
    assert first.json() == second.json()
    assert client.stats.reconciles == 1


async def test_a_create_whose_posts_never_answer_raises_a_timeout_that_may_have_reached(
    loopback: StartLoopback,
) -> None:
    async def handler(request: web.Request, api: LoopbackAPI) -> web.StreamResponse:
        if request.method == "POST":
            return await api.stall()
        return json_response(page([BACKUP_499]), Date=DATE_JUST_AFTER_502)

    api = await loopback(handler)
    async with loopback_client(api, timeout=0.15, max_retries=1) as client:
        with pytest.raises(APITimeoutError) as caught:
            await client.backups.create(12345, description="Pre-deployment backup")

    assert caught.value.request_may_have_reached_server is True
    # Read before the resend; and, out of attempts, read once more before failing.
    assert api.routes() == ["POST backups/", RECONCILE, "POST backups/", RECONCILE]
    assert current().cancelling() == 0
