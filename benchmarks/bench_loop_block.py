"""How long ``await client.backups.list()`` blocks the event loop on one huge page.

What it measures: the API answers a single DRF page ``{"count": N, "next": null,
"previous": null, "results": [...]}`` of N backups (built as in ``bench_decode.py`` from
the documentation's example backup, with varied ids, servers, statuses, timestamps and
descriptions), for N = 1,000, 10,000 and 100,000. Each page comes from its own server
process (``_static_server.py``'s keep-alive responder answering every GET with the same
bytes, pinned to the server's CPU). While the client awaits the call, a ticker task runs
``t = loop.time(); await asyncio.sleep(0); gap = loop.time() - t`` in a loop: it gets the
loop back once per iteration, so its longest gap is the longest stretch during which
nothing else on the loop could run. Per N it reports that longest block and the total
time of the call, for

- the SDK: ``await client.backups.list()`` (the body parsed in one call, then structured
  in slices of 1,000 backups that yield to the loop in between);
- raw aiohttp: ``await response.read()`` then one ``loads`` of the body, which is one
  block by construction, the least any client must do without streaming the parse.

The SDK decodes pages with msgspec (a dependency), raw aiohttp with the standard
library's ``json.loads``; both run in one client process, the contenders alternating
within each round, and every figure is the median over the rounds (worst round shown
too). A full garbage collection precedes
each call; collections during the call count, as they would in an application, and are
timed (``gc.callbacks``): a full collection over a big page's objects is a stretch of
its own, so the table says how many ran and how long the longest took.

Target: no stretch over 50 ms for a 10,000-backup page (the median round's longest).

Run: ``python benchmarks/bench_loop_block.py [--quick]`` (quick: 2 rounds).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench_decode import build_page

SIZES = (1_000, 10_000, 100_000)
TARGET_SIZE = 10_000
TARGET_MS = 50.0
CONTENDERS = ("sdk", "raw")
CALLS = {"sdk": "SDK list()", "raw": "aiohttp read+loads"}
PARSERS = {("sdk", "json"): "msgspec (the SDK's)", ("raw", "json"): "json.loads"}
ROUNDS = {"full": 9, "quick": 2}
# How many of the longest gaps each call keeps, for the JSON.
_KEEP_GAPS = 5


# -- the server process -------------------------------------------------------------------


def serve(length: int) -> None:
    """Serve the ``length``-backup page on every GET of the backups route, until SIGTERM."""
    import _static_server

    # The responder rebuilds its answer from this module global every second.
    _static_server._BODY = build_page(length)
    asyncio.run(_static_server.serve(0))


# -- the client process -------------------------------------------------------------------


async def blocked_while(call: Callable[[], Awaitable[Any]]) -> tuple[Any, dict[str, Any]]:
    """Await ``call()`` with a ticker on the loop; its result and the loop's longest gaps."""
    loop = asyncio.get_running_loop()
    gaps: list[float] = []
    running = True

    async def ticker() -> None:
        while running:
            before = loop.time()
            await asyncio.sleep(0)
            gaps.append(loop.time() - before)

    # Garbage collections during the call, by generation: often a long stretch's cause.
    collections: list[tuple[int, float]] = []
    collecting = [0.0]

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            collecting[0] = time.perf_counter()
        else:
            collections.append((info["generation"], time.perf_counter() - collecting[0]))

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)  # the ticker has started: its next gap covers the call's start
    gc.callbacks.append(on_gc)
    start = time.perf_counter()
    try:
        result = await call()
        total = time.perf_counter() - start
    finally:
        gc.callbacks.remove(on_gc)
        running = False
        await task  # one last tick: the gap that covers the call's end
    longest = sorted(gaps, reverse=True)[:_KEEP_GAPS]
    full = [seconds for generation, seconds in collections if generation == 2]
    return result, {
        "longest_ms": longest[0] * 1e3,
        "total_ms": total * 1e3,
        "longest_gaps_ms": [gap * 1e3 for gap in longest],
        "gaps_over_target": sum(gap * 1e3 > TARGET_MS for gap in gaps),
        "ticks": len(gaps),
        "gc_ms": sum(seconds for _, seconds in collections) * 1e3,
        "full_gc_count": len(full),
        "longest_full_gc_ms": max(full, default=0.0) * 1e3,
    }


