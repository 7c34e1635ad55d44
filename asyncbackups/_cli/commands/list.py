"""``asyncbackups list``: backups in the order the API gives, filtered and limited."""

from __future__ import annotations

from typing import Any

import click

from asyncbackups import Backup, BackupsClient

from ..base import Command, examples
from ..exit_codes import ExitCode
from ..invocation import Invocation, run_with_client
from ..options import command_invocation, connection_options, output_options, pop_globals
from ..output import backup_json
from ..params import ID

__all__ = ["list_"]


@click.command(
    "list",
    cls=Command,
    short_help="List backups: every page, filtered, as a table or JSON.",
    help="List backups in the order the API gives, filtered and limited as asked.",
    epilog=examples(
        "asyncbackups list",
        "asyncbackups list --server-id 12345 --type manual",
        "asyncbackups list --status failed --limit 20",
        "asyncbackups list --output json-lines | jq -r 'select(.size_mb > 4000) | .id'",
        exit_status="0 listed, 1 API error, 2 usage error",
    ),
)
@click.option("--server-id", type=ID, metavar="N", help="only this server's backups")
@click.option(
    "--type",
    "backup_type",
    type=click.Choice(["manual", "automatic"], case_sensitive=False),
    help="only manual or only automatic backups",
)
@click.option(
    "--status",
    type=click.Choice(["in_progress", "completed", "failed"], case_sensitive=False),
    help="only backups in this status",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    metavar="N",
    help="at most N backups (reads no more pages than needed)",
)
@connection_options
@output_options
@click.pass_context
def list_(ctx: click.Context, /, **params: Any) -> int:
    invocation = command_invocation(ctx, params)
    options = pop_globals(params)
    return list_backups(
        invocation,
        server_id=options["server_id"],
        backup_type=_lower(options["backup_type"]),
        status=_lower(options["status"]),
        limit=options["limit"],
    )


def _lower(choice: str | None) -> str | None:
    return None if choice is None else choice.lower()


def list_backups(
    invocation: Invocation,
    *,
    server_id: int | None,
    backup_type: str | None,
    status: str | None,
    limit: int | None,
) -> int:
    """The matching backups, read page by page and stopped at ``limit``."""
    client = invocation.client()
    out = invocation.out

    async def work(client: BackupsClient) -> int:
        kept: list[Backup] = []
        listing = client.backups.iter(server_id=server_id, backup_type=backup_type)
        shown = 0
        try:
            async for backup in listing:
                if status is not None and backup.status.value != status:
                    continue
                shown += 1
                if out.json_lines:
                    out.json(backup_json(backup))  # as it is read
                else:
                    kept.append(backup)
                if limit is not None and shown >= limit:
                    break  # no more pages are read
        finally:
            close = getattr(listing, "aclose", None)
            if close is not None:
                await close()
        if out.json_lines:
            return ExitCode.OK
        if out.json_mode:
            out.json([backup_json(backup) for backup in kept])
        else:
            out.backups(kept)
        return ExitCode.OK

    return run_with_client(client, work)
