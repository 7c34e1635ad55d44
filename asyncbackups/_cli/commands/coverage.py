"""``asyncbackups coverage``: which servers have no recent completed backup.

Built on ``client.backups.coverage``: it reads list pages (never one request per server
when many are asked about), lists the servers missing a completed backup in the window,
and exits with a status of its own (6) when any is missing, for monitoring to alert on.
"""

from __future__ import annotations

import asyncio
import sys
import textwrap
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, timedelta
from typing import Any, TypeVar

import click

from asyncbackups import BackupsClient, CoverageReport

from ..base import Command, examples
from ..exit_codes import CommandError, ExitCode, UsageError
from ..invocation import Invocation
from ..options import command_invocation, connection_options, output_options, pop_globals
from ..output import backup_json, timestamp
from ..output.terminal import terminal_width
from ..params import DURATION, ID, describe_duration
from ..server_ids import server_ids_to_back_up

__all__ = ["coverage", "coverage_json", "report_coverage"]

T = TypeVar("T")


@click.command(
    "coverage",
    cls=Command,
    short_help="List servers without a recent completed backup (exit 6 if any).",
    help="List the servers that have no completed backup (manual or automatic) created "
    "within --within, by the API's clock. Failed and in-progress backups do not count. "
    "Exits with status 6 when any server is missing one, so monitoring can alert on it.",
    epilog=examples(
        "asyncbackups coverage --from-file servers.txt --within 7d",
        "asyncbackups coverage --server-id 12 --server-id 13 --within 36h --output json",
        "asyncbackups coverage --within 1d --output plain | mail -s 'no backup' ops@...",
        notes="Servers: SERVER_ID arguments, --server-id (repeatable) or --from-file PATH\n"
        "(one ID a line, '-' for stdin; # comments and blank lines skipped). With none,\n"
        "every server that has any backup is checked: a server with no backup at all\n"
        "cannot be seen then, so name your servers to catch those. Spans: 7d, 12h, 90m.",
        exit_status="0 every server covered, 1 API error, 2 usage error,\n"
        "6 some servers have no completed backup in the window",
    ),
)
@click.argument("server_ids", type=ID, nargs=-1, metavar="[SERVER_ID]...")
@click.option(
    "--server-id",
    "server_id_options",
    type=ID,
    multiple=True,
    metavar="ID",
    help="check this server (repeat for more)",
)
@click.option(
    "--from-file",
    metavar="PATH",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="read server IDs from PATH ('-' for stdin)",
)
@click.option(
    "--within",
    type=DURATION,
    metavar="SPAN",
    required=True,
    help="how recent a completed backup must be (7d, 12h, 90m)",
)
@connection_options
@output_options
@click.pass_context
def coverage(ctx: click.Context, /, **params: Any) -> int:
    invocation = command_invocation(ctx, params)
    options = pop_globals(params)
    return report_coverage(
        invocation,
        server_ids=[*options["server_id_options"], *options["server_ids"]],
        from_file=options["from_file"],
        within=options["within"],
    )


def _servers_asked(server_ids: Sequence[int], from_file: str | None) -> list[int] | None:
    """The servers to check, in input order; ``None``: every server seen."""
    if from_file is None and not server_ids:
        return None
    ids = server_ids_to_back_up(server_ids, from_file)
    listed = list(ids)
    if ids.problem is not None:
        raise ids.problem
    if not listed:
        raise UsageError(f"no server IDs in {ids.name}")
    return listed


def report_coverage(
    invocation: Invocation,
    *,
    server_ids: Sequence[int],
    from_file: str | None,
    within: timedelta,
) -> int:
    """Report which servers lack a recent completed backup; status 6 when any does."""
    asked = _servers_asked(server_ids, from_file)

    async def work(client: BackupsClient) -> CoverageReport:
        return await client.backups.coverage(asked, within=within)

    report = _run(invocation.client(), work)
    _show(invocation, report)
    if report.missing:
        total = len(report.covered) + len(report.missing)
        raise CommandError(
            f"{len(report.missing):,} of {total:,} servers have no completed backup from "
            f"the last {describe_duration(within)}",
            ExitCode.COVERAGE_MISSING,
        )
    return ExitCode.OK


def coverage_json(report: CoverageReport) -> dict[str, Any]:
    """A report as one JSON document."""
    return {
        "as_of": timestamp(report.as_of),
        "within_seconds": report.within.total_seconds(),
        "servers": len(report.covered) + len(report.missing),
        "missing": report.missing,
        "covered": [
            {"server_id": server_id, "backup": backup_json(backup)}
            for server_id, backup in report.covered.items()
        ],
    }


def _show(invocation: Invocation, report: CoverageReport) -> None:
    out = invocation.out
    if out.json_lines:
        for server_id, backup in report.covered.items():
            out.json({"server_id": server_id, "covered": True, "backup": backup_json(backup)})
        for server_id in report.missing:
            out.json({"server_id": server_id, "covered": False, "backup": None})
        return
    if out.json_mode:
        out.json(coverage_json(report))
        return
    if out.plain:
        for server_id in report.missing:
            out.line(str(server_id))
        return
    span = describe_duration(report.within)
    as_of = report.as_of.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    total = len(report.covered) + len(report.missing)
    if not report.missing:
        if total:
            out.line(
                f"all {total:,} servers have a completed backup from the last {span} "
                f"(as of {as_of})"
            )
        else:
            out.line("no server has any backup yet")
        return
    out.line(
        f"missing: {len(report.missing):,} of {total:,} servers have no completed backup "
        f"from the last {span}"
    )
    width = min(terminal_width(sys.stdout) or 80, 100)
    ids = ", ".join(str(server_id) for server_id in report.missing)
    for line in textwrap.wrap(ids, width=width - 2, break_on_hyphens=False):
        out.line(f"  {line}")
    out.line(f"covered: {len(report.covered):,} (as of {as_of})")


def _run(client: BackupsClient, work: Callable[[BackupsClient], Awaitable[T]]) -> T:
    """``work(client)`` on a new event loop, the client closed however it ends."""

    async def session() -> T:
        async with client:
            return await work(client)

    return asyncio.run(session())