async def _client_rounds(backend: str, urls: dict[int, str]) -> None:
    import aiohttp
    from _common import TOKEN

    from asyncbackups import BackupsClient

    loads: Callable[[bytes], Any] = json.loads
    headers = {"Authorization": f"Bearer {TOKEN}", "Accept": "application/json"}
    page_bytes: dict[int, int] = {}
    async with contextlib.AsyncExitStack() as stack:
        session = await stack.enter_async_context(aiohttp.ClientSession(headers=headers))
        clients = {
            length: await stack.enter_async_context(BackupsClient(TOKEN, base_url=url))
            for length, url in urls.items()
        }

        def sdk(length: int) -> Callable[[], Awaitable[Any]]:
            return lambda: clients[length].backups.list()

        def raw(length: int) -> Callable[[], Awaitable[Any]]:
            async def call() -> Any:
                async with session.get(urls[length] + "backups/") as response:
                    body = await response.read()
                if response.status != 200:
                    raise RuntimeError(f"status {response.status}")
                page_bytes[length] = len(body)
                return loads(body)["results"]

            return call

        makers = {"sdk": sdk, "raw": raw}
        while True:
            line = await asyncio.to_thread(sys.stdin.readline)
            if not line:
                return
            command = json.loads(line)
            length = int(command["n"])
            answer: dict[str, Any] = {}
            for contender in command["contenders"]:
                gc.collect()
                result, figures = await blocked_while(makers[contender](length))
                if len(result) != length:
                    raise RuntimeError(f"{contender}: {len(result)} backups, not {length}")
                del result
                answer[contender] = figures
            answer["page_bytes"] = page_bytes.get(length)
            print(json.dumps(answer), flush=True)


def client(backend: str, urls: dict[int, str]) -> None:
    """Answer measurement commands on stdin."""
    asyncio.run(_client_rounds(backend, urls))


class ClientProcess:
    """One client process for one JSON backend, driven a measurement at a time."""

    def __init__(self, backend: str, urls: dict[int, str]) -> None:
        self.backend = backend
        self._process = subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "--client",
                backend,
                "--urls",
                json.dumps(urls),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def measure(self, length: int, contenders: list[str]) -> dict[str, Any]:
        """Each contender once on the ``length``-backup page, in the order given."""
        process = self._process
        assert process.stdin is not None
        assert process.stdout is not None
        process.stdin.write(json.dumps({"n": length, "contenders": contenders}) + "\n")
        process.stdin.flush()
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.backend} client process died")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def close(self) -> None:
        """Close its stdin (it exits when it reads the end) and wait for it."""
        process = self._process
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        if process.stdout is not None:
            process.stdout.close()


# -- the driver ---------------------------------------------------------------------------


def _summary(samples: list[dict[str, Any]]) -> dict[str, Any]:
    from _common import median

    return {
        "longest_ms": median([s["longest_ms"] for s in samples]),
        "worst_longest_ms": max(s["longest_ms"] for s in samples),
        "total_ms": median([s["total_ms"] for s in samples]),
        "gaps_over_target": median([s["gaps_over_target"] for s in samples]),
        "ticks": median([s["ticks"] for s in samples]),
        "gc_ms": median([s["gc_ms"] for s in samples]),
        "full_gc_count": median([s["full_gc_count"] for s in samples]),
        "longest_full_gc_ms": median([s["longest_full_gc_ms"] for s in samples]),
        "samples": samples,
    }


