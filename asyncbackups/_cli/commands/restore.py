"""``asyncbackups restore``: restore a server from a backup, after a yes on the terminal."""

from __future__ import annotations

from typing import Any

import click

from asyncbackups import BackupsClient

from ..base import Command, examples
from ..confirm import ask, print_dry_run
from ..exit_codes import ExitCode
from ..invocation import Invocation, run_with_client
from ..messages import Explainer
from ..options import (
    command_invocation,
    confirmation,
    connection_options,
    output_options,
    pop_globals,
)
from ..output import escape
from ..params import ID

__all__ = ["restore"]


@click.command(
    "restore",
    cls=Command,
    short_help="Restore a server from a backup, overwriting its disk (asks first).",
    help="Restore a server from one of its completed backups, overwriting its disk. "
    "Asks first on the terminal; without one it refuses unless --yes is given.",
    epilog=examples(
        "asyncbackups restore 12345 501          # asks first",
        "asyncbackups restore 12345 501 --yes    # in scripts",
        "asyncbackups restore 12345 501 --dry-run",
        exit_status="0 accepted, 1 API error, 2 usage error or no terminal to ask on,\n"
        "5 not confirmed",
    ),
)
@click.argument("server_id", type=ID, metavar="SERVER_ID")
@click.argument("backup_id", type=ID, metavar="BACKUP_ID")
@confirmation
@connection_options
@output_options
@click.pass_context
def restore(ctx: click.Context, /, **params: Any) -> int:
    invocation = command_invocation(ctx, params)
    options = pop_globals(params)
    return restore_server(
        invocation,
        server_id=options["server_id"],
        backup_id=options["backup_id"],
        yes=options["yes"],
        dry_run=options["dry_run"],
    )


def restore_server(
    invocation: Invocation, *, server_id: int, backup_id: int, yes: bool, dry_run: bool
) -> int:
    """Restore ``server_id`` from ``backup_id`` once confirmed; report what the API said."""
    out = invocation.out
    if dry_run:
        url = f"{invocation.base_url()}servers/{server_id}/restore/"
        print_dry_run(
            invocation, [{"method": "POST", "url": url, "json": {"backup_id": backup_id}}]
        )
        return ExitCode.OK
    client = invocation.client()
    invocation.state.explainer = Explainer(
        invocation.base_url(), timeout=invocation.flags.timeout, restore_backup_id=backup_id
    )
    # Asked before any event loop runs: a blocking read inside one would ignore Ctrl-C.
    ask(
        f"Restore server {server_id} from backup {backup_id}? This overwrites the server's disk.",
        action=f"restoring server {server_id} from backup {backup_id}",
        yes=yes,
    )

    async def work(client: BackupsClient) -> int:
        result = await client.servers.restore(server_id, backup_id)
        if out.json_mode:
            out.json(
                {
                    "server_id": server_id,
                    "backup_id": backup_id,
                    "status_code": result.status_code,
                    "response": result.raw,
                }
            )
        else:
            state = escape(result.status or "accepted")
            message = f": {escape(result.message)}" if result.message else ""
            out.line(f"restore of server {server_id} from backup {backup_id} {state}{message}")
        return ExitCode.OK

    return run_with_client(client, work)
