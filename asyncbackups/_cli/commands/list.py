"""``asyncbackups list``: backups in the order the API gives, filtered and limited.

Rows are written as pages arrive (``output.streaming``): a terminal shows the first
page while the next is read, with a count of what has been read so far below it.
``--columns`` picks the columns and their order; ``--wide`` keeps every column.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from typing import Any

import click

from asyncbackups import Backup, BackupsClient

from ..base import Command, examples
from ..exit_codes import ExitCode, UsageError
from ..invocation import Invocation, run_with_client
from ..options import command_invocation, connection_options, output_options, pop_globals
from ..output import BACKUP_COLUMNS, backup_json, backup_row
from ..params import ID, LIMIT

__all__ = ["list_"]

COLUMN_NAMES = tuple(column.key for column in BACKUP_COLUMNS)


def _columns(ctx: click.Context, param: click.Parameter, value: str | None) -> list[int] | None:
    """``--columns id,status``: the indexes of those columns, in that order."""
    if value is None:
        return None
    names = [name.strip().lower() for name in value.split(",")]
    valid = ", ".join(COLUMN_NAMES)
    chosen: list[int] = []
    for name in names:
        if not name:
            raise click.BadParameter(f"an empty column name in {value!r}; choose from {valid}")
        if name not in COLUMN_NAMES:
            raise click.BadParameter(f"unknown column {name!r}; choose from {valid}")
        index = COLUMN_NAMES.index(name)
        if index in chosen:
            raise click.BadParameter(f"column {name!r} is named twice")
        chosen.append(index)
    return chosen


@click.command(
    "list",
    cls=Command,
    short_help="List backups: every page, filtered, as a table or JSON.",
    help="List backups in the order the API gives, filtered and limited as asked. "
    "Rows show as pages arrive. At a narrow terminal the least needed columns are "
    "hidden (a footer names them): --wide keeps every column, --columns picks them.",
    epilog=examples(
        "asyncbackups list",
        "asyncbackups list --server-id 12345 --type manual",
        "asyncbackups list --status failed --limit 20",
        "asyncbackups list --columns id,status,size,description",
        "asyncbackups list --wide | less -S",
        "asyncbackups list --output json-lines | jq -r 'select(.size_mb > 4000) | .id'",
        notes="Columns: " + ", ".join(COLUMN_NAMES) + ".",
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
    type=LIMIT,
    metavar="N",
    help="at most N backups (reads no more pages than needed)",
)
@click.option(
    "--columns",
    metavar="A,B,...",
    callback=_columns,
    help="only these columns, in this order (names below); none is hidden",
)
@click.option(
    "--wide",
    is_flag=True,
    help="every column, however narrow the terminal (lines may run past its edge)",
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
        columns=options["columns"],
        wide=options["wide"],
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
    columns: list[int] | None = None,
    wide: bool = False,
) -> int:
    """The matching backups, read page by page, shown as they come, stopped at ``limit``."""
    out = invocation.out
    if out.json_mode and (columns is not None or wide):
        flag = "--columns" if columns is not None else "--wide"
        raise UsageError(f"{flag} shapes a table; JSON output keeps every field")
    client = invocation.client()

    async def matching(client: BackupsClient) -> AsyncGenerator[Backup, None]:
        listing = client.backups.iter(server_id=server_id, backup_type=backup_type)
        shown = 0
        try:
            async for backup in listing:
                if status is not None and backup.status.value != status:
                    continue
                yield backup
                shown += 1
                if limit is not None and shown >= limit:
                    return  # no more pages are read
        finally:
            close = getattr(listing, "aclose", None)  # an async generator's, to end its read
            if close is not None:
                await close()

    async def work(client: BackupsClient) -> int:
        backups = matching(client)
        async with contextlib.aclosing(backups):
            if out.json_lines:
                async for backup in backups:
                    out.json(backup_json(backup))  # as it is read
            elif out.json_mode:
                out.json([backup_json(backup) async for backup in backups])
            else:
                table = out.table_stream(BACKUP_COLUMNS, chosen=columns, wide=wide, noun="backups")
                async with table:
                    async for backup in backups:
                        table.add(backup_row(backup))
                if not table.count and not out.plain:
                    out.line("no backups")
        return ExitCode.OK

    return run_with_client(client, work)
