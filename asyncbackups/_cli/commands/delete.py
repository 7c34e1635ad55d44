"""``asyncbackups delete``: delete backups for good, after a yes (each ID once)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import click

from asyncbackups import Backup, BackupsClient, BackupsError, NotFoundError

from ..base import Command, examples
from ..confirm import ask, backup_context, needs_question, print_dry_run
from ..exit_codes import CommandError, ExitCode, UsageError
from ..invocation import Invocation, run_with_client
from ..options import (
    command_invocation,
    confirmation,
    connection_options,
    output_options,
    pop_globals,
)
from ..output import error_json
from ..params import ID

__all__ = ["delete"]


@click.command(
    "delete",
    cls=Command,
    short_help="Delete backups for good (asks first).",
    help="Delete one or more backups for good. Asks first on the terminal, showing "
    "each backup's server, date, size and description; without a terminal (in a "
    "script, or with input piped in) it refuses unless --yes is given.",
    epilog=examples(
        "asyncbackups delete 502                # asks first",
        "asyncbackups delete 502 503 504 --yes  # in scripts",
        exit_status="0 deleted, 1 API error (404: no such backup), 2 usage error or\n"
        "no terminal to ask on, 5 answered no: nothing was sent",
    ),
)
@click.argument("backup_ids", type=ID, nargs=-1, required=True, metavar="BACKUP_ID...")
@confirmation
@connection_options
@output_options
@click.pass_context
def delete(ctx: click.Context, /, **params: Any) -> int:
    invocation = command_invocation(ctx, params)
    options = pop_globals(params)
    return delete_backups(
        invocation,
        backup_ids=list(options["backup_ids"]),
        yes=options["yes"],
        dry_run=options["dry_run"],
    )


def _read_first(invocation: Invocation, backup_ids: Sequence[int]) -> list[Backup]:
    """The backups about to be deleted, read to show what is at stake.

    Raises :class:`CommandError` (exit status 1) when any of them is gone: nothing is
    asked, nothing deleted.
    """

    async def read(client: BackupsClient) -> list[Backup]:
        results = await asyncio.gather(
            *(client.backups.get(backup_id) for backup_id in backup_ids),
            return_exceptions=True,
        )
        found: list[Backup] = []
        missing: list[tuple[int, NotFoundError]] = []
        for backup_id, result in zip(backup_ids, results, strict=True):
            if isinstance(result, NotFoundError):
                missing.append((backup_id, result))
            elif isinstance(result, BaseException):
                raise result  # the API or the network failed: the runner explains it
            else:
                found.append(result)
        if missing:
            ids = ", ".join(str(backup_id) for backup_id, _ in missing)
            noun = "backup" if len(missing) == 1 else "backups"
            raise CommandError(
                f"{noun} {ids} not found (deleted already?); nothing was deleted",
                ExitCode.API_ERROR,
                cause=missing[0][1],
            )
        return found

    async def work(client: BackupsClient) -> int:
        backups.extend(await read(client))
        return ExitCode.OK

    backups: list[Backup] = []
    run_with_client(invocation.client(), work)
    return backups


def delete_backups(
    invocation: Invocation, *, backup_ids: Sequence[int], yes: bool, dry_run: bool
) -> int:
    """Delete every backup asked for, after a yes; report each.

    On a terminal the backups are read first and shown with the question; one that is
    gone ends the command before asking. Every ID is tried; under ``--json`` one ID
    answers one object, several an array.
    """
    repeated = sorted({i for i in backup_ids if backup_ids.count(i) > 1})
    if repeated:
        raise UsageError(f"BACKUP_ID repeats {repeated}; give each backup once")
    out = invocation.out
    listed = ", ".join(map(str, backup_ids))
    noun = "backup" if len(backup_ids) == 1 else "backups"
    if dry_run:
        base = invocation.base_url()
        requests = [
            {"method": "DELETE", "url": f"{base}backups/{backup_id}/"} for backup_id in backup_ids
        ]
        print_dry_run(invocation, requests)
        return ExitCode.OK
    client = invocation.client()
    action = f"deleting {noun} {listed}"
    # Asked before any event loop runs: a blocking read inside one would ignore Ctrl-C.
    if needs_question(action=action, yes=yes):
        backups = _read_first(invocation, backup_ids)
        ask(
            f"Delete {noun} {listed}? This is permanent.",
            action=action,
            yes=yes,
            context=backup_context(backups),
        )

    async def work(client: BackupsClient) -> int:
        results = await asyncio.gather(
            *(client.backups.delete(backup_id) for backup_id in backup_ids),
            return_exceptions=True,
        )
        failures: list[tuple[int, BackupsError]] = []
        documents: list[dict[str, Any]] = []
        for backup_id, result in zip(backup_ids, results, strict=True):
            if isinstance(result, BackupsError):
                failures.append((backup_id, result))
                error = {"message": invocation.explain(result), **error_json(result)}
                documents.append({"id": backup_id, "deleted": False, "error": error})
            elif isinstance(result, BaseException):
                raise result  # not the API's answer: a bug, a cancellation
            else:
                documents.append({"id": backup_id, "deleted": True})
                if not out.json_mode:
                    out.line(f"deleted backup {backup_id}")
        if out.json_lines:
            for document in documents:
                out.json(document)
        elif out.json_mode and len(documents) > 1:
            out.json(documents)
        elif out.json_mode and not failures:
            out.json(documents[0])
        if len(backup_ids) == 1 and failures:
            raise failures[0][1]
        if failures:
            reasons = "; ".join(invocation.explain(error) for _, error in failures)
            raise CommandError(
                f"{len(failures)} of {len(backup_ids)} deletes failed: {reasons}",
                ExitCode.API_ERROR,
                cause=failures[0][1],
            )
        return ExitCode.OK

    return run_with_client(client, work)