def main() -> None:
    """Measure every page size and backend; print the table; write results/loop_block.json."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--client", choices=("orjson", "json"), help=argparse.SUPPRESS)
    parser.add_argument("--urls", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    if args.client:
        client(args.client, {int(n): url for n, url in json.loads(args.urls).items()})
        return

    from _common import CLIENT_CPU, ServerProcess, pin_to_cpu, table, write_results

    pinned = pin_to_cpu(CLIENT_CPU)  # the client processes inherit it
    rounds = ROUNDS["quick" if args.quick else "full"]
    backends = ["json"]
    print(f"client pinned to CPU {CLIENT_CPU}: {pinned}")
    samples: dict[tuple[int, str, str], list[dict[str, Any]]] = {
        (n, b, c): [] for n in SIZES for b in backends for c in CONTENDERS
    }
    page_bytes: dict[int, int] = {}
    with contextlib.ExitStack() as stack:
        script = str(Path(__file__).resolve())
        urls = {}
        for length in SIZES:
            server = stack.enter_context(
                ServerProcess([sys.executable, script, "--serve", str(length)])
            )
            urls[length] = server.url
            print(f"{length:,}-backup page at {server.url} (pid {server.pid})", flush=True)
        clients = {backend: ClientProcess(backend, urls) for backend in backends}
        for process in clients.values():
            stack.callback(process.close)
        for length in SIZES:  # warm-up: connections open, code paths run once
            for backend in backends:
                clients[backend].measure(length, list(CONTENDERS))
        for index in range(rounds):
            turn = backends[index % len(backends) :] + backends[: index % len(backends)]
            order = list(CONTENDERS[index % 2 :] + CONTENDERS[: index % 2])
            for length in SIZES:
                for backend in turn:
                    answer = clients[backend].measure(length, order)
                    page_bytes[length] = answer["page_bytes"]
                    for contender in CONTENDERS:
                        samples[(length, backend, contender)].append(answer[contender])
            print(f"  round {index + 1}/{rounds} done", flush=True)

    rows = []
    for length in SIZES:
        for contender in CONTENDERS:
            for backend in backends:
                rows.append(
                    {
                        "backups": length,
                        "page_bytes": page_bytes[length],
                        "call": contender,
                        "backend": backend,
                        "parser": PARSERS[(contender, backend)],
                        **_summary(samples[(length, backend, contender)]),
                    }
                )
    headers = [
        "backups",
        "page MiB",
        "call",
        "JSON parser",
        "longest block ms",
        "worst round ms",
        "total ms",
        f"gaps > {TARGET_MS:.0f} ms",
        "full GCs",
        "longest full GC ms",
    ]
    print()
    print(
        table(
            headers,
            [
                [
                    f"{row['backups']:,}",
                    row["page_bytes"] / 2**20,
                    CALLS[row["call"]],
                    row["parser"],
                    row["longest_ms"],
                    row["worst_longest_ms"],
                    row["total_ms"],
                    row["gaps_over_target"],
                    row["full_gc_count"],
                    row["longest_full_gc_ms"],
                ]
                for row in rows
            ],
            title=f"Event loop blocked by one list page: medians of {rounds} rounds",
        )
    )
    print(
        "longest block: the loop's longest stretch without a turn for a ticker task; "
        "total: the call's wall time (the ticker running);\n"
        "full GCs: generation-2 collections during the call (each one blocks the loop)"
    )

    targets = []
    for row in rows:
        if row["backups"] == TARGET_SIZE and row["call"] == "sdk":
            met = row["longest_ms"] <= TARGET_MS
            targets.append(
                {
                    "figure": f"longest block, {TARGET_SIZE:,} backups: SDK, {row['parser']}",
                    "value_ms": row["longest_ms"],
                    "worst_round_ms": row["worst_longest_ms"],
                    "target": f"<= {TARGET_MS:.0f} ms",
                    "verdict": "PASS" if met else "FAIL",
                }
            )
    print()
    for target in targets:
        print(
            f"{TARGET_SIZE:,}-backup page longest block <= {TARGET_MS:.0f} ms: "
            f"{target['verdict']} ({target['value_ms']:.1f} ms median, "
            f"worst round {target['worst_round_ms']:.1f} ms; {target['figure'].split(': ')[1]})"
        )
    write_results(
        "loop_block",
        {
            "client_pinned_to_cpu": CLIENT_CPU if pinned else None,
            "rounds": rounds,
            "sizes": list(SIZES),
            "target_backups": TARGET_SIZE,
            "target_ms": TARGET_MS,
            "ticker": "while True: t = loop.time(); await asyncio.sleep(0); gap = loop.time() - t",
            "targets": targets,
            "rows": rows,
        },
        quick=args.quick,
    )


if __name__ == "__main__":
    main()
