"""Memory and requests of a 100,000-server fleet backed up with ``stream_many(wait=True)``.

What it measures: a fresh child process makes one client, reads one page (the idle
client), then streams a fleet of N servers with ``wait=True`` against the fake API in
its own process, until every backup completed. It reports the peak resident memory of
the child (VmHWM) minus the idle client's (VmRSS), per server; the HTTP requests per
server, from ``client.stats``; the wall time; and how long breaking out of a second,
half-finished run takes.

Targets (issue "Fleets at any scale"): <= 600 bytes per server (<= 60 MB for 100,000)
over an idle client, and <= 1.05 requests per server.

Run: ``python benchmarks/bench_fleet_memory.py [--quick]`` (quick: 10,000 servers).
"""

from __future__ import annotations

import asyncio
import gc
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _common import TOKEN, fake_api, machine_info, parse_args, table, verdict, write_results

TARGET_BYTES = 600
TARGET_REQUESTS = 1.05


def _status_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


async def child(base_url: str, servers: int, backup_seconds: float) -> dict[str, Any]:
    """The measured process: an idle client, then the fleet, then a run broken off."""
    from asyncbackups import BackupsClient

    async with BackupsClient(TOKEN, base_url=base_url, timeout=60) as client:
        await client.backups.list(server_id=1)
        gc.collect()
        idle = _status_bytes("VmRSS")
        started = time.monotonic()
        ok = failed = 0
        stream = client.backups.stream_many(
            range(1, servers + 1),
            description="bench fleet",
            wait=True,
            poll_interval=2.0,
            max_poll_interval=backup_seconds / 2,
        )
        async for outcome in stream:
            ok += outcome.ok
            failed += not outcome.ok
        wall = time.monotonic() - started
        peak = _status_bytes("VmHWM")
        stats = client.stats
        # A second run, broken off halfway: how long stopping its work takes.
        half = servers // 2
        taken = 0
        second = client.backups.stream_many(
            range(1, servers + 1), description="bench broken", wait=True
        )
        async for _ in second:
            taken += 1
            if taken >= min(half, 2000):
                break
        stop_started = time.monotonic()
        await second.aclose()  # type: ignore[attr-defined]
        stopped = time.monotonic() - stop_started
    return {
        "servers": servers,
        "ok": ok,
        "failed": failed,
        "idle_rss_bytes": idle,
        "peak_over_idle_bytes": peak - idle,
        "bytes_per_server": (peak - idle) / servers,
        "requests": stats.total_requests,
        "requests_by_route": dict(stats.requests),
        "requests_per_server": stats.total_requests / servers,
        "poll_rounds": stats.poll_rounds,
        "wall_seconds": wall,
        "break_stop_seconds": stopped,
    }


def main() -> None:
    args = parse_args(__doc__)
    servers = 10_000 if args.quick else 100_000
    backup_seconds = 20.0 if args.quick else 60.0
    with fake_api(servers=servers, backup_seconds=backup_seconds, page_size=100) as api:
        print(f"fake API at {api.url} with {servers:,} servers", flush=True)
        done = subprocess.run(
            [sys.executable, __file__, "--child", api.url, str(servers), str(backup_seconds)],
            capture_output=True,
            text=True,
            check=True,
        )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    rows = [
        ["servers", f"{result['servers']:,}", ""],
        ["ok / failed", f"{result['ok']:,} / {result['failed']:,}", ""],
        [
            "peak memory over an idle client",
            f"{result['peak_over_idle_bytes'] / 1024 / 1024:.1f} MB",
            "",
        ],
        [
            "per server",
            f"{result['bytes_per_server']:.0f} B",
            verdict(result["bytes_per_server"], TARGET_BYTES, at_least=False),
        ],
        [
            "HTTP requests per server",
            f"{result['requests_per_server']:.3f}",
            verdict(result["requests_per_server"], TARGET_REQUESTS, at_least=False),
        ],
        ["poll rounds", str(result["poll_rounds"]), ""],
        ["wall time", f"{result['wall_seconds']:.1f} s", ""],
        ["stopping a run broken off", f"{result['break_stop_seconds'] * 1000:.0f} ms", ""],
    ]
    print(table(["figure", "value", "verdict"], rows, title="Fleet memory (stream_many)"))
    path = write_results(
        "fleet_memory",
        {"machine": machine_info(), "backup_seconds": backup_seconds, "result": result},
        quick=args.quick,
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        measured = asyncio.run(child(sys.argv[2], int(sys.argv[3]), float(sys.argv[4])))
        print(json.dumps(measured))
    else:
        main()
