"""The commands that talk to the API: list, create, delete, restore, wait and fleet.

Each command is a plain function ``(args, out) -> exit status`` that runs its async
part with ``asyncio.run`` and always closes its client. Failures are raised: the SDK's
errors as they are, the command line's own as :class:`CommandError`; ``main`` turns
them into one error line and an exit status.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any, TextIO

from asyncbackups import ENV_TOKEN, BackupsClient

from ._exit_codes import CommandError, ExitCode, UsageError
from ._output import Output, backup_json, describe_backup, one_line, outcome_json
from ._parser import parse_id

__all__ = [
    "create_command",
    "delete_command",
    "fleet_command",
    "list_command",
    "make_client",
    "read_server_ids",
    "restore_command",
    "wait_command",
]


def make_client(args: argparse.Namespace) -> BackupsClient:
    """A client configured from the connection options; nothing is sent yet.

    Raises :class:`UsageError` without a token; the SDK's ``ValueError``/``TypeError``
    for other bad settings.
    """
    if args.token is None and not os.environ.get(ENV_TOKEN):
        # The SDK would say the same, but in terms of its constructor, not of flags.
        raise UsageError(f"no API token: pass --token or set ${ENV_TOKEN}")
    options: dict[str, Any] = {}
    if args.base_url is not None:
        options["base_url"] = args.base_url
    if args.request_timeout is not None:
        options["timeout"] = args.request_timeout
    if args.max_retries is not None:
        options["max_retries"] = args.max_retries
    return BackupsClient(args.token, **options)


def _run_with_client(client: BackupsClient, work: Callable[[BackupsClient], Awaitable[int]]) -> int:
    """Run ``work(client)`` on a new event loop, closing the client however it ends."""

    async def session() -> int:
        async with client:
            return await work(client)

    return asyncio.run(session())


def _wait_options(args: argparse.Namespace, *, timeout_keyword: str = "timeout") -> dict[str, Any]:
    """The wait's deadline and ``--poll-interval``, as SDK keywords; unset ones left out.

    What is left out keeps the SDK's default (a 1800 s deadline, 2 s first polls).
    """
    options: dict[str, Any] = {}
    if args.wait_timeout is not None:
        options[timeout_keyword] = args.wait_timeout
    if args.poll_interval is not None:
        options["poll_interval"] = args.poll_interval
    return options


# -- list, create, delete, wait -----------------------------------------------------------


def list_command(args: argparse.Namespace, out: Output) -> int:
    """``list``: every matching backup, as a table or a JSON array."""
    client = make_client(args)

    async def work(client: BackupsClient) -> int:
        backups = await client.backups.list(server_id=args.server_id, backup_type=args.backup_type)
        if out.json_mode:
            out.json([backup_json(backup) for backup in backups])
        else:
            out.backups(backups)
        return ExitCode.OK

    return _run_with_client(client, work)


def create_command(args: argparse.Namespace, out: Output) -> int:
    """``create``: start a backup; with ``--wait`` also wait until it completes."""
    client = make_client(args)

    async def work(client: BackupsClient) -> int:
        backup = await client.backups.create(args.server_id, description=args.description)
        if not out.json_mode:
            started = describe_backup(backup)
            out.line(f"{started} ({backup.message})" if backup.message else started)
        if args.wait:
            waiting = f"waiting for backup {backup.id}"
            with out.wait_status(waiting, shown=backup.status.value) as status:
                backup = await client.backups.wait_until_completed(
                    backup,
                    on_update=status.update,
                    **_wait_options(args),
                )
            if not out.json_mode:
                out.line(describe_backup(backup))
        elif not out.json_mode:
            out.line(f"follow it with: asyncbackups wait {backup.id}")
        if out.json_mode:
            out.json(backup_json(backup))
        return ExitCode.OK

    return _run_with_client(client, work)


def delete_command(args: argparse.Namespace, out: Output) -> int:
    """``delete``: delete one backup."""
    client = make_client(args)

    async def work(client: BackupsClient) -> int:
        await client.backups.delete(args.backup_id)
        if out.json_mode:
            out.json({"id": args.backup_id, "deleted": True})
        else:
            out.line(f"deleted backup {args.backup_id}")
        return ExitCode.OK

    return _run_with_client(client, work)


def wait_command(args: argparse.Namespace, out: Output) -> int:
    """``wait``: wait until a backup completes; a failure or the deadline is status 3."""
    client = make_client(args)

    async def work(client: BackupsClient) -> int:
        with out.wait_status(f"waiting for backup {args.backup_id}") as status:
            backup = await client.backups.wait_until_completed(
                args.backup_id,
                on_update=status.update,
                **_wait_options(args),
            )
        if out.json_mode:
            out.json(backup_json(backup))
        else:
            out.line(describe_backup(backup))
        return ExitCode.OK

    return _run_with_client(client, work)


# -- restore ------------------------------------------------------------------------------


def confirm(question: str) -> bool:
    """Ask ``question`` on the terminal; only ``y`` or ``yes`` is a yes.

    The question goes to stderr so that stdout stays clean for ``--json``; the end of
    input (a closed or empty stdin) is a no.
    """
    sys.stderr.write(f"{question} [y/N] ")
    sys.stderr.flush()
    answer = sys.stdin.readline() if sys.stdin is not None else ""
    if not answer or not _is_terminal(sys.stdin):
        # No typed Enter ended the question's line; end it before what follows.
        sys.stderr.write("\n")
        sys.stderr.flush()
    return answer.strip().lower() in {"y", "yes"}


def _is_terminal(stream: TextIO | None) -> bool:
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def restore_command(args: argparse.Namespace, out: Output) -> int:
    """``restore``: restore a server from a backup, after a yes on the terminal."""
    client = make_client(args)
    question = (
        f"Restore server {args.server_id} from backup {args.backup_id}? "
        "This overwrites the server's disk."
    )
    # Asked before any event loop runs: a blocking read inside one would ignore Ctrl-C.
    if not args.yes and not confirm(question):
        raise CommandError(
            "restore not confirmed; nothing was sent (pass --yes to skip the question)",
            ExitCode.NOT_CONFIRMED,
        )

    async def work(client: BackupsClient) -> int:
        result = await client.servers.restore(args.server_id, args.backup_id)
        if out.json_mode:
            out.json(
                {
                    "server_id": args.server_id,
                    "backup_id": args.backup_id,
                    "status_code": result.status_code,
                    "response": result.raw,
                }
            )
        else:
            state = result.status or "accepted"
            message = f": {result.message}" if result.message else ""
            out.line(
                f"restore of server {args.server_id} from backup {args.backup_id} {state}{message}"
            )
        return ExitCode.OK

    return _run_with_client(client, work)


# -- fleet --------------------------------------------------------------------------------


def read_server_ids(path: str) -> list[int]:
    """Server IDs from a file (``-``: stdin), one a line; blanks and ``#`` comments skipped.

    Raises :class:`UsageError` for an unreadable file or a line that is not an ID.
    """
    name = "stdin" if path == "-" else path
    try:
        if path == "-":
            text = sys.stdin.read() if sys.stdin is not None else ""
        else:
            with open(path, encoding="utf-8") as file:
                text = file.read()
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else error
        raise UsageError(f"cannot read {name}: {one_line(str(reason))}") from None
    server_ids = []
    for number, line in enumerate(text.splitlines(), start=1):
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        try:
            server_ids.append(parse_id(entry))
        except ValueError:
            raise UsageError(f"{name} line {number}: {entry!r} is not a server ID") from None
    return server_ids


def _fleet_server_ids(args: argparse.Namespace) -> list[int]:
    if args.from_file is not None and args.server_ids:
        raise UsageError("give server IDs or --from-file, not both")
    if args.from_file is not None:
        server_ids = read_server_ids(args.from_file)
        if not server_ids:
            name = "stdin" if args.from_file == "-" else args.from_file
            raise UsageError(f"no server IDs in {name}")
        return server_ids
    if not args.server_ids:
        raise UsageError("give at least one SERVER_ID, or --from-file PATH")
    return list(args.server_ids)


def fleet_command(args: argparse.Namespace, out: Output) -> int:
    """``fleet``: back up many servers; status 4 when any of them failed."""
    server_ids = _fleet_server_ids(args)
    client = make_client(args)

    async def work(client: BackupsClient) -> int:
        started = time.monotonic()
        verb = "backing up" if args.wait else "starting backups of"
        with out.fleet_progress(len(server_ids), label=f"{verb} {len(server_ids)} servers") as bar:
            result = await client.backups.create_many(
                server_ids,
                description=args.description,
                wait=args.wait,
                concurrency=args.concurrency,
                on_progress=bar.record,
                **_wait_options(args, timeout_keyword="wait_timeout"),
            )
        seconds = time.monotonic() - started
        if out.json_mode:
            out.json(
                {
                    "servers": len(result.outcomes),
                    "succeeded": len(result.succeeded),
                    "failed": len(result.failed),
                    "seconds": round(seconds, 3),
                    "outcomes": [outcome_json(outcome) for outcome in result.outcomes],
                }
            )
        else:
            out.fleet_summary(result, seconds=seconds)
        if result.failed:
            raise CommandError(
                f"{len(result.failed)} of {len(result.outcomes)} server backups failed",
                ExitCode.FLEET_FAILURES,
            )
        return ExitCode.OK

    return _run_with_client(client, work)
