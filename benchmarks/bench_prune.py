"""Retention at scale: plan and prune 10,000 servers with five manual backups each.

What it measures, each run against a fresh fake API in its own process, pinned to the
server's CPU (this script with ``--serve``: ``FakeBackupsAPI(page_size=100)`` with N
servers from ``add_fleet``, one automatic backup each, plus five completed manual
backups a week apart per server, 1 to 29 days old; served by
``asyncbackups.testing.serve``), with a client of default options in this process:

- plan: ``plan_prune(keep_last=3)`` over every server, which reads the account's manual
  backups across, page by page;
- prune: ``prune(plan)`` at the default concurrency (64): two deletes a server;
- plan again: the same rules once more, which must plan nothing (what a re-run after a
  crash costs when there is nothing left).

Two cases: no rate limit, and the fake's token bucket at ``RATE`` requests a second
(burst ``RATE``, one second's worth) with ``RateLimit-*`` headers. Requests are counted
by the fake (``GET /_fake/stats``: every request it saw, 429s included) between phases;
the client's ``stats.throttled`` gives the 429s it met. Under the limit the floor is
(requests - burst) / rate, the least time the limit allows for the requests made.

Targets: a plan costs the pages of the manual list (N x 5 / 100) plus at most one; the
prune fails nothing and leaves exactly three manual backups a server (the plan again
finds nothing); prune requests <= 1.05 x deletes; with the limit, wall / floor <= 1.15.
Medians of 3 runs, the cases alternating in order between rounds.

Run: ``python benchmarks/bench_prune.py [--quick]`` (quick: 1,000 servers, one round).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
from _common import (
    CLIENT_CPU,
    TOKEN,
    ServerProcess,
    median,
    pin_to_cpu,
    table,
    verdict,
    write_results,
)

from asyncbackups import BackupsClient

PAGE_SIZE = 100
MANUAL_PER_SERVER = 5
KEEP_LAST = 3
RATE = 1000.0
TARGET_PRUNE_REQUESTS_PER_DELETE = 1.05
TARGET_WALL_OVER_FLOOR = 1.15


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,000 servers, one round")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--servers", type=int, default=10_000, help=argparse.SUPPRESS)
    parser.add_argument("--rate-limit", type=float, default=None, help=argparse.SUPPRESS)
    return parser


# -- the fake, in a process of its own -------------------------------------------------------


def serve(servers: int, rate_limit: float | None) -> None:
    """Seed a fake with ``servers`` servers and five weekly manual backups each; serve it."""
    from asyncbackups.testing import FakeBackupsAPI, announce
    from asyncbackups.testing import serve as serve_fake

    api = FakeBackupsAPI(
        token=TOKEN,
        page_size=PAGE_SIZE,
        sample_data=False,
        rate_limit=rate_limit,
        burst=rate_limit,
        backup_seconds=0,
    )
    api.add_fleet(servers)
    now = api.clock.now()
    for week in reversed(range(MANUAL_PER_SERVER)):
        created_at = now - timedelta(days=1 + 7 * week)
        for server_id in range(1, servers + 1):
            api.state.add_backup(server_id, status="completed", created_at=created_at)
    asyncio.run(serve_fake(api, on_ready=announce))


def fake_process(servers: int, rate_limit: float | None) -> ServerProcess:
    command = [sys.executable, str(Path(__file__).resolve()), "--serve"]
    command += ["--servers", str(servers)]
    if rate_limit is not None:
        command += ["--rate-limit", str(rate_limit)]
    return ServerProcess(command, startup_timeout=300.0)


# -- one run ---------------------------------------------------------------------------------


async def _requests(session: aiohttp.ClientSession, stats_url: str) -> int:
    async with session.get(stats_url) as response:
        stats: dict[str, Any] = await response.json()
    return sum(stats["requests"].values())


async def run_case(url: str, servers: int, rate_limit: float | None) -> dict[str, Any]:
    """Plan, prune and plan again; the requests and seconds of each phase."""
    stats_url = url.split("/api/v1/")[0] + "/_fake/stats"
    async with aiohttp.ClientSession() as session, BackupsClient(TOKEN, base_url=url) as client:
        counted = [await _requests(session, stats_url)]
        started = time.perf_counter()
        plan = await client.backups.plan_prune(keep_last=KEEP_LAST)
        planned = time.perf_counter()
        counted.append(await _requests(session, stats_url))
        pruning = time.perf_counter()
        result = await client.backups.prune(plan)
        pruned = time.perf_counter()
        counted.append(await _requests(session, stats_url))
        replanning = time.perf_counter()
        again = await client.backups.plan_prune(keep_last=KEEP_LAST)
        replanned = time.perf_counter()
        counted.append(await _requests(session, stats_url))
        throttled = client.stats.throttled
    deletes = len(plan.to_delete)
    prune_requests = counted[2] - counted[1]
    run: dict[str, Any] = {
        "servers": servers,
        "plan_requests": counted[1] - counted[0],
        "plan_seconds": planned - started,
        "planned": deletes,
        "prune_requests": prune_requests,
        "prune_seconds": pruned - pruning,
        "deleted": len(result.deleted),
        "already_gone": len(result.already_gone),
        "failed": len(result.failed),
        "replan_requests": counted[3] - counted[2],
        "replan_seconds": replanned - replanning,
        "replanned": len(again.to_delete),
        "kept_per_server": sorted(set(again.kept_per_server.values())),
        "throttled": throttled,
        "requests_per_server": (counted[3] - counted[0]) / servers,
    }
    if rate_limit is not None:
        made = counted[3] - counted[0]
        floor = max(made - rate_limit, 0) / rate_limit
        wall = (planned - started) + (pruned - pruning) + (replanned - replanning)
        run["floor_seconds"] = floor
        run["wall_over_floor"] = wall / floor if floor else float("nan")
        run["prune_floor_seconds"] = prune_requests / rate_limit
    return run


# -- the whole benchmark ---------------------------------------------------------------------


def main() -> None:
    """Measure both cases, print the table, write results/prune.json."""
    args = _parser().parse_args()
    if args.serve:
        serve(args.servers, args.rate_limit)
        return
    servers = 1_000 if args.quick else 10_000
    repetitions = 1 if args.quick else 3
    pin_to_cpu(CLIENT_CPU)
    cases = {"no_limit": None, "rate_limited": RATE}
    runs: dict[str, list[dict[str, Any]]] = {key: [] for key in cases}
    order = list(cases)
    for repetition in range(repetitions):
        shift = repetition % len(order)
        for key in order[shift:] + order[:shift]:
            with fake_process(servers, cases[key]) as server:
                runs[key].append(asyncio.run(run_case(server.url, servers, cases[key])))
        print(f"  round {repetition + 1}/{repetitions} done", flush=True)

    pages = math.ceil(servers * MANUAL_PER_SERVER / PAGE_SIZE)
    deletes = servers * (MANUAL_PER_SERVER - KEEP_LAST)
    summary: dict[str, dict[str, Any]] = {}
    for key, samples in runs.items():
        figures = {
            field: median([run[field] for run in samples])
            for field in (
                "plan_requests",
                "plan_seconds",
                "prune_requests",
                "prune_seconds",
                "replan_requests",
                "replan_seconds",
                "throttled",
                "requests_per_server",
            )
        }
        if cases[key] is not None:
            figures["wall_over_floor"] = median([run["wall_over_floor"] for run in samples])
        # Correctness is the worst run's: one failed delete is a miss.
        figures["failed"] = max(run["failed"] for run in samples)
        figures["deleted_min"] = min(run["deleted"] + run["already_gone"] for run in samples)
        figures["replanned_max"] = max(run["replanned"] for run in samples)
        figures["kept_per_server"] = sorted(
            {kept for run in samples for kept in run["kept_per_server"]}
        )
        checks = {
            "plan_requests": verdict(figures["plan_requests"], pages + 1, at_least=False),
            "nothing_failed": "PASS" if figures["failed"] == 0 else "MISS",
            "all_deleted": "PASS" if figures["deleted_min"] == deletes else "MISS",
            "kept_exactly": "PASS"
            if figures["kept_per_server"] == [KEEP_LAST] and figures["replanned_max"] == 0
            else "MISS",
            "prune_requests": verdict(
                figures["prune_requests"] / deletes,
                TARGET_PRUNE_REQUESTS_PER_DELETE,
                at_least=False,
            ),
        }
        if cases[key] is not None:
            checks["wall_over_floor"] = verdict(
                figures["wall_over_floor"], TARGET_WALL_OVER_FLOOR, at_least=False
            )
        figures["verdicts"] = checks
        summary[key] = figures

    print()
    print(
        f"{servers:,} servers x {MANUAL_PER_SERVER} manual backups, keep_last={KEEP_LAST} "
        f"({deletes:,} deletes), {PAGE_SIZE} a page; medians of {repetitions}"
    )
    rows = []
    for key, label in (("no_limit", "no limit"), ("rate_limited", f"{RATE:g} req/s limit")):
        figures = summary[key]
        rows.append(
            [
                label,
                figures["plan_requests"],
                figures["plan_seconds"],
                figures["prune_requests"],
                figures["prune_seconds"],
                figures["throttled"],
                figures["failed"],
                figures["replan_requests"],
                figures["replan_seconds"],
                figures.get("wall_over_floor", float("nan")),
            ]
        )
    print(
        table(
            [
                "case",
                "plan req",
                "plan s",
                "prune req",
                "prune s",
                "429s",
                "failed",
                "re-plan req",
                "re-plan s",
                "wall/floor",
            ],
            rows,
        )
    )
    print()
    for key, figures in summary.items():
        marks = ", ".join(f"{name} {mark}" for name, mark in figures["verdicts"].items())
        print(f"{key}: {marks}")
    write_results(
        "prune",
        {
            "servers": servers,
            "manual_per_server": MANUAL_PER_SERVER,
            "keep_last": KEEP_LAST,
            "page_size": PAGE_SIZE,
            "rate_limit": RATE,
            "repetitions": repetitions,
            "expected": {"plan_pages": pages, "deletes": deletes},
            "targets": {
                "plan_requests_at_most": pages + 1,
                "prune_requests_per_delete_at_most": TARGET_PRUNE_REQUESTS_PER_DELETE,
                "wall_over_floor_at_most": TARGET_WALL_OVER_FLOOR,
            },
            "summary": summary,
            "runs": runs,
        },
        quick=args.quick,
    )


if __name__ == "__main__":
    main()
