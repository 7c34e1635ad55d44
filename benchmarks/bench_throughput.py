"""Throughput and CPU cost of ``client.backups.list()`` against raw aiohttp, httpx, requests.

What it measures: requests per second of the same GET (the 3-backup list page of
server 12345, same headers, body read and decoded), and the client process's CPU time
per request (``time.process_time()`` over the measured requests: on two shared cores
wall throughput swings by +-15% from one round to the next, CPU per request much less),
made by

- the SDK: ``BackupsClient(max_concurrency=C).backups.list(server_id=12345)``;
- typical raw aiohttp, written the way most users write it: a default
  ``ClientSession()`` (so at most 100 connections), ``session.get(url, params=...,
  headers=...)`` with the headers passed per request, ``response.raise_for_status()``
  then ``await response.json()``;
- lean raw aiohttp: a ``ClientSession`` with ``TCPConnector(limit=C)`` and the headers
  set once, ``await response.read()`` then ``json.loads`` (keep-alive, as the SDK);
- ``httpx.AsyncClient`` with ``Limits(max_connections=C)``, ``json.loads(resp.content)``;
- ``requests``: a 64-thread ``ThreadPoolExecutor``, one ``Session`` per thread, with
  ``min(C, 64)`` requests in flight;

at concurrency C = 1, 16, 64 and 256. The server must not be the bottleneck, so the main
table uses ``_static_server.py`` (a prebuilt answer from an asyncio Protocol, in its own
process on its own CPU); a second table repeats it against the real fake API process
for reference. A third case reads a 1,000-backup page (``bench_decode.build_page``,
served by the same static responder) with ``client.backups.list()``, against typical
raw aiohttp, which only builds dicts (``await response.json()``), and lean raw aiohttp.

Contenders alternate within each round (the order rotates from round to round); each
figure is the median over the rounds, each measurement bounded in requests and in time.
Ratios are taken within a round (the SDK and the other client measured minutes apart
would carry the machine's swings), and the median of those is what the verdicts use.

Targets, in requests per second at every concurrency: SDK >= 1.0x typical raw aiohttp
and >= 0.95x lean raw aiohttp (with the CPU ratios SDK/typical and SDK/lean alongside);
SDK >= 10x httpx and >= 5x requests at concurrency 64; on the 1,000-backup page, SDK
>= 1.0x typical raw aiohttp with the ``fast`` extra (orjson) installed. It also
profiles the success path (cProfile, at concurrency 64) of the SDK, typical and lean
raw aiohttp, and the 1,000-backup page's, and records the SDK's top own-time functions
per request and what it adds over each raw client: where to cut SDK overhead. The SDK's
own counters (``client.stats``) confirm that each ``list()`` sent exactly one request,
with no retries.

Run: ``python benchmarks/bench_throughput.py [--quick]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import json
import pstats
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import requests
from _common import (
    CLIENT_CPU,
    TOKEN,
    ServerProcess,
    fake_api,
    median,
    parse_args,
    pin_to_cpu,
    process_cpu_seconds,
    static_server,
    table,
    verdict,
    write_results,
)

from asyncbackups import USER_AGENT, BackupsClient

CONCURRENCIES = (1, 16, 64, 256)
PAGE_CONCURRENCIES = (1, 16)
PAGE_BACKUPS = 1_000
CONTENDERS = ("sdk", "aiohttp_typical", "aiohttp_lean", "httpx", "requests")
PAGE_CONTENDERS = ("sdk", "aiohttp_typical", "aiohttp_lean")
LABELS = {
    "sdk": "SDK",
    "aiohttp_typical": "aiohttp typical",
    "aiohttp_lean": "aiohttp lean",
    "httpx": "httpx",
    "requests": "requests",
}
# SDK / raw aiohttp in requests per second, at least (within a round, median of rounds).
TARGET_OVER_TYPICAL = 1.0
TARGET_OVER_LEAN = 0.95
TARGET_PAGE_OVER_TYPICAL = 1.0
REQUESTS_THREADS = 64
# Connections a default ClientSession() opens at most (aiohttp's TCPConnector(limit=100)):
# the typical client's cap at concurrency 256. Checked against the session itself.
TYPICAL_CONNECTION_LIMIT = 100
SERVER_ID = 12345
# The very headers the SDK sends on a read.
HEADERS = {
    "Authorization": f"Bearer {TOKEN}",
    "User-Agent": USER_AGENT,
    "Accept": "application/json",
}


@dataclass(frozen=True)
class Case:
    """One call: the raw clients' query, the SDK's ``list()`` keywords, backups per answer."""

    name: str
    params: dict[str, str]
    sdk_kwargs: dict[str, Any]
    backups: int


LIST = Case("list", {"server_id": str(SERVER_ID)}, {"server_id": SERVER_ID}, 3)
PAGE = Case("page", {}, {}, PAGE_BACKUPS)


class Budget:
    """How much one measurement may do: at most ``count`` requests, ``seconds`` of time."""

    def __init__(self, count: int, seconds: float) -> None:
        self.count = count
        self.seconds = seconds


@dataclass(frozen=True)
class Measured:
    """One measurement: requests/second, client CPU microseconds per request, requests."""

    rps: float
    cpu_us: float
    done: int


# The warm-up before each measurement opens every connection (its first wave alone does).
WARM_SECONDS = {"full": 0.5, "quick": 0.1}
_warm_seconds = WARM_SECONDS["full"]


async def _drive(call: Callable[[], Awaitable[Any]], concurrency: int, budget: Budget) -> Measured:
    """Run ``call`` from ``concurrency`` workers within the budget; rate and CPU cost."""
    remaining = budget.count
    done = 0
    deadline = time.perf_counter() + budget.seconds

    async def worker() -> None:
        nonlocal remaining, done
        while remaining > 0 and time.perf_counter() < deadline:
            remaining -= 1
            await call()
            done += 1

    workers = [worker() for _ in range(concurrency)]
    cpu, start = time.process_time(), time.perf_counter()
    await asyncio.gather(*workers)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    return Measured(done / elapsed, cpu / max(done, 1) * 1e6, done)


def _warm_budget(concurrency: int) -> Budget:
    return Budget(max(2 * concurrency, 20), _warm_seconds)


def _check(decoded: Any, case: Case) -> None:
    results = decoded["results"] if isinstance(decoded, dict) else decoded
    if len(results) != case.backups:
        raise RuntimeError(f"unexpected answer: {decoded!r:.200}")


# What the SDK's own counters (``client.stats``) saw over every SDK measurement: each
# ``list()`` of the one-page answer must be one request, or the rate would mislead.
SDK_COUNTS = {"calls": 0, "requests": 0, "retries": 0}

Opener = Callable[[str, int, Case], contextlib.AbstractAsyncContextManager[Any]]


@contextlib.asynccontextmanager
async def _sdk(base_url: str, concurrency: int, case: Case) -> AsyncIterator[Any]:
    calls = 0
    async with BackupsClient(TOKEN, base_url=base_url, max_concurrency=concurrency) as client:
        backups = client.backups
        kwargs = case.sdk_kwargs

        async def call() -> Any:
            nonlocal calls
            calls += 1
            return await backups.list(**kwargs)

        yield call
        stats = client.stats
    SDK_COUNTS["calls"] += calls
    SDK_COUNTS["requests"] += stats.total_requests
    SDK_COUNTS["retries"] += stats.retries


@contextlib.asynccontextmanager
async def _aiohttp_typical(base_url: str, concurrency: int, case: Case) -> AsyncIterator[Any]:
    url = base_url + "backups/"
    params = case.params
    async with aiohttp.ClientSession() as session:
        if session.connector is None or session.connector.limit != TYPICAL_CONNECTION_LIMIT:
            raise RuntimeError("aiohttp's default connection limit is not the one recorded")

        async def call() -> Any:
            async with session.get(url, params=params, headers=HEADERS) as response:
                response.raise_for_status()
                return await response.json()

        yield call


@contextlib.asynccontextmanager
async def _aiohttp_lean(base_url: str, concurrency: int, case: Case) -> AsyncIterator[Any]:
    url = base_url + "backups/"
    params = case.params
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, headers=HEADERS) as session:

        async def call() -> Any:
            async with session.get(url, params=params) as response:
                body = await response.read()
                if response.status != 200:
                    raise RuntimeError(f"status {response.status}")
                return json.loads(body)

        yield call


@contextlib.asynccontextmanager
async def _httpx(base_url: str, concurrency: int, case: Case) -> AsyncIterator[Any]:
    url = base_url + "backups/"
    params = case.params
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(headers=HEADERS, limits=limits, timeout=30.0) as client:

        async def call() -> Any:
            response = await client.get(url, params=params)
            if response.status_code != 200:
                raise RuntimeError(f"status {response.status_code}")
            return json.loads(response.content)

        yield call


OPENERS: dict[str, Opener] = {
    "sdk": _sdk,
    "aiohttp_typical": _aiohttp_typical,
    "aiohttp_lean": _aiohttp_lean,
    "httpx": _httpx,
}


async def _measure_async(
    contender: str,
    base_url: str,
    concurrency: int,
    budget: Budget,
    case: Case,
    profile: cProfile.Profile | None = None,
) -> Measured:
    async with OPENERS[contender](base_url, concurrency, case) as call:
        _check(await call(), case)
        await _drive(call, concurrency, _warm_budget(concurrency))
        if profile is not None:
            profile.enable()
        try:
            return await _drive(call, concurrency, budget)
        finally:
            if profile is not None:
                profile.disable()


def _requests(base_url: str, concurrency: int, budget: Budget, case: Case) -> Measured:
    url = base_url + "backups/"
    local = threading.local()
    lock = threading.Lock()
    workers = min(concurrency, REQUESTS_THREADS)

    def call() -> Any:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
            session.headers.update(HEADERS)
        response = session.get(url, params=case.params, timeout=30)
        if response.status_code != 200:
            raise RuntimeError(f"status {response.status_code}")
        return json.loads(response.content)

    def run(pool: ThreadPoolExecutor, limit: Budget) -> Measured:
        remaining = [limit.count]
        done = [0]
        deadline = time.perf_counter() + limit.seconds

        def worker() -> None:
            while True:
                with lock:
                    if remaining[0] <= 0 or time.perf_counter() >= deadline:
                        return
                    remaining[0] -= 1
                call()
                with lock:
                    done[0] += 1

        # process_time() counts every thread of the process, so the pool's work too.
        cpu, start = time.process_time(), time.perf_counter()
        for future in [pool.submit(worker) for _ in range(workers)]:
            future.result()
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        return Measured(done[0] / elapsed, cpu / max(done[0], 1) * 1e6, done[0])

    with ThreadPoolExecutor(max_workers=REQUESTS_THREADS) as pool:
        _check(pool.submit(call).result(), case)
        run(pool, _warm_budget(workers))
        return run(pool, budget)


def measure(
    contender: str, base_url: str, concurrency: int, budget: Budget, case: Case = LIST
) -> Measured:
    """One measurement of one contender, on a fresh event loop."""
    if contender == "requests":
        return _requests(base_url, concurrency, budget, case)
    return asyncio.run(_measure_async(contender, base_url, concurrency, budget, case))


def _ratios(runs: dict[str, dict[str, list[float]]], other: str) -> dict[str, float]:
    """SDK / ``other``: of the medians, and the median of the within-round ratios."""
    sdk, them = runs["sdk"], runs[other]
    return {
        "rps": median(sdk["rps"]) / median(them["rps"]),
        "rps_paired": median([s / o for s, o in zip(sdk["rps"], them["rps"], strict=True)]),
        "cpu": median(sdk["cpu_us"]) / median(them["cpu_us"]),
        "cpu_paired": median([s / o for s, o in zip(sdk["cpu_us"], them["cpu_us"], strict=True)]),
    }


def compare(
    server: ServerProcess,
    *,
    repetitions: int,
    budget: Budget,
    label: str,
    case: Case = LIST,
    concurrencies: tuple[int, ...] = CONCURRENCIES,
    contenders: tuple[str, ...] = CONTENDERS,
) -> dict[str, Any]:
    """Every contender at every concurrency, alternating; medians and ratios."""
    base_url = server.url
    samples: dict[int, dict[str, dict[str, list[float]]]] = {
        c: {name: {"rps": [], "cpu_us": []} for name in contenders} for c in concurrencies
    }
    server_load: list[float] = []
    for repetition in range(repetitions):
        for concurrency in concurrencies:
            shift = repetition % len(contenders)
            for contender in contenders[shift:] + contenders[:shift]:
                cpu_before, started = process_cpu_seconds(server.pid), time.perf_counter()
                measured = measure(contender, base_url, concurrency, budget, case)
                cpu = process_cpu_seconds(server.pid) - cpu_before
                server_load.append(cpu / (time.perf_counter() - started))
                samples[concurrency][contender]["rps"].append(measured.rps)
                samples[concurrency][contender]["cpu_us"].append(measured.cpu_us)
        print(f"  [{label}] round {repetition + 1}/{repetitions} done", flush=True)
    rows = []
    for concurrency in concurrencies:
        runs = samples[concurrency]
        rps = {name: median(runs[name]["rps"]) for name in contenders}
        cpu_us = {name: median(runs[name]["cpu_us"]) for name in contenders}
        row: dict[str, Any] = {
            "concurrency": concurrency,
            "rps": rps,
            "cpu_us_per_request": cpu_us,
            "samples": runs,
            "sdk_over": {name: _ratios(runs, name) for name in contenders if name != "sdk"},
            "sdk_extra_us_per_request": {
                "wall": (1 / rps["sdk"] - 1 / rps["aiohttp_lean"]) * 1e6,
                "cpu": cpu_us["sdk"] - cpu_us["aiohttp_lean"],
            },
        }
        if "requests" in contenders:
            row["requests_effective_concurrency"] = min(concurrency, REQUESTS_THREADS)
        if "aiohttp_typical" in contenders:
            row["typical_connections"] = min(concurrency, TYPICAL_CONNECTION_LIMIT)
        rows.append(row)
    return {
        "server": label,
        "case": case.name,
        "backups_per_answer": case.backups,
        "repetitions": repetitions,
        "max_requests": budget.count,
        "max_seconds": budget.seconds,
        # The server's CPU use during a measurement (1.0: one core busy), warm-up included.
        "server_cpu_load_max": max(server_load),
        "server_cpu_load_median": median(server_load),
        "rows": rows,
    }


def print_comparison(result: dict[str, Any], title: str) -> None:
    """The tables of one comparison: requests/second, then CPU per request."""
    names = list(result["rows"][0]["rps"])
    others = [name for name in names if name != "sdk"]
    rows = [
        [
            row["concurrency"],
            *(row["rps"][name] for name in names),
            *(row["sdk_over"][name]["rps_paired"] for name in others),
        ]
        for row in result["rows"]
    ]
    headers = ["conc", *(LABELS[n] for n in names), *(f"SDK/{LABELS[n]}" for n in others)]
    print()
    print(table(headers, rows, title=f"{title}: requests/second (median)"))
    rows = [
        [
            row["concurrency"],
            *(row["cpu_us_per_request"][name] for name in names),
            *(row["sdk_over"][name]["cpu_paired"] for name in others),
        ]
        for row in result["rows"]
    ]
    print()
    print(table(headers, rows, title=f"{title}: client CPU us per request (median)"))
    print(
        f"Ratios: medians over {result['repetitions']} rounds of SDK/other measured back to "
        "back. Server CPU load per measurement: "
        f"median {result['server_cpu_load_median']:.0%}, "
        f"max {result['server_cpu_load_max']:.0%} of one core"
    )


# -- profile ------------------------------------------------------------------------------

_AREAS = (
    ("asyncbackups", "asyncbackups"),
    ("cattrs", "cattrs"),
    ("tenacity", "tenacity"),
    ("aiohttp", "aiohttp"),
    ("yarl", "yarl"),
    ("multidict", "multidict"),
    ("orjson", "orjson"),
    ("asyncio", "asyncio"),
    ("json", "json"),
    ("datetime", "datetime"),
    ("attr", "attrs"),
)
_PROFILED = ("sdk", "aiohttp_typical", "aiohttp_lean")

Key = tuple[str, int, str]


def _area(key: Key) -> str:
    filename, _, function = key
    where = f"{filename} {function}"
    for needle, area in _AREAS:
        if needle in where:
            return area
    return "other"


def _name(key: Key) -> str:
    filename, line, function = key
    if filename == "~":
        return function
    parts = Path(filename).parts
    short = "/".join(parts[-2:]) if len(parts) > 1 else filename
    return f"{short}:{line}({function})"


def _own_times(profile: cProfile.Profile, requests_made: int) -> dict[Key, tuple[float, float]]:
    """Own time (us) and calls, each per request, of every function profiled."""
    stats = pstats.Stats(profile)
    own: dict[Key, tuple[float, float]] = {}
    for key, value in stats.stats.items():  # type: ignore[attr-defined]
        # (primitive calls, calls, own time, cumulative time, callers)
        own[key] = (value[2] / requests_made * 1e6, value[1] / requests_made)
    return own


def _profiled(
    base_url: str, case: Case, concurrency: int, count: int, contenders: tuple[str, ...]
) -> dict[str, dict[Key, tuple[float, float]]]:
    own = {}
    for name in contenders:
        profile = cProfile.Profile()
        measured = asyncio.run(
            _measure_async(name, base_url, concurrency, Budget(count, 60.0), case, profile)
        )
        own[name] = _own_times(profile, measured.done)
    return own


def _top(times: dict[Key, tuple[float, float]], count: int = 20) -> list[dict[str, Any]]:
    return [
        {
            "function": _name(key),
            "area": _area(key),
            "us_per_request": us,
            "calls_per_request": calls,
        }
        for key, (us, calls) in sorted(times.items(), key=lambda item: -item[1][0])[:count]
    ]


def _package(times: dict[Key, tuple[float, float]]) -> dict[Key, tuple[float, float]]:
    """Only the functions of the ``asyncbackups`` package itself."""
    return {key: value for key, value in times.items() if _area(key) == "asyncbackups"}


def _extra(
    sdk: dict[Key, tuple[float, float]], raw: dict[Key, tuple[float, float]]
) -> list[dict[str, Any]]:
    extra = {
        key: sdk.get(key, (0.0, 0.0))[0] - raw.get(key, (0.0, 0.0))[0]
        for key in sdk.keys() | raw.keys()
    }
    return [
        {
            "function": _name(key),
            "area": _area(key),
            "sdk_us": sdk.get(key, (0.0, 0.0))[0],
            "raw_us": raw.get(key, (0.0, 0.0))[0],
            "extra_us": value,
        }
        for key, value in sorted(extra.items(), key=lambda item: -item[1])[:20]
    ]


def profile_success_path(base_url: str, *, count: int, case: Case = LIST) -> dict[str, Any]:
    """cProfile the SDK and both raw aiohttp clients at concurrency 64, per request."""
    concurrency = 64
    own = _profiled(base_url, case, concurrency, count, _PROFILED)
    areas: dict[str, dict[str, float]] = {}
    for name, times in own.items():
        for key, (us, _) in times.items():
            area = areas.setdefault(_area(key), dict.fromkeys(_PROFILED, 0.0))
            area[name] += us
    return {
        "case": case.name,
        "concurrency": concurrency,
        "requests": count,
        "note": "cProfile's own overhead inflates every figure; compare them with each other",
        "total_own_us_per_request": {
            name: sum(us for us, _ in times.values()) for name, times in own.items()
        },
        "areas_us_per_request": dict(
            sorted(areas.items(), key=lambda item: item[1]["aiohttp_lean"] - item[1]["sdk"])
        ),
        "sdk_top_own_time": _top(own["sdk"]),
        "sdk_package_top_own_time": _top(_package(own["sdk"])),
        "sdk_extra_over_lean": _extra(own["sdk"], own["aiohttp_lean"]),
        "sdk_extra_over_typical": _extra(own["sdk"], own["aiohttp_typical"]),
    }


def profile_page(base_url: str, *, count: int) -> dict[str, Any]:
    """cProfile the 1,000-backup page at concurrency 1: the SDK and typical aiohttp."""
    own = _profiled(base_url, PAGE, 1, count, ("sdk", "aiohttp_typical"))
    return {
        "case": PAGE.name,
        "concurrency": 1,
        "requests": count,
        "total_own_us_per_request": {
            name: sum(us for us, _ in times.values()) for name, times in own.items()
        },
        "sdk_top_own_time": _top(own["sdk"]),
        "sdk_package_top_own_time": _top(_package(own["sdk"])),
        "typical_top_own_time": _top(own["aiohttp_typical"], 10),
    }


def print_profile(result: dict[str, Any], page: dict[str, Any]) -> None:
    """The profile's tables: costs by area, top own time, and what the SDK adds."""
    totals = result["total_own_us_per_request"]
    print()
    print(
        f"Profile at concurrency {result['concurrency']} ({result['requests']} requests, "
        "cProfile, own time in us per request): "
        + ", ".join(f"{LABELS[name]} {us:.1f}" for name, us in totals.items())
    )
    rows = [
        [area, *values.values(), values["sdk"] - values["aiohttp_lean"]]
        for area, values in result["areas_us_per_request"].items()
    ]
    headers = ["area", *(f"{LABELS[name]} us" for name in _PROFILED), "SDK-lean us"]
    print(table(headers, rows, title="By package:"))
    page_totals = page["total_own_us_per_request"]
    for title, top, count in (
        ("SDK run: top own time, any function", result["sdk_top_own_time"], 10),
        ("SDK run: top own time in asyncbackups", result["sdk_package_top_own_time"], 12),
        (
            f"SDK on the {PAGE_BACKUPS:,}-backup page, concurrency 1 "
            f"(total {page_totals['sdk']:,.0f} us, typical aiohttp "
            f"{page_totals['aiohttp_typical']:,.0f} us): top own time",
            page["sdk_top_own_time"],
            12,
        ),
    ):
        rows = [
            [item["function"][:70], item["area"], item["us_per_request"], item["calls_per_request"]]
            for item in top[:count]
        ]
        print()
        print(table(["function", "area", "us/req", "calls/req"], rows, title=title))
    rows = [
        [item["function"][:70], item["area"], item["sdk_us"], item["raw_us"], item["extra_us"]]
        for item in result["sdk_extra_over_lean"][:15]
    ]
    print()
    print(
        table(
            ["function", "area", "SDK us", "lean us", "extra us"],
            rows,
            title="SDK beyond lean raw aiohttp: largest extra own time per request",
        )
    )


