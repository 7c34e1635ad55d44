"""Import time of ``asyncbackups`` against ``import aiohttp``, which it is built on.

What it measures: fresh interpreters (this one's ``sys.executable``, so the same
environment) running ``python -c 'import asyncbackups'``, ``python -c 'import aiohttp'``
and ``python -c pass``, in rounds whose order rotates; per run, its wall time (start to
exit) and its CPU time (user + system, from ``os.wait4``). The import's cost is a
figure's median minus that of ``pass`` (the interpreter's own start and exit), and the
ratio is asyncbackups' cost over aiohttp's. A first run of each, not counted, leaves
the bytecode caches warm.

Then, apart, ``python -X importtime -c 'import X'`` a few times each: the cumulative
time of the top-level ``asyncbackups`` and ``aiohttp`` imports (a second ratio, taken
inside the interpreter, free of its start-up), and the modules of asyncbackups'
import by their own ("self") time, medians over the runs, each marked as added by
asyncbackups or loaded by ``import aiohttp`` too. ``-X importtime`` adds its own small
overhead per module, so its figures run a little higher than the plain runs.

Target: ``import asyncbackups`` costs no more than 1.10x ``import aiohttp`` (wall, net of
``pass``, medians of 15 rounds).

Run: ``python benchmarks/bench_import.py [--quick]`` (quick: 5 rounds).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from typing import Any

from _common import CLIENT_CPU, median, parse_args, pin_to_cpu, table, verdict, write_results

TARGET_RATIO = 1.10
STATEMENTS = {
    "asyncbackups": "import asyncbackups",
    "aiohttp": "import aiohttp",
    "pass": "pass",
}
ROUNDS = {"full": 15, "quick": 5}
IMPORTTIME_RUNS = {"full": 7, "quick": 3}
TOP = 20
# A line of -X importtime: "import time: <self us> | <cumulative us> | <indent><module>".
_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)\s*$")


def _environment() -> dict[str, str]:
    """This environment, without the variables that would change what an import does."""
    drop = {"PYTHONPROFILEIMPORTTIME", "PYTHONDONTWRITEBYTECODE", "PYTHONSTARTUP"}
    return {key: value for key, value in os.environ.items() if key not in drop}


def run_once(statement: str, *options: str) -> tuple[float, float, str]:
    """Run ``python [options] -c statement``: wall seconds, CPU seconds, its stderr."""
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, *options, "-c", statement],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=_environment(),
    )
    assert process.stderr is not None
    stderr = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)  # already reaped by wait4
    process.stderr.close()
    text = stderr.decode(errors="replace")
    if process.returncode != 0:
        raise RuntimeError(f"python -c {statement!r} failed:\n{text}")
    return wall, usage.ru_utime + usage.ru_stime, text


def timed_rounds(rounds: int) -> dict[str, dict[str, list[float]]]:
    """Wall and CPU milliseconds of each statement, over rounds of rotating order."""
    names = list(STATEMENTS)
    for name in names:  # warm-up: bytecode caches written, files in the page cache
        run_once(STATEMENTS[name])
    samples: dict[str, dict[str, list[float]]] = {
        name: {"wall_ms": [], "cpu_ms": []} for name in names
    }
    for index in range(rounds):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            wall, cpu, _ = run_once(STATEMENTS[name])
            samples[name]["wall_ms"].append(wall * 1e3)
            samples[name]["cpu_ms"].append(cpu * 1e3)
    return samples


def parse_importtime(text: str) -> list[tuple[str, int, int, int]]:
    """The ``-X importtime`` lines: (module, self us, cumulative us, depth)."""
    found = []
    for line in text.splitlines():
        match = _LINE.match(line)
        if match:
            own, cumulative, indent, module = match.groups()
            found.append((module, int(own), int(cumulative), len(indent) // 2))
    return found


def importers(lines: list[tuple[str, int, int, int]]) -> dict[str, list[str]]:
    """Each module's chain of importers, outermost first (``-X importtime`` lists a module
    after everything it imports, so its importer is the next line one level out)."""
    chains: dict[str, list[str]] = {}
    outer: list[str] = []
    for module, _, _, depth in reversed(lines):
        del outer[depth:]
        chains.setdefault(module, list(outer))
        outer.append(module)
    return chains


def via(chain: list[str]) -> str:
    """Who brought a module in: the nearest ``asyncbackups`` module and what it imported."""
    ours = [index for index, module in enumerate(chain) if module.startswith("asyncbackups")]
    if not ours:
        return chain[-1] if chain else ""
    return " > ".join(chain[ours[-1] : ours[-1] + 2])


def importtime_runs(runs: int) -> dict[str, Any]:
    """``-X importtime`` of both imports, alternating: cumulative times and modules."""
    cumulative: dict[str, list[int]] = {"asyncbackups": [], "aiohttp": []}
    own: dict[str, dict[str, list[int]]] = {"asyncbackups": {}, "aiohttp": {}}
    chains: dict[str, list[str]] = {}
    for index in range(runs):
        order = ["asyncbackups", "aiohttp"] if index % 2 == 0 else ["aiohttp", "asyncbackups"]
        for name in order:
            _, _, text = run_once(STATEMENTS[name], "-X", "importtime")
            lines = parse_importtime(text)
            top = [c for module, _, c, depth in lines if module == name and depth == 0]
            if not top:
                raise RuntimeError(f"no top-level {name} line in -X importtime's output")
            cumulative[name].append(top[-1])
            if name == "asyncbackups":
                chains = importers(lines) | chains  # the first run's chains win
            for module, us, _, _ in lines:
                own[name].setdefault(module, []).append(us)
    by_aiohttp = set(own["aiohttp"])
    modules: list[dict[str, Any]] = sorted(
        (
            {
                "module": module,
                "self_us": median(values),
                "added_by_asyncbackups": module not in by_aiohttp,
                "via": via(chains.get(module, [])),
            }
            for module, values in own["asyncbackups"].items()
        ),
        key=lambda item: -item["self_us"],
    )
    added = [item for item in modules if item["added_by_asyncbackups"]]
    packages: dict[str, float] = {}
    # What each library asyncbackups imports costs with all it drags in (tenacity, say,
    # loads tornado when that is installed): by the library an SDK module imported.
    pulled: dict[str, float] = {}
    for item in added:
        top_name = item["module"].split(".")[0]
        packages[top_name] = packages.get(top_name, 0.0) + item["self_us"]
        parts = item["via"].split(" > ")
        if top_name == "asyncbackups":
            by = "asyncbackups"
        elif len(parts) == 2:
            by = parts[1].split(".")[0]
        else:
            by = top_name
        pulled[by] = pulled.get(by, 0.0) + item["self_us"]
    sdk_us, aiohttp_us = median(cumulative["asyncbackups"]), median(cumulative["aiohttp"])
    return {
        "runs": runs,
        "cumulative_us": {"asyncbackups": sdk_us, "aiohttp": aiohttp_us},
        "cumulative_samples_us": cumulative,
        "ratio": sdk_us / aiohttp_us,
        "modules_loaded": {"asyncbackups": len(own["asyncbackups"]), "aiohttp": len(by_aiohttp)},
        "added_self_us": sum(item["self_us"] for item in added),
        "added_by_package_self_us": dict(sorted(packages.items(), key=lambda kv: -kv[1])),
        "added_by_import_self_us": dict(sorted(pulled.items(), key=lambda kv: -kv[1])),
        "top_self": modules[:TOP],
        "top_self_added": added[:TOP],
    }


def main() -> None:
    """Time both imports; print the tables; write results/import.json."""
    args = parse_args(__doc__)
    pinned = pin_to_cpu(CLIENT_CPU)  # the interpreters started inherit it
    mode = "quick" if args.quick else "full"
    print(f"pinned to CPU {CLIENT_CPU}: {pinned}; {sys.executable}")
    samples = timed_rounds(ROUNDS[mode])
    medians = {
        name: {kind: median(values) for kind, values in kinds.items()}
        for name, kinds in samples.items()
    }
    net = {
        name: {kind: medians[name][kind] - medians["pass"][kind] for kind in ("wall_ms", "cpu_ms")}
        for name in ("asyncbackups", "aiohttp")
    }
    ratio_wall = net["asyncbackups"]["wall_ms"] / net["aiohttp"]["wall_ms"]
    ratio_cpu = net["asyncbackups"]["cpu_ms"] / net["aiohttp"]["cpu_ms"]
    importtime = importtime_runs(IMPORTTIME_RUNS[mode])

    rows = [
        [
            STATEMENTS[name],
            medians[name]["wall_ms"],
            net[name]["wall_ms"] if name in net else float("nan"),
            medians[name]["cpu_ms"],
            net[name]["cpu_ms"] if name in net else float("nan"),
            importtime["cumulative_us"][name] / 1e3 if name in net else float("nan"),
        ]
        for name in STATEMENTS
    ]
    print()
    print(
        table(
            ["python -c", "wall ms", "net ms", "CPU ms", "net CPU ms", "-X importtime ms"],
            rows,
            title=f"Import time, medians of {ROUNDS[mode]} rounds (net: minus `pass`)",
        )
    )
    rows = [[item["module"], item["self_us"] / 1e3] for item in importtime["top_self"][:8]]
    print()
    print(
        table(
            ["module", "self ms"],
            rows,
            title=(
                f"import asyncbackups: top self time, any module (-X importtime, median of "
                f"{importtime['runs']})"
            ),
        )
    )
    rows = [
        [item["module"], item["self_us"] / 1e3, item["via"]]
        for item in importtime["top_self_added"][:15]
    ]
    print()
    print(
        table(
            ["module", "self ms", "imported via"],
            rows,
            title="import asyncbackups: top self time of the modules import aiohttp does not load",
        )
    )
    pulled = ", ".join(
        f"{name} {us / 1e3:.1f}" for name, us in importtime["added_by_import_self_us"].items()
    )
    more = importtime["modules_loaded"]["asyncbackups"] - importtime["modules_loaded"]["aiohttp"]
    print(
        f"Added by asyncbackups: {importtime['added_self_us'] / 1e3:.1f} ms of self time over "
        f"{more} more modules; ms by what the SDK's modules import, with all it loads: {pulled}"
    )
    targets = [
        {
            "figure": "import asyncbackups / import aiohttp, wall net of pass",
            "value": ratio_wall,
            "target": f"<= {TARGET_RATIO}",
            "verdict": verdict(ratio_wall, TARGET_RATIO, at_least=False),
        },
        {
            "figure": "  the same, CPU time net of pass",
            "value": ratio_cpu,
            "target": f"<= {TARGET_RATIO}",
            "verdict": verdict(ratio_cpu, TARGET_RATIO, at_least=False),
        },
        {
            "figure": "  the same, -X importtime cumulative",
            "value": importtime["ratio"],
            "target": f"<= {TARGET_RATIO}",
            "verdict": verdict(importtime["ratio"], TARGET_RATIO, at_least=False),
        },
    ]
    print()
    print(
        table(
            ["figure", "value", "target", "verdict"],
            [[t["figure"], t["value"], t["target"], t["verdict"]] for t in targets],
            title="Targets",
        )
    )
    write_results(
        "import",
        {
            "rounds": ROUNDS[mode],
            "pinned_to_cpu": CLIENT_CPU if pinned else None,
            "statements": STATEMENTS,
            "targets": targets,
            "median_ms": medians,
            "net_ms": net,
            "ratio_wall": ratio_wall,
            "ratio_cpu": ratio_cpu,
            "samples_ms": samples,
            "importtime": importtime,
        },
        quick=args.quick,
    )


if __name__ == "__main__":
    main()
