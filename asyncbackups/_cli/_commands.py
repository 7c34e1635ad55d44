"""The commands that talk to the API: list, get, create, delete, restore and wait.

Each command is a plain function ``(invocation, ...options) -> exit status`` that runs
its async part with ``asyncio.run`` and always closes its client. Failures are raised:
the SDK's errors as they are, the command line's own as :class:`CommandError`; ``main``
turns them into one error line and an exit status.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TextIO

from asyncbackups import (
    Backup,
    BackupFailedError,
    BackupsClient,
    BackupsError,
    NotFoundError,
    WaitTimeoutError,
)

from ._exit_codes import CommandError, ExitCode, UsageError
from ._invocation import Invocation
from ._output import backup_json, backup_row, describe_backup, error_json, escape, json_text

__all__ = [
    "ask",
    "create_command",
    "delete_command",
    "get_command",
    "list_command",
    "restore_command",
    "run_with_client",
    "wait_command",
    "wait_options",
]


def run_with_client(client: BackupsClient, work: Callable[[BackupsClient], Awaitable[int]]) -> int:
    """Run ``work(client)`` on a new event loop, closing the client however it ends."""

    async def session() -> int:
        async with client:
            return await work(client)

    return asyncio.run(session())


def wait_options(
    wait_timeout: float | None, poll_interval: float | None, *, timeout_keyword: str = "timeout"
) -> dict[str, Any]:
    """The wait's deadline and first poll interval as SDK keywords; unset ones left out.

    What is left out keeps the SDK's default (a 1800 s deadline, 2 s first polls).
    """
    options: dict[str, Any] = {}
    if wait_timeout is not None:
        options[timeout_keyword] = wait_timeout
    if poll_interval is not None:
        options["poll_interval"] = poll_interval
    return options


def _print_failed_backup(invocation: Invocation, error: BaseException) -> None:
    """Under JSON, a backup that failed or timed out is still the command's document."""
    if not invocation.json_mode:
        return
    if isinstance(error, BackupFailedError | WaitTimeoutError) and error.backup is not None:
        invocation.out.json(backup_json(error.backup))


# -- list, get ----------------------------------------------------------------------------


def list_command(
    invocation: Invocation,
    *,
    server_id: int | None,
    backup_type: str | None,
    status: str | None,
    limit: int | None,
) -> int:
    """``list``: the matching backups, read page by page and stopped at ``--limit``."""
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


def get_command(invocation: Invocation, *, backup_id: int) -> int:
    """``get``: one backup."""
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


# -- create, wait -------------------------------------------------------------------------


def create_command(
    invocation: Invocation,
    *,
    server_id: int,
    description: str | None,
    wait: bool,
    wait_timeout: float | None,
    poll_interval: float | None,
) -> int:
    """``create``: start a backup; with ``--wait`` also wait until it completes."""
    client = invocation.client()
    out = invocation.out

    async def work(client: BackupsClient) -> int:
        try:
            backup = await client.backups.create(server_id, description=description)
        except NotFoundError as error:
            raise CommandError(
                invocation.explain(error, server_id=server_id), ExitCode.API_ERROR, cause=error
            ) from None
        if not out.json_mode:
            started = describe_backup(backup)
            out.line(f"{started} ({escape(backup.message)})" if backup.message else started)
        if wait:
            waiting = f"waiting for backup {backup.id}"
            try:
                with out.wait_status(waiting, shown=backup.status.value) as status:
                    backup = await client.backups.wait_until_completed(
                        backup,
                        on_update=status.update,
                        **wait_options(wait_timeout, poll_interval),
                    )
            except (BackupFailedError, WaitTimeoutError) as error:
                _print_failed_backup(invocation, error)
                raise
            if not out.json_mode:
                out.line(describe_backup(backup))
        elif not out.json_mode and not out.plain:
            out.line(f"follow it with: asyncbackups wait {backup.id}")
        if out.json_mode:
            out.json(backup_json(backup))
        return ExitCode.OK

    return run_with_client(client, work)