# -- main ---------------------------------------------------------------------------------


def _target(figure: str, value: float, target: float, **extra: Any) -> dict[str, Any]:
    return {
        "figure": figure,
        "value": value,
        "target": f">= {target:g}",
        "verdict": verdict(value, target, at_least=True),
        **extra,
    }


def targets_of(static: dict[str, Any], page: dict[str, Any], orjson: bool) -> list[dict[str, Any]]:
    """Every target's figure (ratios within rounds, medians), value and verdict."""
    targets = []
    for other, target in (
        ("aiohttp_typical", TARGET_OVER_TYPICAL),
        ("aiohttp_lean", TARGET_OVER_LEAN),
    ):
        for row in static["rows"]:
            ratios = row["sdk_over"][other]
            targets.append(
                _target(
                    f"SDK / {LABELS[other]}, req/s at {row['concurrency']}",
                    ratios["rps_paired"],
                    target,
                    cpu_ratio=ratios["cpu_paired"],
                )
            )
    at_64 = next(row for row in static["rows"] if row["concurrency"] == 64)
    for other, target in (("httpx", 10), ("requests", 5)):
        ratios = at_64["sdk_over"][other]
        targets.append(
            _target(
                f"SDK / {other}, req/s at 64",
                ratios["rps_paired"],
                target,
                cpu_ratio=ratios["cpu_paired"],
            )
        )
    for row in page["rows"]:
        ratios = row["sdk_over"]["aiohttp_typical"]
        entry = _target(
            f"{PAGE_BACKUPS:,}-backup page: SDK / aiohttp typical at {row['concurrency']}",
            ratios["rps_paired"],
            TARGET_PAGE_OVER_TYPICAL,
            cpu_ratio=ratios["cpu_paired"],
        )
        if not orjson:  # the target is set for the fast extra
            entry["verdict"] = "-"
            entry["target"] += " (with orjson, not installed)"
        targets.append(entry)
    return targets


