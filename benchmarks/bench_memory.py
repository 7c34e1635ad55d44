"""Memory of 10,000 concurrent ``wait_until_completed`` calls on one client.

What it measures: the peak resident memory (VmHWM from /proc/self/status) of a process
running 10,000 concurrent waits on backups that stay in progress, for several polling
rounds, minus the resident memory (VmRSS) of the same process with an idle client after
one request. The measured part runs in a fresh subprocess, so the peak is its own; the
fake API runs in its own process, and the backups are created beforehand by raw aiohttp
POSTs from this process. The child lists the backups to wait on (the ``Backup`` objects a
caller would hold), then starts the waits; both show in the breakdown.

Target: <= 50 MB over the idle client.

Run: ``python benchmarks/bench_memory.py [--quick]`` (quick: 1,000 waits).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

MB = 1024 * 1024
TARGET_MB = 50.0
CONCURRENCY = 64


def _status_bytes(field: str) -> int:
    """A ``kB`` field of /proc/self/status (VmRSS, VmHWM) in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


async def child(
    mode: str, base_url: str, token: str, waits: int, rounds: int, interval: float
) -> dict[str, Any]:
    """The measured process: idle client, then ``waits`` concurrent waits for ``rounds``.

    ``mode`` ``"measure"`` reports memory from /proc; ``"trace"`` runs the same under
    tracemalloc and reports the lines that hold the most memory at the peak instead.
    """
    import tracemalloc

    from asyncbackups import BackupsClient

    async with BackupsClient(token, base_url=base_url) as client:
        await client.backups.list(server_id=1)
        gc.collect()
        idle = _status_bytes("VmRSS")
        if mode == "trace":
            tracemalloc.start()
        backups = [
            backup
            for backup in await client.backups.list(backup_type="manual")
            if not backup.is_final  # the documentation's example backup 499 is done
        ]
        if len(backups) != waits:
            raise RuntimeError(f"expected {waits} manual backups, found {len(backups)}")
        gc.collect()
        holding = _status_bytes("VmRSS")
        first = client.stats.poll_rounds
        started = time.perf_counter()
        tasks = [
            asyncio.create_task(
                client.backups.wait_until_completed(
                    backup, timeout=None, poll_interval=interval, max_poll_interval=interval
                )
            )
            for backup in backups
        ]
        async with asyncio.timeout(120):
            # The poller counts its rounds but signals none: look often.
            while client.stats.poll_rounds <= first + rounds:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        waiting = _status_bytes("VmRSS")
        pending = sum(1 for task in tasks if not task.done())
        peak = _status_bytes("VmHWM")
        top: list[dict[str, Any]] = []
        if mode == "trace":
            snapshot = tracemalloc.take_snapshot()
            tracemalloc.stop()
            for stat in snapshot.statistics("lineno")[:12]:
                frame = stat.traceback[0]
                parts = Path(frame.filename).parts
                top.append(
                    {
                        "line": f"{'/'.join(parts[-2:])}:{frame.lineno}",
                        "bytes_per_wait": stat.size / waits,
                        "blocks": stat.count,
                    }
                )
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        elapsed = time.perf_counter() - started
        rounds_done = client.stats.poll_rounds - first
    return {
        "idle_client_rss": idle,
        "rss_holding_backups": holding,
        "rss_while_waiting": waiting,
        "peak_rss": peak,
        "waits_pending_at_peak": pending,
        "rounds": rounds_done,
        "seconds_waiting": elapsed,
        "tracemalloc_top": top,
    }


async def floor(waits: int) -> dict[str, Any]:
    """What ``waits`` bare tasks, each awaiting its own ``asyncio.Event``, cost: the floor."""
    gc.collect()
    idle = _status_bytes("VmRSS")
    events = [asyncio.Event() for _ in range(waits)]

    async def wait(event: asyncio.Event) -> None:
        await event.wait()

    tasks = [asyncio.create_task(wait(event)) for event in events]
    await asyncio.sleep(0.05)
    peak = _status_bytes("VmHWM")
    for event in events:
        event.set()
    await asyncio.gather(*tasks)
    return {"idle_rss": idle, "peak_rss": peak}


