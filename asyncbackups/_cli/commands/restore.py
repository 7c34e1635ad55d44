"""``asyncbackups restore``: restore a server from a backup, after a yes on the terminal."""

from __future__ import annotations

from typing import Any

import click

from asyncbackups import Backup, BackupsClient, BackupStatus, NotFoundError

from ..base import Command, examples
from ..confirm import ask, backup_context, needs_question, print_dry_run
from ..exit_codes import CommandError, ExitCode, UsageError
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
    "The backup is read first: one of another server, or not completed, is refused "
    "before anything is sent. Asks first on the terminal, showing the backup's "
    "server, date, size and description; without a terminal it refuses unless "
    "--yes is given.",
    epilog=examples(
        "asyncbackups restore 12345 501          # asks first",
        "asyncbackups restore 12345 501 --yes    # in scripts",
        "asyncbackups restore 12345 501 --dry-run",
        exit_status="0 accepted, 1 API error (404: no such backup), 2 usage error\n"
        "(the backup is another server's, or not completed) or no terminal\n"
        "to ask on, 5 answered no: nothing was sent",
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
    """Restore ``server_id`` from ``backup_id`` once confirmed; report what the API said.

    The backup is read first (with ``--yes`` too): one of another server, or one not
    completed, is refused before anything is sent; on a terminal it is shown with the
    question.
    """
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
    action = f"restoring server {server_id} from backup {backup_id}"
    asking = needs_question(action=action, yes=yes)  # no terminal: refused, nothing read
    backup = _read_backup(invocation, backup_id)
    _check_restorable(backup, server_id)
    # Asked before any event loop runs: a blocking read inside one would ignore Ctrl-C.
    if asking:
        ask(
            f"Restore server {server_id} from backup {backup_id}? "
            "This overwrites the server's disk.",
            action=action,
            yes=yes,
            context=backup_context([backup]),
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
            line = f"restore of server {server_id} from backup {backup_id} accepted"
            if result.status:
                line += f" (status: {escape(result.status)})"
            out.line(line)
            if result.message:
                out.line(f"the API says: {escape(result.message)}")
        return ExitCode.OK

    return run_with_client(client, work)


def _read_backup(invocation: Invocation, backup_id: int) -> Backup:
    """The backup to restore from; a missing one ends the command (exit status 1)."""

    async def work(client: BackupsClient) -> int:
        try:
            found.append(await client.backups.get(backup_id))
        except NotFoundError as error:
            raise CommandError(
                f"backup {backup_id} not found: nothing was restored",
                ExitCode.API_ERROR,
                cause=error,
            ) from None
        return ExitCode.OK

    found: list[Backup] = []
    run_with_client(invocation.client(), work)
    return found[0]


def _check_restorable(backup: Backup, server_id: int) -> None:
    """Refuse, before asking, what the API would refuse: another server's backup, or
    one that is not completed (an unknown status is left to the API)."""
    if backup.server_id != server_id:
        name = f" ({escape(backup.server.name)})" if backup.server.name else ""
        raise UsageError(
            f"backup {backup.id} belongs to server {backup.server_id}{name}, not to server "
            f"{server_id}: nothing was restored"
        )
    if backup.status in (BackupStatus.IN_PROGRESS, BackupStatus.FAILED):
        raise UsageError(
            f"backup {backup.id} is {escape(backup.status.value)}, and only a completed "
            "backup can be restored: nothing was restored"
        )
