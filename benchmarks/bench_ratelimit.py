"""Fleets under a provider's rate limit: ``create_many(wait=True)`` paced by the governor.

What it measures, each run against a fresh fake API process (``python -m
asyncbackups.testing --servers N --backup-seconds 5 --rate-limit R --burst R``: a token
bucket shared by every client, 429 + ``Retry-After`` when it is empty, and
``RateLimit-Limit``/``-Remaining``/``-Reset`` on every answer unless
``--no-rate-limit-headers``): a fleet backed up by ``await
client.backups.create_many(ids, description=..., wait=True)`` with the client's default
options (and the default ``poll_interval``/``max_poll_interval``), each fleet in a
process of its own, pinned to the client's CPU. The cases are the targets of issue 19:

- 600 servers at 40/s, with headers;
- 100 servers at 5/s, with headers;
- 300 servers at 20/s, bare 429 + ``Retry-After`` (no RateLimit headers);
- two processes of 300 servers each, each its own client, sharing one 20/s limit;
- a control: 600 servers and no limit, whose requests per server must stay where the
  fleet benchmark has them (<= 1.05).

Per run it reads, after the fleet returned, the fake's ``GET /_fake/stats`` (every
request it counted, the 429s of its rate limit among them) and the manual backups of
every server (the list, page by page, waiting out any 429). From them:

- servers failed: ``len(FleetResult.failed)``;
- backups per server: the fewest and most manual backups any server of the fleet has;
- 429 share: the fake's throttled count over every request it counted;
- wall: from the first request sent to ``create_many``'s return (two processes: the
  earliest first request to the latest return);
- floor: (requests the fake accepted - burst) / rate, the least time the limit allows
  for the requests actually made; wall / floor is the pacing's cost.

Requests are also counted client-side (an aiohttp ``TraceConfig`` given to the client's
own session, which changes nothing it does), to time the first request and the last
create and to keep a per-second timeline of requests, 429s and the governor's rate
(``client.stats.rate_limit``) for diagnosis; the JSON keeps it for every run.

Targets (issue 19): 0 servers failed, exactly 1 backup per server, 429s <= 5% of all
requests (<= 10% for bare 429s and for two processes together), wall / floor <= 1.15
(<= 1.25). Medians of 3 runs, the cases alternating in order between rounds; servers
failed and backups per server are the worst run's, since a single failure is a miss.

Run: ``python benchmarks/bench_ratelimit.py [--quick]`` (quick: fleets a quarter the
size, backups of 2 s, one round).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
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

from asyncbackups import BackupsClient

PAGE_SIZE = 100
DESCRIPTION = "bench ratelimit"
# Requests per server a fleet may make with no limit (the fleet benchmarks' figure).
TARGET_UNLIMITED_REQUESTS = 1.05
# How often a fleet process samples the rate its governor runs at, seconds.
RATE_SAMPLE = 0.25
# The environment a fleet process runs in must leave the client's options at their
# defaults: a rate limit set for the whole machine would otherwise become the client's.
ENV_RATE_LIMIT = "ASYNCBACKUPS_RATE_LIMIT"


@dataclass(frozen=True)
class Case:
    """One fleet and the limit it meets; ``rate=None`` is the unlimited control."""

    key: str
    servers: int  # per process
    processes: int
    rate: float | None
    headers: bool
    max_throttled_share: float | None
    max_wall_over_floor: float | None
    # Each process is told its share of the limit ($ASYNCBACKUPS_RATE_LIMIT = rate / N)
    # instead of learning it: the other way to share one limit.
    divided: bool = False

    @property
    def total_servers(self) -> int:
        return self.servers * self.processes

    @property
    def burst(self) -> float | None:
        # One second's worth, the fake's default, stated rather than left implicit.
        return self.rate

    @property
    def label(self) -> str:
        if self.rate is None:
            return f"{self.servers} servers, no limit (control)"
        limit = f"{self.rate:g}/s"
        if self.processes > 1:
            shared = f"{self.processes} processes x {self.servers} servers, one shared {limit}"
            if self.divided:
                return f"{shared}, divided"
            return shared
        kind = "headers" if self.headers else "bare 429 + Retry-After"
        return f"{self.servers} servers, {limit}, {kind}"


class Settings:
    """The sizes of one run: fleets, backup duration, repetitions."""

    def __init__(self, *, quick: bool) -> None:
        self.quick = quick
        # Short backups: the floor counts requests only, so a long backup would be
        # a tail no pacing can shorten (wall / (floor + backup) is reported too).
        self.backup_seconds = 1.0
        self.repetitions = 1 if quick else 3
        scale = 4 if quick else 1
        self.cases = (
            Case("600_at_40_headers", 600 // scale, 1, 40.0, True, 0.05, 1.15),
            Case("100_at_5_headers", 100 // scale, 1, 5.0, True, 0.05, 1.15),
            Case("300_at_20_bare", 300 // scale, 1, 20.0, False, 0.10, 1.25),
            Case("2x300_at_20_shared", 300 // scale, 2, 20.0, True, 0.10, 1.25),
            Case("2x300_at_20_divided", 300 // scale, 2, 20.0, True, 0.10, 1.25, divided=True),
            Case("600_no_limit", 600 // scale, 1, None, True, None, None),
        )

    def time_limit(self, case: Case) -> float:
        """How long one fleet may take before it counts as hung: far beyond the floor."""
        floor = case.total_servers / case.rate if case.rate else 0.0
        return 120.0 + 5 * floor + 10 * self.backup_seconds


# -- the fleet, in a process of its own ----------------------------------------------------


def _per_second(times: list[float], start: float, seconds: int) -> list[int]:
    counts = [0] * seconds
    for moment in times:
        counts[min(seconds - 1, max(0, int(moment - start)))] += 1
    return counts


async def fleet(base_url: str, first: int, count: int, time_limit: float) -> dict[str, Any]:
    """Back up servers ``first`` .. ``first + count - 1`` with default client options."""
    starts: list[float] = []
    creates: list[float] = []
    throttles: list[float] = []

    async def on_request_start(
        session: aiohttp.ClientSession, context: Any, params: aiohttp.TraceRequestStartParams
    ) -> None:
        now = time.monotonic()
        starts.append(now)
        if params.method == "POST":
            creates.append(now)

    async def on_request_end(
        session: aiohttp.ClientSession, context: Any, params: aiohttp.TraceRequestEndParams
    ) -> None:
        if params.response.status == 429:
            throttles.append(time.monotonic())

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_request_start)
    trace.on_request_end.append(on_request_end)
    rates: list[tuple[float, float | None]] = []
    errors: Counter[str] = Counter()
    timed_out = False
    async with BackupsClient(TOKEN, base_url=base_url, trace_configs=[trace]) as client:

        async def sample_rate() -> None:
            while True:
                rates.append((time.monotonic(), client.stats.rate_limit))
                await asyncio.sleep(RATE_SAMPLE)

        sampler = asyncio.create_task(sample_rate())
        called = time.monotonic()
        try:
            async with asyncio.timeout(time_limit):
                result = await client.backups.create_many(
                    range(first, first + count), description=DESCRIPTION, wait=True
                )
            failed = len(result.failed)
            for outcome in result.failed:
                errors[f"{type(outcome.error).__name__}: {outcome.error}"[:160]] += 1
        except TimeoutError:
            # A hung fleet is a result too: every server counts as failed.
            timed_out = True
            failed = count
        returned = time.monotonic()
        sampler.cancel()
        stats = client.stats
    # Time runs from the first request sent, not from the call (which sends it at once).
    start = starts[0] if starts else called
    seconds = max(1, math.ceil(returned - start))
    rate_each_second: list[float | None] = [None] * seconds
    for moment, rate in rates:
        if moment >= start:
            rate_each_second[min(seconds - 1, int(moment - start))] = rate
    return {
        "first": first,
        "servers": count,
        "first_request": start,
        "returned": returned,
        "wall_seconds": returned - start,
        "creating_seconds": (creates[-1] - start) if creates else float("nan"),
        "failed": failed,
        "timed_out": timed_out,
        "errors": dict(errors.most_common(5)),
        "traced_requests": len(starts),
        "traced_429s": len(throttles),
        # What the client says of itself: its counts, the 429s it met, the rate it runs at.
        "client_stats": {
            "total_requests": stats.total_requests,
            "requests": dict(stats.requests),
            "retries": stats.retries,
            "rate_limit_pauses": stats.rate_limit_pauses,
            "poll_rounds": stats.poll_rounds,
            "throttled": stats.throttled,
            "rate_limit": stats.rate_limit,
        },
        # Second by second from the first request: what was sent, refused, and allowed.
        "timeline": {
            "requests": _per_second(starts, start, seconds),
            "creates": _per_second(creates, start, seconds),
            "throttled": _per_second(throttles, start, seconds),
            "rate_limit": rate_each_second,
        },
    }


def child(argv: list[str]) -> None:
    """A fleet process: say ready, wait for the go (so several start together), run."""
    base_url, first, count, time_limit, output = argv
    print("ready", flush=True)
    sys.stdin.readline()
    measured = asyncio.run(fleet(base_url, int(first), int(count), float(time_limit)))
    Path(output).write_text(json.dumps(measured))


def run_fleets(base_url: str, case: Case, time_limit: float) -> list[dict[str, Any]]:
    """The case's fleet processes, started together; what each measured."""
    env = {key: value for key, value in os.environ.items() if key != ENV_RATE_LIMIT}
    if case.divided and case.rate is not None:
        env[ENV_RATE_LIMIT] = str(case.rate / case.processes)
    with tempfile.TemporaryDirectory(prefix="bench_ratelimit") as folder:
        outputs = [Path(folder) / f"fleet{index}.json" for index in range(case.processes)]
        processes = []
        for index, output in enumerate(outputs):
            command = [
                sys.executable,
                __file__,
                "--child",
                base_url,
                str(index * case.servers + 1),
                str(case.servers),
                str(time_limit),
                str(output),
            ]
            process = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
            )
            pin_to_cpu(CLIENT_CPU, process.pid)
            processes.append(process)
        for process in processes:
            assert process.stdout is not None
            if process.stdout.readline().strip() != "ready":
                raise RuntimeError("a fleet process did not start")
        for process in processes:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        for process in processes:
            if process.wait() != 0:
                raise RuntimeError(f"a fleet process failed with exit status {process.returncode}")
            assert process.stdout is not None
            assert process.stdin is not None
            process.stdout.close()
            process.stdin.close()
        return [json.loads(output.read_text()) for output in outputs]


