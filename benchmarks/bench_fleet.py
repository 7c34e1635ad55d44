"""A fleet backup of 10,000 servers: HTTP requests per server and wall time, SDK vs naive.

What it measures, each against a fresh fake API process (``python -m asyncbackups.testing
--servers N --backup-seconds S --page-size 100``, its own process on its own CPU):

- the SDK: ``create_many(range(1, N + 1), wait=True, poll_interval=2, max_poll_interval=4)``,
  so that backups (6 s) last about three polling rounds. Requests are counted client-side
  by an aiohttp ``TraceConfig`` on the session handed to ``BackupsClient(session=...)``:
  ``on_request_start`` sees every attempt, retries included (cross-checked against the
  client's own count, ``client.stats.total_requests``, which the results also keep);
- the naive way with the same client: create each backup (64 at once), then poll
  ``backups.get(id)`` for each one every ``poll_interval`` until it is final;
- the ideal wall time: the backup duration plus N divided by raw aiohttp's create
  throughput (64 POSTs in flight), measured in the same run against its own fresh fake.

It also counts requests per polling round while 1, 10 and 1000 waits are pending
(backups that stay in progress; requests tagged with the poller's round number,
``client.stats.poll_rounds``).

Targets: SDK <= 1.2 requests per server, every poll included; wall time near the ideal.

Run: ``python benchmarks/bench_fleet.py [--quick]`` (quick: N=500 and shorter backups).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import aiohttp
from _common import (
    CLIENT_CPU,
    TOKEN,
    fake_api,
    median,
    parse_args,
    pin_to_cpu,
    table,
    verdict,
    write_results,
)
from yarl import URL

from asyncbackups import USER_AGENT, Backup, BackupsClient, ClientStats

CONCURRENCY = 64
PAGE_SIZE = 100
TARGET_REQUESTS_PER_SERVER = 1.2
WAIT_COUNTS = (1, 10, 1000)
HEADERS = {
    "Authorization": f"Bearer {TOKEN}",
    "User-Agent": USER_AGENT,
    "Accept": "application/json",
}


class Settings:
    """The sizes of one run: fleet, backup duration, polling, repetitions, time limits."""

    def __init__(self, *, quick: bool) -> None:
        self.quick = quick
        self.servers = 500 if quick else 10_000
        self.backup_seconds = 1.5 if quick else 6.0
        self.poll_interval = 0.5 if quick else 2.0
        self.max_poll_interval = 1.0 if quick else 4.0
        self.repetitions = 1 if quick else 3
        self.round_interval = 0.1 if quick else 0.3
        self.rounds = 3 if quick else 5
        self.time_limit = 120.0


def _route(method: str, url: URL) -> str:
    parts = [part for part in url.path.split("/") if part]
    if parts[-1:] == ["backups"]:
        return "create" if method == "POST" else "list page"
    if len(parts) >= 2 and parts[-2] == "backups":
        return "detail"
    return "other"


def counting_session(
    counts: Counter[str],
    tag: Callable[[], int] | None = None,
    tagged: Counter[int] | None = None,
    last_start: dict[str, float] | None = None,
) -> aiohttp.ClientSession:
    """A session that counts every request attempt by route (and by ``tag()``, if given).

    ``last_start`` gets the ``perf_counter()`` time of each route's latest attempt.
    """

    async def on_request_start(
        session: aiohttp.ClientSession, context: Any, params: aiohttp.TraceRequestStartParams
    ) -> None:
        route = _route(params.method, params.url)
        counts[route] += 1
        if tag is not None and tagged is not None:
            tagged[tag()] += 1
        if last_start is not None:
            last_start[route] = time.perf_counter()

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_request_start)
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    return aiohttp.ClientSession(connector=connector, trace_configs=[trace])


async def raw_create_throughput(base_url: str, servers: int, time_limit: float) -> float:
    """Creates per second by raw aiohttp POSTs, 64 in flight, one per server."""
    url = base_url + "backups/"
    ids = iter(range(1, servers + 1))
    made = 0
    deadline = time.perf_counter() + time_limit
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    headers = {**HEADERS, "Content-Type": "application/json"}
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def worker() -> None:
            nonlocal made
            for server_id in ids:
                if time.perf_counter() > deadline:
                    return
                body = json.dumps({"server_id": server_id}, separators=(",", ":")).encode()
                key = {"Idempotency-Key": str(uuid.uuid4())}
                async with session.post(url, data=body, headers=key) as response:
                    answer = await response.read()
                    if response.status != 201:
                        raise RuntimeError(f"create answered {response.status}: {answer!r}")
                    json.loads(answer)
                made += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        return made / (time.perf_counter() - start)


async def sdk_fleet(base_url: str, settings: Settings) -> dict[str, Any]:
    """``create_many(wait=True)`` over the whole fleet; requests by route and wall time."""
    counts: Counter[str] = Counter()
    last_start: dict[str, float] = {}
    async with counting_session(counts, last_start=last_start) as session:
        client = BackupsClient(
            TOKEN, base_url=base_url, session=session, max_concurrency=CONCURRENCY
        )
        async with client:
            start = time.perf_counter()
            async with asyncio.timeout(settings.time_limit):
                result = await client.backups.create_many(
                    range(1, settings.servers + 1),
                    wait=True,
                    poll_interval=settings.poll_interval,
                    max_poll_interval=settings.max_poll_interval,
                )
            wall = time.perf_counter() - start
            stats = client.stats
    return _fleet_figures(
        counts,
        wall,
        settings,
        succeeded=len(result.succeeded),
        stats=stats,
        creating=last_start["create"] - start,
    )


async def naive_fleet(base_url: str, settings: Settings) -> dict[str, Any]:
    """Create (64 at once), then ``get`` each backup every ``poll_interval`` until final."""
    counts: Counter[str] = Counter()
    last_start: dict[str, float] = {}
    async with counting_session(counts, last_start=last_start) as session:
        client = BackupsClient(
            TOKEN, base_url=base_url, session=session, max_concurrency=CONCURRENCY
        )
        slots = asyncio.Semaphore(CONCURRENCY)

        async def one(server_id: int) -> Backup:
            async with slots:
                backup = await client.backups.create(server_id)
            while not backup.is_final:
                await asyncio.sleep(settings.poll_interval)
                backup = await client.backups.get(backup.id)
            return backup

        async with client:
            start = time.perf_counter()
            async with asyncio.timeout(settings.time_limit):
                backups = await asyncio.gather(
                    *(one(server_id) for server_id in range(1, settings.servers + 1))
                )
            wall = time.perf_counter() - start
            stats = client.stats
    succeeded = sum(1 for backup in backups if backup.status == "completed")
    return _fleet_figures(
        counts,
        wall,
        settings,
        succeeded=succeeded,
        stats=stats,
        creating=last_start["create"] - start,
    )


def _fleet_figures(
    counts: Counter[str],
    wall: float,
    settings: Settings,
    *,
    succeeded: int,
    stats: ClientStats,
    creating: float,
) -> dict[str, Any]:
    total = sum(counts.values())
    if succeeded != settings.servers:
        raise RuntimeError(f"only {succeeded} of {settings.servers} backups completed")
    # The client counts its own requests too: a cross-check of the trace's count.
    if stats.total_requests != total:
        print(
            f"  warning: the trace counted {total} requests, client.stats {stats.total_requests}",
            flush=True,
        )
    return {
        "requests": total,
        "requests_by_route": dict(counts),
        "requests_per_server": total / settings.servers,
        "wall_seconds": wall,
        # Until the last create was sent; the rest of the wall time is the wait for the
        # last backups to finish and be seen.
        "creating_seconds": creating,
        "poller_rounds": stats.poll_rounds,
        # What the client counted itself (client.stats), to cross-check the trace.
        "client_stats": {
            "total_requests": stats.total_requests,
            "requests": dict(stats.requests),
            "retries": stats.retries,
            "reconciles": stats.reconciles,
            "rate_limit_pauses": stats.rate_limit_pauses,
            "poll_rounds": stats.poll_rounds,
            "bytes_read": stats.bytes_read,
        },
    }


async def requests_per_round(base_url: str, waits: int, settings: Settings) -> dict[str, Any]:
    """Requests per polling round while ``waits`` waits are pending on in-progress backups."""
    counts: Counter[str] = Counter()
    per_round: Counter[int] = Counter()
    client: BackupsClient | None = None

    def current_round() -> int:
        return client.stats.poll_rounds if client is not None else -1

    async with counting_session(counts, current_round, per_round) as session:
        client = BackupsClient(
            TOKEN, base_url=base_url, session=session, max_concurrency=CONCURRENCY
        )
        async with client:
            created = await client.backups.create_many(range(1, waits + 1))
            created.raise_for_failures()
            first = client.stats.poll_rounds
            tasks = [
                asyncio.create_task(
                    client.backups.wait_until_completed(
                        backup,
                        timeout=None,
                        poll_interval=settings.round_interval,
                        max_poll_interval=settings.round_interval,
                    )
                )
                for backup in created.backups
            ]
            async with asyncio.timeout(settings.time_limit):
                # The poller counts its rounds but signals none: look often.
                while client.stats.poll_rounds <= first + settings.rounds:  # noqa: ASYNC110
                    await asyncio.sleep(0.005)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    rounds = [per_round[first + index] for index in range(1, settings.rounds + 1)]
    return {
        "waits": waits,
        "rounds_counted": settings.rounds,
        "requests_each_round": rounds,
        "requests_per_round": sum(rounds) / len(rounds),
        "naive_requests_per_round": waits,
    }


def main() -> None:
    """Measure, print the tables, write results/fleet.json."""
    args = parse_args(__doc__)
    settings = Settings(quick=args.quick)
    pin_to_cpu(CLIENT_CPU)
    fake_options = {
        "servers": settings.servers,
        "backup_seconds": settings.backup_seconds,
        "page_size": PAGE_SIZE,
    }
    samples: dict[str, list[dict[str, Any]]] = {"raw": [], "sdk": [], "naive": []}
    order = ["raw", "sdk", "naive"]
    for repetition in range(settings.repetitions):
        shift = repetition % len(order)
        for contender in order[shift:] + order[:shift]:
            with fake_api(**fake_options) as server:
                if contender == "raw":
                    rate = asyncio.run(
                        raw_create_throughput(server.url, settings.servers, settings.time_limit)
                    )
                    samples["raw"].append({"creates_per_second": rate})
                elif contender == "sdk":
                    samples["sdk"].append(asyncio.run(sdk_fleet(server.url, settings)))
                else:
                    samples["naive"].append(asyncio.run(naive_fleet(server.url, settings)))
        print(f"  repetition {repetition + 1}/{settings.repetitions} done", flush=True)

    rate = median([sample["creates_per_second"] for sample in samples["raw"]])
    ideal = settings.backup_seconds + settings.servers / rate
    summary: dict[str, dict[str, float]] = {}
    for name in ("sdk", "naive"):
        runs = samples[name]
        summary[name] = {
            "requests_per_server": median([run["requests_per_server"] for run in runs]),
            "wall_seconds": median([run["wall_seconds"] for run in runs]),
            "creating_seconds": median([run["creating_seconds"] for run in runs]),
        }
        summary[name]["wall_over_ideal"] = summary[name]["wall_seconds"] / ideal

    per_round = []
    for waits in WAIT_COUNTS:
        with fake_api(servers=waits, backup_seconds=3600, page_size=PAGE_SIZE) as server:
            per_round.append(asyncio.run(requests_per_round(server.url, waits, settings)))

    print()
    print(
        f"Fleet of {settings.servers} servers, backups last {settings.backup_seconds} s, "
        f"poll_interval {settings.poll_interval} s (max {settings.max_poll_interval} s), "
        f"{CONCURRENCY} requests in flight; medians of {settings.repetitions}"
    )
    print(f"raw aiohttp creates: {rate:,.0f}/s -> ideal wall time {ideal:.2f} s")
    rows = [
        [
            label,
            summary[name]["requests_per_server"],
            summary[name]["wall_seconds"],
            summary[name]["wall_over_ideal"],
            summary[name]["creating_seconds"],
            summary[name]["wall_seconds"] - summary[name]["creating_seconds"],
        ]
        for name, label in (
            ("sdk", "SDK create_many(wait=True)"),
            ("naive", "naive create + get() polls"),
        )
    ]
    rows.append(
        ["ideal", 1.0, ideal, 1.0, ideal - settings.backup_seconds, settings.backup_seconds]
    )
    headers = ["way", "requests/server", "wall s", "wall/ideal", "creating s", "after s"]
    print(table(headers, rows))
    print("  creating: until the last create was sent; after: the rest of the wall time")
    for name in ("sdk", "naive"):
        routes: Counter[str] = Counter()
        for run in samples[name]:
            routes.update(run["requests_by_route"])
        share = {route: count / len(samples[name]) for route, count in routes.items()}
        print(
            f"  {name} requests by route (mean per run): "
            + ", ".join(f"{route} {count:,.0f}" for route, count in sorted(share.items()))
        )
    print()
    rows = [
        [
            item["waits"],
            item["requests_per_round"],
            " ".join(map(str, item["requests_each_round"])),
            item["naive_requests_per_round"],
        ]
        for item in per_round
    ]
    print(
        table(
            ["waits", "requests/round", "each round", "naive/round"],
            rows,
            title=f"Requests per polling round (page size {PAGE_SIZE})",
        )
    )
    value = summary["sdk"]["requests_per_server"]
    targets = [
        {
            "figure": "SDK requests per server (every poll included)",
            "value": value,
            "target": f"<= {TARGET_REQUESTS_PER_SERVER}",
            "verdict": verdict(value, TARGET_REQUESTS_PER_SERVER, at_least=False),
        },
        {
            "figure": "SDK wall time / ideal",
            "value": summary["sdk"]["wall_over_ideal"],
            "target": "near 1 (reported)",
            "verdict": "-",
        },
    ]
    print()
    print(
        table(
            ["figure", "value", "target", "verdict"],
            [[t["figure"], t["value"], t["target"], t["verdict"]] for t in targets],
            title="Targets",
        )
    )
    write_results(
        "fleet",
        {
            "settings": {
                "servers": settings.servers,
                "backup_seconds": settings.backup_seconds,
                "poll_interval": settings.poll_interval,
                "max_poll_interval": settings.max_poll_interval,
                "page_size": PAGE_SIZE,
                "concurrency": CONCURRENCY,
                "repetitions": settings.repetitions,
            },
            "targets": targets,
            "raw_creates_per_second": rate,
            "ideal_wall_seconds": ideal,
            "summary": summary,
            "samples": samples,
            "requests_per_round": per_round,
        },
        quick=args.quick,
    )


if __name__ == "__main__":
    main()
