"""Decoding a 1000-backup list page: the SDK's path from bytes to ``list[Backup]``.

What it measures: microseconds per page for ``asyncbackups.parse_backups`` (which decodes
a list answer exactly as the client does) on the bytes of a DRF page of 1000 backups
(built from the documentation's three, with varied ids, servers, statuses, types,
descriptions and timestamps), against ``json.loads`` of the same bytes alone - the least
any decoder must do. Also, as a breakdown, the parse alone with the JSON parser the SDK
uses (``orjson.loads`` or ``json.loads``), and the structuring, derived as the SDK's
total minus that parse (medians).

Only public names of the SDK are used, so the breakdown is not timed inside the SDK:
its structuring step cannot be called alone, hence the subtraction (which also puts
the SDK's page checks and its call overhead under "structure"), and the parser the SDK
uses is told by whether importing ``asyncbackups`` loaded orjson.

The SDK picks up orjson (the ``fast`` extra) at import, so each JSON backend runs in its
own subprocess: one as installed, one with orjson made unimportable. Within a process
the contenders alternate; each figure is the median of several timed repetitions.

Targets: SDK <= 1.5 x stdlib json.loads in the default install, and <= 0.75 x it with
the ``[fast]`` extra (orjson and msgspec). The garbage collector runs, as in any program;
the same ratio with it off (as ``timeit`` measures) is reported beside, for comparison.

Run: ``python benchmarks/bench_decode.py [--quick]``.
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _seed import SEED_BACKUPS

PAGE_LENGTH = 1000
# The default install, and the [fast] extra (orjson parses, msgspec decodes pages).
TARGET_RATIO = {"json": 1.5, "orjson": 0.75}
_STATUSES = ("completed", "completed", "completed", "in_progress", "failed")


def build_page(length: int = PAGE_LENGTH) -> bytes:
    """A DRF list page of ``length`` backups, newest first, as the API would send it."""
    start = datetime(2025, 1, 16, 3, 0, tzinfo=UTC)
    results = []
    for index in range(length):
        seed = SEED_BACKUPS[index % len(SEED_BACKUPS)]
        created = start - timedelta(minutes=37 * index, seconds=index % 60)
        status = _STATUSES[index % len(_STATUSES)]
        automatic = seed["backup_type"] == "automatic"
        server_id = 12345 + index % 97
        results.append(
            {
                **seed,
                "id": 100_000 - index,
                "server": {"id": server_id, "name": f"web-server-{server_id % 100:02d}"},
                "status": status,
                "size_mb": seed["size_mb"] + index if status == "completed" else None,
                "created_at": created.isoformat().replace("+00:00", "Z"),
                "expires_at": (
                    (created + timedelta(days=31)).isoformat().replace("+00:00", "Z")
                    if automatic
                    else None
                ),
                "description": f"{seed['description']} #{index}",
            }
        )
    page = {"count": length, "next": None, "previous": None, "results": results}
    return json.dumps(page, separators=(",", ":")).encode()


def _time(function: Callable[[], Any], number: int) -> float:
    start = time.perf_counter()
    for _ in range(number):
        function()
    return (time.perf_counter() - start) / number


def _calibrate(function: Callable[[], Any], seconds: float) -> int:
    once = _time(function, 3)
    return max(3, int(seconds / max(once, 1e-9)))


def child(backend: str, repetitions: int, seconds: float) -> dict[str, Any]:
    """Measure in this process; ``"json"`` is the default install, with the ``[fast]``
    extra's orjson and msgspec both blocked."""
    if backend == "json":
        sys.modules["orjson"] = None  # type: ignore[assignment]  # makes the import fail
        sys.modules["msgspec"] = None  # type: ignore[assignment]
    from asyncbackups import parse_backups

    # asyncbackups imports orjson at import when it can: whether it is loaded says which
    # parser the SDK uses (a blocked import leaves None in sys.modules).
    orjson = sys.modules.get("orjson")
    if (orjson is not None) != (backend == "orjson"):
        raise RuntimeError(f"wanted the {backend} backend, but orjson loaded: {orjson is not None}")
    sdk_loads: Callable[[bytes], Any] = json.loads if orjson is None else orjson.loads
    body = build_page()

    def sdk() -> Any:
        return parse_backups(body)

    backups = sdk()
    if (
        len(backups) != PAGE_LENGTH
        or backups[0].id != 100_000
        or backups[-1].id != 100_000 - (PAGE_LENGTH - 1)
    ):
        raise RuntimeError("the SDK decoded the page wrongly")
    contenders: dict[str, Callable[[], Any]] = {
        "sdk": sdk,
        "json_loads": lambda: json.loads(body),
    }
    if sdk_loads is not json.loads:  # else the parse alone is json_loads itself
        contenders["sdk_parse"] = lambda: sdk_loads(body)
    numbers = {name: _calibrate(function, seconds) for name, function in contenders.items()}
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    names = list(contenders)
    for repetition in range(repetitions):
        shift = repetition % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(_time(contenders[name], numbers[name]) * 1e6)
    if "sdk_parse" not in samples:
        samples["sdk_parse"] = samples["json_loads"]
        numbers["sdk_parse"] = numbers["json_loads"]
    # For comparison only: the same two with the garbage collector off throughout, as
    # timeit measures. The verdicts use the figures above, with the collector running
    # as in any program: each page's models are objects it tracks.
    samples_gc_off: dict[str, list[float]] = {"sdk": [], "json_loads": []}
    gc.disable()
    try:
        for repetition in range(repetitions):
            pair = ["sdk", "json_loads"][:: 1 if repetition % 2 else -1]
            for name in pair:
                samples_gc_off[name].append(_time(contenders[name], numbers[name]) * 1e6)
    finally:
        gc.enable()
    return {
        "backend": backend,
        "sdk_parser": "json.loads" if orjson is None else "orjson.loads",
        "page_bytes": len(body),
        "samples_us": samples,
        "samples_us_gc_off": samples_gc_off,
        "calls_per_repetition": numbers,
    }


