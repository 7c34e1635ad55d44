"""``asyncbackups prune``: delete old manual backups by retention rules, after a yes.

Built on ``client.backups.plan_prune`` and ``client.backups.prune``: the plan is read and
shown first (a table of what would go, and a total), then, after a yes on the terminal
or ``--yes``, deleted. The plan and the deletes use two clients, one each, so that no
connection is held open while the operator reads the table and answers.
"""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, timedelta
from typing import Any, TypeVar

import click

from asyncbackups import Backup, BackupsClient, PrunePlan, PruneResult

from ..base import Command, examples
from ..confirm import ask
from ..exit_codes import CommandError, ExitCode, UsageError
from ..invocation import Invocation
from ..options import (
    command_invocation,
    connection_options,
    output_options,
    pop_globals,
)
from ..output import Column, backup_json, error_json, escape, is_terminal, timestamp
from ..params import COUNT, DURATION, ID, describe_duration

__all__ = ["plan_json", "prune", "prune_backups"]

T = TypeVar("T")

# Failures beyond this many are counted, not listed, in a human summary (--json has all).
_MAX_FAILURE_ROWS = 20

PLAN_COLUMNS = (
    Column("SERVER", right=True),
    Column("BACKUP", right=True),
    Column("CREATED (UTC)"),
    Column("STATUS", priority=3),
    Column("SIZE (MB)", right=True, priority=2),
    # Wide enough to read: on 80 columns the status drops before it folds narrower.
    Column("DESCRIPTION", priority=1, fold=True, min_width=24),
)


@click.command(
    "prune",
    cls=Command,
    short_help="Delete old manual backups by retention rules (asks first).",
    help="Delete old manual backups by rules: keep each server's newest N completed "
    "ones (--keep-last), delete only those older than a span (--older-than), or both "
    "(a backup goes only when both let it). Shows the plan first and asks; without a "
    "terminal it refuses unless --yes is given. Only manual backups that are completed "
    "or failed are ever deleted: never an automatic one (they expire on their own), "
    "never one in progress, and never a server's newest completed manual backup "
    "(unless --keep-none).",
    epilog=examples(
        "asyncbackups prune --keep-last 4 --dry-run           # the plan only",
        "asyncbackups prune --keep-last 4 --older-than 30d    # asks first",
        "asyncbackups prune --keep-last 4 --server-id 12 --server-id 13 --yes",
        notes="Servers: every server by default; or those given as SERVER_ID arguments\n"
        "or with --server-id (repeatable). Spans: 30d, 12h, 90m, 2w, 1d12h.\n"
        "Ages are measured by the API's clock (its Date header). Stopped half-way,\n"
        "the same command deletes what is left.",
        exit_status="0 pruned (or nothing to prune), 1 API error or some deletes\n"
        "failed, 2 usage error or no terminal to ask on, 5 not confirmed",
    ),
)
@click.argument("server_ids", type=ID, nargs=-1, metavar="[SERVER_ID]...")
@click.option(
    "--keep-last",
    type=COUNT,
    metavar="N",
    help="keep each server's newest N completed manual backups",
)
@click.option(
    "--older-than",
    type=DURATION,
    metavar="SPAN",
    help="delete only backups older than SPAN (30d, 12h, 90m)",
)
@click.option(
    "--server-id",
    "server_id_options",
    type=ID,
    multiple=True,
    metavar="ID",
    help="only this server (repeat for more)",
)
@click.option(
    "--keep-none",
    is_flag=True,
    help="let a server's newest completed backup go too when the rules say so",
)
@click.option("--concurrency", type=ID, metavar="N", help="deletes in flight at once (default: 64)")
@click.option("-y", "--yes", is_flag=True, help="do not ask (needed without a terminal)")
@click.option("--dry-run", is_flag=True, help="show the plan (it reads); delete nothing")
@connection_options
@output_options
@click.pass_context
def prune(ctx: click.Context, /, **params: Any) -> int:
    invocation = command_invocation(ctx, params)
    options = pop_globals(params)
    return prune_backups(
        invocation,
        server_ids=[*options["server_id_options"], *options["server_ids"]],
        keep_last=options["keep_last"],
        older_than=options["older_than"],
        keep_none=options["keep_none"],
        concurrency=options["concurrency"],
        yes=options["yes"],
        dry_run=options["dry_run"],
    )


