"""The README's benchmark targets are the results files', verdicts included."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "benchmarks"


@pytest.fixture
def report() -> Iterator[ModuleType]:
    """benchmarks/report.py, loaded as a module (it imports its sibling _common.py)."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        spec = importlib.util.spec_from_file_location("_bench_report", BENCHMARKS / "report.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(BENCHMARKS))


def test_the_readme_shows_every_target_as_the_results_files_state_it(report: ModuleType) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index(report.README_START)
    end = readme.index(report.README_END) + len(report.README_END)
    assert readme[start:end] == report.readme_targets(report.RESULTS), (
        "README.md's benchmark targets differ from benchmarks/results/*.json: "
        "run `python benchmarks/report.py --readme`"
    )


def test_every_throughput_and_decode_target_has_a_verdict_in_the_readme(
    report: ModuleType,
) -> None:
    block = report.readme_targets(report.RESULTS)
    results = report.load(report.RESULTS)
    targets = results["throughput"]["targets"]
    assert len(targets) >= 10  # two per concurrency, the page case, httpx and requests
    rows = [line for line in block.splitlines() if line.startswith("|")][2:]
    expected = len(targets) + len(results["decode"]["runs"])
    assert len([row for row in rows if row.rstrip(" |").endswith(("PASS", "MISS"))]) >= expected
