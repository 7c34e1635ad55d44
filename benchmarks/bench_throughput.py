"""CPU per request of ``client.backups.list()`` on real traffic, against raw aiohttp.

What it measures: the client process's CPU time per request (``time.process_time()``
over the measured requests: on two shared cores wall throughput swings by +-15% from one
round to the next, CPU per request much less), and requests per second beside it, of the
same GETs (same headers, body read and decoded) made by

- the SDK: ``BackupsClient(max_concurrency=C).backups.list(**query)``;
- typical raw aiohttp, written the way most users write it: a default
  ``ClientSession()`` (so at most 100 connections), ``session.get(url, params=query,
  headers=...)`` with the headers passed per request, ``response.raise_for_status()``
  then ``await response.json()``;
- lean raw aiohttp: a ``ClientSession`` with ``TCPConnector(limit=C)`` and the headers
  set once, ``session.get(url, params=query)``, ``await response.read()`` then
  ``json.loads`` (keep-alive, as the SDK);
- when installed (``nox -s bench`` installs them): ``httpx.AsyncClient`` with
  ``Limits(max_connections=C)`` and ``json.loads(resp.content)``; ``requests`` in a
  64-thread ``ThreadPoolExecutor``, one ``Session`` per thread, ``min(C, 64)`` in flight;

at concurrency C = 1, 16, 64 and 256.

Queries vary, as real traffic does (fleet polls, a bot asked about one server, a script
walking a fleet): request k of the process names server k (``server_id`` 1, 2, 3, ...
cycling over 100,000 servers), 7 in 10 with ``server_id`` alone, 2 in 10 with
``server_id`` and ``backup_type=manual``, 1 in 10 with ``backup_type=automatic`` alone.
Every contender sends that sequence, as the same dicts (``list(**query)`` for the SDK,
``params=query`` for the raw clients, which take the integers as they are). The count
runs on from one measurement to the next, so apart from the automatic-only query no
query comes back within 100,000 requests, whoever caches what.

Cases, all against ``_static_server.py`` (a prebuilt answer to any query, from an asyncio
Protocol in its own process on its own CPU, so the client is what is measured) unless
said:

- varied queries, the 3-backup page: the headline, and the targets;
- varied queries, a 1,000-backup page (``bench_decode.build_page``) at 1 and 16, the SDK
  (typed models) against typical and lean raw aiohttp (dicts);
- the repeat query, every request ``list(server_id=12345)``, the SDK against typical and
  lean raw aiohttp: a URL cache's best case, reported apart and never a headline;
- varied queries against the fake API process, where the server does real work (most
  queries name servers it lacks, so most pages are empty): for reference.

The headline figures are the default install's (``pip install .``). The script reads
``pyproject.toml`` and, before the SDK is imported, makes every distribution the
``fast`` extra adds to the required ones unimportable, as if never installed. While the
extra still adds one (so the SDK may decode differently with it), a second process with
everything importable measures the 3-backup and the 1,000-backup cases again, reported
beside the headline as "with [fast]". Once the extra adds nothing, the SDK decodes the
same with or without it: those rows would repeat the headline, so there are none.

Rounds: 7 (``--quick``: 3). Within each, every concurrency, and at each the contenders
alternate (the order rotates from round to round), each measurement bounded in requests
and in time.
Ratios are taken within a round (the SDK and the other client measured minutes apart
would carry the machine's swings); the median of those is what the verdicts use.

Targets, as speed from CPU: the other client's CPU per request over the SDK's (>= 1: the
SDK costs no more), within rounds, median. Varied queries, 3-backup page: >= 1.0 x
typical raw aiohttp and >= 0.95 x lean raw aiohttp at every concurrency; >= 10 x httpx
and >= 5 x requests at 64 (when installed). Varied queries, 1,000-backup page, default
install: >= 1.0 x typical raw aiohttp at 1 and 16. Rows "with [fast]" are held to the
same bounds. Import time and decoding alone have their own scripts (``bench_import.py``,
``bench_decode.py``). It also profiles the success path (cProfile, varied queries, at
concurrency 64) of the SDK, typical and lean raw aiohttp, and the 1,000-backup page's,
and records the SDK's top own-time functions per request and what it adds over each raw
client: where to cut SDK overhead. The SDK's own counters (``client.stats``) confirm
that each ``list()`` sent exactly one request, with no retries.

Run: ``python benchmarks/bench_throughput.py [--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import importlib
import importlib.metadata
import itertools
import json
import pstats
import re
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from _common import (
    CLIENT_CPU,
    TOKEN,
    ServerProcess,
    fake_api,
    median,
    pin_to_cpu,
    process_cpu_seconds,
    static_server,
    table,
    verdict,
    write_results,
)

ROOT = Path(__file__).resolve().parent.parent
CONCURRENCIES = (1, 16, 64, 256)
PAGE_CONCURRENCIES = (1, 16)
PAGE_BACKUPS = 1_000
# httpx and requests take part when installed; the aiohttp clients always do.
CONTENDERS = ("sdk", "aiohttp_typical", "aiohttp_lean", "httpx", "requests")
AIOHTTP_CONTENDERS = ("sdk", "aiohttp_typical", "aiohttp_lean")
LABELS = {
    "sdk": "SDK",
    "aiohttp_typical": "aiohttp typical",
    "aiohttp_lean": "aiohttp lean",
    "httpx": "httpx",
    "requests": "requests",
}
# Speed from CPU (the other's CPU per request / the SDK's), at least.
TARGET_OVER_TYPICAL = 1.0
TARGET_OVER_LEAN = 0.95
TARGET_PAGE_OVER_TYPICAL = 1.0
TARGET_OVER_OTHERS = {"httpx": 10.0, "requests": 5.0}
REQUESTS_THREADS = 64
# Connections a default ClientSession() opens at most (aiohttp's TCPConnector(limit=100)):
# the typical client's cap at concurrency 256. Checked against the session itself.
TYPICAL_CONNECTION_LIMIT = 100

# -- queries ------------------------------------------------------------------------------

SERVERS = 100_000
VARIED_QUERIES = (
    "varied: request k names server k (server_id 1, 2, 3, ... cycling over "
    f"{SERVERS:,}); 70% server_id alone, 20% server_id and backup_type=manual, "
    "10% backup_type=automatic alone"
)
REPEAT_SERVER_ID = 12345
REPEAT_QUERIES = (
    f"repeated: every request list(server_id={REPEAT_SERVER_ID}) "
    "(a URL cache's best case, not a headline)"
)


def varied_query(k: int) -> dict[str, Any]:
    """Request ``k``'s query: server ``k`` (cycling), with the mix of filters."""
    slot = k % 10
    if slot == 9:
        return {"backup_type": "automatic"}
    server_id = k % SERVERS + 1
    if slot >= 7:
        return {"server_id": server_id, "backup_type": "manual"}
    return {"server_id": server_id}