def prune_backups(
    invocation: Invocation,
    *,
    server_ids: Sequence[int],
    keep_last: int | None,
    older_than: timedelta | None,
    keep_none: bool,
    concurrency: int | None,
    yes: bool,
    dry_run: bool,
) -> int:
    """Plan, show, ask, delete; status 1 when any delete failed."""
    if keep_last is None and older_than is None:
        raise UsageError("give --keep-last N, --older-than SPAN or both: which backups may go?")
    repeated = sorted(i for i, times in Counter(server_ids).items() if times > 1)
    if repeated:
        raise UsageError(f"server IDs repeat {repeated}; give each server once")
    if not (yes or dry_run) and not is_terminal(sys.stdin):
        # Refused before reading: the plan would be shown to no one.
        raise UsageError(
            "pruning needs a yes, and stdin is no terminal to ask on; nothing was sent "
            "(pass --yes to confirm in a script, or --dry-run to see the plan)"
        )

    async def make_plan(client: BackupsClient) -> PrunePlan:
        return await client.backups.plan_prune(
            keep_last=keep_last,
            older_than=older_than,
            server_ids=list(server_ids) or None,
            keep_none=keep_none,
        )

    plan = _run(invocation.client(), make_plan)
    show = _PlanView(invocation, plan)
    if dry_run or not plan.to_delete:
        show.plan(dry_run=dry_run, final=True)
        return ExitCode.OK
    show.plan(dry_run=False, final=False)
    count = len(plan.to_delete)
    noun = "backup" if count == 1 else "backups"
    ask(
        f"Delete these {count} {noun} of {_servers(plan)}? This is permanent.",
        action=f"pruning {count} {noun}",
        yes=yes,
    )

    async def delete(client: BackupsClient) -> PruneResult:
        try:
            return await client.backups.prune(plan, concurrency=concurrency)
        except asyncio.CancelledError:  # Ctrl-C: what was deleted stays deleted
            invocation.out.notice(
                "interrupted: the backups deleted so far stay deleted; "
                "run the same prune again to delete the rest"
            )
            raise

    result = _run(invocation.client(), delete)
    show.result(result)
    if result.failed:
        reasons = "; ".join(invocation.explain(error) for _, error in result.failed[:3])
        more = "" if len(result.failed) <= 3 else "; ..."
        raise CommandError(
            f"{len(result.failed)} of {count} deletes failed: {reasons}{more} "
            "(run the same prune again to retry them)",
            ExitCode.API_ERROR,
            cause=result.failed[0][1],
        )
    return ExitCode.OK


def _servers(plan: PrunePlan) -> str:
    servers = sum(1 for count in plan.per_server.values() if count)
    return "1 server" if servers == 1 else f"{servers:,} servers"


def rules_lines(plan: PrunePlan) -> list[str]:
    """The plan's rules in words, a line each (each well within 80 columns)."""
    keep = plan.keep_last or 0
    if keep > 1:
        kept = f"each server's newest {keep:,} completed manual backups"
    elif keep == 1 or not plan.keep_none:
        kept = "each server's newest completed manual backup"
    else:
        kept = "nothing by count (--keep-none)"
    lines = [f"keeping: {kept}"]
    if plan.older_than is not None:
        as_of = plan.as_of.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
        lines.append(
            f"deleting: only backups older than {describe_duration(plan.older_than)} "
            f"(as of {as_of})"
        )
    return lines


def plan_json(plan: PrunePlan) -> dict[str, Any]:
    """A plan as one JSON document."""
    return {
        "as_of": timestamp(plan.as_of),
        "rules": {
            "keep_last": plan.keep_last,
            "older_than_seconds": (
                None if plan.older_than is None else plan.older_than.total_seconds()
            ),
            "keep_none": plan.keep_none,
        },
        "backups": len(plan.to_delete),
        "servers": sum(1 for count in plan.per_server.values() if count),
        "size_mb": plan.size_mb,
        "per_server": [
            {"server_id": server_id, "delete": count, "keep": plan.kept_per_server[server_id]}
            for server_id, count in plan.per_server.items()
        ],
        "to_delete": [backup_json(backup) for backup in plan.to_delete],
    }