def _run_child(backend: str, repetitions: int, seconds: float) -> dict[str, Any]:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        backend,
        "--repetitions",
        str(repetitions),
        "--seconds",
        str(seconds),
    ]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return result


def main() -> None:
    """Run each JSON backend in its own process; print the table; write results/decode.json."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    parser.add_argument("--child", choices=("orjson", "json"), help=argparse.SUPPRESS)
    parser.add_argument("--repetitions", type=int, default=7, help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=0.25, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.repetitions, args.seconds)))
        return

    from _common import CLIENT_CPU, median, pin_to_cpu, table, verdict, write_results

    pin_to_cpu(CLIENT_CPU)
    repetitions, seconds = (2, 0.02) if args.quick else (9, 0.25)
    try:
        import orjson  # noqa: F401

        backends = ["orjson", "json"]
    except ImportError:
        backends = ["json"]
    runs = []
    for backend in backends:
        run = _run_child(backend, repetitions, seconds)
        us = {name: median(values) for name, values in run["samples_us"].items()}
        # Not timed alone (no public name does only that): the SDK's total minus the parse.
        us["sdk_structure"] = us["sdk"] - us["sdk_parse"]
        ratio = us["sdk"] / us["json_loads"]
        off = {name: median(values) for name, values in run["samples_us_gc_off"].items()}
        runs.append(
            {
                **run,
                "us_per_page": us,
                "us_per_backup_sdk": us["sdk"] / PAGE_LENGTH,
                "sdk_over_json_loads": ratio,
                "us_per_page_gc_off": off,
                "sdk_over_json_loads_gc_off": off["sdk"] / off["json_loads"],
                "target": f"<= {TARGET_RATIO[backend]}",
                "verdict": verdict(ratio, TARGET_RATIO[backend], at_least=False),
            }
        )
    headers = [
        "parser",
        "SDK us",
        "loads us",
        "SDK/loads",
        "target",
        "verdict",
        "parse us",
        "struct us*",
        "GC off**",
    ]
    rows = [
        [
            run["sdk_parser"].removesuffix(".loads"),
            run["us_per_page"]["sdk"],
            run["us_per_page"]["json_loads"],
            run["sdk_over_json_loads"],
            run["target"],
            run["verdict"],
            run["us_per_page"]["sdk_parse"],
            run["us_per_page"]["sdk_structure"],
            run["sdk_over_json_loads_gc_off"],
        ]
        for run in runs
    ]
    page_kib = runs[0]["page_bytes"] / 1024
    title = f"Decoding a {PAGE_LENGTH}-backup page ({page_kib:.0f} KiB), us per page, median"
    print(table(headers, rows, title=title))
    print("loads: stdlib json.loads alone. * SDK us minus parse us (not timed alone)")
    print("** SDK/loads with the garbage collector off, as timeit measures: not the verdict")
    write_results(
        "decode",
        {"page_length": PAGE_LENGTH, "repetitions": repetitions, "runs": runs},
        quick=args.quick,
    )


if __name__ == "__main__":
    main()
