"""The README's performance tables, in Markdown, regenerated from ``results/*.json``.

What it prints: where and how the figures were measured (machine, versions, commit,
load average, install), the throughput tables (the client's CPU time per request and
requests per second of ``client.backups.list(**query)`` with varied queries, against raw
aiohttp written the typical and the lean way, httpx and requests, on the default
install), the 1,000-backup page case, the ``[fast]`` extra's rows while it still differs
from the default install, the repeat-query case (a URL cache's best case) apart, every
benchmark's targets with their verdicts, and which results file each figure came from.
Results written before varied queries are shown as they were measured. Nothing is
measured here: it reads what the ``bench_*.py`` scripts wrote, so the README's tables can
be pasted from it and checked against it.
A results file that is missing is left out (the tables say so).

Run: ``python benchmarks/report.py [--quick] [--output FILE]`` (quick: the smoke run's
results under ``results/quick/``; output: also write the Markdown to FILE), or
``--readme`` to rewrite the README's block of targets and verdicts, which a test holds
to the results files.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from _common import QUICK_RESULTS, RESULTS, verdict

TIMES = "\u00d7"  # the multiplication sign
NAMES = (
    "throughput",
    "decode",
    "fleet",
    "ratelimit",
    "memory",
    "loop_block",
    "import",
    "fleet_memory",
    "cli_list",
)
COLUMNS = {
    "sdk": "asyncbackups",
    "aiohttp_typical": "aiohttp, typical",
    "aiohttp_lean": "aiohttp, lean",
    "httpx": "httpx",
    "requests": "requests",
}


def load(folder: Path) -> dict[str, dict[str, Any]]:
    """Every results file in ``folder`` by benchmark name (missing ones left out)."""
    found = {}
    for name in NAMES:
        path = folder / f"{name}.json"
        if path.exists():
            found[name] = json.loads(path.read_text())
    if "throughput" in found:
        found["throughput"] = normalize_throughput(found["throughput"])
    return found


def normalize_throughput(data: dict[str, Any]) -> dict[str, Any]:
    """Results written before CPU time and the typical client: raw aiohttp was the lean one."""
    for key in ("static", "page", "fake_api"):
        for row in data.get(key, {}).get("rows", []):
            if "aiohttp" in row["rps"]:
                row["rps"]["aiohttp_lean"] = row["rps"].pop("aiohttp")
            if "sdk_over" not in row:
                row["sdk_over"] = {
                    name: {"rps": row["rps"]["sdk"] / row["rps"][name]}
                    for name in row["rps"]
                    if name != "sdk"
                }
                if "sdk_over_aiohttp_paired" in row:
                    row["sdk_over"]["aiohttp_lean"]["rps_paired"] = row["sdk_over_aiohttp_paired"]
    return data


# -- formatting ---------------------------------------------------------------------------


def number(value: float, digits: int = 0) -> str:
    """A figure with thousands separators; an em dash for none."""
    if value is None or value != value:
        return "—"
    return f"{value:,.{digits}f}"


def times(value: float | None) -> str:
    """A ratio: two decimals and the multiplication sign, as the README writes them."""
    return "—" if value is None or value != value else f"{value:.2f}{TIMES}"


def bound(target: str) -> str:
    """A target as the README writes it: ``>=`` and ``<=`` as the mathematical signs."""
    return target.replace(">=", "\u2265").replace("<=", "\u2264")


def markdown(headers: Sequence[str], rows: Sequence[Sequence[str]], *, numeric: int = 1) -> str:
    """A Markdown table; all but the first ``numeric`` columns are right-aligned."""
    align = ["---" if i < numeric else "---:" for i in range(len(headers))]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(align) + "|"]
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    return "\n".join(lines)


def _paired(row: dict[str, Any], other: str, kind: str = "rps") -> float | None:
    ratios = row.get("sdk_over", {}).get(other)
    if ratios is None:
        return None
    value: float | None = ratios.get(f"{kind}_paired", ratios.get(kind))
    return value


# -- sections -----------------------------------------------------------------------------


def provenance(results: dict[str, dict[str, Any]]) -> str:
    """Where and with what the throughput figures were measured, as a sentence."""
    data = results.get("throughput") or next(iter(results.values()))
    machine, source = data["machine"], data["source"]
    versions = machine.get("versions", {})
    orjson = versions.get("orjson", machine.get("orjson"))
    if "install" in data:  # the headline is the default install's, whatever is installed
        without = data["install"]["without"]
        installed = "the default install (`pip install .`" + (
            f", without {' and '.join(without)})" if without else ")"
        )
    else:
        installed = f"orjson {orjson} installed" if orjson else "without orjson"
    text = (
        f"Measured on {machine['cpu_model']} with {machine['cores']} cores (client pinned to "
        f"one, the server in its own process on the other), Python {machine['python']}, "
        f"aiohttp {machine['aiohttp']}, {installed}, at commit {source.get('commit') or '?'}"
    )
    if source.get("package_modified"):
        text += " with local changes to the package"
    text += f", on {machine['date'][:10]}; load average {machine['load_average'][0]:.2f}"
    if "load_average_at_start" in machine:
        text += f" when written ({machine['load_average_at_start'][0]:.2f} at the start)"
    if "static" in data:
        text += (
            f". Medians of {data['static']['repetitions']} rounds, the contenders alternating "
            "within each round"
        )
        if "page" in data:
            text += "; each ratio is taken within a round, then the median of those"
        if "install" in data:
            text += (
                ". Each request names its own server (varied queries); a speed ratio is the "
                f"raw client's CPU per request over the SDK's (above 1{TIMES}, the SDK costs less)"
            )
    if data.get("quick"):
        text += ". A --quick smoke run: the figures are rough"
    return text + "."


def throughput_tables(data: dict[str, Any]) -> list[str]:
    """Requests per second, and client CPU per request when measured, on the static server."""
    rows = data["static"]["rows"]
    names = [name for name in COLUMNS if name in rows[0]["rps"]]
    ratios = [name for name in ("aiohttp_typical", "aiohttp_lean") if name in names]
    headers = [
        "concurrency",
        *(COLUMNS[name] for name in names),
        *(f"SDK / {COLUMNS[name]}" for name in ratios),
    ]
    sections = [
        "`client.backups.list(server_id=12345)`, requests per second (median):",
        markdown(
            headers,
            [
                [
                    str(row["concurrency"]),
                    *(number(row["rps"][name]) for name in names),
                    *(times(_paired(row, name)) for name in ratios),
                ]
                for row in rows
            ],
        ),
    ]
    if "cpu_us_per_request" in rows[0]:
        sections += [
            "The client process's CPU time per request, µs (median; lower is better):",
            markdown(
                headers,
                [
                    [
                        str(row["concurrency"]),
                        *(number(row["cpu_us_per_request"][name]) for name in names),
                        *(times(_paired(row, name, "cpu")) for name in ratios),
                    ]
                    for row in rows
                ],
            ),
        ]
    at_64 = next((row for row in rows if row["concurrency"] == 64), None)
    if at_64 is not None and {"httpx", "requests"} <= set(names):
        sections.append(
            f"At 64 concurrent requests the SDK does {times(_paired(at_64, 'httpx'))} httpx "
            f"and {times(_paired(at_64, 'requests'))} requests (64 threads)."
        )
    return sections


def page_table(data: dict[str, Any]) -> list[str]:
    """The 1,000-backup page: the SDK's typed list against dicts from raw aiohttp."""
    if "page" not in data:
        return []
    page = data["page"]
    rows = page["rows"]
    names = [name for name in COLUMNS if name in rows[0]["rps"]]
    headers = [
        "concurrency",
        *(f"{COLUMNS[name]} req/s" for name in names),
        "SDK / typical",
        *(f"{COLUMNS[name]} CPU µs" for name in names),
        "CPU SDK / typical",
    ]
    body = [
        [
            str(row["concurrency"]),
            *(number(row["rps"][name]) for name in names),
            times(_paired(row, "aiohttp_typical")),
            *(number(row["cpu_us_per_request"][name]) for name in names),
            times(_paired(row, "aiohttp_typical", "cpu")),
        ]
        for row in rows
    ]
    parser = data.get("sdk_parser", "?")
    return [
        f"`client.backups.list()` of one {page['backups_per_answer']:,}-backup page (typed "
        f"`Backup` models, parsed with `{parser}`) against raw aiohttp's dicts "
        "(`await response.json()`, typical; `json.loads(await response.read())`, lean):",
        markdown(headers, body),
    ]


