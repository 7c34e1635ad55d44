"""``asyncbackups list`` of many backups: how soon a terminal shows rows, and in all how long.

What it measures: the command line (``python -m asyncbackups list``, a fresh process each
run) against the fake API in its own process, holding one backup for each of 60,000
servers in pages of 100 (600 pages). Three ways of running it:

- ``json-lines``: ``list --json-lines`` into a pipe, the machine's format, as the yardstick;
- ``table-piped``: ``list`` into a pipe (aligned columns, no terminal);
- ``table-terminal``: ``list`` in a pseudo-terminal 80 columns by 40 lines, read as fast as
  it writes (a terminal that keeps up), which is where rows once waited for the last page.

Per run: the wall time from start to exit, the CPU time of the command (``os.wait4``),
and for the terminal the time until a screenful (40 lines) had been written. Medians
over the runs (3, or 1 with ``--quick``, which lists 6,000 backups).

Targets (issue 23, item 10): on the terminal, the first screenful within 1 s of the
start, and the whole list within 2x the ``json-lines`` time.

Run: ``python benchmarks/bench_cli_list.py [--quick]``.
"""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time
from typing import Any

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

SERVERS = {"full": 60_000, "quick": 6_000}
RUNS = {"full": 3, "quick": 1}
COLUMNS, LINES = 80, 40
FIRST_SCREEN_TARGET = 1.0  # seconds
TOTAL_RATIO_TARGET = 2.0  # the terminal's total over json-lines'


def _environment(url: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("ASYNCBACKUPS_")}
    for key in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        env.pop(key, None)
    env.update(
        ASYNCBACKUPS_TOKEN=TOKEN,
        ASYNCBACKUPS_BASE_URL=url,
        COLUMNS=str(COLUMNS),
        LINES=str(LINES),
        TERM="xterm-256color",
    )
    return env


def _command(*argv: str) -> list[str]:
    return [sys.executable, "-m", "asyncbackups", "list", *argv]


def _wait(process: subprocess.Popen[bytes]) -> float:
    """Reap ``process``; its CPU seconds (user + system)."""
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"{process.args} exited {process.returncode}")
    return usage.ru_utime + usage.ru_stime


def run_piped(url: str, *argv: str) -> dict[str, float]:
    """One run into a pipe, drained as it comes: wall and CPU seconds, lines read."""
    started = time.perf_counter()
    process = subprocess.Popen(
        _command(*argv), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=_environment(url)
    )
    pin_to_cpu(CLIENT_CPU, process.pid)
    assert process.stdout is not None
    lines = 0
    while chunk := process.stdout.read(65_536):
        lines += chunk.count(b"\n")
    cpu = _wait(process)
    return {"wall": time.perf_counter() - started, "cpu": cpu, "lines": lines}


def run_in_terminal(url: str, *argv: str) -> dict[str, float]:
    """One run in a pty: wall and CPU seconds, and when a screenful had been written."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", LINES, COLUMNS, 0, 0))
    started = time.perf_counter()
    try:
        process = subprocess.Popen(
            _command(*argv),
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=_environment(url),
            start_new_session=True,
        )
    finally:
        os.close(slave)
    pin_to_cpu(CLIENT_CPU, process.pid)
    lines = 0
    first_screen = float("nan")
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 0.5)
            if not ready:
                if process.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(master, 65_536)
            except OSError:  # EIO: the command has exited and closed the terminal
                break
            if not chunk:
                break
            lines += chunk.count(b"\n")
            if lines >= LINES and first_screen != first_screen:
                first_screen = time.perf_counter() - started
    finally:
        os.close(master)
    cpu = _wait(process)
    return {
        "wall": time.perf_counter() - started,
        "cpu": cpu,
        "lines": lines,
        "first_screen": first_screen,
    }


def _medians(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: round(median([run[key] for run in runs]), 3) for key in runs[0]}


def main() -> None:
    args = parse_args(__doc__)
    size = "quick" if args.quick else "full"
    servers = SERVERS[size]
    rounds = RUNS[size]
    print(f"asyncbackups list of {servers:,} backups, {rounds} run(s) each")
    with fake_api(servers=servers, backup_seconds=5.0) as api:
        url = api.url
        run_piped(url, "--json-lines")  # warm: bytecode caches, the fake's first pages
        ways: dict[str, list[dict[str, float]]] = {
            "json-lines": [],
            "table-piped": [],
            "table-terminal": [],
        }
        for _ in range(rounds):
            ways["json-lines"].append(run_piped(url, "--json-lines"))
            ways["table-piped"].append(run_piped(url))
            ways["table-terminal"].append(run_in_terminal(url))
    results: dict[str, Any] = {name: _medians(runs) for name, runs in ways.items()}
    baseline = results["json-lines"]["wall"]
    terminal = results["table-terminal"]
    ratio = terminal["wall"] / baseline
    targets = [
        {
            "figure": "seconds from start to the first screenful on a terminal",
            "value": terminal["first_screen"],
            "target": f"<= {FIRST_SCREEN_TARGET:g}",
            "verdict": verdict(terminal["first_screen"], FIRST_SCREEN_TARGET, at_least=False),
        },
        {
            "figure": "the whole table on a terminal, wall time over `--json-lines`'s",
            "value": round(ratio, 2),
            "target": f"<= {TOTAL_RATIO_TARGET:g}",
            "verdict": verdict(ratio, TOTAL_RATIO_TARGET, at_least=False),
        },
    ]
    rows = [
        [
            name,
            figures["wall"],
            figures["cpu"],
            figures.get("first_screen", float("nan")),
            int(figures["lines"]),
        ]
        for name, figures in results.items()
    ]
    print(
        table(
            ["way", "wall s", "cpu s", "first screen s", "lines"],
            rows,
            title=f"list of {servers:,} backups (medians of {rounds})",
        )
    )
    for target in targets:
        print(f"{target['figure']}: {target['value']} ({target['target']}) {target['verdict']}")
    write_results(
        "cli_list",
        {
            "servers": servers,
            "runs": rounds,
            "terminal": {"columns": COLUMNS, "lines": LINES},
            "results": results,
            "targets": targets,
        },
        quick=args.quick,
    )


if __name__ == "__main__":
    main()
