"""``asyncbackups wait``: wait until a backup completes; a failure or the deadline is status 3.

:func:`follow` is the wait itself, shared with ``create --wait``.
"""

from __future__ import annotations

import asyncio
import shlex
from typing import Any

import click

from asyncbackups import Backup, BackupFailedError, BackupsClient, WaitTimeoutError

from ..base import Command, examples
from ..exit_codes import CommandError, ExitCode
from ..invocation import Invocation, run_with_client
from ..options import (
    command_invocation,
    connection_options,
    output_options,
    pop_globals,
    wait_options,
    wait_timing,
)
from ..output import backup_json, describe_backup
from ..params import ID

__all__ = ["command_hint", "follow", "wait"]


@click.command(
    "wait",
    cls=Command,
    short_help="Wait until a backup completes.",
    help="Wait until a backup completes; its failure or the deadline is exit status 3.",
    epilog=examples(
        "asyncbackups wait 502",
        "asyncbackups wait 502 --wait-timeout 600 --timeout 10",
        notes="--wait-timeout is how long to wait in all; --timeout is per request.\n"
        "Under --json a backup that failed, timed out or was still running at\n"
        "Ctrl-C is still printed on stdout.",
        exit_status="0 completed, 1 API error (404: no such backup),\n"
        "3 the backup failed or the wait timed out, 130 interrupted (Ctrl-C)",
    ),
)
@click.argument("backup_id", type=ID, metavar="BACKUP_ID")
@wait_timing
@connection_options
@output_options
@click.pass_context
def wait(ctx: click.Context, /, **params: Any) -> int:
    invocation = command_invocation(ctx, params)
    options = pop_globals(params)
    return wait_for_backup(
        invocation,
        backup_id=options["backup_id"],
        wait_timeout=options["wait_timeout"],
        poll_interval=options["poll_interval"],
    )


def wait_for_backup(
    invocation: Invocation,
    *,
    backup_id: int,
    wait_timeout: float | None,
    poll_interval: float | None,
) -> int:
    """Wait for one backup, then show it."""
    client = invocation.client()
    out = invocation.out

    async def work(client: BackupsClient) -> int:
        backup = await follow(
            invocation, client, backup_id, wait_timeout=wait_timeout, poll_interval=poll_interval
        )
        if out.json_mode:
            out.json(backup_json(backup))
        else:
            out.line(describe_backup(backup))
        return ExitCode.OK

    return run_with_client(client, work)


def command_hint(invocation: Invocation, *arguments: str) -> str:
    """``asyncbackups wait 1123``: a command to run next, with the connection flags this
    run was given (never ``--token``), so that it reaches the same API."""
    flags = invocation.flags
    words = ["asyncbackups"]
    for option, value in (
        ("--profile", flags.profile),
        ("--base-url", flags.base_url),
        ("--token-file", flags.token_file),
    ):
        if value is not None:
            words += [option, shlex.quote(value)]
    return " ".join([*words, *arguments])


async def follow(
    invocation: Invocation,
    client: BackupsClient,
    backup: Backup | int,
    *,
    wait_timeout: float | None,
    poll_interval: float | None,
) -> Backup:
    """Wait until ``backup`` completes, showing its status as it changes.

    A backup already shown (not a bare ID) is not announced again. Under JSON, one
    that failed, timed out or was still running at Ctrl-C is printed on stdout before
    the error is raised. Ctrl-C ends it with a :class:`CommandError` (exit status 130)
    that names the backup and how to follow it.
    """
    out = invocation.out
    backup_id = backup if isinstance(backup, int) else backup.id
    shown = None if isinstance(backup, int) else backup.status.value
    latest: list[Backup] = [] if isinstance(backup, int) else [backup]
    try:
        with out.wait_status(f"waiting for backup {backup_id}", shown=shown) as status:

            def seen(update: Backup) -> None:
                latest[:] = [update]
                status.update(update)

            return await client.backups.wait_until_completed(
                backup, on_update=seen, **wait_options(wait_timeout, poll_interval)
            )
    except (BackupFailedError, WaitTimeoutError) as error:
        if invocation.json_mode and error.backup is not None:
            out.json(backup_json(error.backup))
        raise
    except asyncio.CancelledError:
        # Ctrl-C (asyncio.run cancels the command): the backup goes on on the server.
        if invocation.json_mode and latest:
            out.json(backup_json(latest[0]))
        hint = command_hint(invocation, "wait", str(backup_id))
        raise CommandError(
            f"interrupted; backup {backup_id} is still being created: {hint}",
            ExitCode.INTERRUPTED,
        ) from None
