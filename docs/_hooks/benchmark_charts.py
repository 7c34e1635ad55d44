"""mkdocs hook: every benchmark figure in the docs, taken from benchmarks/results/.

Nothing measured is copied into docs/ by hand, so no page can disagree with the
results files (nor with the README, whose tables come from the same files):

- charts: ``performance/<name>.svg`` are drawn at build time with matplotlib from
  ``benchmarks/results/*.json``: ``fleet.svg`` (fleet.json), ``throughput.svg`` and
  ``throughput-cpu.svg`` (throughput.json), ``loop-block.svg`` (loop_block.json). They
  are drawn for the docs' column (about 690 px wide), one panel or two each, and live
  in memory, never in docs/. The PNGs the benchmark scripts draw beside their JSON are
  theirs, for a terminal user; the site does not ship them.
- tables: ``<!-- benchmarks:tables -->`` becomes the report of ``benchmarks/report.py``
  (``render``), ``<!-- benchmarks:ratelimit -->`` its rate-limit table and
  ``<!-- benchmarks:ratelimit-shared -->`` the shared-limit one.
- figures in the text: ``{{ bench.NAME }}`` becomes the figure ``report.figures()``
  names (``{{ bench.fleet.requests_per_server }}`` is ``1.02``). An unknown name fails
  the build; a marker in backticks is left as it is, to show it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
TARGET = "performance"
MARKERS = {
    "<!-- benchmarks:tables -->": "render",
    "<!-- benchmarks:ratelimit -->": "ratelimit_table",
    "<!-- benchmarks:ratelimit-shared -->": "ratelimit_shared_table",
}
# Written as code (in backticks), a figure's marker is shown, not replaced.
FIGURE = re.compile(r"(?<!`)\{\{\s*bench\.(?P<name>[\w.]+)\s*\}\}(?!`)")

WIDTH = 7.0  # inches: 504 pt, shown at 672 px, inside the docs' column
SDK, TYPICAL, LEAN, HTTPX, REQUESTS = (
    "#1f5fbf",
    "#6e6e6e",
    "#b4b4b4",
    "#e07b00",
    "#2e9a3e",
)
CONTENDERS = {
    "sdk": ("asyncbackups", SDK),
    "aiohttp_typical": ("aiohttp, typical", TYPICAL),
    "aiohttp_lean": ("aiohttp, lean", LEAN),
    "httpx": ("httpx", HTTPX),
    "requests": ("requests", REQUESTS),
}
TARGET_COLOR, IDEAL_COLOR = "#c62828", "#2e7d32"

_report: ModuleType | None = None


@contextlib.contextmanager
def _benchmarks_importable() -> Iterator[None]:
    """report.py imports its siblings (_common.py, and bench_*.py for their targets)."""
    folder = str(ROOT / "benchmarks")
    sys.path.insert(0, folder)
    try:
        yield
    finally:
        sys.path.remove(folder)


def report() -> ModuleType:
    """benchmarks/report.py, loaded once; use it inside ``_benchmarks_importable()``."""
    global _report
    if _report is None:
        script = ROOT / "benchmarks" / "report.py"
        spec = importlib.util.spec_from_file_location("_asyncbackups_report", script)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _report = module
    return _report


def _load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def charts() -> dict[str, bytes]:
    """Every chart the results files allow, by file name."""
    drawn: dict[str, bytes] = {}
    if (fleet := _load("fleet")) is not None:
        drawn["fleet.svg"] = render_fleet(fleet)
    if (throughput := _load("throughput")) is not None:
        drawn["throughput.svg"] = render_throughput(throughput, "rps")
        drawn["throughput-cpu.svg"] = render_throughput(
            throughput, "cpu_us_per_request"
        )
    if (loop_block := _load("loop_block")) is not None:
        drawn["loop-block.svg"] = render_loop_block(loop_block)
    return drawn


def on_files(files: Files, config: Any) -> Files:
    """Add the charts to the site's files."""
    global _report
    _report = None  # `mkdocs serve` rebuilds in process: read the script afresh
    for name, content in charts().items():
        files.append(File.generated(config, f"{TARGET}/{name}", content=content))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    """Replace the tables' markers and the ``{{ bench.NAME }}`` figures."""
    wanted = [marker for marker in MARKERS if marker in markdown]
    if not wanted and FIGURE.search(markdown) is None:
        return markdown
    with _benchmarks_importable():
        module = report()
        results = module.load(RESULTS)
        for marker in wanted:
            function = MARKERS[marker]
            table = (
                module.render(RESULTS)
                if function == "render"
                else (getattr(module, function)(results))
            )
            markdown = markdown.replace(marker, table)
        known: dict[str, str] = module.figures(results)

    def figure(match: re.Match[str]) -> str:
        name = match["name"]
        if name not in known:
            raise PluginError(
                f"{page.file.src_uri}: no benchmark figure {name!r}; "
                f"report.figures() has: {', '.join(sorted(known))}"
            )
        return known[name]

    return FIGURE.sub(figure, markdown)


