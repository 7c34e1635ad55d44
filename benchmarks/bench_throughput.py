"""Throughput of ``client.backups.list(server_id=12345)`` against raw aiohttp, httpx, requests.

What it measures: requests per second of the same GET (the 3-backup list page of
server 12345, same headers, body read and decoded) made by

- the SDK: ``BackupsClient(max_concurrency=C).backups.list(server_id=12345)``;
- raw aiohttp: a ``ClientSession`` with ``TCPConnector(limit=C)``, ``await resp.read()``
  then ``json.loads`` (keep-alive, as the SDK);
- ``httpx.AsyncClient`` with ``Limits(max_connections=C)``, ``json.loads(resp.content)``;
- ``requests``: a 64-thread ``ThreadPoolExecutor``, one ``Session`` per thread, with
  ``min(C, 64)`` requests in flight;

at concurrency C = 1, 16, 64 and 256. The server must not be the bottleneck, so the main
table uses ``_static_server.py`` (a prebuilt answer from an asyncio Protocol, in its own
process on its own CPU); a second table repeats it against the real fake API process
for reference. Contenders alternate within each repetition; each figure is the median
of several repetitions, each bounded in requests and in time.

Targets: SDK >= 0.95x raw aiohttp at every concurrency; SDK >= 10x httpx and >= 5x
requests at concurrency 64. It also profiles the SDK's success path (cProfile, at
concurrency 64) next to raw aiohttp's, and lists the functions whose own time the SDK
adds per request: where to cut SDK overhead. The SDK's own counters (``client.stats``)
confirm that each ``list()`` sent exactly one request, with no retries.

Run: ``python benchmarks/bench_throughput.py [--quick]``.
"""

from __future__ import annotations

import asyncio
import cProfile
import json
import pstats
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
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
CONTENDERS = ("sdk", "aiohttp", "httpx", "requests")
LABELS = {"sdk": "SDK", "aiohttp": "raw aiohttp", "httpx": "httpx", "requests": "requests"}
REQUESTS_THREADS = 64
SERVER_ID = 12345
PARAMS = {"server_id": str(SERVER_ID)}
# The very headers the SDK sends on a read.
HEADERS = {
    "Authorization": f"Bearer {TOKEN}",
    "User-Agent": USER_AGENT,
    "Accept": "application/json",
}


class Budget:
    """How much one measurement may do: at most ``count`` requests, ``seconds`` of time."""

    def __init__(self, count: int, seconds: float) -> None:
        self.count = count
        self.seconds = seconds


# The warm-up before each measurement opens every connection (its first wave alone does).
WARM_SECONDS = {"full": 1.0, "quick": 0.2}
_warm_seconds = WARM_SECONDS["full"]


async def _drive(call: Callable[[], Awaitable[Any]], concurrency: int, budget: Budget) -> float:
    """Run ``call`` from ``concurrency`` workers within the budget; return requests/second."""
    rate, _ = await _drive_counted(call, concurrency, budget)
    return rate


async def _drive_counted(
    call: Callable[[], Awaitable[Any]], concurrency: int, budget: Budget
) -> tuple[float, int]:
    """As :func:`_drive`, also giving how many calls were made."""
    remaining = budget.count
    done = 0
    deadline = time.perf_counter() + budget.seconds

    async def worker() -> None:
        nonlocal remaining, done
        while remaining > 0 and time.perf_counter() < deadline:
            remaining -= 1
            await call()
            done += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done / (time.perf_counter() - start), done


def _warm_budget(concurrency: int) -> Budget:
    return Budget(max(2 * concurrency, 20), _warm_seconds)


def _check(decoded: Any) -> None:
    results = decoded["results"] if isinstance(decoded, dict) else decoded
    if len(results) != 3:
        raise RuntimeError(f"unexpected answer: {decoded!r:.200}")


# What the SDK's own counters (``client.stats``) saw over every SDK measurement: each
# ``list()`` of the one-page answer must be one request, or the rate would mislead.
SDK_COUNTS = {"calls": 0, "requests": 0, "retries": 0}


