"""Run every benchmark, then draw ``results/throughput.png`` and ``results/loop_block.png``.

What it does: runs each ``bench_*.py`` in its own process, one after another (so they do
not compete for the two cores), passing ``--quick`` through, and stops at the first that
fails. Then it renders, with matplotlib's Agg backend, the throughput comparison
(requests/second by concurrency, SDK vs raw aiohttp, httpx and requests, against the
static responder and the fake API) and the event loop's longest block while one list
page of 1,000 to 100,000 backups is read (SDK vs raw aiohttp, with orjson and json,
against the 50 ms target). Targets are those of each script; see their docstrings.

Run: ``python benchmarks/run_all.py [--quick]`` (quick: a smoke run of under a
minute, results under results/quick/, which version control ignores). ``--chart-only``
redraws the charts from the results already there.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _common import QUICK_RESULTS, RESULTS

HERE = Path(__file__).resolve().parent
BENCHMARKS = (
    "bench_decode.py",
    "bench_throughput.py",
    "bench_fleet.py",
    "bench_memory.py",
    "bench_loop_block.py",
)
COLORS = {"sdk": "#1f77b4", "aiohttp": "#7f7f7f", "httpx": "#ff7f0e", "requests": "#2ca02c"}
LABELS = {
    "sdk": "asyncbackups SDK",
    "aiohttp": "raw aiohttp",
    "httpx": "httpx",
    "requests": "requests",
}
# The loop-block chart's bars: (call, JSON backend) -> colour, label.
BLOCK_BARS = {
    ("sdk", "orjson"): ("#1f77b4", "SDK list(), orjson"),
    ("sdk", "json"): ("#aec7e8", "SDK list(), json"),
    ("raw", "orjson"): ("#7f7f7f", "raw aiohttp + orjson.loads"),
    ("raw", "json"): ("#c7c7c7", "raw aiohttp + json.loads"),
}


def render_throughput(results: Path, output: Path) -> None:
    """Grouped bars of requests/second per concurrency, one panel per server."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data: dict[str, Any] = json.loads(results.read_text())
    panels = [("static", "Static keep-alive responder"), ("fake_api", "Fake API process")]
    figure, axes = plt.subplots(1, len(panels), figsize=(12, 4.6), sharey=False)
    for axis, (key, title) in zip(axes, panels, strict=True):
        rows = data[key]["rows"]
        concurrencies = [row["concurrency"] for row in rows]
        width = 0.2
        for index, name in enumerate(LABELS):
            positions = [i + (index - 1.5) * width for i in range(len(rows))]
            values = [row["rps"][name] for row in rows]
            bars = axis.bar(positions, values, width, label=LABELS[name], color=COLORS[name])
            if name == "sdk":
                ratios = [f"{row['sdk_over_aiohttp']:.2f}x" for row in rows]
                axis.bar_label(bars, labels=ratios, fontsize=7, padding=2)
        axis.set_xticks(range(len(rows)), [str(c) for c in concurrencies])
        axis.set_xlabel("concurrent requests")
        axis.set_ylabel("requests / second (median)")
        axis.set_title(f"{title} (reps: {data[key]['repetitions']})", fontsize=10)
        axis.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8, loc="upper left")
    machine = data["machine"]
    figure.suptitle(
        "client.backups.list(server_id=12345): throughput (labels: SDK / raw aiohttp)\n"
        f"{machine['cpu_model']}, {machine['cores']} cores, Python {machine['python']}, "
        f"aiohttp {machine['aiohttp']}, {machine['date'][:10]}",
        fontsize=10,
    )
    figure.tight_layout()
    figure.savefig(output, dpi=110)
    plt.close(figure)
    print(f"wrote {output.relative_to(HERE.parent)}")


def render_loop_block(results: Path, output: Path) -> None:
    """Grouped bars of the loop's longest block per page size, log scale, with the target."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data: dict[str, Any] = json.loads(results.read_text())
    rows = {(row["backups"], row["call"], row["backend"]): row for row in data["rows"]}
    sizes = data["sizes"]
    bars = [key for key in BLOCK_BARS if (sizes[0], *key) in rows]
    figure, axis = plt.subplots(figsize=(9, 4.6))
    width = 0.8 / len(bars)
    for index, key in enumerate(bars):
        positions = [i + (index - (len(bars) - 1) / 2) * width for i in range(len(sizes))]
        values = [rows[(size, *key)]["longest_ms"] for size in sizes]
        color, label = BLOCK_BARS[key]
        drawn = axis.bar(positions, values, width, label=label, color=color)
        labels = [f"{v:.1f}" if v < 10 else f"{v:.0f}" for v in values]
        axis.bar_label(drawn, labels=labels, fontsize=7, padding=2)
    target_ms = data["target_ms"]
    axis.axhline(target_ms, color="#d62728", linestyle="--", linewidth=1)
    axis.text(
        0.5,
        target_ms * 1.12,
        f"target: <= {target_ms:g} ms at {data['target_backups']:,} backups",
        color="#d62728",
        fontsize=8,
        ha="center",
    )
    axis.set_yscale("log")
    top = max(row["longest_ms"] for row in rows.values())
    axis.set_ylim(top=top * 8)  # room for the legend above the bars and the target line
    axis.set_xticks(range(len(sizes)), [f"{size:,}" for size in sizes])
    axis.set_xlabel("backups on the one page")
    axis.set_ylabel("longest event-loop block, ms (median)")
    axis.set_title(f"rounds: {data['rounds']}; labels: ms", fontsize=10)
    axis.grid(axis="y", alpha=0.3)
    axis.legend(fontsize=8, loc="upper left")
    machine = data["machine"]
    figure.suptitle(
        "await client.backups.list() on one huge page: longest stretch the loop is blocked\n"
        f"{machine['cpu_model']}, {machine['cores']} cores, Python {machine['python']}, "
        f"aiohttp {machine['aiohttp']}, orjson {machine['orjson']}, {machine['date'][:10]}",
        fontsize=10,
    )
    figure.tight_layout()
    figure.savefig(output, dpi=110)
    plt.close(figure)
    print(f"wrote {output.relative_to(HERE.parent)}")


def main() -> None:
    """Run each benchmark in turn, then render the charts."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of each benchmark")
    parser.add_argument(
        "--chart-only", action="store_true", help="only redraw the charts from existing results"
    )
    args = parser.parse_args()
    extra = ["--quick"] if args.quick else []
    timings = []
    for script in () if args.chart_only else BENCHMARKS:
        print(f"\n=== {script} {' '.join(extra)}".rstrip(), flush=True)
        start = time.perf_counter()
        code = subprocess.run([sys.executable, str(HERE / script), *extra]).returncode
        timings.append((script, time.perf_counter() - start))
        if code != 0:
            sys.exit(f"{script} failed with exit status {code}")
    folder = QUICK_RESULTS if args.quick else RESULTS
    render_throughput(folder / "throughput.json", folder / "throughput.png")
    render_loop_block(folder / "loop_block.json", folder / "loop_block.png")
    print()
    for script, seconds in timings:
        print(f"{script:24} {seconds:6.1f} s")


if __name__ == "__main__":
    main()