def comparison_tables(comparison: dict[str, Any], what: str) -> list[str]:
    """One comparison: CPU per request and the speed ratios, then requests per second."""
    rows = comparison["rows"]
    names = [name for name in COLUMNS if name in rows[0]["rps"]]
    others = [name for name in names if name != "sdk"]
    cpu = markdown(
        [
            "concurrency",
            *(f"{COLUMNS[name]} µs" for name in names),
            *(f"{COLUMNS[name]} / SDK" for name in others),
        ],
        [
            [
                str(row["concurrency"]),
                *(number(row["cpu_us_per_request"][name]) for name in names),
                *(times(row["sdk_over"][name]["cpu_speed_paired"]) for name in others),
            ]
            for row in rows
        ],
    )
    rps = markdown(
        [
            "concurrency",
            *(f"{COLUMNS[name]} req/s" for name in names),
            *(f"SDK / {COLUMNS[name]}" for name in others),
        ],
        [
            [
                str(row["concurrency"]),
                *(number(row["rps"][name]) for name in names),
                *(times(_paired(row, name)) for name in others),
            ]
            for row in rows
        ],
    )
    return [
        f"{what}: the client process's CPU time per request, µs (median; lower is better), "
        "and each other client's over the SDK's (within rounds, median):",
        cpu,
        "Requests per second (median), and the SDK's over each other client's:",
        rps,
    ]