async def _sdk(base_url: str, concurrency: int, budget: Budget, profile: Any = None) -> float:
    async with BackupsClient(TOKEN, base_url=base_url, max_concurrency=concurrency) as client:
        _check(await client.backups.list(server_id=SERVER_ID))

        async def call() -> None:
            await client.backups.list(server_id=SERVER_ID)

        _, warm = await _drive_counted(call, concurrency, _warm_budget(concurrency))
        if profile is not None:
            profile.enable()
        try:
            rate, done = await _drive_counted(call, concurrency, budget)
        finally:
            if profile is not None:
                profile.disable()
        stats = client.stats
    SDK_COUNTS["calls"] += 1 + warm + done
    SDK_COUNTS["requests"] += stats.total_requests
    SDK_COUNTS["retries"] += stats.retries
    return rate


async def _aiohttp(base_url: str, concurrency: int, budget: Budget, profile: Any = None) -> float:
    url = base_url + "backups/"
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, headers=HEADERS) as session:

        async def call() -> Any:
            async with session.get(url, params=PARAMS) as response:
                body = await response.read()
                if response.status != 200:
                    raise RuntimeError(f"status {response.status}")
                return json.loads(body)

        _check(await call())
        await _drive(call, concurrency, _warm_budget(concurrency))
        if profile is not None:
            profile.enable()
        try:
            return await _drive(call, concurrency, budget)
        finally:
            if profile is not None:
                profile.disable()


async def _httpx(base_url: str, concurrency: int, budget: Budget) -> float:
    url = base_url + "backups/"
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(headers=HEADERS, limits=limits, timeout=30.0) as client:

        async def call() -> Any:
            response = await client.get(url, params=PARAMS)
            if response.status_code != 200:
                raise RuntimeError(f"status {response.status_code}")
            return json.loads(response.content)

        _check(await call())
        await _drive(call, concurrency, _warm_budget(concurrency))
        return await _drive(call, concurrency, budget)


def _requests(base_url: str, concurrency: int, budget: Budget) -> float:
    url = base_url + "backups/"
    local = threading.local()
    lock = threading.Lock()
    workers = min(concurrency, REQUESTS_THREADS)

    def call() -> Any:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
            session.headers.update(HEADERS)
        response = session.get(url, params=PARAMS, timeout=30)
        if response.status_code != 200:
            raise RuntimeError(f"status {response.status_code}")
        return json.loads(response.content)

    def run(pool: ThreadPoolExecutor, limit: Budget) -> float:
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

        start = time.perf_counter()
        for future in [pool.submit(worker) for _ in range(workers)]:
            future.result()
        return done[0] / (time.perf_counter() - start)

    with ThreadPoolExecutor(max_workers=REQUESTS_THREADS) as pool:
        _check(pool.submit(call).result())
        run(pool, _warm_budget(workers))
        return run(pool, budget)


def measure(contender: str, base_url: str, concurrency: int, budget: Budget) -> float:
    """One measurement of one contender, on a fresh event loop; requests per second."""
    if contender == "requests":
        return _requests(base_url, concurrency, budget)
    runner = {"sdk": _sdk, "aiohttp": _aiohttp, "httpx": _httpx}[contender]
    return asyncio.run(runner(base_url, concurrency, budget))


def compare(
    server: ServerProcess, *, repetitions: int, budget: Budget, label: str
) -> dict[str, Any]:
    """Every contender at every concurrency, alternating; medians and ratios."""
    base_url = server.url
    samples: dict[int, dict[str, list[float]]] = {
        c: {name: [] for name in CONTENDERS} for c in CONCURRENCIES
    }
    server_load: list[float] = []
    for repetition in range(repetitions):
        for concurrency in CONCURRENCIES:
            shift = repetition % len(CONTENDERS)
            for contender in CONTENDERS[shift:] + CONTENDERS[:shift]:
                cpu_before, started = process_cpu_seconds(server.pid), time.perf_counter()
                rate = measure(contender, base_url, concurrency, budget)
                cpu = process_cpu_seconds(server.pid) - cpu_before
                server_load.append(cpu / (time.perf_counter() - started))
                samples[concurrency][contender].append(rate)
        print(f"  [{label}] repetition {repetition + 1}/{repetitions} done", flush=True)
    rows = []
    for concurrency in CONCURRENCIES:
        rps = {name: median(samples[concurrency][name]) for name in CONTENDERS}
        runs = samples[concurrency]
        # Each repetition measures the SDK and raw aiohttp back to back, so their ratio
        # within a repetition shrugs off other load on the machine better than a ratio
        # of medians taken minutes apart.
        paired = median([s / a for s, a in zip(runs["sdk"], runs["aiohttp"], strict=True)])
        rows.append(
            {
                "concurrency": concurrency,
                "requests_effective_concurrency": min(concurrency, REQUESTS_THREADS),
                "rps": rps,
                "samples": samples[concurrency],
                "sdk_over_aiohttp": rps["sdk"] / rps["aiohttp"],
                "sdk_over_aiohttp_paired": paired,
                "sdk_over_httpx": rps["sdk"] / rps["httpx"],
                "sdk_over_requests": rps["sdk"] / rps["requests"],
                "sdk_extra_us_per_request": (1 / rps["sdk"] - 1 / rps["aiohttp"]) * 1e6,
            }
        )
    return {
        "server": label,
        "repetitions": repetitions,
        "max_requests": budget.count,
        "max_seconds": budget.seconds,
        # The server's CPU use during a measurement (1.0: one core busy), warm-up included.
        "server_cpu_load_max": max(server_load),
        "server_cpu_load_median": median(server_load),
        "rows": rows,
    }


