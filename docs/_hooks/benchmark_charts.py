"""mkdocs hook: the Performance page's charts and tables, taken from benchmarks/results/.

Nothing about the benchmarks is copied into docs/ by hand, so the page cannot go stale:

- every chart the benchmark run draws (``benchmarks/results/*.png``, see
  ``benchmarks/run_all.py``) is added to the site as ``performance/<name>.png``;
- the fleet chart is drawn here, at build time, from ``benchmarks/results/fleet.json``
  with matplotlib, unless the benchmark run already drew a ``fleet.png``;
- the marker ``<!-- benchmarks:tables -->`` in a page is replaced by the tables of
  ``benchmarks/report.py`` (``render(folder)``), regenerated from the same JSON files.
  Without that script the marker becomes a pointer to ``nox -s bench``.

The images are generated files of the build: they live in memory, never in docs/.
"""

from __future__ import annotations

import importlib.util
import io
import json
import logging
import sys
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

log = logging.getLogger("mkdocs.hooks.benchmark_charts")

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
TARGET = "performance"
TABLES_MARKER = "<!-- benchmarks:tables -->"


def on_files(files: Files, config: Any) -> Files:
    """Add the benchmark charts to the site's files."""
    charts: dict[str, bytes] = {png.name: png.read_bytes() for png in sorted(RESULTS.glob("*.png"))}
    if "fleet.png" not in charts and (RESULTS / "fleet.json").exists():
        charts["fleet.png"] = render_fleet(json.loads((RESULTS / "fleet.json").read_text()))
    for name, content in charts.items():
        files.append(File.generated(config, f"{TARGET}/{name}", content=content))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    """Replace the tables marker with benchmarks/report.py's tables."""
    if TABLES_MARKER not in markdown:
        return markdown
    return markdown.replace(TABLES_MARKER, benchmark_tables())


def benchmark_tables() -> str:
    """The Markdown tables of benchmarks/report.py, or a pointer when it is absent."""
    script = ROOT / "benchmarks" / "report.py"
    if not script.exists():
        log.info("benchmarks/report.py not found: the Performance page shows no tables")
        return "The full tables are printed by `nox -s bench` from `benchmarks/results/*.json`."
    sys.path.insert(0, str(script.parent))  # report.py imports its sibling _common.py
    try:
        spec = importlib.util.spec_from_file_location("_asyncbackups_bench_report", script)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        text: str = module.render(RESULTS)
    finally:
        sys.path.remove(str(script.parent))
    return text


def render_fleet(data: dict[str, Any]) -> bytes:
    """Two panels from fleet.json: HTTP requests per server, and wall time, SDK vs naive."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = data["summary"]
    settings = data["settings"]
    machine = data["machine"]
    contenders = [
        ("sdk", "create_many(wait=True)\n(shared poller)", "#1f77b4"),
        ("naive", "create + get() per backup\n(naive polling)", "#ff7f0e"),
    ]
    figure, (requests_axis, wall_axis) = plt.subplots(1, 2, figsize=(10, 4.2))
    labels = [label for _, label, _ in contenders]
    colors = [color for _, _, color in contenders]
    requests = [summary[key]["requests_per_server"] for key, _, _ in contenders]
    walls = [summary[key]["wall_seconds"] for key, _, _ in contenders]
    bars = requests_axis.bar(labels, requests, color=colors)
    requests_axis.bar_label(bars, labels=[f"{value:.2f}" for value in requests], padding=2)
    requests_axis.axhline(1.2, color="#d62728", linestyle="--", linewidth=1, label="target: <= 1.2")
    requests_axis.legend(fontsize=8, loc="upper left")
    requests_axis.set_ylabel("HTTP requests per server (every poll included)")
    requests_axis.set_ylim(top=max(requests) * 1.2)
    bars = wall_axis.bar(labels, walls, color=colors)
    wall_axis.bar_label(bars, labels=[f"{value:.1f} s" for value in walls], padding=2)
    ideal = data.get("ideal_wall_seconds")
    if ideal:
        label = f"ideal: {ideal:.1f} s"
        wall_axis.axhline(ideal, color="#2ca02c", linestyle="--", linewidth=1, label=label)
        wall_axis.legend(fontsize=8, loc="upper left")
    wall_axis.set_ylabel("wall time, seconds (median)")
    wall_axis.set_ylim(top=max(walls) * 1.2)
    for axis in (requests_axis, wall_axis):
        axis.grid(axis="y", alpha=0.3)
        axis.tick_params(axis="x", labelsize=8)
    figure.suptitle(
        f"Backing up {settings['servers']:,} servers, backups lasting "
        f"{settings['backup_seconds']:g} s (page size {settings['page_size']})\n"
        f"{machine['cpu_model']}, {machine['cores']} cores, Python {machine['python']}, "
        f"aiohttp {machine['aiohttp']}, {machine['date'][:10]}",
        fontsize=10,
    )
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, metadata={"Software": None})
    plt.close(figure)
    return buffer.getvalue()