def install_sections(data: dict[str, Any]) -> list[str]:
    """Results with varied queries and a default-install headline (``"install"`` in them)."""
    install = data["install"]
    without = " and ".join(install["without"])
    default = "the default install (`pip install .`" + (f", without {without})" if without else ")")
    backups = data["page"]["backups_per_answer"]
    sections = [
        f"Queries: {data['static']['queries']}. The SDK calls `client.backups.list(**query)`, "
        "the raw clients send `params=query`.",
        *comparison_tables(data["static"], f"3-backup page, {default}"),
        *comparison_tables(
            data["page"],
            f"One {backups:,}-backup page, {default}: typed `Backup` models against raw "
            "aiohttp's dicts (`await response.json()`, typical; "
            "`json.loads(await response.read())`, lean)",
        ),
    ]
    fast = data.get("fast")
    if fast is not None:
        extra = f"With the `[fast]` extra ({without})"
        sections += comparison_tables(fast["static"], f"{extra}, 3-backup page")
        sections += comparison_tables(fast["page"], f"{extra}, one {backups:,}-backup page")
    else:
        sections.append(f"No `[fast]` rows: {install['note']}.")
    repeat = data.get("repeat_query")
    if repeat is not None:
        sections += comparison_tables(
            repeat,
            f"A URL cache's best case, not a headline ({repeat['queries'].split(' (')[0]})",
        )
    return sections