# One sequence for the whole process, every contender drawing from it: no measurement
# starts over at server 1, where a cache kept from an earlier one could be waiting.
_next_varied = map(varied_query, itertools.count()).__next__
_next_repeat = itertools.repeat({"server_id": REPEAT_SERVER_ID}).__next__


@dataclass(frozen=True)
class Case:
    """What each request asks (``next_query()``) and how many backups an answer holds."""

    name: str
    next_query: Callable[[], dict[str, Any]]
    backups: int | None  # None: any number (the fake API's pages)
    queries: str


VARIED = Case("varied", _next_varied, 3, VARIED_QUERIES)
REPEAT = Case("repeat", _next_repeat, 3, REPEAT_QUERIES)
PAGE = Case("page", _next_varied, PAGE_BACKUPS, VARIED_QUERIES)
FAKE = Case("fake_api", _next_varied, None, VARIED_QUERIES)

# -- the default install ------------------------------------------------------------------


def _distribution(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9._-]+", requirement.strip())
    assert match is not None, requirement
    return match.group().lower().replace("-", "_").replace(".", "_")


def fast_extra_adds() -> list[str]:
    """The distributions ``pip install .[fast]`` adds to ``pip install .`` (pyproject.toml)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    required = {_distribution(r) for r in project["dependencies"]}
    fast = {_distribution(r) for r in project.get("optional-dependencies", {}).get("fast", [])}
    return sorted(fast - required)


def _installed(distribution: str) -> bool:
    try:
        importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def use_default_install(absent: list[str]) -> None:
    """Make ``absent`` unimportable, as if not installed; before the SDK is imported."""
    loaded = [name for name in [*absent, "asyncbackups"] if name in sys.modules]
    if loaded:
        raise RuntimeError(f"imported before the default install was set up: {loaded}")
    for name in absent:
        sys.modules[name] = None  # type: ignore[assignment]  # makes the import fail


def _headers() -> dict[str, str]:
    """The very headers the SDK sends on a read."""
    from asyncbackups import USER_AGENT

    return {
        "Authorization": f"Bearer {TOKEN}",
        "User-Agent": USER_AGENT,
        "Accept": "application/json",
    }


# -- measuring ----------------------------------------------------------------------------


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
        # One request at least, however late the worker starts on a busy machine.
        while remaining > 0:
            remaining -= 1
            await call()
            done += 1
            if time.perf_counter() >= deadline:
                return

    workers = [worker() for _ in range(concurrency)]
    cpu, start = time.process_time(), time.perf_counter()
    await asyncio.gather(*workers)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    return Measured(done / elapsed, cpu / max(done, 1) * 1e6, done)


def _warm_budget(concurrency: int) -> Budget:
    return Budget(max(2 * concurrency, 20), _warm_seconds)


def _check(decoded: Any, case: Case) -> None:
    results = decoded["results"] if isinstance(decoded, dict) else decoded
    if not isinstance(results, list) or (case.backups is not None and len(results) != case.backups):
        raise RuntimeError(f"unexpected answer: {decoded!r:.200}")


# What the SDK's own counters (``client.stats``) saw over every SDK measurement: each
# ``list()`` of the one-page answer must be one request, or the rate would mislead.
SDK_COUNTS = {"calls": 0, "requests": 0, "retries": 0}

Opener = Callable[[str, int, Case], contextlib.AbstractAsyncContextManager[Any]]


@contextlib.asynccontextmanager
async def _sdk(base_url: str, concurrency: int, case: Case) -> AsyncIterator[Any]:
    from asyncbackups import BackupsClient  # not before main() has set up the install

    calls = 0
    async with BackupsClient(TOKEN, base_url=base_url, max_concurrency=concurrency) as client:
        backups = client.backups
        next_query = case.next_query

        async def call() -> Any:
            nonlocal calls
            calls += 1
            return await backups.list(**next_query())

        yield call
        stats = client.stats
    SDK_COUNTS["calls"] += calls
    SDK_COUNTS["requests"] += stats.total_requests
    SDK_COUNTS["retries"] += stats.retries


@contextlib.asynccontextmanager
async def _aiohttp_typical(base_url: str, concurrency: int, case: Case) -> AsyncIterator[Any]:
    url = base_url + "backups/"
    next_query = case.next_query
    headers = _headers()
    async with aiohttp.ClientSession() as session:
        if session.connector is None or session.connector.limit != TYPICAL_CONNECTION_LIMIT:
            raise RuntimeError("aiohttp's default connection limit is not the one recorded")

        async def call() -> Any:
            async with session.get(url, params=next_query(), headers=headers) as response:
                response.raise_for_status()
                return await response.json()

        yield call


@contextlib.asynccontextmanager
async def _aiohttp_lean(base_url: str, concurrency: int, case: Case) -> AsyncIterator[Any]:
    url = base_url + "backups/"
    next_query = case.next_query
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, headers=_headers()) as session:

        async def call() -> Any:
            async with session.get(url, params=next_query()) as response:
                body = await response.read()
                if response.status != 200:
                    raise RuntimeError(f"status {response.status}")
                return json.loads(body)

        yield call


@contextlib.asynccontextmanager
async def _httpx(base_url: str, concurrency: int, case: Case) -> AsyncIterator[Any]:
    import httpx

    url = base_url + "backups/"
    next_query = case.next_query
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(headers=_headers(), limits=limits, timeout=30.0) as client:

        async def call() -> Any:
            response = await client.get(url, params=next_query())
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
    import requests

    url = base_url + "backups/"
    next_query = case.next_query
    headers = _headers()
    local = threading.local()
    lock = threading.Lock()
    workers = min(concurrency, REQUESTS_THREADS)

    def call() -> Any:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
            session.headers.update(headers)
        response = session.get(url, params=next_query(), timeout=30)
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
                    if remaining[0] <= 0:
                        return
                    remaining[0] -= 1
                call()
                with lock:
                    done[0] += 1
                if time.perf_counter() >= deadline:
                    return

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
    contender: str, base_url: str, concurrency: int, budget: Budget, case: Case
) -> Measured:
    """One measurement of one contender, on a fresh event loop."""
    if contender == "requests":
        return _requests(base_url, concurrency, budget, case)
    return asyncio.run(_measure_async(contender, base_url, concurrency, budget, case))


def available_contenders() -> tuple[str, ...]:
    """The contenders this environment can run: httpx and requests only when installed."""
    return tuple(
        name for name in CONTENDERS if name.startswith(("sdk", "aiohttp")) or _installed(name)
    )


def _ratios(runs: dict[str, dict[str, list[float]]], other: str) -> dict[str, float]:
    """SDK against ``other``: ratios of the medians, and medians of the within-round ratios.

    ``cpu_speed_paired`` (the other's CPU per request / the SDK's, within a round) is the
    figure the targets use: above 1, the SDK costs less.
    """
    sdk, them = runs["sdk"], runs[other]
    return {
        "rps": median(sdk["rps"]) / median(them["rps"]),
        "rps_paired": median([s / o for s, o in zip(sdk["rps"], them["rps"], strict=True)]),
        "cpu": median(sdk["cpu_us"]) / median(them["cpu_us"]),
        "cpu_paired": median([s / o for s, o in zip(sdk["cpu_us"], them["cpu_us"], strict=True)]),
        "cpu_speed_paired": median(
            [o / s for s, o in zip(sdk["cpu_us"], them["cpu_us"], strict=True)]
        ),
    }


def compare(
    server: ServerProcess,
    *,
    repetitions: int,
    budget: Budget,
    label: str,
    case: Case,
    concurrencies: tuple[int, ...] = CONCURRENCIES,
    contenders: tuple[str, ...] = AIOHTTP_CONTENDERS,
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
        "queries": case.queries,
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
    """The tables of one comparison: CPU per request (the figure), then requests/second."""
    names = list(result["rows"][0]["rps"])
    others = [name for name in names if name != "sdk"]
    rows = [
        [
            row["concurrency"],
            *(row["cpu_us_per_request"][name] for name in names),
            *(row["sdk_over"][name]["cpu_speed_paired"] for name in others),
        ]
        for row in result["rows"]
    ]
    headers = ["conc", *(LABELS[n] for n in names), *(f"{LABELS[n]}/SDK" for n in others)]
    print()
    print(f"{title}. Queries: {result['queries']}.")
    print(table(headers, rows, title="Client CPU us per request (median); ratios: speed"))
    rows = [
        [
            row["concurrency"],
            *(row["rps"][name] for name in names),
            *(row["sdk_over"][name]["rps_paired"] for name in others),
        ]
        for row in result["rows"]
    ]
    headers = ["conc", *(LABELS[n] for n in names), *(f"SDK/{LABELS[n]}" for n in others)]
    print(table(headers, rows, title="Requests/second (median)"))
    print(
        f"Ratios: medians over {result['repetitions']} rounds of ratios measured back to "
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
    ("msgspec", "msgspec"),
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


def profile_success_path(base_url: str, *, count: int, case: Case = VARIED) -> dict[str, Any]:
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


def _target(figure: str, ratios: dict[str, float], target: float, install: str) -> dict[str, Any]:
    value = ratios["cpu_speed_paired"]
    return {
        "figure": figure,
        "value": value,
        "target": f">= {target:g}",
        "verdict": verdict(value, target, at_least=True),
        "measure": "the other's CPU per request / the SDK's, within rounds, median",
        "rps_ratio": ratios["rps_paired"],
        "install": install,
    }


def _list_targets(
    static: dict[str, Any], page: dict[str, Any], install: str, *, others: bool = False
) -> list[dict[str, Any]]:
    """The 3-backup page's targets at every concurrency, then the 1,000-backup page's."""
    suffix = ", with [fast]" if install == "fast" else ""
    what = "list(), varied queries"
    targets = [
        _target(
            f"{what}, 3-backup page: SDK vs {LABELS[other]} at {row['concurrency']}{suffix}",
            row["sdk_over"][other],
            target,
            install,
        )
        for other, target in (
            ("aiohttp_typical", TARGET_OVER_TYPICAL),
            ("aiohttp_lean", TARGET_OVER_LEAN),
        )
        for row in static["rows"]
    ]
    if others:  # httpx and requests, at 64, when they were measured
        at_64 = next(row for row in static["rows"] if row["concurrency"] == 64)
        targets += [
            _target(
                f"{what}, 3-backup page: SDK vs {other} at 64",
                at_64["sdk_over"][other],
                target,
                install,
            )
            for other, target in TARGET_OVER_OTHERS.items()
            if other in at_64["sdk_over"]
        ]
    targets += [
        _target(
            f"{what}, {PAGE_BACKUPS:,}-backup page: SDK vs aiohttp typical "
            f"at {row['concurrency']}{suffix}",
            row["sdk_over"]["aiohttp_typical"],
            TARGET_PAGE_OVER_TYPICAL,
            install,
        )
        for row in page["rows"]
    ]
    return targets


def targets_of(
    static: dict[str, Any], page: dict[str, Any], fast: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """Every target's figure, value and verdict: the default install's, then [fast]'s."""
    targets = _list_targets(static, page, "default", others=True)
    if fast is not None:
        targets += _list_targets(fast["static"], fast["page"], "fast")
    return targets