# -- what the fake saw ---------------------------------------------------------------------


async def read_fake(base_url: str, servers: int) -> dict[str, Any]:
    """The fake's stats, then how many manual backups each of servers 1..N has.

    The stats come first: the list reads after them pass the rate limit too, and must
    not count as the fleet's requests.
    """
    headers = {"Authorization": f"Bearer {TOKEN}", "Accept": "application/json"}
    per_server: Counter[int] = Counter()
    async with aiohttp.ClientSession() as session:
        async with session.get(URL(base_url).with_path("/_fake/stats")) as response:
            response.raise_for_status()
            stats: dict[str, Any] = await response.json()
        url: str | None = base_url + "backups/?backup_type=manual"
        while url is not None:
            async with session.get(url, headers=headers) as response:
                if response.status == 429:
                    await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
                    continue
                response.raise_for_status()
                page = await response.json()
            per_server.update(backup["server"]["id"] for backup in page["results"])
            url = page["next"]
    each = [per_server[server_id] for server_id in range(1, servers + 1)]
    return {
        "stats": stats,
        "backups_min": min(each),
        "backups_max": max(each),
        "servers_without_backup": sum(1 for n in each if n == 0),
        "servers_with_several": sum(1 for n in each if n > 1),
    }


def run_case(case: Case, settings: Settings) -> dict[str, Any]:
    """One run of a case against a fresh fake: the fleets, then the fake's counts."""
    total = case.total_servers
    with fake_api(
        servers=total,
        backup_seconds=settings.backup_seconds,
        page_size=PAGE_SIZE,
        rate_limit=case.rate,
        burst=case.burst,
        rate_limit_headers=case.headers,
    ) as server:
        fleets = run_fleets(server.url, case, settings.time_limit(case))
        fake = asyncio.run(read_fake(server.url, total))
    stats = fake.pop("stats")
    requests = sum(stats["requests"].values())
    throttled = stats["throttled"]
    accepted = requests - throttled
    wall = max(f["returned"] for f in fleets) - min(f["first_request"] for f in fleets)
    creating = max(f["first_request"] + f["creating_seconds"] for f in fleets) - min(
        f["first_request"] for f in fleets
    )
    client_requests = sum(f["client_stats"]["total_requests"] for f in fleets)
    if client_requests != requests:
        print(
            f"  warning: the clients counted {client_requests} requests, the fake {requests}",
            flush=True,
        )
    # No limit, no floor (None rather than NaN, which strict JSON lacks).
    floor: float | None = None
    if case.rate is not None and case.burst is not None:
        floor = (accepted - case.burst) / case.rate
    return {
        "failed": sum(f["failed"] for f in fleets),
        "timed_out": any(f["timed_out"] for f in fleets),
        **fake,
        "requests": requests,
        "throttled": throttled,
        "accepted": accepted,
        "throttled_share": throttled / requests if requests else float("nan"),
        "requests_per_server": requests / total,
        "wall_seconds": wall,
        "creating_seconds": creating,
        "floor_seconds": floor,
        "wall_over_floor": wall / floor if floor else None,
        "rate_limit": [f["client_stats"]["rate_limit"] for f in fleets],
        "fake_stats": stats,
        "fleets": fleets,
    }