def print_targets(targets: list[dict[str, Any]]) -> None:
    """The targets' table, with the CPU ratio beside each requests/second ratio."""
    rows = [[t["figure"], t["value"], t["target"], t["verdict"], t["cpu_ratio"]] for t in targets]
    print()
    print(
        table(
            ["figure", "value", "target", "verdict", "CPU ratio"],
            rows,
            title="Targets (ratios within rounds, medians; CPU ratio: SDK/other CPU per request)",
        )
    )


def main() -> None:
    """Run the comparisons and the profiles; print tables; write results/throughput.json."""
    global _warm_seconds
    args = parse_args(__doc__)
    pinned = pin_to_cpu(CLIENT_CPU)
    if args.quick:
        _warm_seconds = WARM_SECONDS["quick"]
        static_reps, static_budget = 3, Budget(300, 0.06)
        page_reps, page_budget = 3, Budget(60, 0.06)
        fake_reps, fake_budget = 1, Budget(100, 0.05)
        profile_count, page_profile_count = 300, 30
    else:
        static_reps, static_budget = 7, Budget(20_000, 0.7)
        page_reps, page_budget = 7, Budget(2_000, 0.7)
        fake_reps, fake_budget = 3, Budget(5_000, 0.4)
        profile_count, page_profile_count = 6_000, 400
    # asyncbackups loads orjson at import when it is installed (the ``fast`` extra).
    orjson = sys.modules.get("orjson") is not None
    print(f"client pinned to CPU {CLIENT_CPU}: {pinned}; SDK parses with orjson: {orjson}")
    with static_server() as server:
        print(f"static responder at {server.url} (pid {server.pid})")
        static = compare(server, repetitions=static_reps, budget=static_budget, label="static")
        profile = profile_success_path(server.url, count=profile_count)
    with static_server(backups=PAGE_BACKUPS) as server:
        print(f"static responder of a {PAGE_BACKUPS:,}-backup page at {server.url}")
        page = compare(
            server,
            repetitions=page_reps,
            budget=page_budget,
            label=f"{PAGE_BACKUPS:,}-backup page",
            case=PAGE,
            concurrencies=PAGE_CONCURRENCIES,
            contenders=PAGE_CONTENDERS,
        )
        page_profile = profile_page(server.url, count=page_profile_count)
    with fake_api() as server:
        print(f"fake API at {server.url} (pid {server.pid})")
        fake = compare(server, repetitions=fake_reps, budget=fake_budget, label="fake API")
    print_comparison(static, "Static responder")
    print_comparison(page, f"Static responder, {PAGE_BACKUPS:,}-backup page")
    print_comparison(fake, "Fake API process (for reference)")
    print_profile(profile, page_profile)
    sdk_counts = {
        **SDK_COUNTS,
        "requests_per_call": SDK_COUNTS["requests"] / max(SDK_COUNTS["calls"], 1),
    }
    print()
    print(
        f"client.stats over every SDK measurement: {sdk_counts['calls']:,} list() calls, "
        f"{sdk_counts['requests']:,} requests ({sdk_counts['requests_per_call']:.3f} per call), "
        f"{sdk_counts['retries']} retries"
    )
    targets = targets_of(static, page, orjson)
    print_targets(targets)
    write_results(
        "throughput",
        {
            "client_pinned_to_cpu": CLIENT_CPU if pinned else None,
            "sdk_parser": "orjson.loads" if orjson else "json.loads",
            "cpu_measure": "client time.process_time() over the measured requests / requests",
            "typical_connection_limit": TYPICAL_CONNECTION_LIMIT,
            "targets": targets,
            "static": static,
            "page": page,
            "fake_api": fake,
            "profile": profile,
            "page_profile": page_profile,
            "sdk_client_stats": sdk_counts,
        },
        quick=args.quick,
    )


if __name__ == "__main__":
    main()