def print_targets(targets: list[dict[str, Any]]) -> None:
    """The targets' table, with the requests/second ratio beside each CPU figure."""
    rows = [[t["figure"], t["value"], t["target"], t["verdict"], t["rps_ratio"]] for t in targets]
    print()
    print(
        table(
            ["figure", "value", "target", "verdict", "req/s ratio"],
            rows,
            title="Targets (speed from CPU: the other's CPU per request / the SDK's, "
            "within rounds, medians; req/s ratio: SDK/other)",
        )
    )


@dataclass(frozen=True)
class Plan:
    """How many rounds, and how much each measurement may do, for one kind of run."""

    rounds: int
    budget: Budget
    page_rounds: int
    page_budget: Budget
    fake_rounds: int
    fake_budget: Budget
    profile_count: int
    page_profile_count: int
    warm_seconds: float


PLANS = {
    "full": Plan(
        7, Budget(20_000, 0.7), 7, Budget(2_000, 0.7), 3, Budget(5_000, 0.4), 6_000, 400, 0.5
    ),
    "quick": Plan(3, Budget(300, 0.06), 3, Budget(60, 0.06), 1, Budget(100, 0.05), 300, 30, 0.1),
}


def measure_list_and_page(plan: Plan, label: str) -> dict[str, Any]:
    """The [fast] rows: varied queries on the 3-backup and the 1,000-backup page."""
    with static_server() as server:
        static = compare(
            server, repetitions=plan.rounds, budget=plan.budget, label=label, case=VARIED
        )
    with static_server(backups=PAGE_BACKUPS) as server:
        page = compare(
            server,
            repetitions=plan.page_rounds,
            budget=plan.page_budget,
            label=f"{label}, {PAGE_BACKUPS:,}-backup page",
            case=PAGE,
            concurrencies=PAGE_CONCURRENCIES,
        )
    return {"static": static, "page": page, "sdk_client_stats": dict(SDK_COUNTS)}