# -- charts -------------------------------------------------------------------------


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {
            "font.size": 9,
            "axes.titlesize": 9.5,
            "axes.labelsize": 9,
            "xtick.labelsize": 8.5,
            "ytick.labelsize": 8.5,
            "legend.fontsize": 8.5,
            "axes.spines.top": False,
            "axes.spines.right": False,
        }
    )
    return plt


def _machine(data: dict[str, Any]) -> str:
    machine = data["machine"]
    cpu, cores, python = machine["cpu_model"], machine["cores"], machine["python"]
    return (
        f"{cpu}, {cores} cores, Python {python}, aiohttp {machine['aiohttp']}, "
        f"{machine['date'][:10]}"
    )


def _svg(figure: Any) -> bytes:
    plt = _pyplot()
    buffer = io.BytesIO()
    with plt.rc_context({"svg.hashsalt": "asyncbackups-docs"}):
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    plt.close(figure)
    return buffer.getvalue()


def _plain_log_ticks(axis: Any, ticks: list[float]) -> None:
    """Label a log axis with plain numbers (``200``, not ``2 x 10^2``)."""
    from matplotlib.ticker import FixedLocator, NullLocator, StrMethodFormatter

    axis.yaxis.set_major_locator(FixedLocator(ticks))
    axis.yaxis.set_minor_locator(NullLocator())
    axis.yaxis.set_major_formatter(StrMethodFormatter("{x:,g}"))


def render_fleet(data: dict[str, Any]) -> bytes:
    """Requests per server and wall time of a fleet: the shared poller against naive."""
    plt = _pyplot()
    summary, settings = data["summary"], data["settings"]
    contenders = [
        ("sdk", "shared poller", SDK),
        ("naive", "get() per backup", HTTPX),
    ]
    contenders = [c for c in contenders if c[0] in summary]
    labels = [label for _, label, _ in contenders]
    colors = [color for _, _, color in contenders]
    figure, (requests_axis, wall_axis) = plt.subplots(1, 2, figsize=(WIDTH, 3.1))
    target = data["targets"][0]
    lines = [
        (
            requests_axis,
            float(target["target"].split()[-1]),
            "target " + target["target"].replace("<=", "\u2264"),
            TARGET_COLOR,
        ),
    ]
    ideal = data.get("ideal_wall_seconds")
    if ideal:
        lines.append((wall_axis, ideal, f"ideal: {ideal:.1f} s", IDEAL_COLOR))
    panels = [
        (
            requests_axis,
            "requests_per_server",
            "{:.2f}",
            "HTTP requests per server",
            "every poll included",
        ),
        (
            wall_axis,
            "wall_seconds",
            "{:.1f} s",
            "wall time, seconds (median)",
            f"backups lasting {settings['backup_seconds']:g} s",
        ),
    ]
    for axis, key, shown, ylabel, title in panels:
        values = [summary[name][key] for name, _, _ in contenders]
        bars = axis.bar(labels, values, color=colors, width=0.55)
        # The figures sit inside the bars, where no reference line can cross them,
        # and the lines are named in a legend above the bars, not beside them.
        axis.bar_label(
            bars,
            labels=[shown.format(value) for value in values],
            label_type="center",
            color="white",
            fontweight="bold",
        )
        axis.set_ylabel(ylabel)
        axis.set_ylim(0, max(values) * 1.45)
        axis.set_title(title)
        axis.grid(axis="y", alpha=0.3)
        axis.set_axisbelow(True)
    for axis, value, label, color in lines:
        axis.axhline(value, color=color, linestyle="--", linewidth=1, label=label)
        axis.legend(loc="upper center", frameon=False)
    figure.suptitle(
        f"Backing up {settings['servers']:,} servers "
        f"(page size {settings['page_size']})\n{_machine(data)}",
        fontsize=9,
    )
    figure.tight_layout()
    return _svg(figure)


