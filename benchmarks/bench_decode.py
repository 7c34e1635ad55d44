"""Decoding a 1,000-backup list page: the SDK's path from bytes to ``list[Backup]``.

What it measures: CPU time per page for ``asyncbackups.parse_backups`` (which decodes a
list answer exactly as the client does: msgspec first, the general path for what it
leaves) against the standard library's ``json.loads`` of the same bytes alone, which
builds no models and is the least any decoder must do. The page is a DRF page of 1,000
backups built from the documentation's three, with varied ids, servers, statuses, types,
descriptions and timestamps; once with timestamps in whole seconds (as the
documentation shows them) and once with microseconds (as DRF writes them).

The default install, as ``pip install asyncbackups`` gives it. The garbage collector
runs, as in any program: the SDK's models are objects it tracks, where ``json.loads``'s
dicts of plain values are not. The two contenders alternate within each round, in an
order that flips every round; each round gives a ratio, and the figure is the median of
those ratios over the rounds. The same ratio with the collector off (as ``timeit``
measures) is reported beside it, for comparison only.

Target (issue 22): the SDK <= 0.9 x ``json.loads``.

Run: ``python benchmarks/bench_decode.py [--quick]``.
"""

from __future__ import annotations

import gc
import importlib.metadata
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from _common import (
    CLIENT_CPU,
    median,
    parse_args,
    pin_to_cpu,
    table,
    verdict,
    write_results,
)
from _seed import SEED_BACKUPS

PAGE_LENGTH = 1000
TARGET_RATIO = 0.9
_STATUSES = ("completed", "completed", "completed", "in_progress", "failed")


def build_page(length: int = PAGE_LENGTH, *, microseconds: bool = False) -> bytes:
    """A DRF list page of ``length`` backups, newest first, as the API would send it."""
    start = datetime(2025, 1, 16, 3, 0, tzinfo=UTC)
    timespec = "microseconds" if microseconds else "seconds"
    results = []
    for index in range(length):
        seed = SEED_BACKUPS[index % len(SEED_BACKUPS)]
        created = start - timedelta(minutes=37 * index, seconds=index % 60)
        if microseconds:
            created -= timedelta(microseconds=7919 * index % 1_000_000)
        status = _STATUSES[index % len(_STATUSES)]
        automatic = seed["backup_type"] == "automatic"
        server_id = 12345 + index % 97
        expires = created + timedelta(days=31)
        results.append(
            {
                **seed,
                "id": 100_000 - index,
                "server": {"id": server_id, "name": f"web-server-{server_id % 100:02d}"},
                "status": status,
                "size_mb": seed["size_mb"] + index if status == "completed" else None,
                "created_at": created.isoformat(timespec=timespec).replace("+00:00", "Z"),
                "expires_at": (
                    expires.isoformat(timespec=timespec).replace("+00:00", "Z")
                    if automatic
                    else None
                ),
                "description": f"{seed['description']} #{index}",
            }
        )
    page = {"count": length, "next": None, "previous": None, "results": results}
    return json.dumps(page, separators=(",", ":")).encode()


def _cpu_time(function: Callable[[], Any], number: int) -> float:
    """CPU seconds per call, so that other processes on the machine do not count."""
    start = time.process_time()
    for _ in range(number):
        function()
    return (time.process_time() - start) / number


def _rounds(
    contenders: dict[str, Callable[[], Any]], rounds: int, number: int
) -> tuple[dict[str, list[float]], list[float]]:
    """Microseconds per call of each contender per round, and each round's SDK ratio."""
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    ratios = []
    names = list(contenders)
    for index in range(rounds):
        for name in names if index % 2 else names[::-1]:
            samples[name].append(_cpu_time(contenders[name], number) * 1e6)
        ratios.append(samples["sdk"][-1] / samples["json_loads"][-1])
    return samples, ratios


def measure(body: bytes, rounds: int, seconds: float) -> dict[str, Any]:
    """The SDK against ``json.loads`` on ``body``: with the collector on, then off."""
    from asyncbackups import parse_backups

    backups = parse_backups(body)
    if len(backups) != PAGE_LENGTH or [backups[0].id, backups[-1].id] != [
        100_000,
        100_000 - (PAGE_LENGTH - 1),
    ]:
        raise RuntimeError("the SDK decoded the page wrongly")
    contenders: dict[str, Callable[[], Any]] = {
        "sdk": lambda: parse_backups(body),
        "json_loads": lambda: json.loads(body),
    }
    once = max(_cpu_time(contenders["sdk"], 3), 1e-6)
    number = max(3, int(seconds / once))
    samples, ratios = _rounds(contenders, rounds, number)
    gc.disable()
    try:
        samples_off, ratios_off = _rounds(contenders, rounds, number)
    finally:
        gc.enable()
    ratio = median(ratios)
    return {
        "page_bytes": len(body),
        "calls_per_round": number,
        "samples_us": samples,
        "us_per_page": {name: median(values) for name, values in samples.items()},
        "sdk_over_json_loads_per_round": ratios,
        "sdk_over_json_loads": ratio,
        "samples_us_gc_off": samples_off,
        "sdk_over_json_loads_gc_off": median(ratios_off),
        "target": f"<= {TARGET_RATIO}",
        "verdict": verdict(ratio, TARGET_RATIO, at_least=False),
    }


def main() -> None:
    """Measure both pages; print the table; write results/decode.json."""
    args = parse_args(__doc__)
    pin_to_cpu(CLIENT_CPU)
    rounds, seconds = (3, 0.02) if args.quick else (9, 0.3)
    runs = []
    for page, microseconds in (("whole seconds", False), ("microseconds", True)):
        run = measure(build_page(microseconds=microseconds), rounds, seconds)
        runs.append({"page": page, "sdk_parser": "msgspec", "install": "default", **run})
    headers = ["timestamps", "SDK us", "loads us", "SDK/loads", "target", "verdict", "GC off*"]
    rows = [
        [
            run["page"],
            run["us_per_page"]["sdk"],
            run["us_per_page"]["json_loads"],
            run["sdk_over_json_loads"],
            run["target"],
            run["verdict"],
            run["sdk_over_json_loads_gc_off"],
        ]
        for run in runs
    ]
    page_kib = runs[0]["page_bytes"] / 1024
    title = (
        f"Decoding a {PAGE_LENGTH:,}-backup page ({page_kib:.0f} KiB), default install, "
        f"CPU us per page; ratios: median over {rounds} alternating rounds"
    )
    print(table(headers, rows, title=title))
    print("loads: stdlib json.loads alone, which builds no models.")
    print("* SDK/loads with the garbage collector off, as timeit measures: not the verdict")
    write_results(
        "decode",
        {
            "page_length": PAGE_LENGTH,
            "rounds": rounds,
            "msgspec": importlib.metadata.version("msgspec"),
            "runs": runs,
        },
        quick=args.quick,
    )


if __name__ == "__main__":
    main()
