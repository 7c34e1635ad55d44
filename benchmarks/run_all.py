"""Run every benchmark, draw the charts, and print the README's performance tables.

What it does: runs each ``bench_*.py`` in its own process, one after another (so they do
not compete for the two cores), passing ``--quick`` through, and stops at the first that
fails. Then it renders, with matplotlib's Agg backend, ``throughput.png``: requests per
second by concurrency (SDK vs raw aiohttp written the typical and the lean way, httpx
and requests; against the static responder, on its 1,000-backup page, and against the
fake API) above the client's CPU time per request; and ``loop_block.png``: the event
loop's longest block while one list page of 1,000 to 100,000 backups is read (SDK vs
raw aiohttp, with orjson and json, against the 50 ms target). Last, it prints the
README's performance tables in Markdown, regenerated from the results files
(``report.py``). Targets are those of each script; see their docstrings.

Run: ``python benchmarks/run_all.py [--quick]`` (quick: a smoke run of about a
minute, results under results/quick/, which version control ignores). ``--chart-only``
redraws the charts and reprints the tables from the results already there.
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
from report import normalize_throughput, render

HERE = Path(__file__).resolve().parent
BENCHMARKS = (
    "bench_decode.py",
    "bench_throughput.py",
    "bench_fleet.py",
    "bench_ratelimit.py",
    "bench_prune.py",
    "bench_memory.py",
    "bench_loop_block.py",
    "bench_import.py",
    "bench_cli_list.py",
)
COLORS = {
    "sdk": "#1f77b4",
    "aiohttp_typical": "#7f7f7f",
    "aiohttp_lean": "#c7c7c7",
    "httpx": "#ff7f0e",
    "requests": "#2ca02c",
}
LABELS = {
    "sdk": "asyncbackups SDK",
    "aiohttp_typical": "raw aiohttp, typical (response.json())",
    "aiohttp_lean": "raw aiohttp, lean (read + json.loads)",
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


def _sdk_labels(rows: list[dict[str, Any]], kind: str) -> list[str]:
    """The SDK bars' labels: SDK / typical and SDK / lean, within rounds (T and L)."""
    labels = []
    for row in rows:
        parts = []
        for other, letter in (("aiohttp_typical", "T"), ("aiohttp_lean", "L")):
            ratios = row.get("sdk_over", {}).get(other)
            if ratios is not None and f"{kind}_paired" in ratios:
                parts.append(f"{letter} {ratios[f'{kind}_paired']:.2f}")
            elif ratios is not None and kind in ratios:
                parts.append(f"{letter} {ratios[kind]:.2f}")
        labels.append("\n".join(parts))
    return labels


def _bars(axis: Any, rows: list[dict[str, Any]], field: str, kind: str, clip: float) -> None:
    """One panel's grouped bars of ``row[field][contender]`` per concurrency."""
    names = [name for name in LABELS if name in rows[0][field]]
    width = 0.8 / len(names)
    for index, name in enumerate(names):
        positions = [i + (index - (len(names) - 1) / 2) * width for i in range(len(rows))]
        values = [row[field][name] for row in rows]
        shown = [min(value, clip) for value in values]
        bars = axis.bar(positions, shown, width, label=LABELS[name], color=COLORS[name])
        if name == "sdk":
            axis.bar_label(bars, labels=_sdk_labels(rows, kind), fontsize=6, padding=2)
        elif any(value > clip for value in values):  # cut off: say how tall
            cut = [f"{value:,.0f}" if value > clip else "" for value in values]
            axis.bar_label(bars, labels=cut, fontsize=6, padding=2, rotation=90)
    axis.set_xticks(range(len(rows)), [str(row["concurrency"]) for row in rows])
    axis.set_xlabel("concurrent requests")
    axis.grid(axis="y", alpha=0.3)


def render_throughput(results: Path, output: Path) -> None:
    """Requests/second and client CPU per request by concurrency, a column per server."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data: dict[str, Any] = normalize_throughput(json.loads(results.read_text()))
    panels = [
        (key, title)
        for key, title in (
            ("static", "Static keep-alive responder, 3-backup page"),
            ("page", "Static responder, 1,000-backup page"),
            ("fake_api", "Fake API process"),
        )
        if key in data
    ]
    figure, axes = plt.subplots(
        2, len(panels), figsize=(5.6 * len(panels), 8.4), squeeze=False, sharey=False
    )
    for column, (key, title) in enumerate(panels):
        rows = data[key]["rows"]
        top, bottom = axes[0][column], axes[1][column]
        _bars(top, rows, "rps", "rps", clip=float("inf"))
        top.set_ylabel("requests / second (median)")
        top.set_title(f"{title} (rounds: {data[key]['repetitions']})", fontsize=10)
        top.margins(y=0.15)
        if "cpu_us_per_request" not in rows[0]:
            bottom.text(0.5, 0.5, "CPU time not in these results", ha="center", va="center")
            bottom.set_axis_off()
            continue
        # httpx and requests cost many times more: cut their bars so the SDK and aiohttp
        # stay readable (their heights are written on them).
        near = [
            row["cpu_us_per_request"][name]
            for row in rows
            for name in ("sdk", "aiohttp_typical", "aiohttp_lean")
            if name in row["cpu_us_per_request"]
        ]
        clip = max(near) * 1.6
        _bars(bottom, rows, "cpu_us_per_request", "cpu", clip=clip)
        bottom.set_ylim(0, clip * 1.1)
        bottom.set_ylabel("client CPU µs / request (median; lower is better)")
        bottom.set_title(f"{title}: client CPU per request", fontsize=10)
    handles, labels = axes[0][0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8)
    machine = data["machine"]
    figure.suptitle(
        "client.backups.list(): throughput and client CPU per request "
        "(SDK labels: SDK / raw aiohttp typical (T) and lean (L), medians within rounds)\n"
        f"{machine['cpu_model']}, {machine['cores']} cores, Python {machine['python']}, "
        f"aiohttp {machine['aiohttp']}, orjson {machine.get('orjson')}, "
        f"{machine['date'][:10]}, load {machine['load_average'][0]:.2f}",
        fontsize=10,
    )
    figure.tight_layout(rect=(0, 0.04, 1, 1))  # room for the legend below
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
        "--chart-only",
        action="store_true",
        help="only redraw the charts and print the tables from existing results",
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
    print("\n=== README performance tables (python benchmarks/report.py)\n")
    print(render(folder), end="")
    print()
    for script, seconds in timings:
        print(f"{script:24} {seconds:6.1f} s")


if __name__ == "__main__":
    main()