def render_throughput(data: dict[str, Any], key: str) -> bytes:
    """One panel: each client at each concurrency, on the static responder's page."""
    plt = _pyplot()
    static = data["static"]
    rows = static["rows"]
    names = [name for name in CONTENDERS if name in rows[0][key]]
    figure, axis = plt.subplots(figsize=(WIDTH, 3.4))
    width = 0.8 / len(names)
    positions = range(len(rows))
    for index, name in enumerate(names):
        label, color = CONTENDERS[name]
        offsets = [p - 0.4 + width * (index + 0.5) for p in positions]
        axis.bar(
            offsets, [row[key][name] for row in rows], width, label=label, color=color
        )
    axis.set_xticks(list(positions), [str(row["concurrency"]) for row in rows])
    axis.set_xlabel("concurrent requests")
    axis.grid(axis="y", alpha=0.3)
    axis.set_axisbelow(True)
    if key == "rps":
        axis.set_ylabel("requests per second (median)")
        axis.set_ylim(0, max(max(row[key].values()) for row in rows) * 1.18)
        what = "throughput"
        ratio_kind = "rps"
    else:
        axis.set_yscale("log")
        _plain_log_ticks(axis, [50, 100, 200, 500, 1000, 2000, 5000])
        axis.set_ylabel("client CPU µs per request (log)")
        axis.set_ylim(top=max(max(row[key].values()) for row in rows) * 3)
        what = "client CPU per request, lower is better"
        ratio_kind = "cpu"
    # Above each group: the SDK against raw aiohttp written the typical way.
    for position, row in zip(positions, rows, strict=True):
        ratios = row.get("sdk_over", {}).get("aiohttp_typical", {})
        ratio = ratios.get(f"{ratio_kind}_paired", ratios.get(ratio_kind))
        if ratio is not None:
            axis.annotate(
                f"SDK / typical {ratio:.2f}\u00d7",
                (position, 1.0),
                xycoords=("data", "axes fraction"),
                ha="center",
                va="top",
                fontsize=7.5,
                color=SDK,
            )
    axis.legend(
        ncol=len(names), loc="upper center", bbox_to_anchor=(0.5, -0.2), frameon=False
    )
    axis.set_title(
        f"client.backups.list(), {static['backups_per_answer']}-backup page, static "
        f"keep-alive responder: {what}\n{_machine(data)}, medians of "
        f"{static['repetitions']} rounds",
        fontsize=8.5,
    )
    figure.tight_layout()
    return _svg(figure)


def render_loop_block(data: dict[str, Any]) -> bytes:
    """The longest stretch the event loop was blocked, by page size and parser."""
    plt = _pyplot()
    rows = data["rows"]
    sizes = data["sizes"]
    series: dict[tuple[str, str], dict[int, float]] = {}
    labels: dict[tuple[str, str], str] = {}
    for row in rows:
        series_key = (row["call"], row["backend"])
        series.setdefault(series_key, {})[row["backups"]] = row["longest_ms"]
        who = "SDK list()" if row["call"] == "sdk" else "raw aiohttp +"
        labels[series_key] = f"{who} {row['parser']}"
    # The SDK's runs in blues, raw aiohttp's in greys, whichever parsers were measured.
    palettes = {"sdk": [SDK, "#8fb3e8"], "raw": [TYPICAL, LEAN]}
    used: dict[str, int] = {}
    figure, axis = plt.subplots(figsize=(WIDTH, 3.4))
    width = 0.8 / len(series)
    for index, (series_key, values) in enumerate(series.items()):
        offsets = [p - 0.4 + width * (index + 0.5) for p in range(len(sizes))]
        heights = [values.get(size, float("nan")) for size in sizes]
        palette = palettes.get(series_key[0], [TYPICAL, LEAN])
        color = palette[used.get(series_key[0], 0) % len(palette)]
        used[series_key[0]] = used.get(series_key[0], 0) + 1
        bars = axis.bar(offsets, heights, width, label=labels[series_key], color=color)
        axis.bar_label(
            bars,
            labels=[f"{h:.1f}" if h < 10 else f"{h:.0f}" for h in heights],
            padding=1,
            fontsize=7,
        )
    axis.set_yscale("log")
    _plain_log_ticks(axis, [0.1, 0.3, 1, 3, 10, 30, 100, 300, 1000])
    axis.set_xticks(range(len(sizes)), [f"{size:,}" for size in sizes])
    axis.set_xlabel("backups on the one page")
    axis.set_ylabel("longest block, ms (median; log)")
    target_ms = data["target_ms"]
    axis.axhline(target_ms, color=TARGET_COLOR, linestyle="--", linewidth=1)
    axis.annotate(
        f"target \u2264 {target_ms:g} ms at {data['target_backups']:,} backups",
        (0.0, target_ms),
        xycoords=("axes fraction", "data"),
        xytext=(2, 3),
        textcoords="offset points",
        ha="left",
        va="bottom",
        color=TARGET_COLOR,
        fontsize=8,
    )
    axis.set_ylim(top=max(row["longest_ms"] for row in rows) * 4)
    axis.grid(axis="y", alpha=0.3)
    axis.set_axisbelow(True)
    axis.legend(ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.2), frameon=False)
    axis.set_title(
        "await client.backups.list() on one huge page: the longest stretch the event "
        f"loop is blocked\n{_machine(data)}, medians of {data['rounds']} rounds",
        fontsize=8.5,
    )
    figure.tight_layout()
    return _svg(figure)
