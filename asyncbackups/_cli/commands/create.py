"""``asyncbackups create``: start a manual backup of a server, and maybe wait for it."""

from __future__ import annotations

import asyncio
from typing import Any

import click

from asyncbackups import BackupsClient, NotFoundError

from ..base import Command, examples
from ..exit_codes import CommandError, ExitCode
from ..invocation import Invocation, run_with_client
from ..options import (
    command_invocation,
    connection_options,
    output_options,
    pop_globals,
    wait_timing,
)
from ..output import backup_json, describe_backup, escape
from ..params import DESCRIPTION, DESCRIPTION_MAX, ID
from .wait import command_hint, follow

__all__ = ["create"]


@click.command(
    "create",
    cls=Command,
    short_help="Start a manual backup of a server (and maybe wait for it).",
    help="Start a manual backup of a server; with --wait, wait until it completes.",
    epilog=examples(
        "asyncbackups create 12345",
        "asyncbackups create 12345 --description 'before upgrade' --wait",
        "asyncbackups create 12345 --wait --wait-timeout 600 --json",
        notes="Under --json a backup that failed, timed out or was still running at\n"
        "Ctrl-C is still printed on stdout. Ctrl-C stops only the waiting: the\n"
        "backup goes on, and the message says how to follow it.",
        exit_status="0 started (or completed with --wait), 1 API error,\n"
        "3 the backup failed or the wait timed out, 130 interrupted (Ctrl-C)",
    ),
)
@click.argument("server_id", type=ID, metavar="SERVER_ID")
@click.option(
    "--description",
    type=DESCRIPTION,
    metavar="TEXT",
    help=f"at most {DESCRIPTION_MAX} characters (checked before sending)",
)
@click.option("--wait", is_flag=True, help="wait until the backup completes")
@wait_timing
@connection_options
@output_options
@click.pass_context
def create(ctx: click.Context, /, **params: Any) -> int:
    invocation = command_invocation(ctx, params)
    options = pop_globals(params)
    return create_backup(
        invocation,
        server_id=options["server_id"],
        description=options["description"],
        wait=options["wait"],
        wait_timeout=options["wait_timeout"],
        poll_interval=options["poll_interval"],
    )


def create_backup(
    invocation: Invocation,
    *,
    server_id: int,
    description: str | None,
    wait: bool,
    wait_timeout: float | None,
    poll_interval: float | None,
) -> int:
    """Start a backup; with ``wait`` also wait until it completes."""
    client = invocation.client()
    out = invocation.out

    async def work(client: BackupsClient) -> int:
        try:
            backup = await client.backups.create(server_id, description=description)
        except NotFoundError as error:
            raise CommandError(
                invocation.explain(error, server_id=server_id), ExitCode.API_ERROR, cause=error
            ) from None
        except asyncio.CancelledError:
            # Ctrl-C with the create on the wire: it may have reached the API.
            listing = command_hint(invocation, "list", "--server-id", str(server_id))
            raise CommandError(
                f"interrupted; a backup of server {server_id} may have been started: {listing}",
                ExitCode.INTERRUPTED,
            ) from None
        if not out.json_mode:
            started = describe_backup(backup)
            out.line(f"{started} ({escape(backup.message)})" if backup.message else started)
        if wait:
            backup = await follow(
                invocation, client, backup, wait_timeout=wait_timeout, poll_interval=poll_interval
            )
            if not out.json_mode:
                out.line(describe_backup(backup))
        elif not out.json_mode and not out.plain:
            out.line(f"follow it with: asyncbackups wait {backup.id}")
        if out.json_mode:
            out.json(backup_json(backup))
        return ExitCode.OK

    return run_with_client(client, work)