def _target_rows(results: dict[str, dict[str, Any]]) -> list[list[str]]:
    rows: list[list[str]] = []
    throughput = results.get("throughput")
    if throughput is not None:
        for target in throughput.get("targets", []):
            result = times(target["value"])
            if "rps_ratio" in target:  # the value is speed from CPU per request
                result += f" (req/s {times(target['rps_ratio'])})"
            elif "cpu_ratio" in target:
                result += f" (CPU per request {times(target['cpu_ratio'])})"
            rows.append(
                [target["figure"].strip(), result, bound(target["target"]), target["verdict"]]
            )
    decode = results.get("decode")
    if decode is not None:
        for run in decode["runs"]:
            rows.append(
                [
                    f"decoding a {decode['page_length']:,}-backup page (bytes → `list[Backup]`) "
                    "vs `json.loads` alone, "
                    + (
                        f"default install ({run['sdk_parser']})"
                        if run.get("install") in (None, "default")
                        else f"{run['install']} ({run['sdk_parser']})"
                    )
                    + (f", {run['page']}" if "page" in run else ""),
                    times(run["sdk_over_json_loads"])
                    + (
                        f" ({times(run['sdk_over_json_loads_gc_off'])} with the garbage "
                        "collector off)"
                        if "sdk_over_json_loads_gc_off" in run
                        else ""
                    ),
                    bound(run["target"]),
                    run["verdict"],
                ]
            )
    fleet = results.get("fleet")
    if fleet is not None:
        settings, summary = fleet["settings"], fleet["summary"]
        for target in fleet["targets"]:
            rows.append(
                [
                    f"`create_many(wait=True)` for {settings['servers']:,} servers: "
                    + target["figure"],
                    f"{target['value']:.2f}",
                    bound(target["target"]),
                    target["verdict"],
                ]
            )
        naive = summary.get("naive")
        if naive is not None:
            rows.append(
                [
                    "the same fleet, naively polling `get()` per backup: requests per server",
                    f"{naive['requests_per_server']:.2f}; {naive['wall_seconds']:.1f} s wall",
                    "—",
                    "—",
                ]
            )
        rounds = fleet.get("requests_per_round", [])
        if rounds:
            rows.append(
                [
                    "requests per poll round for "
                    + " / ".join(f"{r['waits']:,}" for r in rounds)
                    + " concurrent waits",
                    " / ".join(f"{r['requests_per_round']:g}" for r in rounds)
                    + f" (page size {settings['page_size']})",
                    "not N",
                    "—",
                ]
            )
    ratelimit = results.get("ratelimit")
    if ratelimit is not None:
        backup_seconds = ratelimit["settings"]["backup_seconds"]
        for target in ratelimit["targets"]:
            value = target["value"]
            if isinstance(value, list):  # backups per server: the fewest and the most
                shown = "-".join(map(str, value))
            elif "429" in target["figure"]:
                shown = f"{value:.1%}"
            else:
                shown = f"{value:.2f}" if isinstance(value, float) else str(value)
            rows.append(
                [
                    f"`create_many(wait=True)` under a rate limit, {target['case']} "
                    f"({backup_seconds:g} s backups): {target['figure']}",
                    shown,
                    bound(target["target"]),
                    target["verdict"],
                ]
            )
    memory = results.get("memory")
    if memory is not None:
        rows.append(
            [
                f"peak memory of {memory['waits']:,} concurrent waits over an idle client",
                f"{memory['peak_over_idle_mb']:.0f} MB",
                bound(memory["target"]),
                memory["verdict"],
            ]
        )
    loop_block = results.get("loop_block")
    if loop_block is not None:
        for target in loop_block["targets"]:
            rows.append(
                [
                    f"event loop {target['figure']}",
                    f"{target['value_ms']:.1f} ms (worst round {target['worst_round_ms']:.1f})",
                    bound(target["target"]),
                    target["verdict"],
                ]
            )
    fleet_memory = results.get("fleet_memory")
    if fleet_memory is not None:
        from bench_fleet_memory import TARGET_BYTES, TARGET_REQUESTS

        run = fleet_memory["result"]
        what = f"`stream_many(wait=True)` of {run['servers']:,} servers"
        rows += [
            [
                f"{what}: peak memory per server over an idle client",
                f"{run['bytes_per_server']:,.0f} bytes "
                f"({run['peak_over_idle_bytes'] / 1e6:,.0f} MB)",
                bound(f"<= {TARGET_BYTES}"),
                verdict(run["bytes_per_server"], TARGET_BYTES, at_least=False),
            ],
            [
                f"{what}: HTTP requests per server",
                f"{run['requests_per_server']:.2f}; {run['wall_seconds']:.0f} s wall",
                bound(f"<= {TARGET_REQUESTS}"),
                verdict(run["requests_per_server"], TARGET_REQUESTS, at_least=False),
            ],
        ]
    imported = results.get("import")
    if imported is not None:
        for target in imported["targets"]:
            rows.append(
                [
                    target["figure"].strip(),
                    times(target["value"]),
                    bound(target["target"]),
                    target["verdict"],
                ]
            )
    cli_list = results.get("cli_list")
    if cli_list is not None:
        first, whole = cli_list["targets"]
        what = f"`asyncbackups list` of {cli_list['servers']:,} backups"
        rows += [
            [
                f"{what}: {first['figure']}",
                f"{first['value']:.2f} s",
                bound(first["target"]),
                first["verdict"],
            ],
            [
                f"{what}: {whole['figure']}",
                times(whole["value"]),
                bound(whole["target"]),
                whole["verdict"],
            ],
        ]
    return rows