# -- summary -------------------------------------------------------------------------------


def _median_known(values: list[float | None]) -> float | None:
    known = [value for value in values if value is not None]
    return median(known) if known else None


def summarize(case: Case, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the runs; failures and backups per server as the worst run has them."""
    return {
        "label": case.label,
        "servers": case.total_servers,
        "processes": case.processes,
        "rate": case.rate,
        "burst": case.burst,
        "headers": case.headers,
        "failed": max(run["failed"] for run in runs),
        "backups_min": min(run["backups_min"] for run in runs),
        "backups_max": max(run["backups_max"] for run in runs),
        "throttled_share": median([run["throttled_share"] for run in runs]),
        "requests_per_server": median([run["requests_per_server"] for run in runs]),
        "wall_seconds": median([run["wall_seconds"] for run in runs]),
        "creating_seconds": median([run["creating_seconds"] for run in runs]),
        "floor_seconds": _median_known([run["floor_seconds"] for run in runs]),
        "wall_over_floor": _median_known([run["wall_over_floor"] for run in runs]),
        "requests": median([run["requests"] for run in runs]),
        "throttled": median([run["throttled"] for run in runs]),
        # Each process's client, its final rate the median over the runs.
        "rate_limit": [
            _median_known([run["rate_limit"][index] for run in runs])
            for index in range(case.processes)
        ],
    }


def targets_of(case: Case, summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The case's targets, each with its value and verdict."""
    label = case.label
    if case.rate is None:
        value = summary["requests_per_server"]
        return [
            {
                "case": label,
                "figure": "requests per server",
                "value": value,
                "target": f"<= {TARGET_UNLIMITED_REQUESTS}",
                "verdict": verdict(value, TARGET_UNLIMITED_REQUESTS, at_least=False),
            }
        ]
    most_throttled, most_slowed = case.max_throttled_share, case.max_wall_over_floor
    assert most_throttled is not None
    assert most_slowed is not None
    share, ratio = summary["throttled_share"], _nan(summary["wall_over_floor"])
    exactly_one = (
        verdict(summary["backups_min"], 1, at_least=True) == "PASS"
        and verdict(summary["backups_max"], 1, at_least=False) == "PASS"
    )
    return [
        {
            "case": label,
            "figure": "servers failed",
            "value": summary["failed"],
            "target": "<= 0",
            "verdict": verdict(summary["failed"], 0, at_least=False),
        },
        {
            "case": label,
            "figure": "backups per server (min-max)",
            "value": [summary["backups_min"], summary["backups_max"]],
            "target": "exactly 1",
            "verdict": "PASS" if exactly_one else "MISS",
        },
        {
            "case": label,
            "figure": "429s / all requests",
            "value": share,
            "target": f"<= {most_throttled:.0%}",
            "verdict": verdict(share, most_throttled, at_least=False),
        },
        {
            "case": label,
            "figure": "wall / floor",
            "value": ratio,
            "target": f"<= {most_slowed}",
            "verdict": verdict(ratio, most_slowed, at_least=False),
        },
    ]


def _nan(value: float | None) -> float:
    # The table prints NaN as "-": what the control row has for floor and ratio.
    return float("nan") if value is None else value


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def _rates(values: list[float | None]) -> str:
    return " / ".join("-" if value is None else f"{value:.1f}" for value in values)


def _value(target: dict[str, Any]) -> str:
    value = target["value"]
    if isinstance(value, list):
        return "-".join(map(str, value))
    if "429s" in target["figure"]:
        return f"{value:.1%}"
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def main() -> None:
    """Measure, print the tables, write results/ratelimit.json."""
    args = parse_args(__doc__)
    settings = Settings(quick=args.quick)
    cases = settings.cases
    samples: dict[str, list[dict[str, Any]]] = {case.key: [] for case in cases}
    for repetition in range(settings.repetitions):
        # A different case first each round, so drift on the machine spreads over all.
        shift = repetition % len(cases)
        for case in cases[shift:] + cases[:shift]:
            run = run_case(case, settings)
            samples[case.key].append(run)
            print(
                f"  {case.label}: failed {run['failed']}, backups/server "
                f"{run['backups_min']}-{run['backups_max']}, 429s {run['throttled_share']:.1%}, "
                f"wall {run['wall_seconds']:.1f} s, floor {_seconds(run['floor_seconds'])}, "
                f"rate {_rates(run['rate_limit'])}",
                flush=True,
            )
        print(f"  repetition {repetition + 1}/{settings.repetitions} done", flush=True)

    summary = {case.key: summarize(case, samples[case.key]) for case in cases}
    targets = [target for case in cases for target in targets_of(case, summary[case.key])]

    print()
    rows = [
        [
            case.label,
            s["failed"],
            f"{s['backups_min']}-{s['backups_max']}",
            f"{s['throttled_share']:.1%}",
            s["requests_per_server"],
            s["wall_seconds"],
            _nan(s["floor_seconds"]),
            _nan(s["wall_over_floor"]),
            _rates(s["rate_limit"]),
        ]
        for case in cases
        for s in (summary[case.key],)
    ]
    print(
        table(
            [
                "case",
                "failed",
                "backups/server",
                "429 share",
                "requests/server",
                "wall s",
                "floor s",
                "wall/floor",
                "rate_limit",
            ],
            rows,
            title=(
                "Fleets under a rate limit: create_many(wait=True), default client options "
                f"and poll intervals, backups last {settings.backup_seconds:g} s, burst = rate; "
                f"medians of {settings.repetitions} (failed, backups/server: worst run)"
            ),
        )
    )
    print(
        "  floor: (requests accepted - burst) / rate; rate_limit: each client's final "
        "client.stats.rate_limit, req/s"
    )
    print()
    rows = [
        [
            case.label,
            s["requests"],
            s["throttled"],
            s["creating_seconds"],
            s["wall_seconds"] - s["creating_seconds"],
        ]
        for case in cases
        for s in (summary[case.key],)
    ]
    print(
        table(
            ["case", "requests", "429s", "creating s", "after s"],
            rows,
            title="Where the time went (medians)",
        )
    )
    print(
        "  creating: first request to the last create sent; after: the rest of the wall "
        f"time (a backup lasts {settings.backup_seconds:g} s)"
    )
    print()
    print(
        table(
            ["case", "figure", "value", "target", "verdict"],
            [[t["case"], t["figure"], _value(t), t["target"], t["verdict"]] for t in targets],
            title="Targets",
        )
    )
    write_results(
        "ratelimit",
        {
            "settings": {
                "backup_seconds": settings.backup_seconds,
                "page_size": PAGE_SIZE,
                "repetitions": settings.repetitions,
                "client_options": "defaults",
                "poll_interval": "default",
                "max_poll_interval": "default",
                "burst": "= rate",
                "cases": {
                    case.key: {
                        "label": case.label,
                        "servers_per_process": case.servers,
                        "processes": case.processes,
                        "rate": case.rate,
                        "burst": case.burst,
                        "headers": case.headers,
                    }
                    for case in cases
                },
            },
            "targets": targets,
            "summary": summary,
            "samples": samples,
        },
        quick=args.quick,
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2:])
    else:
        main()