class _PlanView:
    """How a plan and its result are shown, in the format ``--output`` chose."""

    def __init__(self, invocation: Invocation, plan: PrunePlan) -> None:
        self.invocation = invocation
        self.out = invocation.out
        self.plan_ = plan

    def plan(self, *, dry_run: bool, final: bool) -> None:
        """The plan: a table and a total, one JSON document, or a line per backup.

        ``final``: nothing follows (a dry run, or nothing to prune); the JSON document
        is written now only then, else with the result.
        """
        out, plan = self.out, self.plan_
        if out.json_lines:
            for backup in plan.to_delete:
                out.json({"outcome": "planned", "backup": backup_json(backup)})
            return
        if out.json_mode:
            if final:
                nothing: dict[str, Any] = {"deleted": [], "already_gone": [], "failed": []}
                out.json({"dry_run": dry_run, "plan": plan_json(plan), **nothing})
            return
        rows = [_row(backup) for backup in sorted(plan.to_delete, key=_by_server)]
        if out.plain:
            out.table(PLAN_COLUMNS, rows)
            return
        if not plan.to_delete:
            read = len(plan.per_server)
            out.line(f"nothing to prune: no manual backup of {read:,} servers matches the rules")
            for line in rules_lines(plan):
                out.line(line)
            return
        out.table(PLAN_COLUMNS, rows, title="Backups to delete")
        count = len(plan.to_delete)
        kept = sum(plan.kept_per_server.values())
        out.line(
            f"total: {count:,} {'backup' if count == 1 else 'backups'} of {_servers(plan)}, "
            f"{plan.size_mb:,} MB; {kept:,} manual backups stay"
        )
        for line in rules_lines(plan):
            out.line(line)
        if dry_run:
            out.line("dry run: nothing was deleted")

    def result(self, result: PruneResult) -> None:
        """What the deletes did."""
        out = self.out
        if out.json_lines:
            for backup_id in result.deleted:
                out.json({"outcome": "deleted", "id": backup_id})
            for backup_id in result.already_gone:
                out.json({"outcome": "already_gone", "id": backup_id})
            for backup_id, error in result.failed:
                out.json({"outcome": "failed", "id": backup_id, "error": self._error(error)})
            return
        if out.json_mode:
            out.json(
                {
                    "dry_run": False,
                    "plan": plan_json(self.plan_),
                    "deleted": result.deleted,
                    "already_gone": result.already_gone,
                    "failed": [
                        {"id": backup_id, "error": self._error(error)}
                        for backup_id, error in result.failed
                    ],
                }
            )
            return
        if out.plain:
            for backup_id in result.deleted:
                out.line(f"{backup_id}\tdeleted")
            for backup_id in result.already_gone:
                out.line(f"{backup_id}\talready_gone")
            for backup_id, error in result.failed:
                out.line(f"{backup_id}\tfailed\t{self.invocation.explain(error)}")
            return
        count = len(result.deleted)
        summary = f"deleted {count:,} {'backup' if count == 1 else 'backups'}"
        if result.already_gone:
            summary += f", {len(result.already_gone):,} already gone"
        if result.failed:
            summary += f", {len(result.failed):,} failed"
        out.line(summary)
        if not result.failed:
            return
        rows = [
            [str(backup_id), self.invocation.explain(error)]
            for backup_id, error in result.failed[:_MAX_FAILURE_ROWS]
        ]
        columns = (Column("BACKUP", right=True), Column("ERROR", fold=True, min_width=16))
        out.table(columns, rows, title="Failed deletes")
        if len(result.failed) > _MAX_FAILURE_ROWS:
            more = len(result.failed) - _MAX_FAILURE_ROWS
            out.line(f"... and {more:,} more (--json lists them all)")

    def _error(self, error: BaseException) -> dict[str, Any]:
        return {"message": self.invocation.explain(error), **error_json(error)}


def _by_server(backup: Backup) -> tuple[int, Any, int]:
    return (backup.server_id, backup.created_at, backup.id)


def _row(backup: Backup) -> list[str]:
    return [
        str(backup.server_id),
        str(backup.id),
        backup.created_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M"),
        escape(backup.status.value),
        "-" if backup.size_mb is None else f"{backup.size_mb:,}",
        escape(backup.description or ""),
    ]


def _run(client: BackupsClient, work: Callable[[BackupsClient], Awaitable[T]]) -> T:
    """``work(client)`` on a new event loop, the client closed however it ends."""

    async def session() -> T:
        async with client:
            return await work(client)

    return asyncio.run(session())
