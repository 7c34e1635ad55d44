"""A minimal, fast HTTP/1.1 keep-alive responder, so client benchmarks measure the client.

Every ``GET /api/v1/backups/...``, whatever its query (the benchmarks vary it, as real
traffic does), gets the same prebuilt answer: the API documentation's 3-backup list page
as JSON (or, with ``--backups N``, ``bench_decode.build_page(N)``: a
DRF page of N varied backups), with ``Content-Type: application/json`` and a ``Date``
header (refreshed once a second). Anything else is a 404. It parses just enough HTTP:
the request line, ``Content-Length`` (a body is skipped) and ``Connection: close``;
pipelined requests are answered in order with one write.

Run: ``python benchmarks/_static_server.py --port 0 [--backups N]``; it prints
``listening on http://127.0.0.1:PORT/api/v1/`` once ready, and stops on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from email.utils import formatdate

from _seed import SEED_LIST

_BODY = json.dumps(SEED_LIST, separators=(",", ":")).encode()
_PREFIX = b"/api/v1/backups/"
_NOT_FOUND_BODY = b'{"detail":"Not found."}'
_HEADER_END = b"\r\n\r\n"


def _response(status: bytes, body: bytes, date: str) -> bytes:
    head = (
        b"HTTP/1.1 " + status + b"\r\n"
        b"Content-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n"
        b"Date: " + date.encode() + b"\r\n"
        b"Server: static-bench\r\n\r\n"
    )
    return head + body


class _Answers:
    """The prebuilt answers, rebuilt whenever the Date header's second changes."""

    def __init__(self) -> None:
        self.ok = b""
        self.not_found = b""
        self.refresh()

    def refresh(self) -> None:
        date = formatdate(usegmt=True)
        self.ok = _response(b"200 OK", _BODY, date)
        self.not_found = _response(b"404 Not Found", _NOT_FOUND_BODY, date)


class _Responder(asyncio.Protocol):
    def __init__(self, answers: _Answers) -> None:
        self._answers = answers
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        out: list[bytes] = []
        close = False
        while True:
            end = buffer.find(_HEADER_END)
            if end < 0:
                break
            head = bytes(buffer[:end]).lower()
            length = 0
            at = head.find(b"\r\ncontent-length:")
            if at >= 0:
                stop = head.find(b"\r\n", at + 2)
                length = int(head[at + 17 : stop if stop >= 0 else len(head)])
            total = end + 4 + length
            if len(buffer) < total:
                break
            del buffer[:total]
            line = head[: head.find(b"\r\n")] if b"\r\n" in head else head
            method, _, rest = line.partition(b" ")
            target, _, version = rest.partition(b" ")
            if method == b"get" and target.startswith(_PREFIX):
                out.append(self._answers.ok)
            else:
                out.append(self._answers.not_found)
            if b"\r\nconnection: close" in head or version == b"http/1.0":
                close = True
                break
        transport = self._transport
        if transport is None:
            return
        if out:
            transport.write(b"".join(out) if len(out) > 1 else out[0])
        if close:
            transport.close()


async def serve(port: int) -> None:
    """Serve on 127.0.0.1:``port`` (0: a free one) until SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    answers = _Answers()

    def tick() -> None:
        answers.refresh()
        loop.call_later(1.0, tick)

    loop.call_later(1.0, tick)
    server = await loop.create_server(
        lambda: _Responder(answers), "127.0.0.1", port, backlog=4096, reuse_address=True
    )
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    bound = server.sockets[0].getsockname()[1]
    print(f"listening on http://127.0.0.1:{bound}/api/v1/", flush=True)
    async with server:
        await stop.wait()


def main() -> None:
    """Parse ``--port`` (and ``--backups``) and serve."""
    global _BODY
    parser = argparse.ArgumentParser(description="A static keep-alive responder.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--backups", type=int, help="serve a page of this many backups")
    args = parser.parse_args()
    if args.backups is not None:
        from bench_decode import build_page

        # _Answers.refresh() reads this module global, so every answer carries the page.
        _BODY = build_page(args.backups)
    asyncio.run(serve(args.port))


if __name__ == "__main__":
    main()