def targets_table(results: dict[str, dict[str, Any]]) -> list[str]:
    """Every benchmark's targets, one table."""
    rows = _target_rows(results)
    if not rows:
        return []
    return [markdown(["measure", "result", "target", "verdict"], rows, numeric=4)]


def import_summary(results: dict[str, dict[str, Any]]) -> list[str]:
    """What ``import asyncbackups`` costs beyond ``import aiohttp``, and who brings it in."""
    imported = results.get("import")
    if imported is None:
        return []
    net, importtime = imported["net_ms"], imported["importtime"]
    pulled = ", ".join(
        f"{name} {us / 1e3:.1f} ms" for name, us in importtime["added_by_import_self_us"].items()
    )
    return [
        f"`import asyncbackups` takes {net['asyncbackups']['wall_ms']:.0f} ms and `import "
        f"aiohttp` {net['aiohttp']['wall_ms']:.0f} ms (net of `python -c pass`, medians of "
        f"{imported['rounds']} rounds). What the SDK adds, by its own modules and each library "
        f"they import (with all that library loads): {pulled}."
    ]


def sources_table(results: dict[str, dict[str, Any]]) -> list[str]:
    """Which file, run when, on which commit, under what load."""
    rows = []
    for name, data in results.items():
        machine, source = data["machine"], data["source"]
        rows.append(
            [
                f"`{name}.json`",
                machine["date"][:16].replace("T", " "),
                str(source.get("commit") or "?"),
                "yes" if source.get("package_modified") else "no",
                " / ".join(f"{load:.2f}" for load in machine["load_average"]),
                "quick" if data.get("quick") else "full",
            ]
        )
    return [
        markdown(
            ["results", "measured (UTC)", "commit", "package edited", "load 1/5/15 min", "run"],
            rows,
            numeric=6,
        )
    ]


def render(folder: Path) -> str:
    """The whole Markdown report of the results in ``folder``."""
    results = load(folder)
    if not results:
        return f"No results in {folder}: run the benchmarks first."
    sections = [
        f"<!-- Generated by `python benchmarks/report.py` from "
        f"{folder.relative_to(RESULTS.parent.parent)}/*.json. -->",
        provenance(results),
    ]
    throughput = results.get("throughput")
    if throughput is not None and "install" in throughput:
        sections += install_sections(throughput)
    elif throughput is not None:  # results written before varied queries
        sections += throughput_tables(throughput)
        sections += page_table(throughput)
    sections += targets_table(results)
    sections += import_summary(results)
    sections += ["Results files:", *sources_table(results)]
    missing = [name for name in NAMES if name not in results]
    if missing:
        sections.append("Not measured (no results file): " + ", ".join(missing) + ".")
    return "\n\n".join(sections) + "\n"


# -- the docs' figures ----------------------------------------------------------------


