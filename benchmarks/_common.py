"""What every benchmark shares: servers in their own processes, machine facts, tables, JSON.

Not a benchmark itself. Each ``bench_*.py`` script imports it from its own folder.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.metadata
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import aiohttp

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
# Smoke runs go here, out of version control, so they never replace a full run's figures.
QUICK_RESULTS = RESULTS / "quick"
TOKEN = "bench-token"
# How busy the machine was when the benchmark started (its results record it beside the
# load when they are written): 1, 5 and 15 minute averages of runnable processes.
STARTING_LOAD = tuple(round(load, 2) for load in os.getloadavg())
# The distributions whose versions every result records.
_DISTRIBUTIONS = (
    "aiohttp",
    "yarl",
    "multidict",
    "attrs",
    "cattrs",
    "tenacity",
    "orjson",
    "msgspec",
    "httpx",
    "requests",
)


# With two cores, the client under test gets one and the server the other, so neither
# steals the other's time slices (Linux only; elsewhere the scheduler decides).
CLIENT_CPU = 0
SERVER_CPU = 1


def parse_args(description: str | None, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The options every benchmark takes: ``--quick`` for a smoke run of a few seconds."""
    parser = argparse.ArgumentParser(description=(description or "").split("\n\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run of a few seconds; results go to results/quick/",
    )
    return parser.parse_args(argv)


def pin_to_cpu(cpu: int, pid: int = 0) -> bool:
    """Keep a process on one CPU when the machine has more than one; whether it was done."""
    if not hasattr(os, "sched_setaffinity") or (os.cpu_count() or 1) < 2:
        return False
    try:
        os.sched_setaffinity(pid, {cpu})
    except OSError:
        return False
    return True


def cpu_model() -> str:
    """The CPU model as /proc/cpuinfo names it (or what the platform module knows)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _git(*arguments: str) -> str:
    try:
        done = subprocess.run(
            ["git", *arguments], cwd=HERE.parent, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def source_info() -> dict[str, Any]:
    """Which SDK code was measured: the commit, and whether the package had local edits."""
    changed = _git("status", "--porcelain", "--", "asyncbackups").splitlines()
    return {
        "commit": _git("rev-parse", "--short", "HEAD") or None,
        "package_modified": bool(changed),
        # Which of the package's files differed from the commit (a CLI edit, say, does not
        # touch what a client benchmark measures).
        "package_modified_files": sorted(line.split(maxsplit=1)[1] for line in changed),
        "benchmarks_modified": bool(_git("status", "--porcelain", "--", "benchmarks/*.py")),
    }


def versions() -> dict[str, str | None]:
    """The installed version of each library a benchmark touches (None: not installed)."""
    found: dict[str, str | None] = {}
    for name in _DISTRIBUTIONS:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def machine_info() -> dict[str, Any]:
    """Where and with what a result was measured."""
    # Imported here, not above: a benchmark may first make the ``fast`` extra's libraries
    # unimportable (the default install) and only then import the SDK.
    import asyncbackups

    try:
        import orjson

        orjson_version: str | None = orjson.__version__
    except ImportError:
        orjson_version = None
    return {
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "aiohttp": aiohttp.__version__,
        "asyncbackups": asyncbackups.__version__,
        "orjson": orjson_version,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "versions": versions(),
        # Other work on the machine skews results; this says how busy it was (1, 5, 15 min),
        # when the results were written and when the benchmark started. A benchmark's own
        # client and server count too: about 2 on two cores is the benchmark alone.
        "load_average": [round(load, 2) for load in os.getloadavg()],
        "load_average_at_start": list(STARTING_LOAD),
    }


def write_results(name: str, data: dict[str, Any], *, quick: bool) -> Path:
    """Write ``data`` with the machine's facts to ``results/<name>.json``; return the path."""
    folder = QUICK_RESULTS if quick else RESULTS
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    payload = {
        "benchmark": name,
        "quick": quick,
        "machine": machine_info(),
        "source": source_info(),
        **data,
    }
    path.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
    print(f"\nwrote {path.relative_to(HERE.parent)}")
    return path


def median(values: Sequence[float]) -> float:
    """The median, or NaN for no values."""
    return statistics.median(values) if values else float("nan")


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, title: str = "") -> str:
    """A plain text table; floats get a sensible number of digits."""

    def cell(value: Any) -> str:
        if isinstance(value, float):
            if value != value:  # NaN
                return "-"
            if abs(value) >= 100:
                return f"{value:,.0f}"
            if abs(value) >= 10:
                return f"{value:.1f}"
            return f"{value:.2f}"
        return str(value)

    text = [[cell(value) for value in row] for row in rows]
    widths = [
        max(len(str(header)), *(len(row[i]) for row in text)) if text else len(str(header))
        for i, header in enumerate(headers)
    ]
    lines = [title] if title else []
    lines.append("  ".join(str(h).rjust(w) for h, w in zip(headers, widths, strict=True)))
    lines.append("  ".join("-" * w for w in widths))
    lines.extend("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in text)
    return "\n".join(lines)


def verdict(value: float, target: float, *, at_least: bool) -> str:
    """``"PASS"`` or ``"MISS"`` for a figure against its target."""
    met = value >= target if at_least else value <= target
    return "PASS" if met else "MISS"


class ServerProcess:
    """A server under test in its own process, on 127.0.0.1, pinned to the server's CPU.

    ``command`` must print a line holding ``http://127.0.0.1:PORT/...`` once it listens;
    that URL becomes ``url``. Stopped with SIGTERM (then SIGKILL) on exit.
    """

    _URL = re.compile(r"(http://127\.0\.0\.1:\d+/\S*)")

    def __init__(self, command: Sequence[str], *, startup_timeout: float = 60.0) -> None:
        self.command = list(command)
        self.startup_timeout = startup_timeout
        self.url = ""
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> ServerProcess:
        process = subprocess.Popen(
            self.command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self._process = process
        pin_to_cpu(SERVER_CPU, process.pid)
        deadline = time.monotonic() + self.startup_timeout
        assert process.stdout is not None
        seen: list[str] = []
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            seen.append(line)
            match = self._URL.search(line)
            if match:
                self.url = match.group(1)
                return self
        self._stop()
        raise RuntimeError(f"{' '.join(self.command)} did not start:\n{''.join(seen)}")

    def __exit__(self, *exc_info: object) -> None:
        self._stop()

    @property
    def pid(self) -> int:
        """The server's process id."""
        assert self._process is not None
        return self._process.pid

    def _stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        if process.stdout is not None:
            process.stdout.close()


def fake_api(
    *,
    servers: int = 0,
    backup_seconds: float = 5.0,
    page_size: int = 100,
    rate_limit: float | None = None,
    burst: float | None = None,
    rate_limit_headers: bool = True,
) -> ServerProcess:
    """The SDK's fake API (``python -m asyncbackups.testing``) in its own process.

    ``rate_limit`` (requests a second, all clients together) turns on its token bucket of
    ``burst`` requests; ``rate_limit_headers=False`` leaves a 429's ``Retry-After`` as the
    only sign of it.
    """
    command = [
        sys.executable,
        "-m",
        "asyncbackups.testing",
        "--port",
        "0",
        "--token",
        TOKEN,
        "--servers",
        str(servers),
        "--backup-seconds",
        str(backup_seconds),
        "--page-size",
        str(page_size),
    ]
    if rate_limit is not None:
        command += ["--rate-limit", str(rate_limit)]
        if burst is not None:
            command += ["--burst", str(burst)]
        if not rate_limit_headers:
            command.append("--no-rate-limit-headers")
    return ServerProcess(command)


def static_server(*, backups: int | None = None) -> ServerProcess:
    """The minimal keep-alive responder of ``_static_server.py`` in its own process.

    It answers the documentation's 3-backup page, or with ``backups`` a page of that many
    (``bench_decode.build_page``).
    """
    command = [sys.executable, str(HERE / "_static_server.py"), "--port", "0"]
    if backups is not None:
        command += ["--backups", str(backups)]
    return ServerProcess(command)


def process_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far; NaN where /proc is missing."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def timer() -> Iterator[list[float]]:
    """Measure a block: the list holds the elapsed seconds once the block ends."""
    elapsed: list[float] = []
    start = time.perf_counter()
    try:
        yield elapsed
    finally:
        elapsed.append(time.perf_counter() - start)