def print_comparison(result: dict[str, Any], title: str) -> None:
    """The table of one comparison."""
    headers = ["conc", *(LABELS[name] for name in CONTENDERS)]
    headers += ["SDK/aiohttp", "paired", "SDK/httpx", "SDK/requests", "SDK extra us/req"]
    rows = [
        [
            row["concurrency"],
            *(row["rps"][name] for name in CONTENDERS),
            row["sdk_over_aiohttp"],
            row["sdk_over_aiohttp_paired"],
            row["sdk_over_httpx"],
            row["sdk_over_requests"],
            row["sdk_extra_us_per_request"],
        ]
        for row in result["rows"]
    ]
    print()
    print(table(headers, rows, title=f"{title} (requests/second, median)"))
    print(
        "paired: the median over repetitions of SDK/aiohttp measured back to back. "
        f"Server CPU load per measurement: median {result['server_cpu_load_median']:.0%}, "
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


def _area(key: tuple[str, int, str]) -> str:
    filename, _, function = key
    where = f"{filename} {function}"
    for needle, area in _AREAS:
        if needle in where:
            return area
    return "other"


def _name(key: tuple[str, int, str]) -> str:
    filename, line, function = key
    if filename == "~":
        return function
    parts = Path(filename).parts
    short = "/".join(parts[-2:]) if len(parts) > 1 else filename
    return f"{short}:{line}({function})"


def _own_times(profile: cProfile.Profile, requests_made: int) -> dict[tuple[str, int, str], float]:
    stats = pstats.Stats(profile)
    own: dict[tuple[str, int, str], float] = {}
    for key, value in stats.stats.items():  # type: ignore[attr-defined]
        own[key] = value[2] / requests_made * 1e6  # tottime, microseconds per request
    return own


def profile_success_path(base_url: str, *, count: int) -> dict[str, Any]:
    """cProfile the SDK and raw aiohttp at concurrency 64; own time per request."""
    concurrency = 64
    budget = Budget(count, 60.0)
    result: dict[str, Any] = {"concurrency": concurrency, "requests": count}
    own: dict[str, dict[tuple[str, int, str], float]] = {}
    for name, runner in (("sdk", _sdk), ("aiohttp", _aiohttp)):
        profile = cProfile.Profile()
        asyncio.run(runner(base_url, concurrency, budget, profile))
        own[name] = _own_times(profile, count)
    sdk, raw = own["sdk"], own["aiohttp"]
    result["total_own_us_per_request"] = {"sdk": sum(sdk.values()), "aiohttp": sum(raw.values())}
    areas: dict[str, dict[str, float]] = {}
    for name, times in own.items():
        for key, value in times.items():
            area = areas.setdefault(_area(key), {"sdk": 0.0, "aiohttp": 0.0})
            area[name] += value
    result["areas_us_per_request"] = dict(
        sorted(areas.items(), key=lambda item: item[1]["aiohttp"] - item[1]["sdk"])
    )
    result["sdk_top_own_time"] = [
        {"function": _name(key), "area": _area(key), "us_per_request": value}
        for key, value in sorted(sdk.items(), key=lambda item: -item[1])[:20]
    ]
    extra = {key: sdk.get(key, 0.0) - raw.get(key, 0.0) for key in sdk.keys() | raw.keys()}
    result["sdk_extra_over_aiohttp"] = [
        {
            "function": _name(key),
            "area": _area(key),
            "sdk_us": sdk.get(key, 0.0),
            "aiohttp_us": raw.get(key, 0.0),
            "extra_us": value,
        }
        for key, value in sorted(extra.items(), key=lambda item: -item[1])[:20]
    ]
    return result


def print_profile(result: dict[str, Any]) -> None:
    """The profile's tables: costs by area, top own time, and what the SDK adds."""
    totals = result["total_own_us_per_request"]
    print()
    print(
        f"Profile at concurrency {result['concurrency']} ({result['requests']} requests, "
        f"cProfile, own time in us per request): SDK {totals['sdk']:.1f}, "
        f"raw aiohttp {totals['aiohttp']:.1f}"
    )
    rows = [
        [area, values["sdk"], values["aiohttp"], values["sdk"] - values["aiohttp"]]
        for area, values in result["areas_us_per_request"].items()
    ]
    print(table(["area", "SDK us", "aiohttp us", "extra us"], rows, title="By package:"))
    rows = [
        [item["function"][:70], item["area"], item["us_per_request"]]
        for item in result["sdk_top_own_time"][:15]
    ]
    print()
    print(table(["function", "area", "us/req"], rows, title="SDK: top own time"))
    rows = [
        [item["function"][:70], item["area"], item["sdk_us"], item["aiohttp_us"], item["extra_us"]]
        for item in result["sdk_extra_over_aiohttp"][:15]
    ]
    print()
    print(
        table(
            ["function", "area", "SDK us", "aiohttp us", "extra us"],
            rows,
            title="SDK beyond raw aiohttp: largest extra own time per request",
        )
    )


def main() -> None:
    """Run both comparisons and the profile; print tables; write results/throughput.json."""
    global _warm_seconds
    args = parse_args(__doc__)
    pinned = pin_to_cpu(CLIENT_CPU)
    if args.quick:
        _warm_seconds = WARM_SECONDS["quick"]
        static_reps, static_budget = 1, Budget(200, 0.05)
        fake_reps, fake_budget = 1, Budget(100, 0.05)
        profile_count = 300
    else:
        static_reps, static_budget = 5, Budget(20_000, 0.7)
        fake_reps, fake_budget = 3, Budget(5_000, 0.4)
        profile_count = 6_000
    print(f"client pinned to CPU {CLIENT_CPU}: {pinned}")
    with static_server() as server:
        print(f"static responder at {server.url} (pid {server.pid})")
        static = compare(server, repetitions=static_reps, budget=static_budget, label="static")
        profile = profile_success_path(server.url, count=profile_count)
    with fake_api() as server:
        print(f"fake API at {server.url} (pid {server.pid})")
        fake = compare(server, repetitions=fake_reps, budget=fake_budget, label="fake API")
    print_comparison(static, "Static responder")
    print_comparison(fake, "Fake API process (for reference)")
    print_profile(profile)
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

    at_64 = next(row for row in static["rows"] if row["concurrency"] == 64)
    worst = min(row["sdk_over_aiohttp"] for row in static["rows"])
    worst_paired = min(row["sdk_over_aiohttp_paired"] for row in static["rows"])
    targets = [
        {
            "figure": "SDK / raw aiohttp, worst concurrency (static)",
            "value": worst,
            "target": ">= 0.95",
            "verdict": verdict(worst, 0.95, at_least=True),
        },
        {
            "figure": "  the same, paired within repetitions",
            "value": worst_paired,
            "target": ">= 0.95",
            "verdict": verdict(worst_paired, 0.95, at_least=True),
        },
        {
            "figure": "SDK / httpx at 64 (static)",
            "value": at_64["sdk_over_httpx"],
            "target": ">= 10",
            "verdict": verdict(at_64["sdk_over_httpx"], 10, at_least=True),
        },
        {
            "figure": "SDK / requests at 64 (static)",
            "value": at_64["sdk_over_requests"],
            "target": ">= 5",
            "verdict": verdict(at_64["sdk_over_requests"], 5, at_least=True),
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
        "throughput",
        {
            "client_pinned_to_cpu": CLIENT_CPU if pinned else None,
            "targets": targets,
            "static": static,
            "fake_api": fake,
            "profile": profile,
            "sdk_client_stats": sdk_counts,
        },
        quick=args.quick,
    )


if __name__ == "__main__":
    main()