def wait_command(
    invocation: Invocation,
    *,
    backup_id: int,
    wait_timeout: float | None,
    poll_interval: float | None,
) -> int:
    """``wait``: wait until a backup completes; a failure or the deadline is status 3."""
    client = invocation.client()
    out = invocation.out

    async def work(client: BackupsClient) -> int:
        try:
            with out.wait_status(f"waiting for backup {backup_id}") as status:
                backup = await client.backups.wait_until_completed(
                    backup_id,
                    on_update=status.update,
                    **wait_options(wait_timeout, poll_interval),
                )
        except (BackupFailedError, WaitTimeoutError) as error:
            _print_failed_backup(invocation, error)
            raise
        if out.json_mode:
            out.json(backup_json(backup))
        else:
            out.line(describe_backup(backup))
        return ExitCode.OK

    return run_with_client(client, work)


# -- asking first -------------------------------------------------------------------------


def _is_terminal(stream: TextIO | None) -> bool:
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def confirm(question: str) -> bool:
    """Ask ``question`` on the terminal; only ``y`` or ``yes`` is a yes.

    The question goes to stderr so that stdout stays clean for ``--json``; the end of
    input is a no.
    """
    sys.stderr.write(f"{question} [y/N] ")
    sys.stderr.flush()
    answer = sys.stdin.readline() if sys.stdin is not None else ""
    if not answer:
        # No typed Enter ended the question's line; end it before what follows.
        sys.stderr.write("\n")
        sys.stderr.flush()
    return answer.strip().lower() in {"y", "yes"}


def ask(question: str, *, action: str, yes: bool) -> None:
    """Go on only after a yes on the terminal (or ``--yes``); otherwise send nothing.

    Without a terminal on stdin there is no one to ask: that is a refusal (exit 2), so
    that ``echo y | asyncbackups restore ...`` cannot restore by accident.
    """
    if yes:
        return
    if not _is_terminal(sys.stdin):
        raise UsageError(
            f"{action} needs a yes, and stdin is no terminal to ask on; nothing was sent "
            "(pass --yes to confirm in a script)"
        )
    if not confirm(question):
        raise CommandError(
            f"{action} not confirmed; nothing was sent (pass --yes to skip the question)",
            ExitCode.NOT_CONFIRMED,
        )


# -- delete -------------------------------------------------------------------------------


def delete_command(
    invocation: Invocation, *, backup_ids: Sequence[int], yes: bool, dry_run: bool
) -> int:
    """``delete``: delete backups for good, after a yes (each ID once).

    Every ID is tried; under ``--json`` one ID answers one object, several an array.
    """
    repeated = sorted({i for i in backup_ids if backup_ids.count(i) > 1})
    if repeated:
        raise UsageError(f"BACKUP_ID repeats {repeated}; give each backup once")
    out = invocation.out
    listed = ", ".join(map(str, backup_ids))
    noun = "backup" if len(backup_ids) == 1 else "backups"
    if dry_run:
        base = invocation.base_url()
        _print_dry_run(
            invocation,
            [
                {"method": "DELETE", "url": f"{base}backups/{backup_id}/"}
                for backup_id in backup_ids
            ],
        )
        return ExitCode.OK
    client = invocation.client()
    ask(
        f"Delete {noun} {listed}? This is permanent.",
        action=f"deleting {noun} {listed}",
        yes=yes,
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


def _print_dry_run(invocation: Invocation, requests: Sequence[dict[str, Any]]) -> None:
    out = invocation.out
    if out.json_lines:
        for request in requests:
            out.json({"dry_run": True, **request})
        return
    if out.json_mode:
        out.json({"dry_run": True, "requests": list(requests)})
        return
    for request in requests:
        body = f" {json_text(request['json'], compact=True)}" if "json" in request else ""
        out.line(f"would send {request['method']} {escape(request['url'])}{body}")
    out.line("dry run: nothing was sent")


# -- restore ------------------------------------------------------------------------------


def restore_command(
    invocation: Invocation, *, server_id: int, backup_id: int, yes: bool, dry_run: bool
) -> int:
    """``restore``: restore a server from a backup, after a yes on the terminal."""
    out = invocation.out
    if dry_run:
        url = f"{invocation.base_url()}servers/{server_id}/restore/"
        _print_dry_run(
            invocation, [{"method": "POST", "url": url, "json": {"backup_id": backup_id}}]
        )
        return ExitCode.OK
    client = invocation.client()
    invocation.state.explainer = type(invocation.state.explainer)(
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
