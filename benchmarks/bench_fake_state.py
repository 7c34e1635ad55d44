"""How the fake API's state scales: a filtered page and the stats of a 20,000-server fleet.

What it measures: the time of ``BackupsState.page(backup_type="manual", limit=100)``
(five manual backups among 20,005) and of ``BackupsState.stats()`` (40,003 backups), each
against the same call on a fleet a hundred times smaller. The fake keeps an index for
filtered pages and a running tally for stats, so the large fleet should cost about what
the small one does; a scan of every backup would cost about a hundred times more. These
were wall-clock ceilings in ``tests/test_fake_state.py``, which a loaded machine broke;
the tests now check the answers, and this script the speed.

Run: ``python benchmarks/bench_fake_state.py [--quick]``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from _common import parse_args, table

from asyncbackups.testing import BackupsState, Clock

LARGE = 20_000
SMALL = 200
# The large fleet's call may cost this many times the small one's before it looks like
# a scan (which would be about LARGE / SMALL = 100 times).
MOST = 5.0


def _paging(servers: int) -> Callable[[], object]:
    state = BackupsState(sample_data=False)
    state.add_fleet(servers)
    for server_id in range(1, 6):
        state.create_backup(server_id)
    return lambda: state.page(backup_type="manual", limit=100)


def _stats(servers: int) -> Callable[[], object]:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    state = BackupsState(clock=Clock(start=start, frozen=True), backup_seconds=10)
    state.add_fleet(servers)
    for server_id in range(1, servers + 1):
        state.create_backup(server_id)
    return state.stats


def _best_us(call: Callable[[], object], *, repeat: int, number: int) -> float:
    """The fastest of ``repeat`` timings of ``number`` calls, in microseconds a call:
    the least disturbed by whatever else the machine was doing."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for _ in range(number):
            call()
        best = min(best, time.perf_counter() - started)
    return best / number * 1e6


def main() -> None:
    """Time each call on both fleets and print the ratios."""
    args = parse_args(__doc__)
    repeat, number = (3, 100) if args.quick else (9, 1_000)
    rows = []
    for name, build in (("page(backup_type=manual)", _paging), ("stats()", _stats)):
        large, small = build(LARGE), build(SMALL)
        # Alternated, so a busy spell of the machine falls on both.
        timings: dict[int, list[float]] = {LARGE: [], SMALL: []}
        for _ in range(3):
            timings[LARGE].append(_best_us(large, repeat=repeat, number=number))
            timings[SMALL].append(_best_us(small, repeat=repeat, number=number))
        large_us, small_us = min(timings[LARGE]), min(timings[SMALL])
        ratio = large_us / small_us
        rows.append([name, small_us, large_us, ratio, "PASS" if ratio <= MOST else "MISS"])
    print(
        table(
            ["call", f"{SMALL:,} servers, us", f"{LARGE:,} servers, us", "ratio", "verdict"],
            rows,
            title=f"the fake's state: a large fleet against a small one (at most {MOST:g}x)",
        )
    )


if __name__ == "__main__":
    main()