def run_fast(quick: bool) -> dict[str, Any]:
    """Measure the [fast] rows in a process where the extra is importable."""
    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / "fast.json"
        command = [sys.executable, __file__, "--fast-child", str(output)]
        subprocess.run([*command, *(["--quick"] if quick else [])], check=True)
        result: dict[str, Any] = json.loads(output.read_text())
    return result


def parse_args() -> argparse.Namespace:
    """``--quick`` for a smoke run; the [fast] process's own options are hidden."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run; results go to results/quick/"
    )
    # The second process, with the [fast] extra importable: where to write its results.
    parser.add_argument("--fast-child", type=Path, metavar="FILE", help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> None:
    """Run the comparisons and the profiles; print tables; write results/throughput.json."""
    global _warm_seconds
    args = parse_args()
    plan = PLANS["quick" if args.quick else "full"]
    _warm_seconds = plan.warm_seconds
    pinned = pin_to_cpu(CLIENT_CPU)
    adds = fast_extra_adds()
    if args.fast_child is not None:  # the [fast] rows' process: the extra importable
        for name in adds:
            importlib.import_module(name)
        args.fast_child.write_text(json.dumps(measure_list_and_page(plan, "[fast]")))
        return
    use_default_install(adds)
    fast_installed = all(_installed(name) for name in adds)
    contenders = available_contenders()
    missing = [name for name in CONTENDERS if name not in contenders]
    import asyncbackups  # noqa: F401  # now, so that it loads orjson if it may

    orjson = sys.modules.get("orjson") is not None
    print(
        f"client pinned to CPU {CLIENT_CPU}: {pinned}; the default install, without "
        f"{', '.join(adds) or 'nothing'} (the [fast] extra); SDK parses with orjson: {orjson}"
        + (f"; not installed, so not measured: {', '.join(missing)}" if missing else "")
    )
    with static_server() as server:
        print(f"static responder at {server.url} (pid {server.pid})")
        static = compare(
            server,
            repetitions=plan.rounds,
            budget=plan.budget,
            label="varied queries",
            case=VARIED,
            contenders=contenders,
        )
        repeat = compare(
            server,
            repetitions=plan.rounds,
            budget=plan.budget,
            label="repeat query",
            case=REPEAT,
        )
        profile = profile_success_path(server.url, count=plan.profile_count)
    with static_server(backups=PAGE_BACKUPS) as server:
        print(f"static responder of a {PAGE_BACKUPS:,}-backup page at {server.url}")
        page = compare(
            server,
            repetitions=plan.page_rounds,
            budget=plan.page_budget,
            label=f"{PAGE_BACKUPS:,}-backup page",
            case=PAGE,
            concurrencies=PAGE_CONCURRENCIES,
        )
        page_profile = profile_page(server.url, count=plan.page_profile_count)
    with fake_api() as server:
        print(f"fake API at {server.url} (pid {server.pid})")
        fake = compare(
            server,
            repetitions=plan.fake_rounds,
            budget=plan.fake_budget,
            label="fake API",
            case=FAKE,
            contenders=contenders,
        )
    fast: dict[str, Any] | None = None
    if adds and fast_installed:
        print(f"[fast]: a second process, with {', '.join(adds)} importable")
        fast = run_fast(args.quick)
    if not adds:
        fast_note = "the [fast] extra adds nothing to the default install: no [fast] rows"
    elif not fast_installed:
        fast_note = f"the [fast] extra ({', '.join(adds)}) is not installed: no [fast] rows"
    else:
        fast_note = f"[fast] rows: measured in a second process with {', '.join(adds)}"
    print_comparison(static, "Static responder, 3-backup page (the headline)")
    print_comparison(page, f"Static responder, {PAGE_BACKUPS:,}-backup page")
    if fast is not None:
        print_comparison(fast["static"], "With [fast]: static responder, 3-backup page")
        print_comparison(fast["page"], f"With [fast]: {PAGE_BACKUPS:,}-backup page")
    print_comparison(repeat, "Repeat query, 3-backup page: a cache's best case, not a headline")
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
    if fast is not None:
        counts = fast["sdk_client_stats"]
        print(
            f"  with [fast]: {counts['calls']:,} list() calls, {counts['requests']:,} requests, "
            f"{counts['retries']} retries"
        )
    print(fast_note)
    targets = targets_of(static, page, fast)
    print_targets(targets)
    write_results(
        "throughput",
        {
            "client_pinned_to_cpu": CLIENT_CPU if pinned else None,
            "install": {
                "headline": "default",
                "without": adds,
                "fast_rows": fast is not None,
                "note": fast_note,
            },
            "sdk_parser": "orjson.loads" if orjson else "json.loads",
            "cpu_measure": "client time.process_time() over the measured requests / requests",
            "contenders_not_installed": missing,
            "typical_connection_limit": TYPICAL_CONNECTION_LIMIT,
            "targets": targets,
            "static": static,
            "page": page,
            "fast": fast,
            "repeat_query": repeat,
            "fake_api": fake,
            "profile": profile,
            "page_profile": page_profile,
            "sdk_client_stats": sdk_counts,
        },
        quick=args.quick,
    )


if __name__ == "__main__":
    main()
