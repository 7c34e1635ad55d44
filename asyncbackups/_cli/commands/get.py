"""``asyncbackups get``: one backup, a field a line."""

from __future__ import annotations

from typing import Any

import click

from asyncbackups import BackupsClient

from ..base import Command, examples
from ..exit_codes import ExitCode
from ..invocation import Invocation, run_with_client
from ..options import command_invocation, connection_options, output_options, pop_globals
from ..output import backup_json, backup_row
from ..params import ID

__all__ = ["get"]


@click.command(
    "get",
    cls=Command,
    short_help="Show one backup.",
    help="Show one backup: its server, type, status, size, times and description.",
    epilog=examples(
        "asyncbackups get 501",
        "asyncbackups get 501 --json | jq .status",
        exit_status="0 shown, 1 API error (404: no such backup), 2 usage error",
    ),
)
@click.argument("backup_id", type=ID, metavar="BACKUP_ID")
@connection_options
@output_options
@click.pass_context
def get(ctx: click.Context, /, **params: Any) -> int:
    invocation = command_invocation(ctx, params)
    return get_backup(invocation, backup_id=pop_globals(params)["backup_id"])


def get_backup(invocation: Invocation, *, backup_id: int) -> int:
    """Show one backup: JSON, one tab-separated line, or its fields."""
    client = invocation.client()
    out = invocation.out

    async def work(client: BackupsClient) -> int:
        backup = await client.backups.get(backup_id)
        if out.json_mode:
            out.json(backup_json(backup))
        elif out.plain:
            out.line("\t".join(backup_row(backup)))
        else:
            out.backup_fields(backup)
        return ExitCode.OK

    return run_with_client(client, work)