def _case_label(label: str) -> str:
    return label.replace(" x ", " \u00d7 ").replace(", headers", ", RateLimit headers")


def _target_of(targets: list[dict[str, Any]], case: str, figure: str) -> str | None:
    for target in targets:
        if target["case"] == case and target["figure"] == figure:
            return bound(target["target"])
    return None


def ratelimit_table(results: dict[str, dict[str, Any]]) -> str:
    """Every rate-limit case: 429s, requests per server and wall time over the floor."""
    data = results.get("ratelimit")
    if data is None:
        return "No rate-limit results: run `python benchmarks/bench_ratelimit.py`."
    rows = []
    for case in data["summary"].values():
        label, targets = case["label"], data["targets"]
        throttled = f"{case['throttled_share']:.1%}"
        if (target := _target_of(targets, label, "429s / all requests")) is not None:
            throttled += f" ({target})"
        per_server = f"{case['requests_per_server']:.2f}"
        if (target := _target_of(targets, label, "requests per server")) is not None:
            per_server += f" ({target})"
        wall = "\u2014"
        if case.get("wall_over_floor") is not None:
            wall = f"{case['wall_over_floor']:.2f}"
            if (target := _target_of(targets, label, "wall / floor")) is not None:
                wall += f" ({target})"
        rows.append([_case_label(label), throttled, per_server, wall])
    headers = ["case", "429s / all requests", "requests per server", "wall / floor"]
    return markdown(headers, rows, numeric=4)


def ratelimit_shared_table(results: dict[str, dict[str, Any]]) -> str:
    """Several processes on one limit: dividing it against adapting to it."""
    data = results.get("ratelimit")
    if data is None:
        return "No rate-limit results: run `python benchmarks/bench_ratelimit.py`."
    rows = []
    for case in data["summary"].values():
        if case["processes"] < 2 or case.get("wall_over_floor") is None:
            continue
        divided = data["settings"]["cases"].get(_case_key(data, case), {}).get("divided")
        if "divided" in case["label"] or divided:
            way = f"divided: `rate_limit={case['rate'] / case['processes']:g}` each"
        else:
            way = "adaptation, nothing set"
        rows.append([way, f"{case['throttled_share']:.1%}", f"{case['wall_over_floor']:.2f}"])
    return markdown(
        ["way", "429s / all requests", "wall / the least the limit allows"], rows, numeric=3
    )


def _case_key(data: dict[str, Any], case: dict[str, Any]) -> str:
    return next((key for key, value in data["summary"].items() if value is case), "")