async def create_backups(base_url: str, token: str, servers: int) -> None:
    """One backup per server, by raw aiohttp POSTs (64 in flight)."""
    import aiohttp

    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    ids = iter(range(1, servers + 1))
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def worker() -> None:
            for server_id in ids:
                body = json.dumps({"server_id": server_id}).encode()
                key = {"Idempotency-Key": str(uuid.uuid4())}
                async with session.post(base_url + "backups/", data=body, headers=key) as answer:
                    await answer.read()
                    if answer.status != 201:
                        raise RuntimeError(f"create answered {answer.status}")

        async with asyncio.timeout(300):
            await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))


def _run_child(*arguments: str) -> dict[str, Any]:
    command = [sys.executable, str(Path(__file__).resolve()), *arguments]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"the measured process failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    """Start the fake, create the backups, measure in fresh children; write memory.json."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    parser.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    parser.add_argument("--floor", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.floor:
        print(json.dumps(asyncio.run(floor(args.floor))))
        return
    if args.child:
        mode, base_url, token, waits, rounds, interval = args.child
        measured = child(mode, base_url, token, int(waits), int(rounds), float(interval))
        print(json.dumps(asyncio.run(measured)))
        return

    from _common import CLIENT_CPU, TOKEN, fake_api, median, pin_to_cpu, table, write_results

    pin_to_cpu(CLIENT_CPU)
    waits, repetitions, rounds, interval = (1000, 1, 2, 0.2) if args.quick else (10_000, 3, 3, 1.0)
    runs: list[dict[str, Any]] = []
    with fake_api(servers=waits, backup_seconds=24 * 3600, page_size=100) as server:
        asyncio.run(create_backups(server.url, TOKEN, waits))
        options = [server.url, TOKEN, str(waits), str(rounds), str(interval)]
        for _ in range(repetitions):
            runs.append(_run_child("--child", "measure", *options))
        traced = _run_child("--child", "trace", *options)
    floors = [_run_child("--floor", str(waits)) for _ in range(repetitions)]
    for run in runs:
        if run["waits_pending_at_peak"] != waits:
            raise RuntimeError(f"only {run['waits_pending_at_peak']} of {waits} waits were pending")

    def mb(key: str) -> float:
        return median([run[key] for run in runs]) / MB

    over_idle = median([(run["peak_rss"] - run["idle_client_rss"]) / MB for run in runs])
    for_backups = median(
        [(run["rss_holding_backups"] - run["idle_client_rss"]) / MB for run in runs]
    )
    for_waits = median([(run["peak_rss"] - run["rss_holding_backups"]) / MB for run in runs])
    floor_mb = median([(run["peak_rss"] - run["idle_rss"]) / MB for run in floors])
    result = {
        "waits": waits,
        "rounds": rounds,
        "poll_interval": interval,
        "repetitions": repetitions,
        "idle_client_rss_mb": mb("idle_client_rss"),
        "peak_rss_mb": mb("peak_rss"),
        "peak_over_idle_mb": over_idle,
        "backups_held_mb": for_backups,
        "waits_mb": for_waits,
        "bytes_per_wait_over_idle": over_idle * MB / waits,
        "bare_tasks_floor_mb": floor_mb,
        "tracemalloc_top_at_peak": traced["tracemalloc_top"],
        "target": f"<= {TARGET_MB} MB",
        "verdict": "PASS" if over_idle <= TARGET_MB else "MISS",
        "runs": runs,
        "floor_runs": floors,
    }
    rows = [
        ["idle client after one request (VmRSS)", result["idle_client_rss_mb"], ""],
        ["peak (VmHWM)", result["peak_rss_mb"], ""],
        [f"  of which: {waits:,} Backup objects held", for_backups, ""],
        [f"  of which: {waits:,} waits and their polls", for_waits, ""],
        ["peak over idle client", over_idle, f"{result['target']}: {result['verdict']}"],
        [f"reference: {waits:,} bare tasks awaiting an Event", floor_mb, ""],
    ]
    title = (
        f"Memory of {waits:,} concurrent waits over {rounds} polling rounds "
        f"(median of {repetitions} fresh processes), MB"
    )
    print(table(["", "MB", "target"], rows, title=title))
    print(f"{result['bytes_per_wait_over_idle']:,.0f} bytes per wait over the idle client")
    rows = [
        [item["line"], item["bytes_per_wait"], item["blocks"]]
        for item in result["tracemalloc_top_at_peak"]
    ]
    print()
    print(
        table(
            ["allocated at", "bytes/wait", "blocks"],
            rows,
            title="Where the memory is at the peak (tracemalloc, a separate run)",
        )
    )
    write_results("memory", result, quick=args.quick)


if __name__ == "__main__":
    main()