def figures(results: dict[str, dict[str, Any]]) -> dict[str, str]:
    """The figures the docs quote in their text, by name, formatted as shown.

    The docs write ``{{ bench.NAME }}`` (``docs/_hooks/benchmark_charts.py`` puts the
    figure in when the site is built), so their text cannot drift from the results.
    A benchmark whose results file is missing contributes no names.
    """
    found: dict[str, str] = {}
    fleet = results.get("fleet")
    if fleet is not None:
        settings, summary = fleet["settings"], fleet["summary"]
        found |= {
            "fleet.servers": f"{settings['servers']:,}",
            "fleet.backup_seconds": f"{settings['backup_seconds']:g}",
            "fleet.page_size": f"{settings['page_size']:,}",
            "fleet.requests_per_server": f"{summary['sdk']['requests_per_server']:.2f}",
            "fleet.wall_seconds": f"{summary['sdk']['wall_seconds']:.1f}",
            "fleet.target": bound(fleet["targets"][0]["target"]),
        }
        if "naive" in summary:
            found["fleet.naive_requests_per_server"] = (
                f"{summary['naive']['requests_per_server']:.2f}"
            )
            found["fleet.naive_wall_seconds"] = f"{summary['naive']['wall_seconds']:.1f}"
    decode = results.get("decode")
    if decode is not None:
        run = next(r for r in decode["runs"] if r.get("install") in (None, "default"))
        found |= {
            "decode.page_length": f"{decode['page_length']:,}",
            "decode.sdk_over_json_loads": times(run["sdk_over_json_loads"]),
            "decode.parser": run["sdk_parser"],
        }
    imported = results.get("import")
    if imported is not None:
        target = imported["targets"][0]
        found |= {"import.ratio": times(target["value"]), "import.target": bound(target["target"])}
    loop_block = results.get("loop_block")
    if loop_block is not None:
        target = loop_block["targets"][0]
        found |= {
            "loop_block.backups": f"{loop_block['target_backups']:,}",
            "loop_block.longest_ms": f"{target['value_ms']:.0f}",
            "loop_block.worst_round_ms": f"{target['worst_round_ms']:.0f}",
            "loop_block.target_ms": f"{loop_block['target_ms']:g}",
        }
    ratelimit = results.get("ratelimit")
    if ratelimit is not None:
        settings = ratelimit["settings"]
        found |= {
            "ratelimit.backup_seconds": f"{settings['backup_seconds']:g}",
            "ratelimit.repetitions": str(settings["repetitions"]),
        }
        shared = [case for case in settings["cases"].values() if case["processes"] > 1]
        if shared:
            found |= {
                "ratelimit.shared.processes": str(shared[0]["processes"]),
                "ratelimit.shared.servers_per_process": f"{shared[0]['servers_per_process']:,}",
                "ratelimit.shared.rate": f"{shared[0]['rate']:g}",
            }
    throughput = results.get("throughput")
    if throughput is not None:
        static = throughput["static"]
        found |= {
            "throughput.repetitions": str(static["repetitions"]),
            "throughput.backups_per_answer": f"{static['backups_per_answer']:,}",
        }
    cli_list = results.get("cli_list")
    if cli_list is not None:
        ways = cli_list["results"]
        found |= {
            "cli_list.backups": f"{cli_list['servers']:,}",
            "cli_list.first_screen": f"{ways['table-terminal']['first_screen']:.2f}",
            "cli_list.terminal_seconds": f"{ways['table-terminal']['wall']:.1f}",
            "cli_list.piped_seconds": f"{ways['table-piped']['wall']:.1f}",
            "cli_list.json_lines_seconds": f"{ways['json-lines']['wall']:.1f}",
        }
    return found


README = RESULTS.parent.parent / "README.md"
README_START = "<!-- benchmarks:targets (python benchmarks/report.py --readme) -->"
README_END = "<!-- /benchmarks:targets -->"


# The README shows the targets of speed itself; fleets and memory are on the docs' page.
README_BENCHMARKS = ("throughput", "decode", "import")


def readme_targets(folder: Path) -> str:
    """The README's block: each speed target and its verdict, and where it was measured."""
    results = {name: data for name, data in load(folder).items() if name in README_BENCHMARKS}
    lines = [README_START, "", provenance(results), "", *targets_table(results), "", README_END]
    return "\n".join(lines)


def update_readme(readme: Path, folder: Path) -> bool:
    """Rewrite the README's targets block from ``folder``'s results; whether it changed."""
    text = readme.read_text(encoding="utf-8")
    start, end = text.index(README_START), text.index(README_END) + len(README_END)
    updated = text[:start] + readme_targets(folder) + text[end:]
    readme.write_text(updated, encoding="utf-8")
    return updated != text


def main() -> None:
    """Print the report (and write it to ``--output`` if given, or into the README)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="report the smoke run's results")
    parser.add_argument("--output", type=Path, help="also write the Markdown to this file")
    parser.add_argument(
        "--readme", action="store_true", help="rewrite the README's targets block from them"
    )
    args = parser.parse_args()
    folder = QUICK_RESULTS if args.quick else RESULTS
    if args.readme:
        changed = update_readme(README, folder)
        print(f"README.md targets {'updated' if changed else 'already up to date'}")
        return
    text = render(folder)
    print(text, end="")
    if args.output is not None:
        args.output.write_text(text)


if __name__ == "__main__":
    main()
